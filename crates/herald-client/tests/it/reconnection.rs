//! client.md section B: reconnection after a successful connection.
//!
//! The browser's `error` event with `readyState` CONNECTING is
//! [`SseItem::Reconnecting`]; its `delay` is the wait the client chose,
//! which is how the `retry` scenarios are checked without timing them.

use herald_client::{ErrorKind, ReadyState, SseItem};

use crate::server::{head, sse_head, Conn, Server};
use crate::{
    expect_event, expect_fatal, expect_message, expect_open, expect_reconnecting, ms, next_raw,
    source,
};

/// A server where request `i` gets a `200 text/event-stream` response with
/// body `bodies[i]` (the last body for every later request), then a clean
/// close.
async fn sequence(bodies: &'static [&'static [u8]]) -> Server {
    Server::start(move |mut conn: Conn| async move {
        let body = bodies[conn.request.index.min(bodies.len() - 1)];
        conn.write(sse_head()).await;
        conn.write(body).await;
        conn.close();
    })
    .await
}

#[tokio::test]
async fn s16_clean_close_reconnects() {
    let server = sequence(&[b"retry: 2\ndata: ok\n\n", b"data: data\n\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    match next_raw(&mut stream).await {
        Ok(SseItem::Retry(time)) => assert_eq!(time, ms(2)),
        other => panic!("expected Retry, got {other:?}"),
    }
    expect_message(&mut stream, "ok", "").await;
    // The error with CONNECTING comes before the wait.
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Connecting);
    assert_eq!(server.request_count(), 1, "the wait comes after the error");
    assert_eq!((reconnect.attempt, reconnect.delay), (1, ms(2)));
    assert!(reconnect.cause.is_none(), "a clean end is no failure");
    // Every successful reconnection opens again.
    expect_open(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    expect_message(&mut stream, "data", "").await;
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn s17_empty_body_keeps_the_retry() {
    let server = sequence(&[b"retry: 2\n", b"data: data\n\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    // The reconnection time set by the first connection governs the wait.
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(reconnect.delay, ms(2));
    expect_open(&mut stream).await;
    expect_message(&mut stream, "data", "").await;
    assert_eq!(stream.reconnection_time(), ms(2));
}

#[tokio::test]
async fn s18_dropped_mid_body() {
    // (a) A TCP reset after `data: par`, and (b) a chunked body whose
    // connection closes inside a chunk. The server waits for the client to
    // have received event "a" before breaking the connection, so that the
    // reset cannot destroy unread data.
    for chunked in [false, true] {
        let received = std::sync::Arc::new(tokio::sync::Notify::new());
        let notified = received.clone();
        let server = Server::start(move |mut conn: Conn| {
            let notified = notified.clone();
            async move {
                if conn.request.index > 0 {
                    conn.write(sse_head()).await;
                    conn.write(b"data: b\n\n").await;
                    return conn.hold().await;
                }
                if chunked {
                    let head = head(
                        "200 OK",
                        Some("text/event-stream"),
                        &["Transfer-Encoding: chunked"],
                    );
                    conn.write(head).await;
                    // A whole chunk, then one announced as 0x20 bytes and
                    // cut after 13.
                    conn.write(b"12\r\ndata: a\n\ndata: par\r\n20\r\ndata: partial")
                        .await;
                    notified.notified().await;
                    conn.close();
                } else {
                    conn.write(sse_head()).await;
                    conn.write(b"data: a\n\ndata: par").await;
                    notified.notified().await;
                    conn.reset();
                }
            }
        })
        .await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "a", "").await;
        received.notify_one();
        let reconnect = expect_reconnecting(&mut stream).await;
        let cause = reconnect.cause.expect("a broken body is a network error");
        assert_eq!(cause.kind(), &ErrorKind::Body, "chunked: {chunked}");
        // The partial event is discarded: the next message is "b".
        expect_open(&mut stream).await;
        expect_message(&mut stream, "b", "").await;
    }
}

#[tokio::test]
async fn s19_trailing_event_without_blank_line() {
    let server = sequence(&[b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "test1", "").await;
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(reconnect.delay, ms(1000));
    assert_eq!(stream.last_event_id(), "", "test2 was never dispatched");
    expect_open(&mut stream).await;
    expect_message(&mut stream, "test1", "").await;
    let requests = server.requests();
    assert_eq!(requests[1].header("last-event-id"), None);
    // A generous lower bound: the client waited the reconnection time.
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= ms(900), "reconnected after {waited:?}");
}

#[tokio::test]
async fn s20_last_event_id_header_is_utf8() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        match conn.request.header("last-event-id") {
            None => {
                conn.write("id: \u{2026}\nretry: 200\ndata: hello\n\n")
                    .await
            }
            Some(id) => {
                let mut body = b"data: ".to_vec();
                body.extend_from_slice(id);
                body.extend_from_slice(b"\n\n");
                conn.write(body).await;
            }
        }
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "hello", "\u{2026}").await;
    assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(200));
    for _ in 0..2 {
        expect_open(&mut stream).await;
        // No id in this stream, yet the last event id is still "…".
        expect_message(&mut stream, "\u{2026}", "\u{2026}").await;
        expect_reconnecting(&mut stream).await;
    }
    let requests = server.requests();
    assert_eq!(requests[0].header("last-event-id"), None);
    for request in &requests[1..] {
        assert_eq!(request.header("last-event-id"), Some(&b"\xE2\x80\xA6"[..]));
    }
}

#[tokio::test]
async fn s21_no_id_never_sends_the_header() {
    let server = sequence(&[b"data: x\n\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    for _ in 0..3 {
        expect_open(&mut stream).await;
        expect_message(&mut stream, "x", "").await;
        expect_reconnecting(&mut stream).await;
    }
    stream.close();
    for request in server.requests() {
        assert_eq!(request.header("last-event-id"), None, "not even empty");
    }
}

#[tokio::test]
async fn s22_id_reset_before_reconnect() {
    static BODIES: [&[u8]; 2] = [
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\n",
        // `id` with no colon has the same effect.
        b"id: 1\ndata: 1\n\nid\ndata:2\n\n",
    ];
    for body in &BODIES {
        let server = sequence(std::slice::from_ref(body)).await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "1", "1").await;
        expect_message(&mut stream, "2", "").await;
        expect_reconnecting(&mut stream).await;
        expect_open(&mut stream).await;
        assert_eq!(server.requests()[1].header("last-event-id"), None);
    }
}

#[tokio::test]
async fn s23_id_with_nul_is_ignored() {
    static BODIES: [&[u8]; 5] = [
        b"id: \0\0\nretry: 2\ndata: hello\n\n",
        b"id: x\0\nretry: 2\ndata: hello\n\n",
        b"id: \0x\nretry: 2\ndata: hello\n\n",
        b"id: x\0x\nretry: 2\ndata: hello\n\n",
        b"id:  \0\nretry: 2\ndata: hello\n\n",
    ];
    for body in &BODIES {
        let server = sequence(std::slice::from_ref(body)).await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "hello", "").await;
        expect_reconnecting(&mut stream).await;
        expect_open(&mut stream).await;
        expect_message(&mut stream, "hello", "").await;
        assert_eq!(server.requests()[1].header("last-event-id"), None);
    }

    // An earlier valid id is kept and sent instead.
    let server = sequence(&[b"id: 5\ndata: a\n\nid: x\0\ndata: b\n\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "a", "5").await;
    expect_message(&mut stream, "b", "5").await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    assert_eq!(server.requests()[1].header_str("last-event-id"), Some("5"));
}

#[tokio::test]
async fn s24_id_only_block_commits_the_id() {
    let server = sequence(&[b"data: a\n\nid: 9\n\n", b"data: b\n\n"]).await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "a", "").await;
    // The id-only block fires nothing…
    expect_reconnecting(&mut stream).await;
    // …but its id counts.
    assert_eq!(stream.last_event_id(), "9");
    expect_open(&mut stream).await;
    expect_message(&mut stream, "b", "9").await;
    assert_eq!(server.requests()[1].header_str("last-event-id"), Some("9"));
}

#[tokio::test]
async fn s25_the_retry_field() {
    // (a) and (b): the delay is the server's 3000 ms. The stream is closed
    // during the wait: the reported delay is what is checked.
    static CASES: [([&[u8]; 1], u64); 2] = [
        ([b"retry:03000\ndata:x\n\n"], 3000),
        ([b"retry:3000\nretry:1000x\ndata:x\n\n"], 3000),
    ];
    for (body, millis) in &CASES {
        let millis = *millis;
        let server = sequence(body).await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        match next_raw(&mut stream).await {
            Ok(SseItem::Retry(time)) => assert_eq!(time, ms(millis)),
            other => panic!("expected Retry, got {other:?}"),
        }
        expect_message(&mut stream, "x", "").await;
        assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(millis));
        stream.close();
    }

    // (c) An empty `retry` is ignored: the default reconnection time
    // applies, and the message is still delivered.
    let server = sequence(&[b"retry\ndata:test\n\n"]).await;
    let default_source = herald_client::EventSource::new(server.url("/")).unwrap();
    let mut stream = default_source.stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "test", "").await;
    let default = std::time::Duration::from_secs(3);
    assert_eq!(expect_reconnecting(&mut stream).await.delay, default);
    stream.close();

    // `retry` takes effect when its line is processed, even inside an
    // event never dispatched, and persists across later connections;
    // `retry: 0` means no delay.
    let server = sequence(&[
        b"data: a\n\nretry: 40\ndata: cut",
        b"data: b\n\n",
        b"retry: 0\n",
    ])
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "a", "").await;
    assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(40));
    expect_open(&mut stream).await;
    expect_message(&mut stream, "b", "").await;
    assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(40));
    expect_open(&mut stream).await;
    assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(0));
}

#[tokio::test]
async fn s26_204_on_reconnection_stops() {
    let server = Server::start(|mut conn: Conn| async move {
        match conn.request.index {
            0 => {
                conn.write(sse_head()).await;
                conn.write(b"retry: 2\ndata: opened\n\n").await;
            }
            1 => {
                conn.write(sse_head()).await;
                conn.write(b"data: reconnected\n\n").await;
            }
            _ => conn.write(head("204 No Content", None, &[])).await,
        }
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "opened", "").await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    expect_message(&mut stream, "reconnected", "").await;
    expect_reconnecting(&mut stream).await;
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::NoContent);
    assert_eq!(server.request_count(), 3, "no 4th request");
}

#[tokio::test]
async fn s27_bad_reconnection_response_fails() {
    let cases = [
        (
            head("503 Service Unavailable", Some("text/event-stream"), &[]),
            ErrorKind::Status(http::StatusCode::SERVICE_UNAVAILABLE),
        ),
        (
            head("200 OK", Some("text/plain"), &[]),
            ErrorKind::ContentType(Some("text/plain".into())),
        ),
    ];
    for (bad_head, kind) in cases {
        let server = Server::start(move |mut conn: Conn| {
            let bad_head = bad_head.clone();
            async move {
                if conn.request.index == 0 {
                    conn.write(sse_head()).await;
                    conn.write(b"data: a\n\n").await;
                } else {
                    conn.write(bad_head).await;
                    conn.write(b"data: b\n\n").await;
                }
                conn.close();
            }
        })
        .await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        let event = expect_event(&mut stream).await;
        assert_eq!(event.data(), "a");
        expect_reconnecting(&mut stream).await;
        assert_eq!(expect_fatal(&mut stream).await.kind(), &kind);
        assert_eq!(server.request_count(), 2, "never retries again");
    }
}
