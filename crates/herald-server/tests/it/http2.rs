//! HTTP/2 (here h2c, prior knowledge, on the plain port; over TLS it is
//! the same server): a subscriber that stops reading has its *stream*
//! reset, not the connection, so the other tabs' streams on it go on.

use std::time::Duration;

use bytes::Bytes;
use herald_proto::Decoder;
use http::Request;

use crate::start;

/// Reads a stream's events until one has `until` as data, releasing flow
/// control as it goes (as a browser does); returns their data.
async fn read_until(mut body: h2::RecvStream, until: &str) -> Vec<String> {
    let mut decoder = Decoder::new();
    let mut seen = Vec::new();
    loop {
        let chunk: Bytes = tokio::time::timeout(Duration::from_secs(20), body.data())
            .await
            .expect("events keep coming")
            .expect("the stream stays open")
            .unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        decoder.feed(&chunk).unwrap();
        while let Some(event) = decoder.next_event() {
            let data = event.into_data();
            if data == until {
                return seen;
            }
            seen.push(data);
        }
    }
}

#[tokio::test]
async fn a_lagging_http2_stream_is_reset_and_its_siblings_go_on() {
    let hub = start().await;
    let tcp = hub.connect().await;
    let (client, connection) = h2::client::Builder::new()
        // A browser's connection window: one stalled stream cannot starve
        // the others of it.
        .initial_connection_window_size(16 << 20)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let subscribe = || {
        Request::get(format!("{}?match=/t", hub.url))
            .body(())
            .unwrap()
    };
    let (lagging, _) = client.send_request(subscribe(), true).unwrap();
    let mut client = client.ready().await.unwrap();
    let (reading, _) = client.send_request(subscribe(), true).unwrap();
    let lagging = lagging.await.unwrap();
    let reading = reading.await.unwrap();
    assert_eq!(lagging.status(), 200);
    let reader = tokio::spawn(read_until(reading.into_body(), "end"));

    // 2.5 MiB to a stream whose reader never reads: past its window, h2's
    // send buffer and the hub's 1 MiB queue, so the hub cuts it off.
    let big = "x".repeat(64 * 1024);
    for _ in 0..40 {
        hub.publish_ok(&[("topic", "/t"), ("data", &big)]).await;
    }
    hub.publish_ok(&[("topic", "/t"), ("data", "end")]).await;

    let got = reader.await.unwrap();
    assert_eq!(got.len(), 40, "the reading sibling got every event");
    // The stalled stream ends in a reset (after what its window let
    // through), and the connection lives on: a new stream on it works.
    let mut body = lagging.into_body();
    let reset = loop {
        match tokio::time::timeout(Duration::from_secs(20), body.data())
            .await
            .expect("the lagging stream ends")
        {
            Some(Ok(_)) => continue,
            Some(Err(err)) => break err,
            None => panic!("the lagging stream ended cleanly instead of a reset"),
        }
    };
    assert_eq!(reset.reason(), Some(h2::Reason::CANCEL), "{reset}");
    let mut client = client.ready().await.unwrap();
    let (again, _) = client.send_request(subscribe(), true).unwrap();
    let again = again.await.unwrap();
    assert_eq!(again.status(), 200, "the connection is still open");
    let after = tokio::spawn(read_until(again.into_body(), "last"));
    hub.publish_ok(&[("topic", "/t"), ("data", "one more")])
        .await;
    hub.publish_ok(&[("topic", "/t"), ("data", "last")]).await;
    assert_eq!(after.await.unwrap(), ["one more"]);
}

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame (END_STREAM | END_HEADERS) for `GET path`, in HPACK
/// without any table: the static entries for the method and scheme, the
/// path and authority as literals.
fn get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.push(0x04); // :path, literal without indexing
    block.push(u8::try_from(path.len()).unwrap());
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b'h']); // :authority h
    frame(0x1, 0x5, stream, &block)
}

/// A client that ignores the hub's stream limit (it opens 8 streams where
/// 3 are allowed) gets the extra streams refused (`RST_STREAM`,
/// `REFUSED_STREAM`) or the connection closed, and never takes a stream
/// from anyone else: a well-behaved client on another connection is
/// served throughout.
#[tokio::test]
async fn streams_past_the_limit_are_refused_and_others_are_unaffected() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let hub = crate::start_with(|config| config.http2_max_streams = 3).await;
    let mut raw = hub.connect().await;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // our SETTINGS: defaults
    let path = "/.well-known/mercure?match=/t";
    for n in 0..8 {
        out.extend(get(1 + 2 * n, path));
    }
    raw.write_all(&out).await.unwrap();

    // Read frames for a while: count HEADERS answers and refusals.
    let mut input = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, raw.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        input.extend_from_slice(&buf[..n]);
    }
    let (mut answered, mut refused, mut goaway) = (0u32, 0u32, false);
    let mut rest = &input[..];
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, payload) = (rest[3], &rest[9..(9 + len).min(rest.len())]);
        match kind {
            0x1 => answered += 1,
            0x3 if payload == 7u32.to_be_bytes() => refused += 1,
            0x7 => goaway = true,
            _ => {}
        }
        rest = &rest[(9 + len).min(rest.len())..];
    }
    assert!(
        (1..=3).contains(&answered),
        "the limit is served, no more: {answered} (refused {refused}, goaway {goaway})"
    );
    assert!(
        refused == 8 - answered || goaway,
        "the rest refused ({refused}) or the connection closed (answered {answered})"
    );

    // Someone else is served as usual.
    let other = hub.subscribe_request("match=/t").send().await.unwrap();
    assert_eq!(other.status(), 200);
    hub.publish_ok(&[("topic", "/t"), ("data", "still served")])
        .await;
    let events = crate::read_events(other, 1).await;
    assert_eq!(events[0].data(), "still served");
}
