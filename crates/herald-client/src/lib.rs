//! A reconnecting Server-Sent Events client: the browser's `EventSource`
//! for Rust, as a [`Stream`](futures_util::Stream) of events.
//!
//! It connects to any `text/event-stream` endpoint (a Herald or Mercure
//! hub, or any other server), decodes the stream with `herald-proto`'s
//! WHATWG-exact [`Decoder`](herald_proto::Decoder), and reconnects the way
//! the HTML standard's processing model says, sending `Last-Event-ID` so
//! the server can resume where the stream broke off. Beyond what a browser
//! allows, it sends any headers (`Authorization`), any method and body
//! (POST or QUERY subscriptions), backs off exponentially while
//! reconnections fail, can give up after a number of attempts, and reports
//! every connection state change as an item of the stream.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use herald_client::{EventSource, SseItem};
//!
//! # async fn run() -> Result<(), herald_client::Error> {
//! let source = EventSource::builder("http://127.0.0.1:8080/.well-known/mercure?topic=news")
//!     .header("Authorization", "Bearer <token>")
//!     .max_retries(10)
//!     .build()?;
//! let mut stream = source.stream();
//! while let Some(item) = stream.next().await {
//!     match item? {
//!         SseItem::Open(open) => println!("connected to {}", open.url()),
//!         SseItem::Event(event) => {
//!             println!("{} #{}: {}", event.event_type(), event.last_event_id(), event.data())
//!         }
//!         SseItem::Reconnecting(reconnect) => {
//!             println!("reconnecting in {:?} (attempt {})", reconnect.delay, reconnect.attempt)
//!         }
//!         _ => {} // comments, retry changes
//!     }
//! }
//! // The stream ended: an `Err` came first (a 404, a 204 "stop", the wrong
//! // content type, too many retries), or the stream was closed.
//! # Ok(())
//! # }
//! ```
//!
//! # Opening and failing
//!
//! Each request carries `Accept: text/event-stream`, `Cache-Control:
//! no-cache` and `Pragma: no-cache`, as a browser's does, plus the
//! configured headers. Redirects are followed (up to 20 by default, each
//! classified on the final response). A response opens the stream only if
//! its status is `200` and its `Content-Type` essence is
//! `text/event-stream` (any parameters, any case; the body is UTF-8
//! whatever the charset says). Any other response fails the stream for
//! good, with no reconnection: a `204 No Content` is the server's way of
//! saying "stop", and a `503` is not retried either, as in a browser. The
//! stream then yields one `Err` ([`ErrorKind::NoContent`],
//! [`ErrorKind::Status`], [`ErrorKind::ContentType`]) and ends.
//!
//! # Reconnection
//!
//! When an open stream's body ends, cleanly or with a network error, or
//! when a request fails before any response (refused connection, DNS or
//! TLS failure, connect timeout), the stream yields
//! [`SseItem::Reconnecting`], waits, and connects again:
//!
//! - The wait is the *reconnection time*: the server's last `retry:` (which
//!   outlives the connection that sent it), or [`Builder::retry`] (3 s by
//!   default). While attempts keep failing without delivering anything,
//!   the wait doubles per attempt, with jitter, up to
//!   [`Builder::max_retry_delay`]; it never goes below the reconnection
//!   time.
//! - The request carries `Last-Event-ID` with the stream's last event id
//!   (UTF-8 bytes), only when that id is not empty. The id is the one the
//!   standard keeps: set when an event block is dispatched, including a
//!   block with an `id:` and no data; never from an event the connection
//!   cut off; cleared by an empty `id:`. Events of the new connection
//!   report that id until the server sends another.
//! - [`Builder::max_retries`] caps consecutive attempts that make no
//!   progress (default: retry forever); [`Builder::reconnect`]`(false)`
//!   turns reconnection off.
//!
//! # Cancel safety
//!
//! [`EventStream`] keeps its whole state in itself, so `stream.next()` is
//! cancel safe and fits a `tokio::select!` loop: a cancelled `next()` loses
//! no event. To stop, call [`EventStream::close`] (later polls yield
//! `None`, already decoded events are discarded, no request is made after
//! it) or drop the stream; either closes the connection at once.
//!
//! # TLS
//!
//! `https` uses rustls (no OpenSSL). The default feature `webpki-roots`
//! trusts Mozilla's root certificates, compiled in, so a client works in a
//! minimal container with no certificate store; the feature
//! `native-roots` adds the operating system's store, for private CAs.
//! [`Builder::root_certificate_pem`] trusts one more certificate, such as
//! a development hub's self-signed one.
//!
//! # Runtime
//!
//! Streams must be polled within a Tokio runtime (timers and sockets are
//! Tokio's).

mod backoff;
mod builder;
mod content_type;
mod error;
mod item;
mod source;
mod stream;

pub use builder::Builder;
pub use error::{Error, ErrorKind};
pub use item::{Open, Reconnect, SseItem};
pub use source::EventSource;
pub use stream::{EventStream, ReadyState};

/// The decoder's types that appear in this crate's API.
pub use herald_proto::{Limits, MessageEvent};
/// The `http` crate, whose `Method`, `HeaderMap` and `StatusCode` this
/// crate's API uses.
pub use http;
/// The URL type of [`EventSource::url`] and [`Open::url`].
pub use url::Url;
