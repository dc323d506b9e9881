//! The hub applies [`HubConfig::retention`](herald_hub::HubConfig) to its
//! store (the binary no longer runs the task itself), stops doing so when
//! it is dropped, and reports the store's bounds for the statistics.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_hub::{Hub, Update};
use herald_store::{Bounds, Cursor, MemoryStore, NewRecord, Retention, Store};

use crate::{config, publish};

/// A store that applies no retention of its own on append: whatever is
/// trimmed, the hub's task trimmed.
fn plain_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

async fn hub_keeping(store: &Arc<dyn Store>, max_events: u64) -> Hub {
    let mut config = config();
    config.retention = Retention {
        max_events: Some(max_events),
        max_age: None,
    };
    Hub::start(Arc::clone(store), config).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_hub_applies_its_retention_every_interval() {
    let store = plain_store();
    let hub = hub_keeping(&store, 2).await;
    assert_eq!(hub.config().retention.max_events, Some(2), "readable back");
    for i in 0..5 {
        publish(&hub, Update::new("/t", i.to_string()))
            .await
            .unwrap();
    }
    // The next run is at most one interval (1 s by default) away.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        store.bounds().await.unwrap(),
        Bounds {
            oldest: Some(Cursor::new(4)),
            head: Cursor::new(5),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn the_retention_interval_is_the_configured_one() {
    let store = plain_store();
    let mut config = config();
    config.retention = Retention {
        max_events: Some(1),
        max_age: None,
    };
    config.retention_interval = Duration::from_secs(60);
    let hub = Hub::start(Arc::clone(&store), config).await.unwrap();
    // Let the first run (at once) go by, then publish.
    tokio::time::sleep(Duration::from_millis(10)).await;
    for i in 0..3 {
        publish(&hub, Update::new("/t", i.to_string()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(store.bounds().await.unwrap().oldest, Some(Cursor::new(1)));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(store.bounds().await.unwrap().oldest, Some(Cursor::new(3)));
}

#[tokio::test(start_paused = true)]
async fn unlimited_retention_trims_nothing() {
    let store = plain_store();
    let hub = Hub::start(Arc::clone(&store), config()).await.unwrap();
    assert!(hub.config().retention.is_unlimited(), "the default");
    for i in 0..5 {
        publish(&hub, Update::new("/t", i.to_string()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(store.bounds().await.unwrap().oldest, Some(Cursor::new(1)));
}

/// Regression guard for the move from the binary to the hub: the task
/// holds the store only weakly, and whoever keeps the store (the binary
/// does, to close it) must not keep a dropped hub's retention running.
#[tokio::test(start_paused = true)]
async fn retention_ends_with_the_hub() {
    let store = plain_store();
    let hub = hub_keeping(&store, 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(hub);
    for i in 0..3 {
        store
            .append(NewRecord {
                id: format!("urn:test:{i}").into(),
                topics: vec!["https://hub.example/t".to_owned()].into(),
                private: false,
                frame: Bytes::from_static(b"data: x\n\n"),
                keep_for: None,
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(store.bounds().await.unwrap().oldest, Some(Cursor::new(1)));
}

#[tokio::test(start_paused = true)]
async fn the_bounds_move_with_publishes_and_retention() {
    let store = plain_store();
    let hub = hub_keeping(&store, 3).await;
    let (at_start, _) = hub.last_bounds().expect("read at start");
    assert_eq!(at_start.head, Cursor::ZERO);
    assert_eq!(at_start.oldest, None);

    for i in 0..10 {
        publish(&hub, Update::new("/t", i.to_string()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (bounds, read_at) = hub.bounds().await.unwrap();
    assert_eq!(
        bounds,
        Bounds {
            oldest: Some(Cursor::new(8)),
            head: Cursor::new(10),
        }
    );
    assert_eq!(hub.last_bounds(), Some((bounds, read_at)));
}

/// Per-topic retention: the updates on a ruled topic leave the store once
/// their rule's time has run out, with unlimited log-wide retention, while
/// the others stay; a replay of everything no longer holds them.
#[tokio::test]
async fn topic_rules_expire_their_updates_only() {
    use herald_hub::matcher::{Matcher, MatcherKind};
    use herald_hub::TopicRetention;

    let store = plain_store();
    let mut config = config();
    let chats = Matcher::new(MatcherKind::UrlPattern, "/chat/*", &config.url).unwrap();
    config.topic_retention = vec![TopicRetention::new(chats, Duration::from_millis(200))];
    config.retention_interval = Duration::from_millis(50);
    let hub = Hub::start(Arc::clone(&store), config).await.unwrap();
    assert!(hub.config().retention.is_unlimited());
    for (topic, data) in [
        ("/chat/1", "token"),
        ("/books/1", "kept"),
        ("/chat/1", "[DONE]"),
    ] {
        publish(&hub, Update::new(topic, data)).await.unwrap();
    }
    assert_eq!(store.read_after(Cursor::ZERO, 10).await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let kept = store.read_after(Cursor::ZERO, 10).await.unwrap();
    let topics: Vec<&str> = kept.iter().map(|record| &*record.topics[0]).collect();
    assert_eq!(
        topics,
        ["/books/1"],
        "only the unruled topic's update stays"
    );
    let mut replay = crate::subscribe(&hub, "/books/1", Some(herald_hub::EARLIEST)).await;
    let events = crate::events(&mut replay, 1).await;
    assert_eq!(events[0].data(), "kept");
}
