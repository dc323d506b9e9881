//! What only a shared network store must do.

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Store};

use herald_store_redis::testkit::{fresh_prefix, RedisServer};

/// Two nodes' view of one log: appends through one handle are read,
/// resolved and followed through another connected separately.
#[tokio::test]
async fn two_handles_on_one_prefix_share_one_log() {
    let server = RedisServer::start();
    let prefix = fresh_prefix();
    let a = server.store(&prefix).await;
    let b = server.store(&prefix).await;
    let mut follower = b.follow(Cursor::ZERO);
    let first = a.append(sample("one")).await.unwrap();
    let second = b.append(sample("two")).await.unwrap();
    assert_eq!(
        second.cursor.get(),
        first.cursor.get() + 1,
        "gap-free across handles"
    );
    assert_eq!(b.resolve("one").await.unwrap(), Some(first.cursor));
    assert_eq!(
        a.read_after(Cursor::ZERO, 10).await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(
        b.append(sample("one")).await.unwrap_err().kind(),
        ErrorKind::DuplicateId
    );
    for expected in [first, second] {
        assert_eq!(follower.next().await.unwrap().unwrap(), expected);
    }
    // Dropping one handle does not end the other's followers.
    drop(a);
    let third = b.append(sample("three")).await.unwrap();
    assert_eq!(follower.next().await.unwrap().unwrap(), third);
}

/// A stream entry that is not a record is a `Corrupt` error, not a panic.
#[tokio::test]
async fn a_corrupt_entry_is_an_error() {
    let server = RedisServer::start();
    let prefix = fresh_prefix();
    let store = server.store(&prefix).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{{{prefix}}}:log"))
        .arg("0-1")
        .arg("id")
        .arg("x")
        .query_async(&mut connection)
        .await
        .unwrap();
    let error = store.read_after(Cursor::ZERO, 10).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt);
    let mut follower = store.follow(Cursor::ZERO);
    let error = follower.next().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt);
    assert!(
        follower.next().await.is_none(),
        "the follow ends after an error"
    );
}

/// A Redis that is not there is an `Unavailable` error.
#[tokio::test]
async fn an_unreachable_redis_is_unavailable() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let error = herald_store_redis::RedisStore::connect(&url, "gone")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
}

/// A Redis that goes away under a connected store: calls fail with
/// `Unavailable`, and a follower yields the error and ends.
#[tokio::test]
async fn a_redis_that_goes_away_fails_calls() {
    let server = RedisServer::start();
    let store = server.fresh_store().await;
    store.append(sample("a")).await.unwrap();
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(follower.next().await.unwrap().unwrap().id.as_ref(), "a");
    drop(server);
    let error = store.append(sample("b")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), follower.next())
        .await
        .expect("the follower notices");
    assert_eq!(next.unwrap().unwrap_err().kind(), ErrorKind::Unavailable);
}

/// After `close`, calls are refused with `Closed` and followers end; the
/// log stays for other handles.
#[tokio::test]
async fn close_refuses_calls_and_ends_followers() {
    let server = RedisServer::start();
    let prefix = fresh_prefix();
    let store = server.store(&prefix).await;
    let first = store.append(sample("a")).await.unwrap();
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(follower.next().await.unwrap().unwrap(), first);
    let parked = tokio::spawn(async move { follower.next().await.is_none() });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    store.close().await.unwrap();
    store.close().await.unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), parked)
        .await
        .expect("a parked follower ends at close")
        .unwrap();
    assert!(ended);
    assert_eq!(
        store.append(sample("b")).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(store.follow(Cursor::ZERO).next().await.is_none());
    let other = server.store(&prefix).await;
    assert_eq!(other.resolve("a").await.unwrap(), Some(first.cursor));
}
