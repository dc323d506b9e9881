//! Under load, over real sockets: resume while publishes race reconnects,
//! and a subscriber that stops reading.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use herald_proto::Decoder;
use tokio::io::AsyncWriteExt;

use crate::start_with;

/// 10,000 events published while subscribers connect and reconnect (with
/// `Last-Event-ID`) at random points: each subscriber's sequence is exactly
/// the published one from its first event on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_over_http_under_a_publish_race_has_no_gap_and_no_duplicate() {
    const EVENTS: usize = 10_000;
    let hub = Arc::new(start_with(|_| {}).await);
    let publisher = {
        let hub = Arc::clone(&hub);
        tokio::spawn(async move {
            let token = hub.admin_token();
            for i in 0..EVENTS {
                let response = hub
                    .publish_as(
                        Some(&token),
                        &[("topic", "/race"), ("data", &i.to_string())],
                    )
                    .await;
                assert_eq!(response.status(), 200);
            }
        })
    };
    let mut subscribers = Vec::new();
    for seed in 0..8u64 {
        let hub = Arc::clone(&hub);
        subscribers.push(tokio::spawn(async move {
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            let mut seen: Vec<usize> = Vec::new();
            let mut last_id: Option<String> = None;
            'reconnect: loop {
                let mut request = hub.subscribe_request("match=/race");
                if let Some(id) = &last_id {
                    request = request.header("last-event-id", id);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                let mut body = response.bytes_stream();
                let mut decoder = Decoder::new();
                let mut budget = 1 + next(1500);
                while let Some(chunk) = body.next().await {
                    decoder.feed(&chunk.unwrap()).unwrap();
                    while let Some(event) = decoder.next_event() {
                        let n: usize = event.data().parse().unwrap();
                        seen.push(n);
                        last_id = Some(event.last_event_id().to_owned());
                        if n == EVENTS - 1 {
                            break 'reconnect;
                        }
                        budget -= 1;
                        if budget == 0 {
                            // Drop the connection mid-stream, like a flaky network.
                            continue 'reconnect;
                        }
                    }
                }
            }
            let first = seen[0];
            if let Some(at) = seen.iter().enumerate().position(|(i, n)| *n != first + i) {
                panic!("subscriber {seed}: {} then {}", seen[at - 1], seen[at]);
            }
            seen.len()
        }));
    }
    publisher.await.unwrap();
    for subscriber in subscribers {
        assert!(subscriber.await.unwrap() > 0);
    }
}

/// One subscriber stops reading (its socket's receive window closes) while
/// 100 others read 10,000 events: the others get every event, the stalled
/// one is disconnected once its queue passes the bound, and the hub does
/// not buffer for it without limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_disconnected_and_the_others_get_everything() {
    const EVENTS: usize = 10_000;
    let hub = Arc::new(start_with(|_| {}).await);
    let port: u16 = hub.base.rsplit(':').next().unwrap().parse().unwrap();

    // The stalled client: a tiny receive buffer, a request, then silence.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stalled = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    stalled
        .write_all(b"GET /.well-known/mercure?match=/load HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();

    let mut readers = Vec::new();
    for _ in 0..100 {
        let response = hub.subscribe_request("match=/load").send().await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut decoder = Decoder::new();
            let mut expected = 0usize;
            while expected < EVENTS {
                let chunk = body.next().await.expect("stream open").unwrap();
                decoder.feed(&chunk).unwrap();
                while let Some(event) = decoder.next_event() {
                    let n: usize = event.data()[..5].parse().unwrap();
                    assert_eq!(n, expected, "a reader saw a gap or a repeat");
                    expected += 1;
                }
            }
        }));
    }
    while hub.hub.subscriber_count() < 101 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let padding = "x".repeat(400);
    let token = hub.admin_token();
    for i in 0..EVENTS {
        let data = format!("{i:05} {padding}");
        let response = hub
            .publish_as(Some(&token), &[("topic", "/load"), ("data", &data)])
            .await;
        assert_eq!(response.status(), 200);
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("every reader finishes")
            .unwrap();
    }
    // 4 MB were published for it: far past the 1 MiB queue bound plus what
    // the kernel buffers, so the hub must have let it go.
    assert_eq!(
        hub.hub.stats().lagged,
        1,
        "the stalled subscriber was cut off"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.hub.subscriber_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        hub.hub.subscriber_count(),
        0,
        "every subscriber's state was freed"
    );
    // The hub closed the stalled connection: reading it drains what the
    // kernel had buffered (up to the send buffer's megabytes), then ends.
    // Through the 1 KiB window that is thousands of round trips of this
    // test's task, slow on a loaded machine: open the window first (up to
    // 64 KiB without window scaling), which leaves what is tested alone.
    socket2::SockRef::from(&stalled)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut sink),
    )
    .await
    .expect("the connection was closed, not left hanging");
    assert!(read.is_ok() || sink.len() < 4_000_000, "{read:?}");
}
