//! Restarts: everything acknowledged is there after a reopen, ids resolve,
//! and cursors keep increasing, never reused.

use herald_store::testkit::sample;
use herald_store::{Bounds, Cursor, Retention, Store};
use herald_store_disk::Durability;

fn keep(max_events: u64) -> Retention {
    Retention {
        max_events: Some(max_events),
        max_age: None,
    }
}

async fn restart_keeps_everything(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), durability);
    let mut appended = Vec::new();
    for i in 0..30 {
        appended.push(store.append(sample(&format!("id-{i}"))).await.unwrap());
    }
    appended.extend(
        store
            .append_batch((0..20).map(|i| sample(&format!("batch-{i}"))).collect())
            .await
            .unwrap(),
    );
    let head = appended.last().unwrap().cursor;
    drop(store);

    let store = super::open(dir.path(), durability);
    assert_eq!(super::everything(&store).await, appended, "same records");
    assert_eq!(
        store.resolve("id-3").await.unwrap(),
        Some(appended[3].cursor)
    );
    // The id index is durable: a retained id is still taken.
    let error = store.append(sample("id-3")).await.unwrap_err();
    assert_eq!(error.kind(), herald_store::ErrorKind::DuplicateId);
    assert_eq!(store.resolve("batch-19").await.unwrap(), Some(head));
    assert_eq!(
        store.bounds().await.unwrap(),
        Bounds {
            oldest: Some(appended[0].cursor),
            head
        }
    );
    let next = store.append(sample("after-restart")).await.unwrap();
    // A clean shutdown gives back the cursor reservation of
    // `Durability::Deferred`: no skipped block.
    assert_eq!(next.cursor, Cursor::new(head.get() + 1));
    assert!(next.published_at >= appended.last().unwrap().published_at);
}

#[tokio::test]
async fn restart_keeps_everything_with_fsync() {
    restart_keeps_everything(Durability::Fsync).await;
}

#[tokio::test]
async fn restart_keeps_everything_after_a_clean_close_without_fsync() {
    restart_keeps_everything(Durability::Deferred).await;
}

#[tokio::test]
async fn cursors_are_not_reused_after_trimming_everything_and_restarting() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    let mut last = Cursor::ZERO;
    for i in 0..10 {
        last = store
            .append(sample(&format!("z-{i}")))
            .await
            .unwrap()
            .cursor;
    }
    assert_eq!(store.trim(&keep(0)).await.unwrap(), 10);
    drop(store);

    let store = super::open(dir.path(), Durability::Fsync);
    assert_eq!(
        store.bounds().await.unwrap(),
        Bounds {
            oldest: None,
            head: last
        }
    );
    assert_eq!(store.resolve("z-0").await.unwrap(), None);
    let next = store.append(sample("z-next")).await.unwrap();
    assert!(next.cursor > last, "cursor {} reused", next.cursor);
    // A follower from before the trim learns of the gap after the restart too.
    let mut follower = store.follow(Cursor::new(3));
    let error = futures_util::StreamExt::next(&mut follower)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind(), herald_store::ErrorKind::Trimmed);
}

/// A `Last-Event-ID` from before the restart resumes exactly after it.
#[tokio::test]
async fn resume_after_restart_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::open(dir.path(), Durability::Fsync);
    let before: Vec<_> = store
        .append_batch((0..10).map(|i| sample(&format!("e-{i}"))).collect())
        .await
        .unwrap();
    drop(store);
    let store = super::open(dir.path(), Durability::Fsync);
    let after = store.append(sample("e-new")).await.unwrap();
    let at = store.resolve("e-6").await.unwrap().unwrap();
    let mut expected = before[7..].to_vec();
    expected.push(after);
    assert_eq!(store.read_after(at, 100).await.unwrap(), expected);
}
