//! `GET /.well-known/mercure`: matchers, headers, resume.

use std::time::Duration;

use herald_proto::Frame;

use crate::{legacy_mode, read_events, read_frames, start, start_with};

#[tokio::test]
async fn a_stream_carries_the_sse_headers_and_a_retry_hint_first() {
    let hub = start().await;
    let response = hub.subscribe_request("match=/a").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(
        headers.get("mercure-last-event-id").is_none(),
        "no cursor was asked"
    );
    let frames = read_frames(response, 1, |_| true).await;
    assert_eq!(frames[0], Frame::Retry(Duration::from_millis(3000)));
}

#[tokio::test]
async fn updates_matching_any_matcher_arrive_in_order() {
    let hub = start().await;
    let response = hub
        .subscribe_request("match=/a&match_exact=/b&match_urlpattern=/books/:id")
        .send()
        .await
        .unwrap();
    hub.publish_ok(&[("topic", "/a"), ("data", "1")]).await;
    hub.publish_ok(&[("topic", "/c"), ("data", "not mine")])
        .await;
    hub.publish_ok(&[("topic", "/b"), ("data", "2"), ("type", "t")])
        .await;
    let id = hub
        .publish_ok(&[("topic", "/books/7"), ("data", "3\nlines")])
        .await;
    let events = read_events(response, 3).await;
    let got: Vec<(&str, &str)> = events.iter().map(|e| (e.event_type(), e.data())).collect();
    assert_eq!(got, [("message", "1"), ("t", "2"), ("message", "3\nlines")]);
    assert_eq!(events[2].last_event_id(), id);
}

#[tokio::test]
async fn the_wildcard_matches_every_topic() {
    let hub = start().await;
    let response = hub.subscribe_request("match=*").send().await.unwrap();
    hub.publish_ok(&[("topic", "https://example.com/x"), ("data", "x")])
        .await;
    assert_eq!(read_events(response, 1).await[0].data(), "x");
}

#[tokio::test]
async fn legacy_topic_selectors_with_uri_templates_still_work() {
    let hub = start_with(legacy_mode).await;
    let response = hub
        .subscribe_request("topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    hub.publish_ok(&[("topic", "https://example.com/books/1"), ("data", "legacy")])
        .await;
    assert_eq!(read_events(response, 1).await[0].data(), "legacy");
}

#[tokio::test]
async fn unknown_parameters_in_the_match_namespace_are_refused() {
    let hub = start().await;
    for query in [
        // Not UTF-8 once percent-decoded: refused, not read as U+FFFD.
        "match=%FF",
        "match=/a&last_event_id=%C3",
        "match_regex=x",
        "MATCH=x",
        "matchfoo=x",
        "match_Exact=x",
        "match=a&match_glob=b",
    ] {
        let response = hub.subscribe_request(query).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    // Other unknown parameters are fine.
    let response = hub
        .subscribe_request("match=a&foo=bar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_request_without_matchers_is_refused() {
    let hub = start().await;
    let response = hub.subscribe_request("foo=bar").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("match"));
}

#[tokio::test]
async fn matcher_values_with_control_or_format_characters_are_refused() {
    let hub = start().await;
    for value in [
        "a%00b",
        "a%1Fb",
        "a%7Fb",
        "a%C2%85b",
        "a%E2%80%8Bb",
        "a%E2%80%AEb",
        "%EF%BB%BFa",
    ] {
        let response = hub
            .subscribe_request(&format!("match={value}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{value}");
    }
}

#[tokio::test]
async fn an_invalid_url_pattern_is_refused() {
    let hub = start().await;
    let response = hub
        .subscribe_request("match_urlpattern=%2Fbooks%2F(unclosed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn matcher_count_and_length_limits_are_400() {
    let hub = start().await;
    let many: Vec<String> = (0..129).map(|i| format!("match=/t{i}")).collect();
    let response = hub.subscribe_request(&many.join("&")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let long = "x".repeat(2049);
    let response = hub
        .subscribe_request(&format!("match={long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn last_event_id_header_resumes_and_is_echoed_as_mercure_last_event_id() {
    let hub = start().await;
    let first = hub.publish_ok(&[("topic", "/r"), ("data", "1")]).await;
    hub.publish_ok(&[("topic", "/r"), ("data", "2")]).await;
    let response = hub
        .subscribe_request("match=/r")
        .header("last-event-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["mercure-last-event-id"], first.as_str());
    assert_eq!(read_events(response, 1).await[0].data(), "2");
}

#[tokio::test]
async fn the_query_parameter_resumes_and_the_header_takes_precedence() {
    let hub = start().await;
    let first = hub.publish_ok(&[("topic", "/r"), ("data", "1")]).await;
    let second = hub.publish_ok(&[("topic", "/r"), ("data", "2")]).await;
    hub.publish_ok(&[("topic", "/r"), ("data", "3")]).await;
    let response = hub
        .subscribe_request(&format!("match=/r&last_event_id={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read_events(response, 1).await[0].data(), "2");
    let response = hub
        .subscribe_request(&format!("match=/r&last_event_id={first}"))
        .header("last-event-id", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["mercure-last-event-id"], second.as_str());
    assert_eq!(read_events(response, 1).await[0].data(), "3");
}

#[tokio::test]
async fn legacy_last_event_id_query_and_response_header() {
    let hub = start_with(legacy_mode).await;
    let first = hub.publish_ok(&[("topic", "/r"), ("data", "1")]).await;
    hub.publish_ok(&[("topic", "/r"), ("data", "2")]).await;
    let response = hub
        .subscribe_request(&format!("topic=/r&lastEventID={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["last-event-id"], first.as_str());
    assert_eq!(response.headers()["mercure-last-event-id"], first.as_str());
    assert_eq!(read_events(response, 1).await[0].data(), "2");
}

#[tokio::test]
async fn earliest_replays_all_and_reports_earliest() {
    let hub = start().await;
    hub.publish_ok(&[("topic", "/r"), ("data", "1")]).await;
    hub.publish_ok(&[("topic", "/r"), ("data", "2")]).await;
    let response = hub
        .subscribe_request("match=/r&last_event_id=earliest")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["mercure-last-event-id"], "earliest");
    let events = read_events(response, 2).await;
    assert_eq!(
        events.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["1", "2"]
    );
}

#[tokio::test]
async fn an_unknown_cursor_is_reported_in_the_header_and_in_band() {
    let hub = start().await;
    hub.publish_ok(&[("topic", "/r"), ("data", "kept")]).await;
    let response = hub
        .subscribe_request("match=/r")
        .header("last-event-id", "urn:uuid:never-was")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["mercure-last-event-id"], "earliest");
    let events = read_events(response, 2).await;
    assert_eq!(events[0].event_type(), "mercure");
    assert!(events[0].data().contains(r#""type": "gap""#));
    assert!(events[0].data().contains("urn:uuid:never-was"));
    assert_eq!(events[1].data(), "kept");
}

#[tokio::test]
async fn health_and_index_pages() {
    let hub = start().await;
    let health = hub
        .http
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let index = hub.http.get(&hub.base).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let page = index.text().await.unwrap();
    assert!(page.contains("Mercure") && page.contains("/ui"));
    let metrics = hub
        .http
        .get(format!("{}/metrics", hub.base))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("herald_subscribers 0"));
    assert!(metrics.contains("herald_store_follow_retries_total 0"));
}

#[tokio::test]
async fn a_closed_connection_frees_the_subscriber_at_once() {
    let hub = start().await;
    let response = hub.subscribe_request("match=/x").send().await.unwrap();
    assert_eq!(hub.hub.subscriber_count(), 1);
    drop(response);
    // The server notices the closed socket on its next poll of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.hub.subscriber_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(hub.hub.subscriber_count(), 0);
}

/// Regression: a parameter name with a multi-byte character across its
/// fifth byte used to be sliced mid-character while checking the reserved
/// `match` prefix.
#[tokio::test]
async fn a_parameter_name_with_a_multibyte_character_is_not_a_crash() {
    let hub = start().await;
    // "matc" + "é" (two bytes: the fifth byte is inside it).
    let response = hub
        .subscribe_request("match=/a&matc%C3%A9=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = hub
        .subscribe_request("match=/a&MATCH%C3%A9=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "still in the reserved namespace");
}

/// The suite runs under every transport (`HERALD_TEST_TRANSPORT`): this
/// checks it really does, so a transport that silently fell back to
/// another would fail here.
#[tokio::test]
async fn the_suite_speaks_the_transport_it_names() {
    let hub = start().await;
    let response = hub.subscribe_request("match=/t").send().await.unwrap();
    assert_eq!(response.status(), 200);
    // hyper dates its answers; the lean path writes its own head, undated.
    let lean = !response.headers().contains_key("date");
    let expected = match crate::Transport::from_env() {
        crate::Transport::Lean => (reqwest::Version::HTTP_11, true),
        crate::Transport::Hyper => (reqwest::Version::HTTP_11, false),
        crate::Transport::H2c | crate::Transport::H2 => (reqwest::Version::HTTP_2, false),
    };
    assert_eq!((response.version(), lean), expected);
    assert_eq!(
        hub.base.starts_with("https://"),
        crate::Transport::from_env() == crate::Transport::H2
    );
}
