//! The lean subscribe path, seen from a raw socket: heads cut anywhere,
//! error answers, and requests it hands over to hyper.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{read_until, start};

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_still_subscribes() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    for byte in b"GET /.well-known/mercure?match=/slow HTTP/1.1\r\nHost: h\r\n\r\n" {
        stream.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let head = read_until(&mut stream, "retry:").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    // The last chunk ends the body; `Connection: close` beside chunks
    // makes Node's fetch take a cut for a clean end.
    assert!(!head.contains("connection: close"), "{head}");
    hub.publish_ok(&[("topic", "/slow"), ("data", "arrived")])
        .await;
    assert!(read_until(&mut stream, "data: arrived")
        .await
        .contains("data: arrived"));
}

#[tokio::test]
async fn an_error_is_a_complete_response_then_close() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    stream
        .write_all(b"GET /.well-known/mercure?match_bogus=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    stream.read_to_string(&mut all).await.unwrap();
    assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{all}"
    );
}

#[tokio::test]
async fn http_1_0_clients_are_served_too() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    stream
        .write_all(b"GET /.well-known/mercure?match=/old HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    assert!(read_until(&mut stream, "retry:").await.contains(" 200 OK"));
}

#[tokio::test]
async fn other_requests_and_pipelined_ones_go_to_hyper() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    // Two requests in one write: not an EventSource, so hyper serves both.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    stream.read_to_string(&mut all).await.unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    // A malformed head gets hyper's 400.
    let mut stream = hub.connect().await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    stream.read_to_string(&mut all).await.unwrap();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
}

/// A browser that loaded a page from the hub reuses that connection for
/// its EventSource: the subscription then never takes the lean path, and
/// hyper serves it the same, live events and all.
#[tokio::test]
async fn a_subscription_on_a_reused_connection_is_served_by_hyper() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let page = read_until(&mut stream, "</html>").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    stream
        .write_all(
            b"GET /.well-known/mercure?match=/page HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_until(&mut stream, "retry:").await;
    assert!(head.contains("HTTP/1.1 200 OK"), "{head}");
    // hyper dates its answers; the lean path does not.
    assert!(head.contains("date: "), "hyper, not the lean path: {head}");
    hub.publish_ok(&[("topic", "/page"), ("data", "on the same connection")])
        .await;
    let event = read_until(&mut stream, "on the same connection").await;
    assert!(event.contains("data: on the same connection"), "{event}");
}

/// The exact bytes of an HTTP/1.1 stream on the lean path: chunked, the
/// `retry:` hint a line of its own (no blank line: some client libraries
/// hand out an empty event for each), and the last, empty chunk when the
/// hub ends the stream, so a client can tell an end from a cut.
#[tokio::test]
async fn an_http_1_1_stream_is_chunked_and_ends_with_the_last_chunk() {
    let hub = start().await;
    let now = crate::unix_time();
    let token = crate::token(
        &hub.url,
        serde_json::json!({ "exp": now + 2, "authorization_details": crate::details(&[], &["*"]) }),
    );
    let mut stream = hub.connect().await;
    stream
        .write_all(
            format!(
                "GET /.well-known/mercure?match=/chunks HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut all = read_until(&mut stream, "retry: 3000\n\r\n").await;
    hub.publish_ok(&[("topic", "/chunks"), ("id", "c1"), ("data", "one")])
        .await;
    // The token expires: the hub ends the stream, the socket closes.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the hub ends the stream")
        .unwrap();
    all.push_str(std::str::from_utf8(&rest).unwrap());
    let (head, mut body) = all.split_once("\r\n\r\n").unwrap();
    assert!(
        head.lines()
            .any(|line| line == "transfer-encoding: chunked"),
        "{head}"
    );
    assert!(!head.contains("content-length"), "{head}");
    let mut chunks = Vec::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a size line");
        let size = usize::from_str_radix(size, 16).expect("hex");
        let (chunk, rest) = rest.split_at(size);
        assert!(rest.starts_with("\r\n"), "{all:?}");
        body = &rest[2..];
        if size == 0 {
            break;
        }
        chunks.push(chunk.to_owned());
    }
    assert_eq!(body, "", "nothing after the last chunk");
    assert_eq!(chunks, ["retry: 3000\n", "id: c1\ndata: one\n\n"]);
}

#[tokio::test]
async fn an_http_1_0_stream_is_the_bare_frames_until_the_close() {
    let hub = start().await;
    let mut stream = hub.connect().await;
    stream
        .write_all(b"GET /.well-known/mercure?match=/bare HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut stream, "retry:").await;
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\nretry: 3000\n"), "{head:?}");
}
