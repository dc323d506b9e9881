//! What an [`EventStream`](crate::EventStream) yields: messages, plus the
//! connection's state changes, in the order they happen.
//!
//! A browser's `EventSource` reports its state through `open` and `error`
//! events and the `readyState` attribute. Here the same moments are items
//! of the one stream, so a consumer sees them in order with the messages
//! without a second channel:
//!
//! | browser | here |
//! | --- | --- |
//! | `open` | [`SseItem::Open`] |
//! | `message` (any type, including a server-sent `error`) | [`SseItem::Event`] |
//! | `error` with `readyState` CONNECTING | [`SseItem::Reconnecting`] |
//! | `error` with `readyState` CLOSED | the stream's final `Err` |
//! | `close()` | [`EventStream::close`](crate::EventStream::close), or dropping the stream |
//!
//! Comments and `retry:` changes, which a browser hides, are items too:
//! tools such as `herald tail` show heartbeats, and skipping them costs a
//! consumer one match arm.

use std::time::Duration;

use herald_proto::MessageEvent;
use http::HeaderMap;
use url::Url;

use crate::Error;

/// One item of an [`EventStream`](crate::EventStream).
#[derive(Debug)]
#[non_exhaustive]
pub enum SseItem {
    /// A connection was announced: the server answered `200` with
    /// `text/event-stream` (after redirects). Fired on every successful
    /// (re)connection, on the response headers, before any body byte.
    Open(Open),
    /// A message, exactly as the WHATWG algorithm dispatches it. A server
    /// may name its events `error` or `open`; they are messages like any
    /// other and say nothing about the connection.
    Event(MessageEvent),
    /// A comment line (`: text`), such as a heartbeat, without the colon
    /// and one leading space.
    Comment(String),
    /// The server set the reconnection time with a valid `retry:` field.
    Retry(Duration),
    /// The connection ended or could not be made, and the event source
    /// will try again after [`Reconnect::delay`]. The stream's state is
    /// [`ReadyState::Connecting`](crate::ReadyState::Connecting) from here on.
    Reconnecting(Reconnect),
}

/// A successful connection: where the stream comes from and with which
/// response headers.
#[derive(Debug, Clone)]
pub struct Open {
    /// Boxed: a URL and a header map are large, and an `SseItem` should stay
    /// the size of a message event.
    inner: Box<OpenInner>,
}

#[derive(Debug, Clone)]
struct OpenInner {
    url: Url,
    headers: HeaderMap,
}

impl Open {
    pub(crate) fn new(url: Url, headers: HeaderMap) -> Self {
        Open {
            inner: Box::new(OpenInner { url, headers }),
        }
    }

    /// The URL of the stream after redirects (the browser's event `origin`
    /// is this URL's origin; [`EventSource::url`](crate::EventSource::url)
    /// stays the URL that was configured).
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The response headers, such as Mercure's `Mercure-Last-Event-ID`.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }
}

/// A coming reconnection: the browser's `error` event with `readyState`
/// CONNECTING, with the details a browser does not give.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reconnect {
    /// Which consecutive attempt this is: 1 after a connection that
    /// delivered something, growing while attempts keep failing.
    pub attempt: u32,
    /// How long the event source waits before the new request: the
    /// reconnection time, plus backoff from the second attempt on.
    pub delay: Duration,
    /// Why: `None` when the server ended the response body cleanly, the
    /// transient failure otherwise (refused connection, broken body,
    /// timeout).
    pub cause: Option<Error>,
}
