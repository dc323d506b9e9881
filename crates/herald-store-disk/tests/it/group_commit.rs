//! Group commit: concurrent appenders share commits, and still form one
//! gapless, ordered log.

use std::sync::Arc;

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, ErrorKind, Store};
use herald_store_disk::Durability;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    let mut follower = store.follow(Cursor::ZERO);
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..PER_TASK {
                    store
                        .append(sample(&format!("g{task}-{i}")))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let stats = store.stats();
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(stats.appended, total);
    assert_eq!(stats.requests, total);
    assert!(
        stats.append_commits < total / 4,
        "group commit did not batch: {stats:?}"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(stats.durable_commits, stats.append_commits, "{stats:?}");

    // One gapless log (this store hands out consecutive cursors), and a
    // live follower saw exactly it.
    let log = super::everything(&store).await;
    assert_eq!(log.len() as u64, total);
    for (i, record) in log.iter().enumerate() {
        assert_eq!(record.cursor, Cursor::new(i as u64 + 1), "gap or reorder");
    }
    let mut followed = Vec::new();
    while followed.len() < log.len() {
        followed.push(follower.next().await.unwrap().unwrap());
    }
    assert!(followed == log, "the follower's log differs");
}

#[tokio::test]
async fn a_lone_appender_pays_one_commit_per_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    for i in 0..5 {
        store.append(sample(&format!("lone-{i}"))).await.unwrap();
    }
    // Natural batching never waits to fill a batch.
    let stats = store.stats();
    assert_eq!((stats.appended, stats.append_commits), (5, 5), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsynced_commits_are_synced_periodically_and_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = herald_store_disk::DiskStore::open(
        dir.path(),
        herald_store_disk::DiskOptions {
            durability: Durability::Deferred,
            sync_interval: std::time::Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    // The first append raises the cursor reservation: a durable commit.
    store.append(sample("first")).await.unwrap();
    store.append(sample("second")).await.unwrap();
    let before = store.stats();
    assert_eq!(before.append_commits, 2);
    assert_eq!(before.durable_commits, 1, "{before:?}");
    // Idle: the writer syncs by itself within the interval.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(store.stats().durable_commits, 2, "{:?}", store.stats());
    // Nothing unsynced: flush is free.
    store.flush().await.unwrap();
    assert_eq!(store.stats().durable_commits, 2);
    store.append(sample("third")).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.stats().durable_commits, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_respect_the_record_limit_but_never_split_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = herald_store_disk::DiskStore::open(
        dir.path(),
        herald_store_disk::DiskOptions {
            durability: Durability::Deferred,
            max_batch_records: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    store.append(sample(&format!("l{task}-{i}"))).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(store.stats().largest_batch <= 3, "{:?}", store.stats());
    // One request larger than the limit still commits whole, in order.
    let big = store
        .append_batch((0..10).map(|i| sample(&format!("big-{i}"))).collect())
        .await
        .unwrap();
    assert!(big
        .windows(2)
        .all(|w| w[1].cursor.get() == w[0].cursor.get() + 1));
    assert_eq!(store.stats().largest_batch, 10);
    assert_eq!(super::everything(&store).await.len(), 330);
}

/// Two requests with one id in the same group commit: the first is
/// appended, only the second is refused, and the rest of the commit (here a
/// batch and another append) goes in with consecutive cursors: a refused
/// request takes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_id_in_a_group_commit_refuses_only_the_later_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    let mut grouped = false;
    for round in 0..5 {
        let before = store.stats();
        let head = store.bounds().await.unwrap().head.get();
        // Polled in this order within one poll, the requests are queued
        // within microseconds: the writer gathers them into one or two
        // commits (the big batch may be committed alone).
        let (big, first, second, other) = tokio::join!(
            store.append_batch(
                (0..200)
                    .map(|i| sample(&format!("big-{round}-{i}")))
                    .collect()
            ),
            store.append(sample(&format!("same-{round}"))),
            store.append(sample(&format!("same-{round}"))),
            store.append(sample(&format!("other-{round}"))),
        );
        let big = big.expect("the batch");
        let first = first.expect("the first request with the id");
        let refused = second.expect_err("the second request with the id");
        assert_eq!(refused.kind(), ErrorKind::DuplicateId);
        assert!(refused.to_string().contains(&format!("same-{round}")));
        let other = other.expect("a request after the refused one");
        assert_eq!(big[0].cursor.get(), head + 1);
        assert_eq!(first.cursor.get(), head + 201);
        assert_eq!(other.cursor.get(), head + 202, "the refusal took a cursor");
        assert_eq!(
            store
                .resolve(&format!("same-{round}"))
                .await
                .unwrap()
                .unwrap(),
            first.cursor
        );
        let after = store.stats();
        assert_eq!(after.appended - before.appended, 202, "{after:?}");
        assert_eq!(after.requests - before.requests, 3, "{after:?}");
        grouped |= after.append_commits - before.append_commits <= 2;
    }
    assert!(grouped, "the requests never shared a commit");
    assert_eq!(super::everything(&store).await.len(), 5 * 202);
}

/// The nice value in a thread's `/proc/…/stat`, if it is still there.
#[cfg(target_os = "linux")]
fn nice_of(stat: impl AsRef<std::path::Path>) -> Option<i32> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // After the name in parentheses: state is field 3, nice field 19.
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(16)?.parse().ok()
}

/// With the log, the writer only copies the tail into redb in the
/// background: it runs ten nice levels below the threads that answer
/// publishes, so its copies do not preempt them on a busy core.
#[cfg(target_os = "linux")]
#[test]
fn the_background_writer_runs_at_a_lower_priority() {
    let me = nice_of("/proc/thread-self/stat").expect("this thread's nice value");
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    // Other tests open stores concurrently: one writer at `me + 10` is
    // enough, and none is there unless the store lowered it.
    let lowered = || {
        std::fs::read_dir("/proc/self/task")
            .expect("list this process's threads")
            .filter_map(Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim() == "herald-store-di")
            })
            .any(|task| nice_of(task.path().join("stat")) == Some((me + 10).min(19)))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lowered() {
        assert!(
            std::time::Instant::now() < deadline,
            "no writer thread at nice {}",
            me + 10
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(store);
}
