//! client.md section A: how the first response is classified.
//!
//! A browser's `error` event with `readyState` CLOSED is the stream's
//! final `Err` here, followed by the end of the stream; "never reconnects"
//! is checked by counting requests at the server once the stream has ended
//! (after that, nothing of the client is left running that could connect).

use herald_client::{ErrorKind, EventSource, ReadyState};

use crate::server::{head, sse_head, Conn, Server};
use crate::{expect_fatal, expect_message, expect_open, expect_quiet, ms, source};

/// A server answering every request with `head`, then `body`, then
/// holding the connection open.
async fn serve(head: String, body: &'static [u8]) -> Server {
    Server::start(move |mut conn: Conn| {
        let head = head.clone();
        async move {
            conn.write(head).await;
            conn.write(body).await;
            conn.hold().await;
        }
    })
    .await
}

/// Checks that a response with this head and body opens and delivers
/// `data: hi`, with no error.
async fn check_opens(head: String) {
    let server = serve(head, b"data: hi\n\n").await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    expect_open(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    expect_message(&mut stream, "hi", "").await;
    expect_quiet(&mut stream, ms(50)).await;
    assert_eq!(server.request_count(), 1);
}

/// Checks that a response with this head fails the connection for good:
/// no open, no message, one error of `kind`, one request.
async fn check_fails(head: String, kind: ErrorKind, message: &str) {
    let server = serve(head, b"data: data\n\n").await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &kind);
    assert_eq!(error.to_string(), message);
    assert!(error.is_fatal());
    assert_eq!(server.request_count(), 1, "no reconnection");
}

#[tokio::test]
async fn s01_plain_success() {
    let server = serve(sse_head(), b"data: hi\n\n").await;
    let url = server.url("/events?topic=x");
    let source = source(&url).build().unwrap();
    let mut stream = source.stream();
    assert_eq!(stream.ready_state(), ReadyState::Connecting);
    let open = expect_open(&mut stream).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
    // The browser's `origin` is the origin of the stream's URL.
    assert_eq!(open.url().as_str(), url);
    assert_eq!(open.url().origin(), source.url().origin());
    expect_message(&mut stream, "hi", "").await;
    expect_quiet(&mut stream, ms(50)).await;
    assert_eq!(stream.ready_state(), ReadyState::Open);
}

#[tokio::test]
async fn s02_mime_parameters_are_ignored() {
    for content_type in [
        "text/event-stream;charset=utf-8",
        "text/event-stream; charset=UTF-8",
    ] {
        check_opens(head("200 OK", Some(content_type), &[])).await;
    }
}

#[tokio::test]
async fn s03_charset_never_changes_decoding() {
    for charset in ["windows-1252", "utf-16", "iso-8859-1"] {
        let content_type = format!("text/event-stream;charset={charset}");
        let head = head("200 OK", Some(&content_type), &[]);
        let server = Server::start(move |mut conn: Conn| {
            let head = head.clone();
            async move {
                conn.write(head).await;
                // "…" is E2 80 A6; the write is cut inside it.
                conn.write_parts(&[b"data:ok\xE2\x80", b"\xA6\n\n\n"]).await;
                conn.hold().await;
            }
        })
        .await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "ok\u{2026}", "").await;
        expect_quiet(&mut stream, ms(30)).await;
    }
}

#[tokio::test]
async fn s04_trailing_semicolon() {
    check_opens(head("200 OK", Some("text/event-stream;"), &[])).await;
}

#[tokio::test]
async fn s05_mime_type_case() {
    check_opens(head("200 OK", Some("TEXT/Event-Stream"), &[])).await;
}

#[tokio::test]
async fn s06_valid_but_different_mime_type() {
    for content_type in [
        "text/x-bogus",
        "text/plain",
        "application/json",
        "text/event-streams",
    ] {
        check_fails(
            head("200 OK", Some(content_type), &[]),
            ErrorKind::ContentType(Some(content_type.into())),
            &format!("expected text/event-stream, got {content_type}"),
        )
        .await;
    }
}

#[tokio::test]
async fn s07_unparseable_content_type() {
    check_fails(
        head("200 OK", Some("x bogus"), &[]),
        ErrorKind::ContentType(Some("x bogus".into())),
        "expected text/event-stream, got x bogus",
    )
    .await;
}

#[tokio::test]
async fn s08_no_content_type() {
    check_fails(
        head("200 OK", None, &[]),
        ErrorKind::ContentType(None),
        "expected text/event-stream, got no Content-Type",
    )
    .await;
}

#[tokio::test]
async fn s09_204_no_content_stops() {
    let server = Server::start(|mut conn: Conn| async move {
        conn.write(head("204 No Content", Some("text/event-stream"), &[]))
            .await;
        conn.hold().await;
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::NoContent);
    assert_eq!(
        error.to_string(),
        "the server answered 204 No Content: stop"
    );
    assert_eq!(error.status(), Some(http::StatusCode::NO_CONTENT));
    assert_eq!(server.request_count(), 1, "no reconnection");
}

#[tokio::test]
async fn s10_2xx_other_than_200() {
    for (status, text) in [
        (205, "205 Reset Content"),
        (210, "210 <unknown status code>"),
        (299, "299 <unknown status code>"),
        (201, "201 Created"),
        (202, "202 Accepted"),
        (206, "206 Partial Content"),
    ] {
        let code = http::StatusCode::from_u16(status).unwrap();
        check_fails(
            head(
                &format!("{status} Whatever"),
                Some("text/event-stream"),
                &[],
            ),
            ErrorKind::Status(code),
            text,
        )
        .await;
    }
}

#[tokio::test]
async fn s11_4xx_5xx_fail_without_retry() {
    for (status, extra) in [
        ("404 Not Found", None),
        ("410 Gone", None),
        ("500 Internal Server Error", None),
        ("503 Service Unavailable", Some("Retry-After: 1")),
    ] {
        let code = http::StatusCode::from_u16(status[..3].parse().unwrap()).unwrap();
        let extra: Vec<&str> = extra.into_iter().collect();
        check_fails(
            head(status, Some("text/event-stream"), &extra),
            ErrorKind::Status(code),
            status,
        )
        .await;
    }
}

/// A server where `/start` redirects with `status` to `/final`, and
/// `/final` answers `final_head` + `data: hi`.
async fn redirecting(status: &'static str, final_head: String) -> Server {
    Server::start(move |mut conn: Conn| {
        let final_head = final_head.clone();
        async move {
            if conn.request.target == "/start" {
                conn.write(head(
                    status,
                    None,
                    &["Location: /final", "Content-Length: 0"],
                ))
                .await;
            } else {
                conn.write(final_head).await;
                conn.write(b"data: hi\n\n").await;
            }
            conn.hold().await;
        }
    })
    .await
}

#[tokio::test]
async fn s12_redirects_are_followed() {
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let server = redirecting(status, sse_head()).await;
        let source = source(&server.url("/start")).build().unwrap();
        let mut stream = source.stream();
        let open = expect_open(&mut stream).await;
        assert_eq!(stream.ready_state(), ReadyState::Open);
        // The final URL after redirects; the source keeps the original.
        assert_eq!(open.url().as_str(), server.url("/final"), "{status}");
        assert_eq!(source.url().as_str(), server.url("/start"));
        expect_message(&mut stream, "hi", "").await;
        expect_quiet(&mut stream, ms(30)).await;
        let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(targets, ["/start", "/final"]);
    }
}

#[tokio::test]
async fn s13_redirect_to_a_bad_final_response() {
    let server = redirecting("302 Found", head("204 No Content", None, &[])).await;
    let mut stream = source(&server.url("/start")).build().unwrap().stream();
    assert_eq!(
        expect_fatal(&mut stream).await.kind(),
        &ErrorKind::NoContent
    );
    assert_eq!(server.request_count(), 2, "no reconnection");

    let server = redirecting("302 Found", head("200 OK", Some("text/html"), &[])).await;
    let mut stream = source(&server.url("/start")).build().unwrap().stream();
    let error = expect_fatal(&mut stream).await;
    assert_eq!(
        error.kind(),
        &ErrorKind::ContentType(Some("text/html".into()))
    );
    assert_eq!(
        error.to_string(),
        "expected text/event-stream, got text/html"
    );
    assert_eq!(server.request_count(), 2, "no reconnection");
}

/// No exact equivalent: CORS is a browser's protection of a page's
/// origin, and a Rust client has no origin to protect, sends no `Origin`
/// header and reads no `Access-Control-*` header. The nearest behaviour is
/// that a cross-origin-looking response without CORS approval is treated
/// like any other: it opens and delivers. (What a browser would do, fail
/// the connection, would be wrong here: the caller chose the URL.)
#[tokio::test]
async fn s14_cross_origin_without_cors_approval() {
    for allow_origin in [
        None,
        Some("Access-Control-Allow-Origin: http://example.org"),
        Some("Access-Control-Allow-Origin: "),
    ] {
        let extra: Vec<&str> = allow_origin.into_iter().collect();
        let server = serve(
            head("200 OK", Some("text/event-stream"), &extra),
            b"data: hi\n\n",
        )
        .await;
        let mut stream = source(&server.url("/")).build().unwrap().stream();
        expect_open(&mut stream).await;
        expect_message(&mut stream, "hi", "").await;
        let request = &server.requests()[0];
        assert_eq!(
            request.header("origin"),
            None,
            "a Rust client has no origin"
        );
    }
}

#[tokio::test]
async fn s15_network_error_before_any_response() {
    // (a) Connection refused: reestablish (an error with CONNECTING), wait,
    // try again; never open. The cap on retries ends it here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stream = source(&format!("http://127.0.0.1:{port}/"))
        .max_retries(2)
        .build()
        .unwrap()
        .stream();
    for attempt in 1..=2 {
        let reconnect = crate::expect_reconnecting(&mut stream).await;
        assert_eq!(stream.ready_state(), ReadyState::Connecting);
        assert_eq!(reconnect.attempt, attempt);
        let cause = reconnect.cause.expect("a cause");
        assert_eq!(cause.kind(), &ErrorKind::Connect);
        assert!(!cause.is_fatal());
        if attempt == 1 {
            assert_eq!(reconnect.delay, ms(5), "the reconnection time");
        } else {
            assert!(reconnect.delay >= ms(100), "backoff: {:?}", reconnect.delay);
        }
    }
    let error = expect_fatal(&mut stream).await;
    assert_eq!(error.kind(), &ErrorKind::TooManyRetries { attempts: 2 });
    let source_error = std::error::Error::source(&error).expect("the last failure");
    assert_eq!(source_error.to_string(), "could not connect");

    // (b) The connection closes before any response; the next attempt
    // opens. No open for the failed attempt.
    let server = Server::start(|mut conn: Conn| async move {
        if conn.request.index == 0 {
            conn.close();
        } else {
            conn.write(sse_head()).await;
            conn.write(b"data: second\n\n").await;
            conn.hold().await;
        }
    })
    .await;
    let mut stream = source(&server.url("/")).build().unwrap().stream();
    let reconnect = crate::expect_reconnecting(&mut stream).await;
    assert_eq!(
        reconnect.cause.expect("a cause").kind(),
        &ErrorKind::Connect
    );
    expect_open(&mut stream).await;
    expect_message(&mut stream, "second", "").await;

    // (c) Retrying is known to be futile for an unsupported scheme: the
    // builder refuses it.
    let error = EventSource::builder("ftp://127.0.0.1/")
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidUrl);
}
