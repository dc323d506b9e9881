//! Behaviour specific to `MemoryStore`: retention on append, the id index
//! under trimming, handles and followers.

use std::time::Duration;

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Bounds, Cursor, ErrorKind, MemoryStore, Retention, Store};

fn max_events(n: u64) -> Retention {
    Retention {
        max_events: Some(n),
        max_age: None,
    }
}

#[tokio::test]
async fn append_enforces_max_events() {
    let store = MemoryStore::with_retention(max_events(3));
    let mut appended = Vec::new();
    for i in 0..10 {
        appended.push(store.append(sample(&format!("e{i}"))).await.unwrap());
        assert!(store.len() <= 3, "memory must stay bounded on every append");
    }
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.read_after(Cursor::ZERO, 100).await.unwrap(),
        appended[7..]
    );
    assert_eq!(
        store.bounds().await.unwrap(),
        Bounds {
            oldest: Some(appended[7].cursor),
            head: appended[9].cursor
        }
    );
    assert_eq!(store.resolve("e6").await.unwrap(), None);
    assert_eq!(store.resolve("e7").await.unwrap(), Some(appended[7].cursor));
}

#[tokio::test]
async fn append_batch_enforces_max_events() {
    let store = MemoryStore::with_retention(max_events(2));
    let batch = store
        .append_batch((0..5).map(|i| sample(&format!("b{i}"))).collect())
        .await
        .unwrap();
    assert_eq!(batch.len(), 5, "append returns every appended record");
    assert_eq!(
        store.read_after(Cursor::ZERO, 100).await.unwrap(),
        batch[3..]
    );
}

#[tokio::test]
async fn max_age_is_applied_by_trim_not_append() {
    let retention = Retention {
        max_events: None,
        max_age: Some(Duration::from_millis(1)),
    };
    let store = MemoryStore::with_retention(retention.clone());
    store.append(sample("old")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.append(sample("new")).await.unwrap();
    assert_eq!(store.len(), 2, "append does not sweep by age");
    assert!(store.trim(&retention).await.unwrap() >= 1);
}

#[tokio::test]
async fn an_id_trimmed_on_append_is_free_again() {
    // Room for 2: the third append trims x, which frees its id at once.
    let store = MemoryStore::with_retention(max_events(2));
    let x = store.append(sample("x")).await.unwrap();
    store.append(sample("y")).await.unwrap();
    assert_eq!(store.resolve("x").await.unwrap(), Some(x.cursor));
    let error = store.append(sample("y")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DuplicateId);
    store.append(sample("z")).await.unwrap();
    assert_eq!(store.resolve("x").await.unwrap(), None);
    let again = store.append(sample("x")).await.unwrap();
    assert_eq!(store.resolve("x").await.unwrap(), Some(again.cursor));
    assert_eq!(
        store.resolve_record("x").await.unwrap(),
        Some(again.clone())
    );
}

#[tokio::test]
async fn a_refused_batch_trims_nothing() {
    // Retention on append runs only for an append that happened: a refused
    // batch must not push older records out.
    let store = MemoryStore::with_retention(max_events(2));
    let a = store.append(sample("a")).await.unwrap();
    let b = store.append(sample("b")).await.unwrap();
    let error = store
        .append_batch(vec![sample("c"), sample("a")])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DuplicateId);
    assert_eq!(store.read_after(Cursor::ZERO, 10).await.unwrap(), [a, b]);
}

#[tokio::test]
async fn clones_share_one_log() {
    let store = MemoryStore::new();
    let other = store.clone();
    let record = other.append(sample("shared")).await.unwrap();
    assert_eq!(store.read_after(Cursor::ZERO, 10).await.unwrap(), [record]);
    assert!(!store.is_empty());
}

#[tokio::test]
async fn follower_ends_only_when_the_last_handle_drops() {
    let store = MemoryStore::new();
    let other = store.clone();
    let mut follower = store.follow(Cursor::ZERO);
    drop(store);
    let record = other.append(sample("still-alive")).await.unwrap();
    assert_eq!(follower.next().await.unwrap().unwrap(), record);
    drop(other);
    assert!(follower.next().await.is_none());
}

#[tokio::test]
async fn follower_on_a_full_store_reports_trimmed_when_lapped() {
    // A follower that stops reading while a bounded store wraps around must
    // learn that it lost records, not silently jump ahead.
    let store = MemoryStore::with_retention(max_events(10));
    let mut follower = store.follow(Cursor::ZERO);
    let first = store.append(sample("first")).await.unwrap();
    assert_eq!(follower.next().await.unwrap().unwrap(), first);
    for i in 0..1_000 {
        store.append(sample(&format!("lap{i}"))).await.unwrap();
    }
    let error = follower.next().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Trimmed);
    assert!(
        follower.next().await.is_none(),
        "the stream ends after an error"
    );
}

#[tokio::test]
async fn follower_wakes_for_every_append_without_busy_looping() {
    // With paused time, a busy-looping follower would never let the clock
    // auto-advance; a parked one does.
    tokio::time::pause();
    let store = MemoryStore::new();
    let mut follower = store.follow(Cursor::ZERO);
    let writer = store.clone();
    let appender = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            writer.append(sample(&format!("w{i}"))).await.unwrap();
        }
    });
    for i in 0..20 {
        let record = follower.next().await.unwrap().unwrap();
        assert_eq!(&*record.id, format!("w{i}"));
    }
    appender.await.unwrap();
}

#[tokio::test]
async fn debug_shows_bounds_not_records() {
    let store = MemoryStore::with_retention(max_events(5));
    store.append(sample("a")).await.unwrap();
    let debug = format!("{store:?}");
    assert!(debug.contains("MemoryStore"), "{debug}");
    assert!(debug.contains("len: 1"), "{debug}");
    assert_eq!(store.retention(), &max_events(5));
}
