//! Integration tests of `herald-client` against a scripted server.
//!
//! `classification`, `reconnection` and `api` hold one test per scenario of
//! `shared/conformance/client.md` (sections A, B and C), named
//! `sNN_<what it checks>`; `extras` covers what goes beyond a browser
//! (headers, methods, backoff, timeouts, limits, cancel safety) and the
//! chunk cuts the issue asks for; `tls` checks `https` end to end.
//!
//! Timing: tests use short reconnection times and assert order, headers
//! and reported delays rather than measured durations; the few lower
//! bounds on elapsed time are generous. Nothing waits a fixed time to see
//! that something happened; "nothing else happens" is checked with short
//! quiet windows or by the stream having ended.

mod api;
mod classification;
mod extras;
mod reconnection;
mod server;
mod tls;

use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{
    Builder, Error, EventSource, EventStream, MessageEvent, Open, Reconnect, SseItem,
};

use server::PATIENCE;

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A builder with test-friendly defaults: a 5 ms reconnection time.
pub fn source(url: &str) -> Builder {
    EventSource::builder(url).retry(ms(5))
}

/// The next item, whatever it is; panics if the stream ends or stalls.
pub async fn next_raw(stream: &mut EventStream) -> Result<SseItem, Error> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream stalled")
        .expect("the stream ended")
}

/// The next item that is not a comment or a `retry` change.
pub async fn next(stream: &mut EventStream) -> Result<SseItem, Error> {
    loop {
        match next_raw(stream).await {
            Ok(SseItem::Comment(_) | SseItem::Retry(_)) => continue,
            other => return other,
        }
    }
}

/// The next significant item, which must be `Open`.
pub async fn expect_open(stream: &mut EventStream) -> Open {
    match next(stream).await {
        Ok(SseItem::Open(open)) => open,
        other => panic!("expected Open, got {other:?}"),
    }
}

/// The next significant item, which must be an event.
pub async fn expect_event(stream: &mut EventStream) -> MessageEvent {
    match next(stream).await {
        Ok(SseItem::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next event, checked against `(data, last_event_id)` with the
/// default type.
pub async fn expect_message(stream: &mut EventStream, data: &str, last_event_id: &str) {
    let event = expect_event(stream).await;
    assert_eq!(
        (event.event_type(), event.data(), event.last_event_id()),
        ("message", data, last_event_id)
    );
}

/// The next significant item, which must be `Reconnecting`.
pub async fn expect_reconnecting(stream: &mut EventStream) -> Reconnect {
    match next(stream).await {
        Ok(SseItem::Reconnecting(reconnect)) => reconnect,
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

/// The final error, after which the stream must end.
pub async fn expect_fatal(stream: &mut EventStream) -> Error {
    let error = match next(stream).await {
        Err(error) => error,
        Ok(item) => panic!("expected a fatal error, got {item:?}"),
    };
    expect_end(stream).await;
    error
}

/// The end of the stream, closed.
pub async fn expect_end(stream: &mut EventStream) {
    let item = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream stalled");
    assert!(item.is_none(), "expected the end, got {item:?}");
    assert_eq!(stream.ready_state(), herald_client::ReadyState::Closed);
}

/// Checks that nothing is yielded for a while.
pub async fn expect_quiet(stream: &mut EventStream, window: Duration) {
    if let Ok(item) = tokio::time::timeout(window, stream.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}
