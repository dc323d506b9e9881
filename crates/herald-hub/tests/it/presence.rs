//! Active subscriptions (draft-08): subscription events when a subscription
//! starts and ends, private to the subscribers granted their topics; the
//! table the subscriptions API answers from, chained to the event stream
//! by its last event id; and, on two hubs sharing one store, each hub
//! listing the other's subscribers.

use std::sync::Arc;
use std::time::Duration;

use herald_hub::grant::Grants;
use herald_hub::matcher::{Matcher, MatcherKind};
use herald_hub::{
    Hub, HubConfig, SubscribeRequest, Subscription, SubscriptionDoc, SubscriptionsScope, Update,
};
use herald_store::{MemoryStore, Store};

use crate::{config, events, exact, publish};

fn with_subscriptions() -> HubConfig {
    HubConfig {
        subscriptions: true,
        ..config()
    }
}

async fn hub_on(store: &Arc<dyn Store>) -> Hub {
    Hub::start(Arc::clone(store), with_subscriptions())
        .await
        .unwrap()
}

/// A subscription to the subscription events of every subscription,
/// granted them, read document by document: events that arrive together
/// in one chunk are kept for the next call, not dropped.
struct Watcher {
    subscription: Subscription,
    decoder: herald_proto::Decoder,
    ready: std::collections::VecDeque<SubscriptionDoc>,
}

impl Watcher {
    fn subscriber_id(&self) -> Option<&str> {
        self.subscription.subscriber_id()
    }
}

/// Starts watching (optionally resuming after `last_event_id`).
async fn watch(hub: &Hub, last_event_id: Option<&str>) -> Watcher {
    let every = Matcher::new(
        MatcherKind::UrlPattern,
        "/.well-known/mercure/subscriptions/*",
        hub.url(),
    )
    .unwrap();
    let mut request = SubscribeRequest::new(vec![every.clone()]);
    request.grants = Some(Grants::new(Vec::new(), vec![every]));
    request.last_event_id = last_event_id.map(str::to_owned);
    Watcher {
        subscription: hub.subscribe(request).await.unwrap(),
        decoder: herald_proto::Decoder::new(),
        ready: std::collections::VecDeque::new(),
    }
}

/// The next `n` subscription events, as documents.
async fn docs(watcher: &mut Watcher, n: usize) -> Vec<SubscriptionDoc> {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while watcher.ready.len() < n {
        let frames = tokio::time::timeout_at(deadline, watcher.subscription.next())
            .await
            .expect("subscription events arrive")
            .expect("the stream goes on");
        watcher.decoder.feed(&frames).unwrap();
        while let Some(event) = watcher.decoder.next_event() {
            assert_eq!(event.event_type(), "mercure", "the hub's event type");
            watcher
                .ready
                .push_back(serde_json::from_str(event.data()).unwrap());
        }
    }
    watcher.ready.drain(..n).collect()
}

fn ids(snapshot: &herald_hub::Snapshot) -> Vec<&str> {
    snapshot
        .subscriptions
        .iter()
        .map(|doc| doc.subscriber.as_str())
        .collect()
}

#[tokio::test]
async fn a_subscription_is_announced_when_it_starts_and_when_it_ends() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub_on(&store).await;
    let mut watcher = watch(&hub, None).await;
    let watcher_id = watcher.subscriber_id().unwrap().to_owned();
    assert_eq!(
        docs(&mut watcher, 1).await[0].subscriber,
        watcher_id,
        "itself"
    );

    let books = crate::subscribe(&hub, "https://example.com/books/1", None).await;
    let subscriber = books.subscriber_id().unwrap().to_owned();
    assert!(subscriber.starts_with("urn:uuid:"), "{subscriber}");
    let started = &docs(&mut watcher, 1).await[0];
    assert_eq!(
        started.id,
        format!(
            "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/{}",
            subscriber.replace(':', "%3A")
        )
    );
    assert_eq!(started.kind, "subscription");
    assert_eq!(started.match_type, "exact");
    assert_eq!(started.matcher, "https://example.com/books/1");
    assert!(started.active);
    assert_eq!(started.payload, None);

    drop(books);
    let ended = &docs(&mut watcher, 1).await[0];
    assert_eq!(ended.id, started.id);
    assert!(
        !ended.active,
        "the end, on drop (what an abrupt disconnect is)"
    );

    // The events are private: in the log as such, and not for a subscriber
    // without a grant on their topics, whatever its matcher.
    let anonymous = Matcher::new(
        MatcherKind::UrlPattern,
        "/.well-known/mercure/subscriptions/*",
        hub.url(),
    )
    .unwrap();
    let mut nosy = hub
        .subscribe(SubscribeRequest {
            last_event_id: Some("earliest".into()),
            ..SubscribeRequest::new(vec![anonymous])
        })
        .await
        .unwrap();
    publish(&hub, Update::new("/.well-known/mercure/marker", "x"))
        .await
        .expect_err("publishers cannot write in the namespace");
    let log = store
        .read_after(herald_store::Cursor::ZERO, 100)
        .await
        .unwrap();
    assert!(log.iter().all(|record| record.private));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events(&mut nosy, 1))
            .await
            .is_err(),
        "an ungranted subscriber gets none of them, replayed or live"
    );
}

#[tokio::test]
async fn one_connection_has_one_subscriber_id_and_its_tokens_payloads() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub_on(&store).await;
    let mut watcher = watch(&hub, None).await;
    docs(&mut watcher, 1).await;
    let pattern =
        Matcher::new(MatcherKind::UrlPattern, "https://example.com/:x", hub.url()).unwrap();
    let topic = exact(&hub, "https://example.com/foo");
    let mut builder = Grants::builder();
    builder.subscribe(
        vec![topic.clone()],
        Some(serde_json::json!({"custom1": "foo only"})),
    );
    builder.subscribe(
        vec![Matcher::new(MatcherKind::UrlPattern, "*", hub.url()).unwrap()],
        Some(serde_json::json!({"custom3": "default"})),
    );
    let mut request = SubscribeRequest::new(vec![topic, pattern]);
    request.grants = Some(builder.build());
    let both = hub.subscribe(request).await.unwrap();
    let started = docs(&mut watcher, 2).await;
    assert_eq!(started[0].subscriber, started[1].subscriber);
    assert_eq!(started[0].subscriber, both.subscriber_id().unwrap());
    assert_eq!(
        started[0].payload,
        Some(serde_json::json!({"custom1": "foo only"}))
    );
    assert_eq!(started[1].match_type, "urlpattern");
    assert_eq!(
        started[1].payload,
        Some(serde_json::json!({"custom3": "default"}))
    );
}

#[tokio::test]
async fn the_table_lists_by_scope_and_is_off_by_default() {
    let plain = crate::hub().await;
    assert!(plain
        .active_subscriptions(SubscriptionsScope::All)
        .is_none());
    assert!(crate::subscribe(&plain, "/t", None)
        .await
        .subscriber_id()
        .is_none());

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub_on(&store).await;
    let a = crate::subscribe(&hub, "/a", None).await;
    let b1 = crate::subscribe(&hub, "/b", None).await;
    let b2 = crate::subscribe(&hub, "/b", None).await;
    // The table follows the log: wait for the dispatcher.
    let mut all = hub.active_subscriptions(SubscriptionsScope::All).unwrap();
    for _ in 0..100 {
        if all.subscriptions.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        all = hub.active_subscriptions(SubscriptionsScope::All).unwrap();
    }
    assert_eq!(all.subscriptions.len(), 3);
    let last = all.last_event_id.clone().expect("events were dispatched");
    let listed = |scope| hub.active_subscriptions(scope).unwrap();
    let on_b = listed(SubscriptionsScope::Matcher {
        match_type: "exact",
        matcher: "/b",
    });
    let mut expected = vec![b1.subscriber_id().unwrap(), b2.subscriber_id().unwrap()];
    expected.sort_unstable();
    let mut got = ids(&on_b);
    got.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(on_b.last_event_id.as_deref(), Some(&*last));
    let one = listed(SubscriptionsScope::One {
        match_type: "exact",
        matcher: "/a",
        subscriber: a.subscriber_id().unwrap(),
    });
    assert_eq!(ids(&one), [a.subscriber_id().unwrap()]);
    let none = listed(SubscriptionsScope::One {
        match_type: "exact",
        matcher: "/a",
        subscriber: b1.subscriber_id().unwrap(),
    });
    assert!(none.subscriptions.is_empty());
}

/// Snapshot, then subscribe from its last event id while subscriptions
/// come and go: the snapshot plus the events after it is exactly the
/// final table (no gap, no duplicate).
#[tokio::test]
async fn a_snapshot_chains_to_the_event_stream_without_gap_or_duplicate() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub_on(&store).await;
    let churn = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            for i in 0..60 {
                held.push(crate::subscribe(&hub, &format!("/room/{}", i % 7), None).await);
                if i % 3 == 0 {
                    held.remove(0);
                }
                tokio::task::yield_now().await;
            }
            held
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let snapshot = hub.active_subscriptions(SubscriptionsScope::All).unwrap();
    let from = snapshot.last_event_id.as_deref().unwrap_or("earliest");
    let mut watcher = watch(&hub, Some(from)).await;
    let held = churn.await.unwrap();

    let mut table: std::collections::BTreeMap<String, bool> = snapshot
        .subscriptions
        .iter()
        .map(|doc| (doc.id.clone(), true))
        .collect();
    // Apply events until the table is the final one (the churn's held
    // subscriptions plus the watcher itself).
    let expected: std::collections::BTreeSet<String> = held
        .iter()
        .map(|s| s.subscriber_id().unwrap().to_owned())
        .chain([watcher.subscriber_id().unwrap().to_owned()])
        .collect();
    let mut seen = std::collections::HashSet::new();
    loop {
        let current: std::collections::BTreeSet<String> = table
            .keys()
            .map(|id| id.rsplit('/').next().unwrap().replace("%3A", ":"))
            .collect();
        if current == expected {
            break;
        }
        let doc = docs(&mut watcher, 1).await.remove(0);
        assert!(
            seen.insert((doc.id.clone(), doc.active)),
            "a duplicate event: {doc:?}"
        );
        if doc.active {
            assert!(table.insert(doc.id, true).is_none(), "started twice");
        } else {
            assert!(
                table.remove(&doc.id).is_some(),
                "ended without a start: a gap"
            );
        }
    }
}

/// Two hubs on one store, as two nodes of a cluster: each lists the
/// other's subscribers, and a hub started later learns the subscriptions
/// made before it from the retained log.
#[tokio::test]
async fn every_node_lists_every_nodes_subscribers() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = hub_on(&store).await;
    let on_a = crate::subscribe(&a, "/x", None).await;
    let b = hub_on(&store).await;
    let on_b = crate::subscribe(&b, "/x", None).await;
    let expected = {
        let mut ids = vec![on_a.subscriber_id().unwrap(), on_b.subscriber_id().unwrap()];
        ids.sort_unstable();
        ids
    };
    for hub in [&a, &b] {
        let mut listed = Vec::new();
        for _ in 0..200 {
            let snapshot = hub.active_subscriptions(SubscriptionsScope::All).unwrap();
            listed = ids(&snapshot).into_iter().map(str::to_owned).collect();
            listed.sort_unstable();
            if listed == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(listed, expected);
        let nodes: std::collections::BTreeSet<String> = hub
            .active_subscriptions(SubscriptionsScope::All)
            .unwrap()
            .subscriptions
            .iter()
            .map(|doc| doc.node.clone())
            .collect();
        assert_eq!(nodes.len(), 2, "held by two nodes");
    }
}

/// A node that dies ends nothing itself: the others see its lease run out
/// and end its subscriptions, once each however many notice.
#[tokio::test]
async fn a_dead_nodes_subscriptions_end_when_its_lease_runs_out() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let lease = Duration::from_millis(300);
    let start = || {
        let store = Arc::clone(&store);
        async move {
            let config = HubConfig {
                subscription_lease: lease,
                ..with_subscriptions()
            };
            Hub::start(store, config).await.unwrap()
        }
    };
    let (a, b, c) = (start().await, start().await, start().await);
    let mut watcher = watch(&a, None).await;
    docs(&mut watcher, 1).await;
    let doomed = crate::subscribe(&b, "/doomed", None).await;
    let started = docs(&mut watcher, 1).await.remove(0);
    assert_eq!(started.subscriber, doomed.subscriber_id().unwrap());
    // B dies without a word: no end event from it, no more leases.
    std::mem::forget(doomed);
    drop(b);
    let began = std::time::Instant::now();
    let ended = docs(&mut watcher, 1).await.remove(0);
    assert_eq!(ended.id, started.id);
    assert!(!ended.active);
    let took = began.elapsed();
    assert!(took >= lease / 2, "not before the lease ran out: {took:?}");
    // A and C both noticed; the store kept one end event.
    tokio::time::sleep(lease).await;
    let ends = store
        .read_after(herald_store::Cursor::ZERO, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.id.starts_with("ended:"))
        .count();
    assert_eq!(ends, 1);
    for hub in [&a, &c] {
        let listed = hub.active_subscriptions(SubscriptionsScope::All).unwrap();
        assert!(
            listed
                .subscriptions
                .iter()
                .all(|doc| doc.subscriber != started.subscriber),
            "gone from every table"
        );
    }
}

/// Leases are the hub's bookkeeping: a subscriber granted everything and
/// selecting everything gets the subscription events, never a lease,
/// whether live or replayed from the earliest event.
#[tokio::test]
async fn leases_reach_no_subscriber() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = HubConfig {
        subscription_lease: Duration::from_millis(60),
        ..with_subscriptions()
    };
    let hub = Hub::start(Arc::clone(&store), config).await.unwrap();
    let everything = || Matcher::new(MatcherKind::UrlPattern, "*", hub.url()).unwrap();
    let subscribe_all = |last_event_id: Option<&str>| {
        let mut request = SubscribeRequest::new(vec![everything()]);
        request.grants = Some(Grants::new(Vec::new(), vec![everything()]));
        request.last_event_id = last_event_id.map(str::to_owned);
        hub.subscribe(request)
    };
    let mut live = subscribe_all(None).await.unwrap();
    // Several leases are renewed meanwhile (every 20 ms).
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(&hub, Update::new("/marker", "end")).await.unwrap();
    let leases = store
        .read_after(herald_store::Cursor::ZERO, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|record| record.topics[0].starts_with("/.well-known/mercure/nodes/"))
        .count();
    assert!(leases >= 3, "leases were renewed: {leases}");
    let mut replay = subscribe_all(Some(herald_hub::EARLIEST)).await.unwrap();
    for subscription in [&mut live, &mut replay] {
        let mut seen = Vec::new();
        loop {
            let got = crate::events(subscription, 1).await;
            let done = got.iter().any(|event| event.data() == "end");
            seen.extend(got.into_iter().map(|event| event.data().to_owned()));
            if done {
                break;
            }
        }
        assert!(
            seen.iter().all(|data| !data.contains("\"type\":\"node\"")),
            "no lease: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|data| data.contains("\"type\":\"subscription\"")),
            "the subscription events still: {seen:?}"
        );
    }
}
