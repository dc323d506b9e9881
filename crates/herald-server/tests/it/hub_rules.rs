//! Hub rules seen over HTTP: event ids, large updates, private cursors,
//! store faults (issue 9).

use serde_json::json;

use crate::*;

/// A topic for the private-cursor tests (absolute, so the grant's matcher
/// and the update's topic need no resolving against the hub URL).
const SECRET: &str = "https://example.com/secret";

#[tokio::test]
async fn ids_a_header_would_change_are_refused_with_400() {
    // HTTP strips leading and trailing spaces and tabs from header values:
    // `" earliest"` would come back in Last-Event-ID as `earliest` and
    // replay the whole history to every reconnecting subscriber.
    let hub = start().await;
    for padded in [" earliest", "earliest ", " urn:uuid:1", "1 ", "\t2", "3\t"] {
        let response = hub
            .publish(&[("topic", "/t"), ("data", "x"), ("id", padded)])
            .await;
        assert_eq!(response.status(), 400, "{padded:?}");
        let text = response.text().await.unwrap();
        assert!(text.contains("space or a tab"), "{padded:?}: {text}");
    }
    // Inside an id a space survives a header, and resumes exactly.
    hub.publish_ok(&[("topic", "/t"), ("data", "1"), ("id", "a b")])
        .await;
    hub.publish_ok(&[("topic", "/t"), ("data", "2")]).await;
    let response = hub
        .subscribe_request("match=/t")
        .header("last-event-id", "a b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["mercure-last-event-id"], "a b");
    assert_eq!(read_events(response, 1).await[0].data(), "2");
}

#[tokio::test]
async fn a_custom_id_already_retained_is_refused_with_409() {
    let hub = start().await;
    hub.publish_ok(&[("topic", "/t"), ("data", "1"), ("id", "dup")])
        .await;
    hub.publish_ok(&[("topic", "/t"), ("data", "2")]).await;
    let response = hub
        .publish(&[("topic", "/t"), ("data", "3"), ("id", "dup")])
        .await;
    assert_eq!(response.status(), 409);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(text.contains("\"dup\" is already used"), "{text}");
    // Resuming from the id gives what followed it, once.
    let response = hub
        .subscribe_request("match=/t")
        .header("last-event-id", "dup")
        .send()
        .await
        .unwrap();
    hub.publish_ok(&[("topic", "/t"), ("data", "live")]).await;
    let data: Vec<String> = read_events(response, 2)
        .await
        .iter()
        .map(|e| e.data().to_owned())
        .collect();
    assert_eq!(data, ["2", "live"]);
}

#[tokio::test]
async fn the_largest_accepted_updates_reach_a_live_subscriber_whole() {
    // The hub's default `max_pending_bytes` (1 MiB) and publish limits: a
    // 1 MiB data, and 150,000 line breaks (a 450 KB form body whose frame
    // is about 1 MB), both accepted, must both arrive.
    let hub = start().await;
    assert_eq!(hub.hub.config().max_pending_bytes, 1 << 20);
    let response = hub.subscribe_request("match=/big").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let megabyte = "x".repeat(1 << 20);
    let line_breaks = "\n".repeat(150_000);
    hub.publish_ok(&[("topic", "/big"), ("data", &megabyte)])
        .await;
    hub.publish_ok(&[("topic", "/big"), ("data", &line_breaks)])
        .await;
    let events = read_events(response, 2).await;
    assert_eq!(events.len(), 2, "the subscriber was cut off");
    assert!(
        events[0].data() == megabyte,
        "the 1 MiB data arrived changed"
    );
    assert!(
        events[1].data() == line_breaks,
        "the line breaks arrived changed"
    );
    assert_eq!(hub.hub.stats().lagged, 0);
}

/// Resumes from `last_event_id` on [`SECRET`], with `token` if any.
async fn resume(hub: &TestHub, last_event_id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = hub
        .subscribe_request(&format!("match={SECRET}"))
        .header("last-event-id", last_event_id);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test]
async fn a_private_cursor_is_answered_like_an_unknown_one_without_a_grant() {
    let hub = start().await;
    hub.publish_ok(&[
        ("topic", SECRET),
        ("data", "for your eyes only"),
        ("id", "private-1"),
        ("private", "on"),
    ])
    .await;
    hub.publish_ok(&[("topic", SECRET), ("data", "public")])
        .await;

    let unknown = resume(&hub, "never-was", None).await;
    let anonymous = resume(&hub, "private-1", None).await;
    // The same header as for an id that never existed, not the echo that
    // confirmed the private update.
    assert_eq!(unknown.headers()["mercure-last-event-id"], "earliest");
    assert_eq!(anonymous.headers()["mercure-last-event-id"], "earliest");
    let unknown = read_events(unknown, 2).await;
    let anonymous = read_events(anonymous, 2).await;
    for (events, id) in [(&unknown, "never-was"), (&anonymous, "private-1")] {
        assert_eq!(events.len(), 2, "{id}");
        assert_eq!(events[0].event_type(), "mercure", "{id}: the gap report");
        assert_eq!(
            events[0].data(),
            format!(r#"{{"type": "gap", "last_event_id": "{id}", "resumed_from": "earliest"}}"#)
        );
        assert_eq!(events[1].data(), "public", "{id}: the replay");
    }

    // A subscriber granted the topic resumes from the id as usual.
    let token = token(
        &hub.url,
        json!({ "authorization_details": details(&[], &[SECRET]) }),
    );
    let granted = resume(&hub, "private-1", Some(&token)).await;
    assert_eq!(granted.headers()["mercure-last-event-id"], "private-1");
    let events = read_events(granted, 1).await;
    assert_eq!(events[0].event_type(), "message");
    assert_eq!(events[0].data(), "public");
}
