//! The delivery rule, seen from every path that applies it: a subscriber
//! gets a record when one of its matchers selects one of the record's
//! topics and, for a private record, its grants allow one of them. Live
//! fan-out through the exact-topic index, live fan-out by scan (patterns),
//! replay, and the cursor a subscription resumes from must all agree.

use herald_hub::grant::Grants;
use herald_hub::matcher::{Matcher, MatcherKind};
use herald_hub::{Hub, ResumePoint, SubscribeRequest, Subscription, Update};

use crate::{events, exact, hub, publish};

fn pattern(hub: &Hub, pattern: &str) -> Matcher {
    Matcher::new(MatcherKind::UrlPattern, pattern, hub.url()).unwrap()
}

fn granted(hub: &Hub, topic: &str) -> Grants {
    Grants::new(Vec::new(), vec![exact(hub, topic)])
}

async fn open(
    hub: &Hub,
    matchers: Vec<Matcher>,
    grants: Option<Grants>,
    last_event_id: Option<&str>,
) -> Subscription {
    let mut request = SubscribeRequest::new(matchers);
    request.grants = grants;
    request.last_event_id = last_event_id.map(str::to_owned);
    hub.subscribe(request).await.unwrap()
}

/// A private update on `/a` with the alternate `/b`, then a public marker
/// on `/a`.
async fn publish_private_then_marker(hub: &Hub) {
    let mut update = Update::new("/a", "private");
    update.topics.push("/b".into());
    update.id = Some("p".into());
    update.private = true;
    publish(hub, update).await.unwrap();
    publish(hub, Update::new("/a", "marker")).await.unwrap();
}

/// The data of the events up to and including the marker.
async fn data_until_marker(subscription: &mut Subscription) -> Vec<String> {
    let mut out = Vec::new();
    while !out.iter().any(|d| d == "marker") {
        let got = events(subscription, 1).await;
        assert!(!got.is_empty(), "the stream ended before the marker");
        out.extend(got.iter().map(|e| e.data().to_owned()));
    }
    // One read may hold more than one event: keep what came up to the
    // first marker.
    let end = out.iter().position(|d| d == "marker").map_or(0, |i| i + 1);
    out.truncate(end);
    out
}

#[tokio::test]
async fn private_updates_by_pattern_reach_only_granted_subscribers() {
    let hub = hub().await;
    let mut anonymous = open(&hub, vec![pattern(&hub, "/:x")], None, None).await;
    let mut other_grant = open(
        &hub,
        vec![pattern(&hub, "/:x")],
        Some(granted(&hub, "/c")),
        None,
    )
    .await;
    let mut granted_a = open(
        &hub,
        vec![pattern(&hub, "/:x")],
        Some(granted(&hub, "/a")),
        None,
    )
    .await;
    publish_private_then_marker(&hub).await;
    assert_eq!(data_until_marker(&mut anonymous).await, ["marker"]);
    assert_eq!(data_until_marker(&mut other_grant).await, ["marker"]);
    assert_eq!(
        data_until_marker(&mut granted_a).await,
        ["private", "marker"]
    );
}

#[tokio::test]
async fn a_grant_on_an_alternate_topic_is_enough_live_and_in_replay() {
    // Subscribed to the canonical topic, granted only the alternate one.
    let hub = hub().await;
    let mut live = open(
        &hub,
        vec![exact(&hub, "/a")],
        Some(granted(&hub, "/b")),
        None,
    )
    .await;
    let mut scanned = open(
        &hub,
        vec![pattern(&hub, "/a")],
        Some(granted(&hub, "/b")),
        None,
    )
    .await;
    publish_private_then_marker(&hub).await;
    assert_eq!(data_until_marker(&mut live).await, ["private", "marker"]);
    assert_eq!(data_until_marker(&mut scanned).await, ["private", "marker"]);

    let mut replay = open(
        &hub,
        vec![exact(&hub, "/a")],
        Some(granted(&hub, "/b")),
        Some("earliest"),
    )
    .await;
    assert_eq!(data_until_marker(&mut replay).await, ["private", "marker"]);
}

#[tokio::test]
async fn replay_applies_the_same_rule_as_live_delivery() {
    let hub = hub().await;
    publish_private_then_marker(&hub).await;
    let cases = [
        (vec![exact(&hub, "/a")], None, vec!["marker"]),
        (vec![exact(&hub, "/a")], Some("/c"), vec!["marker"]),
        (
            vec![exact(&hub, "/a")],
            Some("/a"),
            vec!["private", "marker"],
        ),
        (vec![pattern(&hub, "/:x")], None, vec!["marker"]),
        (
            vec![pattern(&hub, "/:x")],
            Some("/b"),
            vec!["private", "marker"],
        ),
    ];
    for (matchers, grant, expected) in cases {
        let grants = grant.map(|topic| granted(&hub, topic));
        let mut replay = open(&hub, matchers, grants, Some("earliest")).await;
        assert_eq!(data_until_marker(&mut replay).await, expected, "{grant:?}");
    }
}

#[tokio::test]
async fn matchers_never_widen_grants_and_grants_never_widen_matchers() {
    let hub = hub().await;
    // Matching everything does not make a private update on /a readable
    // with a grant on /c only.
    let mut wide = open(
        &hub,
        vec![pattern(&hub, "/:x")],
        Some(granted(&hub, "/c")),
        None,
    )
    .await;
    // A grant on /a does not deliver /a to a subscriber matching /c only.
    let mut narrow = open(
        &hub,
        vec![exact(&hub, "/c")],
        Some(granted(&hub, "/a")),
        None,
    )
    .await;
    publish_private_then_marker(&hub).await;
    publish(&hub, Update::new("/c", "marker")).await.unwrap();
    assert_eq!(data_until_marker(&mut wide).await, ["marker"]);
    assert_eq!(data_until_marker(&mut narrow).await, ["marker"]);
}

#[tokio::test]
async fn a_private_cursor_needs_a_grant_on_any_of_its_topics_not_a_match() {
    // The resume check asks only whether the record may be seen: a
    // granted subscriber may resume from an id on a topic it does not
    // subscribe to (its position is what counts), and the alternate
    // topic's grant is enough.
    let hub = hub().await;
    publish_private_then_marker(&hub).await;
    let cases = [
        (None, ResumePoint::Gap("p".into())),
        (Some("/c"), ResumePoint::Gap("p".into())),
        (Some("/b"), ResumePoint::After("p".into())),
    ];
    for (grant, expected) in cases {
        let grants = grant.map(|topic| granted(&hub, topic));
        let subscription = open(&hub, vec![exact(&hub, "/elsewhere")], grants, Some("p")).await;
        assert_eq!(subscription.resume_point(), &expected, "{grant:?}");
    }
}

#[tokio::test]
async fn a_subscriber_gets_each_record_once_whatever_matches_it() {
    // The same topic twice, an exact matcher and a pattern on the same
    // topic: one copy.
    let hub = hub().await;
    let mut twice = open(
        &hub,
        vec![
            exact(&hub, "/a"),
            exact(&hub, "/a"),
            pattern(&hub, "/:x"),
            exact(&hub, "/b"),
        ],
        None,
        None,
    )
    .await;
    let mut update = Update::new("/a", "one");
    update.topics.push("/b".into());
    publish(&hub, update).await.unwrap();
    publish(&hub, Update::new("/a", "marker")).await.unwrap();
    assert_eq!(data_until_marker(&mut twice).await, ["one", "marker"]);
    drop(twice);
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test]
async fn many_subscribers_on_one_topic_come_and_go_independently() {
    // The registry's per-topic sets under churn: whoever leaves is gone at
    // once, whoever stays still gets every record.
    let hub = hub().await;
    let mut subscriptions = Vec::new();
    for i in 0..200 {
        let matchers = if i % 3 == 0 {
            vec![exact(&hub, "/storm"), pattern(&hub, "/:x")]
        } else {
            vec![exact(&hub, "/storm")]
        };
        subscriptions.push(open(&hub, matchers, None, None).await);
    }
    // Drop every other one, from both ends of the registration order.
    let mut kept = Vec::new();
    for (i, subscription) in subscriptions.into_iter().enumerate() {
        if i % 2 == 0 {
            kept.push(subscription);
        }
    }
    assert_eq!(hub.subscriber_count(), 100);
    assert_eq!(hub.stats().subscribers, 100);
    publish(&hub, Update::new("/storm", "marker"))
        .await
        .unwrap();
    for subscription in &mut kept {
        assert_eq!(data_until_marker(subscription).await, ["marker"]);
    }
    assert_eq!(hub.stats().delivered, 100);
    kept.clear();
    assert_eq!(hub.subscriber_count(), 0);
    assert_eq!(hub.stats().subscribers, 0);
}
