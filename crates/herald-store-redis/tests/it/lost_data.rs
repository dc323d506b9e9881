//! Redis restarts, with and without its data: a store keeps working on the
//! same handle, and records Redis lost are reported as a gap, never handed
//! out again under the same cursors.

use std::time::Duration;

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Store};
use herald_store_redis::testkit::{Persistence, RedisServer};
use herald_store_redis::RedisStore;

/// The next item of a follow, within 20 s.
async fn next(
    follower: &mut futures_util::stream::BoxStream<
        'static,
        Result<herald_store::Record, herald_store::StoreError>,
    >,
) -> Result<herald_store::Record, herald_store::StoreError> {
    tokio::time::timeout(Duration::from_secs(20), follower.next())
        .await
        .expect("the follow answers within 20 s")
        .expect("the follow goes on")
}

/// Appends `id` once Redis answers again (the connection manager
/// reconnects in the background).
async fn append_when_back(store: &RedisStore, id: &str) -> herald_store::Record {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match store.append(sample(id)).await {
            Ok(record) => return record,
            Err(error) if error.kind() == ErrorKind::Unavailable => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "redis is still unavailable: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("append failed: {error}"),
        }
    }
}

#[tokio::test]
async fn with_an_aof_a_restart_loses_nothing_and_reports_no_gap() {
    let mut server = RedisServer::start_with(Persistence::Aof);
    let store = server.fresh_store().await;
    let a = store.append(sample("a")).await.unwrap();
    let b = store.append(sample("b")).await.unwrap();

    server.restart();
    let c = append_when_back(&store, "c").await;
    assert_eq!(c.cursor.get(), b.cursor.get() + 1, "the counter came back");
    assert_eq!(store.resolve("a").await.unwrap(), Some(a.cursor));
    let mut follower = store.follow(Cursor::ZERO);
    for expected in [a, b, c] {
        assert_eq!(next(&mut follower).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn a_redis_that_restarted_empty_is_a_gap_and_cursors_go_on() {
    let mut server = RedisServer::start_with(Persistence::None);
    let store = server.fresh_store().await;
    let a = store.append(sample("a")).await.unwrap();
    let b = store.append(sample("b")).await.unwrap();
    let mut live = store.follow(b.cursor);
    // Caught up: the follower now waits in `XREAD` on its own connection.
    let waiting = tokio::time::timeout(Duration::from_millis(300), live.next()).await;
    assert!(waiting.is_err(), "nothing to follow yet");

    server.restart();
    let c = append_when_back(&store, "c").await;
    assert!(
        c.cursor > b.cursor,
        "cursors are never handed out twice: {} after {}",
        c.cursor,
        b.cursor
    );
    // A follower that had everything goes on, without a gap: it lost
    // nothing (its connection broke; the caller follows again from b).
    let error = next(&mut live).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let mut live = store.follow(b.cursor);
    assert_eq!(next(&mut live).await.unwrap(), c);

    // Whoever resumes from before the loss is told: a's id is unknown now,
    // and a follow from a's cursor needs records that are gone.
    assert_eq!(store.resolve("a").await.unwrap(), None);
    assert_eq!(store.resolve_record("b").await.unwrap(), None);
    let error = next(&mut store.follow(a.cursor)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Trimmed, "{error}");
    let bounds = store.bounds().await.unwrap();
    assert_eq!(bounds.oldest, Some(c.cursor));
    assert_eq!(bounds.head, c.cursor);
}

/// The tail of the log lost, the rest kept: what `appendfsync everysec`
/// and a crash, or a failover to a replica that lagged, leave behind.
/// Simulated by removing the tail by hand.
#[tokio::test]
async fn a_lost_tail_is_a_gap_for_everyone_resuming_before_it() {
    let server = RedisServer::start();
    let prefix = herald_store_redis::testkit::fresh_prefix();
    let store = server.store(&prefix).await;
    let mut records = Vec::new();
    for id in ["r1", "r2", "r3", "r4", "r5"] {
        records.push(store.append(sample(id)).await.unwrap());
    }
    let mut connection = server.connection();
    redis::pipe()
        .cmd("SET")
        .arg(format!("{{{prefix}}}:seq"))
        .arg(3)
        .cmd("XDEL")
        .arg(format!("{{{prefix}}}:log"))
        .arg("0-4")
        .arg("0-5")
        .cmd("HDEL")
        .arg(format!("{{{prefix}}}:ids"))
        .arg("r4")
        .arg("r5")
        .query::<()>(&mut connection)
        .unwrap();

    let r6 = store.append(sample("r6")).await.unwrap();
    assert_eq!(
        r6.cursor.get(),
        6,
        "cursors 4 and 5 are not handed out again"
    );
    // r1..r3 survived, but a client resuming from one of them would miss
    // r4 and r5: the whole history up to the loss counts as trimmed.
    assert_eq!(store.resolve("r2").await.unwrap(), None);
    let error = next(&mut store.follow(records[1].cursor))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Trimmed);
    assert_eq!(
        store.read_after(Cursor::ZERO, 10).await.unwrap(),
        std::slice::from_ref(&r6)
    );
    let mut from_start = store.follow(store.bounds().await.unwrap().before_oldest());
    assert_eq!(next(&mut from_start).await.unwrap(), r6);

    // The survivors below the mark are swept out of Redis's memory.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let len: u64 = redis::cmd("XLEN")
            .arg(format!("{{{prefix}}}:log"))
            .query(&mut connection)
            .unwrap();
        if len == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{len} entries left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
