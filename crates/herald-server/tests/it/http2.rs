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
