//! Retention: count and age limits hold, big trims run in bounded steps
//! interleaved with appends, and trimmed ids stop resolving.

use std::sync::Arc;
use std::time::Duration;

use herald_store::testkit::sample;
use herald_store::{Cursor, Retention, Store};
use herald_store_disk::{DiskOptions, DiskStore, Durability};

fn open_with_trim_batch(dir: &std::path::Path, trim_batch: usize) -> DiskStore {
    DiskStore::open(
        dir,
        DiskOptions {
            trim_batch,
            ..DiskOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_big_trim_runs_in_bounded_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_trim_batch(dir.path(), 100);
    let appended = store
        .append_batch((0..1_000).map(|i| sample(&format!("b-{i}"))).collect())
        .await
        .unwrap();
    let keep = Retention {
        max_events: Some(50),
        max_age: None,
    };
    assert_eq!(store.trim(&keep).await.unwrap(), 950);
    let stats = store.stats();
    assert_eq!(stats.trimmed, 950);
    assert_eq!(stats.trim_commits, 10, "{stats:?}");
    assert_eq!(super::everything(&store).await, appended[950..]);
    assert_eq!(store.resolve("b-949").await.unwrap(), None);
    assert_eq!(
        store.resolve("b-950").await.unwrap(),
        Some(appended[950].cursor)
    );
    assert_eq!(store.trim(&keep).await.unwrap(), 0, "idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_on_while_a_trim_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_trim_batch(dir.path(), 50);
    store
        .append_batch((0..5_000).map(|i| sample(&format!("old-{i}"))).collect())
        .await
        .unwrap();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursors = Vec::new();
            for i in 0..40 {
                cursors.push(
                    store
                        .append(sample(&format!("new-{i}")))
                        .await
                        .unwrap()
                        .cursor,
                );
            }
            cursors
        })
    };
    let removed = store
        .trim(&Retention {
            max_events: Some(0),
            max_age: None,
        })
        .await
        .unwrap();
    let cursors = appender.await.unwrap();
    // The trim removed what was there when it started (plus at most the new
    // records appended before its first step); appends were never blocked.
    assert!(removed >= 5_000, "removed {removed}");
    let log = super::everything(&store).await;
    assert_eq!(log.len() as u64, 5_040 - removed);
    assert!(log.iter().all(|record| record.id.starts_with("new-")));
    assert_eq!(
        log.last().map(|record| record.cursor),
        cursors.last().copied()
    );
}

#[tokio::test]
async fn age_limit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_trim_batch(dir.path(), 3);
    store
        .append_batch((0..10).map(|i| sample(&format!("old-{i}"))).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let young = store.append(sample("young")).await.unwrap();
    let removed = store
        .trim(&Retention {
            max_events: None,
            max_age: Some(Duration::from_millis(150)),
        })
        .await
        .unwrap();
    assert_eq!(removed, 10);
    assert_eq!(super::everything(&store).await, [young]);
    assert_eq!(store.resolve("old-0").await.unwrap(), None);
}

#[tokio::test]
async fn background_retention_enforces_count_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Deferred);
    let handle: Arc<dyn Store> = Arc::new(store.clone());
    let task = herald_store::spawn_retention(
        &handle,
        Retention {
            max_events: Some(5),
            max_age: Some(Duration::from_millis(500)),
        },
        false,
        Duration::from_millis(20),
    );
    store
        .append_batch((0..50).map(|i| sample(&format!("r-{i}"))).collect())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while super::everything(&store).await.len() > 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "count limit not applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kept = super::everything(&store).await;
    assert_eq!(
        kept.first().map(|r| r.id.to_string()).as_deref(),
        Some("r-45")
    );
    assert_eq!(store.resolve("r-44").await.unwrap(), None);
    // Then age removes the rest.
    while !super::everything(&store).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "age limit not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.bounds().await.unwrap().head, Cursor::new(50));
    // The task ends by itself once the store is gone.
    drop(store);
    drop(handle);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("retention task must end with the store")
        .unwrap();
}

/// Per-record deadlines are on disk: a record appended with a `keep_for`
/// before a restart is removed by a trim after it, in bounded steps, and
/// the records around it stay.
#[tokio::test]
async fn deadlines_survive_a_restart_and_expire_in_bounded_steps() {
    let dir = tempfile::tempdir().unwrap();
    let brief = |id: String| herald_store::NewRecord {
        keep_for: Some(Duration::from_millis(100)),
        ..sample(&id)
    };
    let kept = {
        let store = open_with_trim_batch(dir.path(), 100);
        let mut records = Vec::new();
        for i in 0..250 {
            records.push(brief(format!("brief-{i}")));
            records.push(sample(&format!("kept-{i}")));
        }
        let appended = store.append_batch(records).await.unwrap();
        store.close().await.unwrap();
        appended.into_iter().skip(1).step_by(2).collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = open_with_trim_batch(dir.path(), 100);
    assert_eq!(store.trim(&Retention::default()).await.unwrap(), 250);
    assert!(store.stats().trim_commits >= 3, "{:?}", store.stats());
    assert_eq!(super::everything(&store).await, kept);
    assert_eq!(store.resolve("brief-7").await.unwrap(), None);
    assert_eq!(store.trim(&Retention::default()).await.unwrap(), 0);
}
