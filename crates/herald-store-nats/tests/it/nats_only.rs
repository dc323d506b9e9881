//! What only this store must do: batches that a writer left halfway,
//! forged and corrupt stream contents, closing.

use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Record, Store, StoreError};
use herald_store_nats::testkit::{
    batch_header, fresh_name, record_payload, record_subject, NatsServer,
};

type Follow = futures_util::stream::BoxStream<'static, Result<Record, StoreError>>;

/// The next item of a follow, within 10 s.
async fn next(follower: &mut Follow) -> Option<Result<Record, StoreError>> {
    tokio::time::timeout(Duration::from_secs(10), follower.next())
        .await
        .expect("the follow answers within 10 s")
}

/// Whether the follow yields nothing for 200 ms.
async fn quiet(follower: &mut Follow) -> bool {
    tokio::time::timeout(Duration::from_millis(200), follower.next())
        .await
        .is_err()
}

/// A writer that landed two records of a three-record batch and died: the
/// batch is in flight (readers stop before it) until the next append lands
/// past it, which voids it; its records are never seen and its ids are
/// free.
#[tokio::test]
async fn a_batch_its_writer_left_halfway_is_never_seen() {
    let server = NatsServer::start();
    let name = fresh_name();
    let store = server.store(&name).await;
    let x = store.append(sample("x")).await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let (header, value) = batch_header(2, 4);
    for id in ["y1", "y2"] {
        let mut headers = HeaderMap::new();
        headers.insert(header, value.as_str());
        jetstream
            .publish_with_headers(
                record_subject(&name, id),
                headers,
                record_payload(&sample(id), SystemTime::now()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    assert_eq!(
        store.read_after(Cursor::ZERO, 10).await.unwrap(),
        std::slice::from_ref(&x)
    );
    assert_eq!(store.resolve("y1").await.unwrap(), None);
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), x);
    assert!(quiet(&mut follower).await, "the batch is in flight");

    // The next append waits a moment for the batch, then lands past it.
    let z = store.append(sample("z")).await.unwrap();
    assert_eq!(z.cursor, Cursor::new(4), "right after the broken chain");
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), z);
    assert_eq!(
        store.read_after(Cursor::ZERO, 10).await.unwrap(),
        [x.clone(), z.clone()]
    );
    assert_eq!(store.resolve_record("y2").await.unwrap(), None);
    // Its ids are free: the stale record is replaced.
    let y1 = store.append(sample("y1")).await.unwrap();
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), y1);
    assert_eq!(store.resolve("y1").await.unwrap(), Some(y1.cursor));
    assert_eq!(
        store.read_after(Cursor::ZERO, 10).await.unwrap(),
        [x, z, y1]
    );
}

/// A message on a record subject that is not a record is a `Corrupt`
/// error, not a panic; a follow yields it and ends.
#[tokio::test]
async fn a_corrupt_message_is_an_error() {
    let server = NatsServer::start();
    let name = fresh_name();
    let store = server.store(&name).await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .publish(format!("{name}.id.garbage"), "HR1\x00".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let error = store.read_after(Cursor::ZERO, 10).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
    let mut follower = store.follow(Cursor::ZERO);
    let error = next(&mut follower).await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt);
    assert!(next(&mut follower).await.is_none(), "the follow ends");

    // A well-formed record on another id's subject is corrupt too.
    let name = fresh_name();
    let store = server.store(&name).await;
    jetstream
        .publish(
            record_subject(&name, "a"),
            record_payload(&sample("b"), SystemTime::now()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let error = store.resolve("a").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
}

/// Anyone may publish on the doorbell subject: a forged head does not stop
/// followers from getting what is appended, nor from waking for it.
#[tokio::test]
async fn a_forged_doorbell_does_not_stop_followers() {
    let server = NatsServer::start();
    let name = fresh_name();
    let store = server.store(&name).await;
    let a = store.append(sample("a")).await.unwrap();
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), a);
    let client = async_nats::connect(server.url()).await.unwrap();
    for forged in [&b"18446744073709551615"[..], b"not a number", b""] {
        client
            .publish(format!("{name}.head"), forged.to_vec().into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    assert!(quiet(&mut follower).await);
    let b = store.append(sample("b")).await.unwrap();
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), b);
    let c = store.append(sample("c")).await.unwrap();
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), c);
}

/// An invalid log name is refused before anything is created.
#[tokio::test]
async fn an_invalid_name_is_refused() {
    let server = NatsServer::start();
    let error = herald_store_nats::NatsStore::connect(&server.url(), "a.b")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Backend);
}

/// After `close`, calls are refused with `Closed` and followers end; the
/// log stays for other handles.
#[tokio::test]
async fn close_refuses_calls_and_ends_followers() {
    let server = NatsServer::start();
    let name = fresh_name();
    let store = server.store(&name).await;
    let first = store.append(sample("a")).await.unwrap();
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(next(&mut follower).await.unwrap().unwrap(), first);
    let parked = tokio::spawn(async move { follower.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.close().await.unwrap();
    store.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("a parked follower ends at close")
        .unwrap();
    assert!(ended);
    assert_eq!(
        store.append(sample("b")).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(store.follow(Cursor::ZERO).next().await.is_none());
    let other = server.store(&name).await;
    assert_eq!(other.resolve("a").await.unwrap(), Some(first.cursor));
}
