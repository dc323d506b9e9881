//! Streaming publish: many events in one `POST`, as `text/event-stream` or
//! NDJSON, each published as it arrives, in order, with its own id.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use herald_proto::{Decoder, MessageEvent};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;

use crate::{details, read_events, start_with, token, TestHub};

/// Starts a streaming publish (the request is sent at once); the sender
/// half feeds its body, chunk by chunk, and dropping it ends the body.
fn stream_publish(
    hub: &TestHub,
    query: &str,
    content_type: &str,
    token: Option<&str>,
) -> (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    impl std::future::Future<Output = reqwest::Response>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), receiver))
    });
    let mut request = hub
        .http
        .post(format!("{}?{query}", hub.url))
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(chunks));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = tokio::spawn(async move { request.send().await.unwrap() });
    (sender, async move { response.await.unwrap() })
}

/// A streaming publish with the admin token whose whole body is `body`,
/// sent in one chunk.
async fn publish_whole(
    hub: &TestHub,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> reqwest::Response {
    let (sender, response) = stream_publish(hub, query, content_type, Some(&hub.admin_token()));
    // The hub may refuse before it reads it all.
    let _ = sender.send(body.to_vec()).await;
    drop(sender);
    response.await
}

async fn summary(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Reads `n` events on `topic` as a client does: when the hub cuts it off
/// (a subscriber that reads slower than 100,000 events are published
/// falls behind), it comes back with `Last-Event-ID`. Within `within`.
async fn read_many(hub: &TestHub, topic: &str, n: usize, within: Duration) -> Vec<MessageEvent> {
    let mut events: Vec<MessageEvent> = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + within;
    while events.len() < n {
        let mut request = hub.subscribe_request(&format!("match={topic}"));
        if let Some(last) = events.last() {
            request = request.header("last-event-id", last.last_event_id());
        }
        let mut body = request.send().await.unwrap().bytes_stream();
        let mut decoder = Decoder::new();
        while events.len() < n {
            let chunk = tokio::time::timeout_at(deadline, body.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} events in time", events.len()));
            let Some(Ok(chunk)) = chunk else { break };
            decoder.feed(&chunk).unwrap();
            events.extend(std::iter::from_fn(|| decoder.next_event()));
        }
    }
    events
}

async fn unlimited() -> TestHub {
    start_with(|config| config.max_stream_events_per_sec = 0).await
}

#[tokio::test]
async fn a_hundred_thousand_events_in_one_request_arrive_in_order_and_complete() {
    const N: usize = 100_000;
    let hub = std::sync::Arc::new(unlimited().await);
    let reader = {
        let hub = std::sync::Arc::clone(&hub);
        tokio::spawn(async move { read_many(&hub, "/tokens", N, Duration::from_secs(120)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let admin = hub.admin_token();
    let (sender, response) =
        stream_publish(&hub, "topic=/tokens", "text/event-stream", Some(&admin));
    let writer = tokio::spawn(async move {
        // Cut anywhere: events straddle the chunks.
        let mut body = Vec::new();
        for n in 0..N {
            body.extend_from_slice(format!("data: token {n}\n\n").as_bytes());
            if body.len() > 3_000 {
                let (chunk, rest) = body.split_at(1_777);
                sender.send(chunk.to_vec()).await.unwrap();
                body = rest.to_vec();
            }
        }
        sender.send(body).await.unwrap();
    });
    let (status, summary) = summary(response.await).await;
    writer.await.unwrap();
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["published"], N);
    let events = reader.await.unwrap();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.data(), format!("token {n}"));
    }
    assert_eq!(summary["first_id"], events[0].last_event_id());
    assert_eq!(summary["last_id"], events[N - 1].last_event_id());
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.last_event_id()).collect();
    assert_eq!(ids.len(), N, "every event has its own id");
}

#[tokio::test]
async fn fields_give_each_event_its_type_id_and_retry() {
    let hub = unlimited().await;
    let subscriber = hub.subscribe_request("match=/f").send().await.unwrap();
    let response = publish_whole(&hub, "topic=/f", "text/event-stream", b": a comment is ignored\nevent: progress\ndata: {\"pct\": 10}\n\nid: custom-1\ndata: line one\ndata: line two\n\nretry: 5000\ndata: after\n\nevent: end\ndata: [DONE]\n\n").await;
    let (status, summary) = summary(response).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["published"], 4);
    let events = read_events(subscriber, 4).await;
    let seen: Vec<(&str, &str)> = events.iter().map(|e| (e.event_type(), e.data())).collect();
    assert_eq!(
        seen,
        [
            ("progress", "{\"pct\": 10}"),
            ("message", "line one\nline two"),
            ("message", "after"),
            ("end", "[DONE]"),
        ]
    );
    assert_eq!(events[1].last_event_id(), "custom-1");
    // The events after it got ids of their own, not the custom one again.
    assert_ne!(events[2].last_event_id(), "custom-1");
    assert!(events[2].last_event_id().starts_with("urn:uuid:"));
}

#[tokio::test]
async fn a_body_that_ends_inside_an_event_publishes_the_complete_ones_and_says_so() {
    let hub = unlimited().await;
    let response = publish_whole(
        &hub,
        "topic=/cut",
        "text/event-stream",
        b"data: one\n\ndata: two\n\ndata: thr",
    )
    .await;
    let (status, summary) = summary(response).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["published"], 2);
    assert_eq!(summary["incomplete"], true, "{summary}");
}

#[tokio::test]
async fn a_connection_cut_mid_body_keeps_what_was_complete() {
    let hub = unlimited().await;
    let mut stream = hub.connect().await;
    let admin = hub.admin_token();
    stream
        .write_all(
            format!(
                "POST /.well-known/mercure?topic=/gone HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {admin}\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let events = "data: kept 1\n\ndata: kept 2\n\ndata: lost";
    stream
        .write_all(format!("{:x}\r\n{events}\r\n", events.len()).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    // Both complete events are in the history.
    let replay = hub
        .subscribe_request("match=/gone")
        .header("last-event-id", "earliest")
        .send()
        .await
        .unwrap();
    let got = read_events(replay, 2).await;
    let data: Vec<&str> = got.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["kept 1", "kept 2"]);
}

#[tokio::test]
async fn an_oversized_event_stops_the_stream_with_413_and_the_count() {
    let hub = start_with(|config| {
        config.max_body_bytes = 1024;
        config.max_stream_events_per_sec = 0;
    })
    .await;
    // The small event and the big one in one chunk: the small one is
    // still published.
    let body = format!(
        "data: small\n\ndata: {}\n\ndata: never\n\n",
        "x".repeat(4096)
    );
    let response = publish_whole(&hub, "topic=/big", "text/event-stream", body.as_bytes()).await;
    let (status, summary) = summary(response).await;
    assert_eq!(status, 413, "{summary}");
    assert_eq!(summary["published"], 1, "{summary}");
    assert!(
        summary["error"].as_str().unwrap().contains("1024"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_token_that_expires_mid_stream_refuses_the_rest() {
    let hub = unlimited().await;
    let now = crate::unix_time();
    let short = token(
        &hub.url,
        json!({ "exp": now + 2, "authorization_details": details(&["*"], &[]) }),
    );
    let (sender, response) = stream_publish(&hub, "topic=/exp", "text/event-stream", Some(&short));
    sender.send(b"data: before\n\n".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let _ = sender.send(b"data: after\n\n".to_vec()).await;
    drop(sender);
    let response = response.await;
    assert!(response.headers().contains_key("www-authenticate"));
    let (status, summary) = summary(response).await;
    assert_eq!(status, 401, "{summary}");
    assert_eq!(summary["published"], 1, "{summary}");
    assert!(
        summary["error"].as_str().unwrap().contains("expired"),
        "{summary}"
    );
}

#[tokio::test]
async fn ndjson_streams_back_one_id_per_event_then_the_summary() {
    let hub = unlimited().await;
    let subscriber = hub.subscribe_request("match=/nd").send().await.unwrap();
    let response = publish_whole(&hub, "topic=/nd", "application/x-ndjson", b"{\"data\": \"plain text\"}\n{\"data\": {\"choices\": [{\"delta\": {\"content\": \"Hi\"}}]}, \"type\": \"chunk\"}\n\n{\"data\": \"[DONE]\", \"id\": \"done-1\"}\n").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[2]["id"], "done-1");
    assert_eq!(lines[3]["published"], 3);
    assert_eq!(lines[3]["last_id"], "done-1");
    let events = read_events(subscriber, 3).await;
    assert_eq!(events[0].data(), "plain text");
    assert_eq!(events[0].last_event_id(), lines[0]["id"]);
    assert_eq!(events[1].event_type(), "chunk");
    assert_eq!(
        events[1].data(),
        r#"{"choices":[{"delta":{"content":"Hi"}}]}"#
    );
    assert_eq!(events[2].data(), "[DONE]");
}

#[tokio::test]
async fn a_bad_ndjson_line_stops_with_400_after_what_came_before() {
    let hub = unlimited().await;
    let response = publish_whole(
        &hub,
        "topic=/nd",
        "application/x-ndjson",
        b"{\"data\": \"ok\"}\nnot json\n{\"data\": \"never\"}\n",
    )
    .await;
    let text = response.text().await.unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["error"].as_str().unwrap().contains("NDJSON"), "{text}");
    // The line before the bad one is published, the one after is not.
    assert_eq!(last["published"], 1, "{text}");
    // The answer was 200 before the bad line came: the line says 400.
    assert_eq!(last["status"], 400, "{text}");
}

#[tokio::test]
async fn who_may_stream_is_decided_before_the_body() {
    let hub = unlimited().await;
    // No topic.
    let (_sender, response) =
        stream_publish(&hub, "", "text/event-stream", Some(&hub.admin_token()));
    assert_eq!(response.await.status(), 400);
    // No token.
    let (_sender, response) = stream_publish(&hub, "topic=/a", "text/event-stream", None);
    assert_eq!(response.await.status(), 401);
    // A token that may not publish there.
    let other = token(
        &hub.url,
        json!({ "authorization_details": details(&["/other"], &[]) }),
    );
    let (_sender, response) = stream_publish(&hub, "topic=/a", "text/event-stream", Some(&other));
    assert_eq!(response.await.status(), 403);
}

#[tokio::test]
async fn past_the_rate_the_body_is_read_more_slowly() {
    let hub = start_with(|config| config.max_stream_events_per_sec = 50).await;
    let started = Instant::now();
    let body: String = (0..100).map(|n| format!("data: {n}\n\n")).collect();
    let response = publish_whole(&hub, "topic=/slow", "text/event-stream", body.as_bytes()).await;
    let (status, summary) = summary(response).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["published"], 100);
    // 100 events at 50 a second: the first 50 at once, the rest paced.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn ndjson_answers_every_id_however_many_events() {
    const N: usize = 10_000;
    let hub = unlimited().await;
    let body: String = (0..N).map(|n| format!("{{\"data\": \"{n}\"}}\n")).collect();
    let response =
        publish_whole(&hub, "topic=/many", "application/x-ndjson", body.as_bytes()).await;
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), N + 1, "one id per event, then the summary");
    assert_eq!(lines[N]["published"], N);
    assert_eq!(lines[N - 1]["id"], lines[N]["last_id"]);
}
