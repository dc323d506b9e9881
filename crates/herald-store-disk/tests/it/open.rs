//! Opening: directories, locking, files that are not stores, closing.

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Store};
use herald_store_disk::{DiskOptions, DiskStore, Durability};

#[tokio::test]
async fn creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/herald-data");
    let store = super::open(&nested, Durability::Fsync);
    assert_eq!(store.path(), nested.join("herald.redb"));
    assert!(store.path().is_file());
    store.append(sample("x")).await.unwrap();
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let first = super::open(dir.path(), Durability::Fsync);
    let before = first.append(sample("before")).await.unwrap();
    let error = DiskStore::open(dir.path(), DiskOptions::default()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Backend);
    let message = error.to_string();
    assert!(message.contains("already open"), "{message}");
    assert!(message.contains("herald.redb"), "{message}");
    // The refused open did not disturb the first: it keeps working, and once
    // it is dropped the directory opens again at once, with both records.
    let after = first.append(sample("after")).await.unwrap();
    drop(first);
    let again = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
    assert_eq!(super::everything(&again).await, [before, after]);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let junk = "this is not a redb file, just some text that is long enough. ".repeat(100);
    std::fs::write(dir.path().join("herald.redb"), junk).unwrap();
    let error = DiskStore::open(dir.path(), DiskOptions::default()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
    assert!(
        error.to_string().contains("not a Herald disk store"),
        "{error}"
    );
}

#[test]
fn a_directory_path_that_is_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let error = DiskStore::open(&file, DiskOptions::default()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Backend);
    assert!(
        error.to_string().contains("creating data directory"),
        "{error}"
    );
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = DiskOptions {
        trim_batch: 0,
        ..DiskOptions::default()
    };
    let error = DiskStore::open(dir.path(), options).unwrap_err();
    assert!(error.to_string().contains("trim_batch"), "{error}");
}

#[tokio::test]
async fn close_makes_every_call_fail_and_ends_followers() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Deferred);
    let clone = store.clone();
    let first = store.append(sample("a")).await.unwrap();
    let mut follower = store.follow(first.cursor);
    store.close().await.unwrap();
    store.close().await.unwrap();
    for error in [
        clone.append(sample("b")).await.unwrap_err(),
        clone.trim(&Default::default()).await.unwrap_err(),
        clone.read_after(Cursor::ZERO, 1).await.unwrap_err(),
        clone.bounds().await.unwrap_err(),
        clone.flush().await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
    }
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), follower.next())
        .await
        .expect("the follower must end, not hang");
    assert!(end.is_none(), "{end:?}");
    // Still locked while handles live; released when the last one drops.
    assert!(DiskStore::open(dir.path(), DiskOptions::default()).is_err());
    drop((store, clone));
    let store = super::open(dir.path(), Durability::Fsync);
    assert_eq!(super::everything(&store).await, [first]);
}

/// Appends racing a `close` either land (and are in the file afterwards) or
/// fail with `Closed` (and are not): nothing is acknowledged and lost, and
/// nothing unacknowledged sneaks in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_racing_a_close_land_or_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(sample(&format!("race-{i}"))).await })
        })
        .collect();
    tokio::task::yield_now().await;
    store.close().await.unwrap();
    let mut acknowledged = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(record) => acknowledged.push(record),
            Err(error) => assert_eq!(error.kind(), ErrorKind::Closed, "{error}"),
        }
    }
    drop(store);
    let store = super::open(dir.path(), Durability::Fsync);
    let mut log = super::everything(&store).await;
    acknowledged.sort_by_key(|record| record.cursor);
    log.sort_by_key(|record| record.cursor);
    assert_eq!(log, acknowledged);
}
