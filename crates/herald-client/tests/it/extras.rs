//! Beyond the browser: headers, methods and bodies, the initial last
//! event id, backoff, the retry cap, timeouts, limits, reconnection off,
//! cancel safety, and streams cut inside CRLF and UTF-8 sequences.

use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{ErrorKind, Limits, SseItem};

use crate::server::{head, sse_head, Conn, Server};
use crate::{
    expect_end, expect_fatal, expect_message, expect_open, expect_reconnecting, ms, source,
};

#[tokio::test]
async fn cut_inside_crlf_and_utf8_sequences() {
    // Every byte its own HTTP chunk: boundaries fall between CR and LF and
    // inside the two- and three-byte characters.
    let body = "data: a\r\n\r\ndata: \u{e9}\u{2026}\r\rid: 7\r\ndata: b\r\n\r\n";
    let server = Server::start(move |mut conn: Conn| async move {
        conn.write(head(
            "200 OK",
            Some("text/event-stream"),
            &["Transfer-Encoding: chunked"],
        ))
        .await;
        let parts: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        conn.write_chunked(&parts).await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "a", "").await;
    expect_message(&mut stream, "\u{e9}\u{2026}", "").await;
    expect_message(&mut stream, "b", "7").await;
    // The chunked body ended cleanly: a reconnection, with the id.
    assert!(expect_reconnecting(&mut stream).await.cause.is_none());
    expect_open(&mut stream).await;
    stream.close();
    assert_eq!(server.requests()[1].header_str("last-event-id"), Some("7"));
}

#[tokio::test]
async fn cut_inside_crlf_across_tcp_segments() {
    // The same cuts without chunked framing: separate TCP writes.
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write_parts(&[b"data: \xE2", b"\x80\xA6\r", b"\n\r", b"\ndata: z\r\n\r\n"])
            .await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "\u{2026}", "").await;
    expect_message(&mut stream, "z", "").await;
}

#[tokio::test]
async fn custom_method_body_and_headers_on_every_request() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"id: 1\ndata: x\n\n").await;
        conn.close();
    })
    .await;
    let method = http::Method::from_bytes(b"QUERY").unwrap();
    let mut stream = source(&server.url("/subscribe"))
        .method(method)
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer secret")
        .body(r#"{"topics":["a","b"]}"#)
        .build()
        .unwrap()
        .stream();
    for _ in 0..2 {
        expect_open(&mut stream).await;
        expect_message(&mut stream, "x", "1").await;
        expect_reconnecting(&mut stream).await;
    }
    stream.close();
    for request in server.requests() {
        assert_eq!(request.method, "QUERY");
        assert_eq!(request.body, br#"{"topics":["a","b"]}"#);
        assert_eq!(request.header_str("content-type"), Some("application/json"));
        assert_eq!(request.header_str("authorization"), Some("Bearer secret"));
    }
}

#[tokio::test]
async fn post_through_307_keeps_method_and_body() {
    let server = Server::start(|mut conn: Conn| async move {
        if conn.request.target == "/old" {
            let extra = ["Location: /new", "Content-Length: 0"];
            conn.write(head("307 Temporary Redirect", None, &extra))
                .await;
        } else {
            conn.write(sse_head()).await;
            conn.write(b"data: x\n\n").await;
        }
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/old"))
        .method(http::Method::POST)
        .body("topic=a")
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "").await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert_eq!(
            (request.method.as_str(), request.body.as_slice()),
            ("POST", &b"topic=a"[..])
        );
    }
}

#[tokio::test]
async fn too_many_redirects_fail() {
    let server = Server::start(|mut conn: Conn| async move {
        let extra = ["Location: /loop", "Content-Length: 0"];
        conn.write(head("302 Found", None, &extra)).await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/loop"))
        .max_redirects(3)
        .build()
        .unwrap()
        .stream();
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::TooManyRedirects);
    assert_eq!(
        server.request_count(),
        4,
        "the first request and 3 redirects"
    );

    // With redirects off, a redirect is a status like any other.
    let mut stream = source(&server.url("/loop"))
        .max_redirects(0)
        .build()
        .unwrap()
        .stream();
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.to_string(), "302 Found");
}

#[tokio::test]
async fn initial_last_event_id_is_sent_and_reported() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"data: x\n\n").await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/"))
        .last_event_id("42")
        .build()
        .unwrap()
        .stream();
    assert_eq!(stream.last_event_id(), "42");
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "42").await;
    assert_eq!(server.requests()[0].header_str("last-event-id"), Some("42"));

    // A `Last-Event-ID` given as a header is taken as the initial id, and
    // sent once, not twice.
    let mut stream = source(&server.url("/"))
        .header("Last-Event-ID", "7")
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "7").await;
    assert_eq!(server.requests()[1].header_str("last-event-id"), Some("7"));
}

#[tokio::test]
async fn backoff_grows_until_progress_then_resets() {
    // Requests 0..3 are closed before any response; request 3 opens and
    // delivers, then closes; request 4 holds.
    let server = Server::start(|mut conn: Conn| async move {
        match conn.request.index {
            0..=2 => conn.close(),
            3 => {
                conn.write(sse_head()).await;
                conn.write(b"data: up\n\n").await;
                conn.close();
            }
            _ => {
                conn.write(sse_head()).await;
                conn.hold().await;
            }
        }
    })
    .await;
    let mut stream = source(&server.url("/"))
        .retry(ms(1))
        .max_retry_delay(ms(300))
        .build()
        .unwrap()
        .stream();
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let reconnect = expect_reconnecting(&mut stream).await;
        assert_eq!(reconnect.attempt, attempt);
        delays.push(reconnect.delay);
    }
    assert_eq!(delays[0], ms(1), "the first wait is the reconnection time");
    // Doubling from the 100 ms growth floor, with equal jitter: [d/2, d].
    assert!(delays[1] >= ms(100) && delays[1] <= ms(200), "{delays:?}");
    // 400 ms, capped at 300 ms.
    assert!(delays[2] >= ms(150) && delays[2] <= ms(300), "{delays:?}");
    expect_open(&mut stream).await;
    expect_message(&mut stream, "up", "").await;
    // Progress resets the count.
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!((reconnect.attempt, reconnect.delay), (1, ms(1)));
}

#[tokio::test]
async fn max_retries_counts_connections_without_progress() {
    // Every response opens and ends at once, delivering nothing.
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/"))
        .retry(ms(1))
        .max_retry_delay(ms(1))
        .max_retries(3)
        .build()
        .unwrap()
        .stream();
    for attempt in 1..=3 {
        expect_open(&mut stream).await;
        assert_eq!(expect_reconnecting(&mut stream).await.attempt, attempt);
    }
    expect_open(&mut stream).await;
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::TooManyRetries { attempts: 3 });
    assert_eq!(server.request_count(), 4);
}

#[tokio::test]
async fn connect_timeout_is_a_network_error() {
    let server = Server::start(|conn: Conn| async move { conn.hold().await }).await;
    let mut stream = source(&server.url("/"))
        .connect_timeout(ms(100))
        .max_retries(1)
        .build()
        .unwrap()
        .stream();
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(reconnect.cause.unwrap().kind(), &ErrorKind::ConnectTimeout);
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::TooManyRetries { attempts: 1 });
    let last = std::error::Error::source(&error).unwrap();
    assert_eq!(last.to_string(), "timed out waiting for the response");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn read_timeout_reconnects_a_silent_stream() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        if conn.request.index == 0 {
            // One event, then silence.
            conn.write(b"id: 1\ndata: x\n\n").await;
        } else {
            conn.write(b"data: y\n\n").await;
        }
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/"))
        .read_timeout(ms(400))
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "1").await;
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(reconnect.cause.unwrap().kind(), &ErrorKind::ReadTimeout);
    expect_open(&mut stream).await;
    expect_message(&mut stream, "y", "1").await;
    assert_eq!(server.requests()[1].header_str("last-event-id"), Some("1"));
}

#[tokio::test]
async fn without_reconnection_a_clean_end_ends_the_stream() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"data: x\n\ndata: cut").await;
        conn.close();
    })
    .await;
    let mut stream = source(&server.url("/"))
        .reconnect(false)
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "x", "").await;
    expect_end(&mut stream).await;
    assert_eq!(server.request_count(), 1);

    // A network error ends it with that error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stream = source(&format!("http://127.0.0.1:{port}/"))
        .reconnect(false)
        .build()
        .unwrap()
        .stream();
    assert_eq!(expect_fatal(&mut stream).await.kind(), &ErrorKind::Connect);
}

#[tokio::test]
async fn an_event_over_the_limit_is_fatal_after_earlier_events() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        conn.write(b"data: small\n\ndata: this line is far too long\n\n")
            .await;
        conn.hold().await;
    })
    .await;
    let limits = Limits {
        max_line: 16,
        max_event: 16,
    };
    let mut stream = source(&server.url("/"))
        .limits(limits)
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "small", "").await;
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::TooLarge);
    let cause = std::error::Error::source(&error).unwrap();
    assert_eq!(cause.to_string(), "event stream line longer than 16 bytes");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn invalid_headers_are_reported_by_build() {
    let error = source("http://127.0.0.1/")
        .header("Bad Name", "x")
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidHeader);
    let error = source("http://127.0.0.1/")
        .header("X-Ok", "line\nbreak")
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidHeader);
}

#[tokio::test]
async fn sensitive_headers_are_redacted_from_debug() {
    let source = source("http://127.0.0.1/")
        .header("Authorization", "Bearer secret")
        .build()
        .unwrap();
    let debug = format!("{source:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("Sensitive"), "{debug}");
}

#[tokio::test]
async fn next_is_cancel_safe() {
    // Events arrive slowly while `next()` keeps losing a `select!` race to
    // a fast timer: every event still arrives once, in order.
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(sse_head()).await;
        for n in 0..10 {
            conn.write(format!("data: {n}\n\n")).await;
            tokio::time::sleep(ms(7)).await;
        }
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    let mut data = Vec::new();
    let mut cancelled = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let deadline = tokio::time::Instant::now() + crate::server::PATIENCE;
    while data.len() < 10 {
        assert!(tokio::time::Instant::now() < deadline, "stalled: {data:?}");
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(SseItem::Event(event))) => data.push(event.into_data()),
                Some(Ok(SseItem::Open(_))) => {}
                other => panic!("unexpected {other:?}"),
            },
            _ = tick.tick() => cancelled += 1,
        }
    }
    let expected: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(data, expected);
    assert!(cancelled > 0, "the race was never lost");
    // Nothing extra was buffered or replayed.
    crate::expect_quiet(&mut stream, ms(30)).await;
}

#[test]
fn handles_are_send_and_the_source_is_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<herald_client::EventSource>();
    sync::<herald_client::EventSource>();
    send::<herald_client::EventStream>();
    sync::<herald_client::EventStream>();
    send::<herald_client::Error>();
    sync::<herald_client::Error>();
    send::<SseItem>();
}
