//! NATS restarts and outages: a store keeps working on the same handle,
//! followers ride through, nothing acknowledged is lost.

use std::time::Duration;

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Record, Store, StoreError};
use herald_store_nats::testkit::NatsServer;
use herald_store_nats::NatsStore;

type Follow = futures_util::stream::BoxStream<'static, Result<Record, StoreError>>;

async fn next(follower: &mut Follow) -> Result<Record, StoreError> {
    tokio::time::timeout(Duration::from_secs(20), follower.next())
        .await
        .expect("the follow answers within 20 s")
        .expect("the follow goes on")
}

/// Appends `id` once NATS answers again (the client reconnects in the
/// background).
async fn append_when_back(store: &NatsStore, id: &str) -> Record {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match store.append(sample(id)).await {
            Ok(record) => return record,
            Err(error) if error.kind() == ErrorKind::Unavailable => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "nats is still unavailable: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("append failed: {error}"),
        }
    }
}

/// SIGKILL of the server right after acknowledged appends loses none of
/// them; appends while it is down fail as `Unavailable` at once; a
/// follower that was waiting goes on after the restart, without an error
/// and without a gap.
#[tokio::test]
async fn a_nats_restart_loses_nothing_and_followers_ride_through() {
    let mut server = NatsServer::start();
    let store = server.fresh_store().await;
    let mut appended = Vec::new();
    for i in 0..50 {
        appended.push(store.append(sample(&format!("r{i}"))).await.unwrap());
    }
    let mut follower = store.follow(Cursor::ZERO);
    for expected in &appended {
        assert_eq!(&next(&mut follower).await.unwrap(), expected);
    }

    server.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let error = store.append(sample("during")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not after a timeout"
    );

    server.start_again();
    let after = append_when_back(&store, "after").await;
    assert!(after.cursor > appended[49].cursor);
    assert_eq!(next(&mut follower).await.unwrap(), after);
    let read = store.read_after(Cursor::ZERO, 100).await.unwrap();
    assert_eq!(read.len(), 51, "every acknowledged record is back");
    assert_eq!(read[..50], appended[..]);
    assert_eq!(store.resolve("r0").await.unwrap(), Some(appended[0].cursor));
}

/// A NATS that is not there is an `Unavailable` error at connect.
#[tokio::test]
async fn an_unreachable_nats_is_unavailable() {
    let server = NatsServer::start();
    let url = server.url();
    drop(server);
    let error = NatsStore::connect(&url, "gone").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
}

/// Reads during an outage fail as `Unavailable`; a follower that must read
/// then yields the error and ends (the hub follows again with backoff).
#[tokio::test]
async fn reads_during_an_outage_are_unavailable() {
    let mut server = NatsServer::start();
    let store = server.fresh_store().await;
    store.append(sample("a")).await.unwrap();
    server.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for error in [
        store.read_after(Cursor::ZERO, 10).await.unwrap_err(),
        store.resolve("a").await.unwrap_err(),
        store.bounds().await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    }
    let mut follower = store.follow(Cursor::ZERO);
    let error = next(&mut follower).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}
