//! client.md section C: `close()`, cancellation, the API surface, and the
//! last scenarios on ids and `open`.
//!
//! `close()` is [`EventStream::close`](herald_client::EventStream::close)
//! (or dropping the stream); `readyState` is
//! [`EventStream::ready_state`](herald_client::EventStream::ready_state).

use std::sync::Arc;

use futures_util::StreamExt;
use herald_client::{ErrorKind, EventSource, ReadyState, SseItem};
use tokio::sync::Notify;

use crate::server::{eventually, sse_head, Conn, Server};
use crate::{
    expect_end, expect_event, expect_message, expect_open, expect_quiet, expect_reconnecting, ms,
    next_raw, source,
};

#[tokio::test]
async fn s28_close_while_open() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        // One write: all three events are decoded from the same chunk.
        conn.write(b"data: 1\n\ndata: 2\n\ndata: 3\n\n").await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "1", "").await;
    stream.close();
    // Closed at once; the events already decoded are not delivered, no
    // error is reported, nothing reconnects.
    assert_eq!(stream.ready_state(), ReadyState::Closed);
    expect_end(&mut stream).await;
    // The fetch is aborted: the server sees the connection close.
    eventually(|| server.disconnects() == 1).await;
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn s29_close_during_the_reconnection_wait() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"retry: 200\ndata: x\n\n").await;
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "").await;
    assert_eq!(expect_reconnecting(&mut stream).await.delay, ms(200));
    stream.close();
    expect_end(&mut stream).await;
    // Well past the reconnection time: no new request was made.
    tokio::time::sleep(ms(400)).await;
    assert_eq!(server.request_count(), 1);
}

/// The embedder cancels a request that has not been answered yet. In a
/// browser the abort fires `error` with CLOSED; here the caller is the one
/// who cancels, so the stream just ends (no error to report to itself).
/// Cancelling a pending `next()` alone (a timeout, a lost `select!`
/// branch) is not a cancellation of the stream: see `extras`.
#[tokio::test]
async fn s30_cancellation_while_connecting() {
    let server = Server::start(|conn: Conn| async move {
        // A slow server: the response never comes.
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    tokio::select! {
        item = stream.next() => panic!("unexpected {item:?}"),
        () = server.wait_for_requests(1) => {}
    }
    assert_eq!(stream.ready_state(), ReadyState::Connecting);
    stream.close();
    assert_eq!(stream.ready_state(), ReadyState::Closed);
    expect_end(&mut stream).await;
    eventually(|| server.disconnects() == 1).await;
    assert_eq!(server.request_count(), 1, "no open, no reconnect");
    assert_eq!(stream.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn s31_constructor_and_request_shape() {
    // An invalid URL is refused up front (the browser's SyntaxError).
    let error = EventSource::new("http://this is invalid/").unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidUrl);
    assert!(std::error::Error::source(&error).is_some());

    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"data: x\n\n").await;
        if conn.request.index == 0 {
            conn.close();
        } else {
            conn.hold().await;
        }
    })
    .await;
    // The URL is resolved to its absolute, normalised form.
    let given = format!("HTTP://{}/a/../events?topic=x", server.addr());
    let source = source(&given).build().unwrap();
    assert_eq!(source.url().as_str(), server.url("/events?topic=x"));
    let mut stream = source.stream();
    assert_eq!(stream.ready_state(), ReadyState::Connecting);
    expect_open(&mut stream).await;
    expect_event(&mut stream).await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    // The same shape on the reconnect.
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/events?topic=x");
        assert_eq!(request.header_str("accept"), Some("text/event-stream"));
        assert_eq!(request.header_str("cache-control"), Some("no-cache"));
        assert_eq!(request.header_str("pragma"), Some("no-cache"));
        assert_eq!(request.header("last-event-id"), None);
    }
}

/// No cookie jar: a Rust client never stores cookies, so a `Set-Cookie`
/// is not sent back (the browser's `withCredentials: false` outcome,
/// "second NO_COOKIE"). Credentials are explicit headers, sent on every
/// request, reconnections included (the `withCredentials: true` outcome).
#[tokio::test]
async fn s32_credentials() {
    let server = Server::start(|mut conn: Conn| async move {
        let set_cookie = ["Set-Cookie: session=abc; Path=/"];
        let extra: &[&str] = if conn.request.index == 0 {
            &set_cookie
        } else {
            &[]
        };
        conn.write(crate::server::head(
            "200 OK",
            Some("text/event-stream"),
            extra,
        ))
        .await;
        conn.write(b"data: x\n\n").await;
        conn.close();
    })
    .await;

    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_event(&mut stream).await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    stream.close();
    assert_eq!(server.requests()[1].header("cookie"), None, "NO_COOKIE");

    let mut stream = source(&server.url("/"))
        .header("Cookie", "session=abc")
        .header("Authorization", "Bearer token")
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_event(&mut stream).await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    stream.close();
    for request in &server.requests()[2..] {
        assert_eq!(request.header_str("cookie"), Some("session=abc"));
        assert_eq!(request.header_str("authorization"), Some("Bearer token"));
    }
}

/// No exact equivalent: there is no CORS, hence no preflight. The nearest
/// behaviour: any id, long or holding CORS-unsafe bytes, is sent verbatim
/// on the reconnect, which is the only request made (no `OPTIONS`).
#[tokio::test]
async fn s33_cross_origin_reconnect_carrying_last_event_id() {
    let long = "x".repeat(200);
    for id in ["abc".to_owned(), long, "a<b".to_owned()] {
        let body = format!("id: {id}\ndata: x\n\n");
        let server = Server::start(move |mut conn: Conn| {
            let body = body.clone();
            async move {
                conn.write(sse_head()).await;
                conn.write(body).await;
                conn.close();
            }
        })
        .await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "x", &id).await;
        expect_reconnecting(&mut stream).await;
        expect_open(&mut stream).await;
        stream.close();
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|r| r.method == "GET"), "no preflight");
        assert_eq!(requests[1].header("last-event-id"), Some(id.as_bytes()));
    }
}

#[tokio::test]
async fn s34_server_events_named_error_or_open() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"event: error\ndata: x\n\nevent: open\ndata: y\n\n")
            .await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    for (event_type, data) in [("error", "x"), ("open", "y")] {
        let event = expect_event(&mut stream).await;
        assert_eq!((event.event_type(), event.data()), (event_type, data));
        assert_eq!(stream.ready_state(), ReadyState::Open);
    }
    expect_quiet(&mut stream, ms(50)).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn s35_open_fires_before_any_body_byte() {
    let go = Arc::new(Notify::new());
    let server_go = go.clone();
    let server = Server::start(move |mut conn: Conn| {
        let go = server_go.clone();
        async move {
            conn.write(sse_head()).await;
            // Nothing of the body is sent until the client has opened.
            go.notified().await;
            conn.write(b":\n: keep-alive\n").await;
            conn.hold().await;
        }
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    go.notify_one();
    // Comments are surfaced, but they are not messages.
    for text in ["", "keep-alive"] {
        match next_raw(&mut stream).await {
            Ok(SseItem::Comment(comment)) => assert_eq!(comment, text),
            other => panic!("expected a comment, got {other:?}"),
        }
    }
    expect_quiet(&mut stream, ms(50)).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
}

#[tokio::test]
async fn s36_last_event_id_across_reconnection_without_id() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        let body: &[u8] = match conn.request.index {
            0 => b"id: 1\ndata: 1\n\n",
            1 => b"data: 2\n\n",
            _ => b"data: 3\n\n",
        };
        conn.write(body).await;
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "1", "1").await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    expect_message(&mut stream, "2", "1").await;
    expect_reconnecting(&mut stream).await;
    expect_open(&mut stream).await;
    expect_message(&mut stream, "3", "1").await;
    stream.close();
    let requests = server.requests();
    assert_eq!(requests[0].header("last-event-id"), None);
    assert_eq!(requests[1].header_str("last-event-id"), Some("1"));
    assert_eq!(requests[2].header_str("last-event-id"), Some("1"));
}
