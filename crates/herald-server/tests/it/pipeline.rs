//! Pipelined publishes on one HTTP/1.1 connection, from a raw socket:
//! answered in the order sent, errors in their place, the connection
//! handed to hyper at the first request that is not a plain publish, and
//! closed when the client asks, stops sending, or dawdles.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{read_events, start, start_with, TestHub};

/// A publish request's bytes: a form with `fields`, with `token` if any.
fn publish(hub: &TestHub, token: Option<&str>, fields: &[(&str, &str)], extra: &str) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let _ = hub;
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// One answer: status, head (lowercase), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer with a `Content-Length` off `stream`, keeping what
/// follows in `pending`. `None` when the connection closed first.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec())
                .unwrap()
                .to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("a content-length")
                .parse()
                .unwrap();
            if pending.len() >= end + 4 + length {
                let body = String::from_utf8(pending[end + 4..end + 4 + length].to_vec()).unwrap();
                pending.drain(..end + 4 + length);
                let status = head[9..12].parse().unwrap();
                return Some(Answer { status, head, body });
            }
        }
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        if n == 0 {
            assert!(
                pending.is_empty(),
                "cut off: {}",
                String::from_utf8_lossy(pending)
            );
            return None;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn pipelined_publishes_are_answered_in_order() {
    let hub = start().await;
    let live = hub.subscribe_request("match=/p").send().await.unwrap();
    let token = hub.admin_token();
    let mut requests = String::new();
    for i in 0..40 {
        let id = format!("urn:e:{i}");
        let data = format!("event {i}");
        requests += &publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", &id), ("data", &data)],
            "",
        );
    }
    let mut stream = hub.connect().await;
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..40 {
        let answer = read_answer(&mut stream, &mut pending).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, format!("urn:e:{i}"));
        assert!(answer.head.contains("\r\ndate: "), "{}", answer.head);
        assert!(
            !answer.head.contains("connection: close"),
            "{}",
            answer.head
        );
    }
    let events = read_events(live, 40).await;
    let ids: Vec<_> = events
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    let expected: Vec<_> = (0..40).map(|i| format!("urn:e:{i}")).collect();
    assert_eq!(ids, expected);
    // The connection stays open for more.
    stream
        .write_all(
            publish(
                &hub,
                Some(&token),
                &[("topic", "/p"), ("data", "later")],
                "",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        read_answer(&mut stream, &mut pending).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn errors_keep_their_place_and_the_connection() {
    let hub = start().await;
    let token = hub.admin_token();
    let requests = [
        publish(&hub, None, &[("topic", "/p"), ("data", "no token")], ""),
        publish(&hub, Some(&token), &[("data", "no topic")], ""),
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", "urn:ok"), ("data", "fine")],
            "",
        ),
    ]
    .concat();
    let mut stream = hub.connect().await;
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let statuses = [
        read_answer(&mut stream, &mut pending).await.unwrap(),
        read_answer(&mut stream, &mut pending).await.unwrap(),
        read_answer(&mut stream, &mut pending).await.unwrap(),
    ];
    assert_eq!(statuses.each_ref().map(|a| a.status), [401, 400, 200]);
    assert!(
        statuses[0].head.contains("www-authenticate: bearer"),
        "{}",
        statuses[0].head
    );
    assert_eq!(statuses[2].body, "urn:ok");
}

/// The first request that is not a plain publish, and everything after
/// it, is hyper's; the answers still come in order.
#[tokio::test]
async fn other_requests_go_to_hyper_after_the_publishes_before_them() {
    let hub = start().await;
    let token = hub.admin_token();
    let big = "x".repeat(20 * 1024);
    let requests = [
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", "urn:1"), ("data", "one")],
            "",
        ),
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", "urn:2"), ("data", "two")],
            "",
        ),
        // Too big for the pipeline: hyper streams it.
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", "urn:3"), ("data", &big)],
            "",
        ),
        "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("id", "urn:4"), ("data", "four")],
            "Connection: close\r\n",
        ),
    ]
    .concat();
    let mut stream = hub.connect().await;
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let mut bodies = Vec::new();
    while let Some(answer) = read_answer(&mut stream, &mut pending).await {
        assert_eq!(answer.status, 200, "{}", answer.body);
        bodies.push(answer.body);
    }
    assert_eq!(bodies.len(), 5, "{bodies:?}");
    assert_eq!(
        [&*bodies[0], &*bodies[1], &*bodies[2]],
        ["urn:1", "urn:2", "urn:3"]
    );
    assert_eq!(bodies[4], "urn:4");
    let events = hub
        .subscribe_request("match=/p&lastEventID=earliest")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = read_events(events, 4)
        .await
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    assert_eq!(ids, ["urn:1", "urn:2", "urn:3", "urn:4"]);
    // Handed from the pipeline to hyper, the connection counts once.
    drop(stream);
    let fresh = start().await;
    let mut stream = fresh.connect().await;
    let requests = [
        publish(
            &fresh,
            Some(&token),
            &[("topic", "/p"), ("data", "one")],
            "",
        ),
        "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".to_owned(),
    ]
    .concat();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    let metrics = crate::metrics::scrape(&fresh.http, &fresh.base).await;
    let http1 = "herald_connections_total{protocol=\"http1\",tls=\"false\"}";
    // This connection and the scrape's.
    assert_eq!(crate::metrics::sample(&metrics, http1), 2.0, "{metrics}");
}

#[tokio::test]
async fn connection_close_is_the_last_answer() {
    let hub = start().await;
    let token = hub.admin_token();
    let requests = [
        publish(&hub, Some(&token), &[("topic", "/p"), ("data", "one")], ""),
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("data", "two")],
            "Connection: close\r\n",
        ),
        // Never read: the client said the last one was the last.
        publish(
            &hub,
            Some(&token),
            &[("topic", "/p"), ("data", "three")],
            "",
        ),
    ]
    .concat();
    let mut stream = hub.connect().await;
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let first = read_answer(&mut stream, &mut pending).await.unwrap();
    assert!(!first.head.contains("connection: close"), "{}", first.head);
    let last = read_answer(&mut stream, &mut pending).await.unwrap();
    assert!(last.head.contains("connection: close"), "{}", last.head);
    assert!(read_answer(&mut stream, &mut pending).await.is_none());
    let metrics = hub.hub.stats();
    assert_eq!(metrics.published, 2, "the third publish was never read");
}

/// A client that sends its requests and closes its side still gets every
/// answer.
#[tokio::test]
async fn a_half_closed_client_gets_its_answers() {
    let hub = start().await;
    let token = hub.admin_token();
    let requests: String = (0..5)
        .map(|i| {
            publish(
                &hub,
                Some(&token),
                &[("topic", "/p"), ("data", &i.to_string())],
                "",
            )
        })
        .collect();
    let mut stream = hub.connect().await;
    stream.write_all(requests.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut pending = Vec::new();
    let mut answered = 0;
    while let Some(answer) = read_answer(&mut stream, &mut pending).await {
        assert_eq!(answer.status, 200);
        answered += 1;
    }
    assert_eq!(answered, 5);
}

/// A publisher's connection left quiet, or a request left unfinished, is
/// closed after the head timeout.
#[tokio::test]
async fn a_dawdling_publisher_is_closed() {
    let hub = start_with(|config| config.head_timeout_secs = 1).await;
    let token = hub.admin_token();
    let one = publish(&hub, Some(&token), &[("topic", "/p"), ("data", "one")], "");
    // Quiet after an answer.
    let mut stream = hub.connect().await;
    stream.write_all(one.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_answer(&mut stream, &mut pending).await.unwrap().status,
        200
    );
    let started = std::time::Instant::now();
    assert!(read_answer(&mut stream, &mut pending).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A body cut off by the client's close is not published in part.
#[tokio::test]
async fn a_body_cut_off_publishes_nothing() {
    let hub = start().await;
    let token = hub.admin_token();
    let whole = publish(
        &hub,
        Some(&token),
        &[("topic", "/p"), ("data", "all of it")],
        "",
    );
    let mut stream = hub.connect().await;
    stream
        .write_all(&whole.as_bytes()[..whole.len() - 4])
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut pending = Vec::new();
    let answer = read_answer(&mut stream, &mut pending).await.unwrap();
    assert_ne!(answer.status, 200, "{}", answer.body);
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert_eq!(hub.hub.stats().published, 0);
}

/// A publisher that never reads its answers is not read from either once
/// they pile up, and its connection is closed at the head deadline: the
/// answers it does not read cannot grow without bound.
#[tokio::test]
async fn a_publisher_that_does_not_read_its_answers_is_cut_off() {
    const SENT: usize = 60_000;
    let hub = start_with(|config| config.head_timeout_secs = 1).await;
    let token = hub.admin_token();
    let one = publish(&hub, Some(&token), &[("topic", "/p"), ("data", "x")], "");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let authority = hub.base.trim_start_matches("http://");
    let mut stream = socket.connect(authority.parse().unwrap()).await.unwrap();
    let mut sent = 0;
    while sent < SENT {
        match tokio::time::timeout(Duration::from_secs(3), stream.write_all(one.as_bytes())).await {
            Ok(Ok(())) => sent += 1,
            // Stalled (the hub stopped reading), or closed by the hub.
            _ => break,
        }
    }
    assert!(
        sent < SENT,
        "the hub read every request of a client that reads nothing"
    );
    // The hub closes the connection: a write fails before long.
    let closed = async {
        loop {
            if stream.write_all(one.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .is_ok(),
        "still open"
    );
    assert!(hub.hub.stats().published < SENT as u64);
}
