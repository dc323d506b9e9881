//! The event stream: the EventSource processing model as a [`Stream`].
//!
//! One [`EventStream`] is one subscription. It is a state machine driven
//! by `poll_next`, with every piece of state in the struct: connecting
//! (waiting for response headers), open (feeding body chunks to the
//! `herald-proto` [`Decoder`]), waiting to reconnect, and closed. Writing
//! it by hand instead of as an `async` block turned into a stream (e.g.
//! `futures::stream::unfold`) is what makes [`EventStream::close`] and
//! [`EventStream::ready_state`] possible, and what makes it cancel safe:
//! dropping a `next()` future mid-poll loses nothing, because nothing lives
//! in that future.
//!
//! Body chunks go straight from the HTTP body into the decoder; the only
//! copies are the decoder's own (a line cut across chunks, an event's
//! data).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FusedStream, Stream};
use herald_proto::{Decoder, Frame};
use http::header::{self, HeaderValue};
use http::StatusCode;
use http_body::Body as _;
use tokio::time::{Instant, Sleep};

use crate::builder::LAST_EVENT_ID;
use crate::content_type::is_event_stream;
use crate::item::{Open, Reconnect};
use crate::source::Shared;
use crate::{Error, ErrorKind, SseItem};

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + Sync>>;

/// The state of an [`EventStream`], as the browser's `readyState`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Connecting or waiting to reconnect (CONNECTING, 0).
    Connecting,
    /// A connection is open and its events are flowing (OPEN, 1).
    Open,
    /// Closed for good: by [`EventStream::close`], or after a fatal error
    /// or a clean end without reconnection (CLOSED, 2).
    Closed,
}

/// A live subscription: a [`Stream`] of [`SseItem`]s that reconnects by
/// itself, made by [`EventSource::stream`](crate::EventSource::stream).
///
/// The stream ends (`None`) after [`EventStream::close`], or after its one
/// `Err` item. That error is fatal ([`Error::is_fatal`]): transient
/// failures are not `Err` items but the cause of a
/// [`SseItem::Reconnecting`]. The one exception is a stream built with
/// [`Builder::reconnect`](crate::Builder::reconnect)`(false)`: with nothing
/// to retry, a network failure ends it as its `Err` too.
///
/// # Cancel safety
///
/// `poll_next` keeps all its state in the stream, so `stream.next()` is
/// cancel safe: in a `tokio::select!` loop, a branch that loses the race
/// drops nothing but the future, and the next call resumes exactly where
/// the last one stopped, with no event lost or repeated. Dropping the
/// stream itself closes the connection.
pub struct EventStream {
    shared: Arc<Shared>,
    decoder: Decoder,
    phase: Phase,
    /// Consecutive reconnection attempts since the last progress.
    attempt: u32,
    /// Whether the current connection has produced a frame.
    progress: bool,
}

enum Phase {
    /// About to send a request.
    Idle,
    /// Waiting for the response headers.
    Connecting {
        response: ResponseFuture,
        deadline: Option<Pin<Box<Sleep>>>,
    },
    /// Reading the body.
    Open {
        body: reqwest::Body,
        /// The idle-read deadline, pushed back on every chunk.
        deadline: Option<Pin<Box<Sleep>>>,
    },
    /// Waiting the reconnection delay.
    Waiting(Pin<Box<Sleep>>),
    /// Fatal error: yield it once the frames decoded before it are out.
    Failed(Error),
    /// Nothing more will come.
    Closed,
}

impl EventStream {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let config = &shared.config;
        let decoder = Decoder::resuming(config.limits, &config.last_event_id);
        EventStream {
            shared,
            decoder,
            phase: Phase::Idle,
            attempt: 0,
            progress: false,
        }
    }

    /// The connection state, as the browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        match self.phase {
            Phase::Idle | Phase::Connecting { .. } | Phase::Waiting(_) => ReadyState::Connecting,
            Phase::Open { .. } => ReadyState::Open,
            Phase::Failed(_) | Phase::Closed => ReadyState::Closed,
        }
    }

    /// The last event id: what the next reconnection sends as
    /// `Last-Event-ID` (nothing is sent while it is empty). Persist it to
    /// resume a later subscription with
    /// [`Builder::last_event_id`](crate::Builder::last_event_id).
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The reconnection time in force: the server's last `retry:`, or the
    /// configured default.
    pub fn reconnection_time(&self) -> Duration {
        self.decoder
            .reconnection_time()
            .unwrap_or(self.shared.config.retry)
    }

    /// Closes the stream, as the browser's `close()`: the request or
    /// connection in progress is dropped, a pending reconnection is
    /// cancelled, and events already decoded but not yet taken are
    /// discarded. The stream then yields `None`; no error is reported.
    pub fn close(&mut self) {
        self.phase = Phase::Closed;
    }

    fn send(&self) -> Phase {
        let config = &self.shared.config;
        let mut headers = config.headers.clone();
        let id = self.decoder.last_event_id();
        if !id.is_empty() {
            // The id's UTF-8 bytes verbatim. An id holding control
            // characters is not a valid header value; the standard does
            // not say what to do then, and sending nothing (a full replay
            // or none, the server decides) beats failing the stream.
            match HeaderValue::from_bytes(id.as_bytes()) {
                Ok(value) => {
                    headers.insert(LAST_EVENT_ID, value);
                }
                Err(_) => tracing::warn!(
                    id,
                    "last event id is not a valid header value; reconnecting without Last-Event-ID"
                ),
            }
        }
        let mut request = self
            .shared
            .client
            .request(config.method.clone(), config.url.clone())
            .headers(headers);
        if let Some(body) = &config.body {
            request = request.body(body.clone());
        }
        tracing::debug!(url = %config.url, "connecting");
        Phase::Connecting {
            response: Box::pin(request.send()),
            deadline: config
                .connect_timeout
                .map(|t| Box::pin(tokio::time::sleep(t))),
        }
    }

    /// The standard's processResponse step 3: only `200` with a
    /// `text/event-stream` essence opens; everything else fails for good.
    fn on_response(&mut self, response: reqwest::Response) -> Result<SseItem, Error> {
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Err(Error::new(ErrorKind::NoContent));
        }
        if status != StatusCode::OK {
            return Err(Error::new(ErrorKind::Status(status)));
        }
        // Several Content-Type fields (client.md leaves the case out): the
        // last one decides, as it usually does in Fetch's "extract a MIME
        // type".
        let content_type = response
            .headers()
            .get_all(header::CONTENT_TYPE)
            .iter()
            .next_back();
        match content_type {
            Some(value) if is_event_stream(value.as_bytes()) => {}
            Some(value) => {
                let got = String::from_utf8_lossy(value.as_bytes()).into_owned();
                return Err(Error::new(ErrorKind::ContentType(Some(got))));
            }
            None => return Err(Error::new(ErrorKind::ContentType(None))),
        }
        let open = Open::new(response.url().clone(), response.headers().clone());
        let body = http::Response::from(response).into_body();
        tracing::debug!(url = %open.url(), "open");
        self.progress = false;
        self.phase = Phase::Open {
            body,
            deadline: self
                .shared
                .config
                .read_timeout
                .map(|t| Box::pin(tokio::time::sleep(t))),
        };
        Ok(SseItem::Open(open))
    }

    /// The standard's "reestablish the connection": the end of a body, or
    /// a network error before a response. `cause` is `None` for a clean
    /// end.
    fn reestablish(&mut self, cause: Option<Error>) -> Option<Result<SseItem, Error>> {
        // Drops the unterminated event; keeps the last event id and the
        // reconnection time, and seeds the next stream's id buffer.
        self.decoder.finish();
        let config = &self.shared.config;
        if !config.reconnect {
            self.phase = Phase::Closed;
            return cause.map(Err);
        }
        if std::mem::take(&mut self.progress) {
            self.attempt = 0;
        }
        self.attempt = self.attempt.saturating_add(1);
        if let Some(max) = config.max_retries {
            if self.attempt > max {
                self.phase = Phase::Closed;
                let kind = ErrorKind::TooManyRetries { attempts: max };
                return Some(Err(match cause {
                    Some(cause) => Error::with_source(kind, cause),
                    None => Error::new(kind),
                }));
            }
        }
        let base = self.reconnection_time();
        let delay = config.backoff.delay(self.attempt, base);
        tracing::debug!(attempt = self.attempt, ?delay, cause = ?cause, "reconnecting");
        self.phase = Phase::Waiting(Box::pin(tokio::time::sleep(delay)));
        Some(Ok(SseItem::Reconnecting(Reconnect {
            attempt: self.attempt,
            delay,
            cause,
        })))
    }
}

impl Stream for EventStream {
    type Item = Result<SseItem, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Phase::Closed = this.phase {
                return Poll::Ready(None);
            }
            // Decoded frames go out before anything else happens: before
            // the next chunk is read, and before a reconnection or a fatal
            // error is reported.
            if let Some(frame) = this.decoder.next_frame() {
                this.progress = true;
                let item = match frame {
                    Frame::Event(event) => SseItem::Event(event),
                    Frame::Comment(text) => SseItem::Comment(text),
                    Frame::Retry(time) => SseItem::Retry(time),
                    // A frame kind this crate does not know yet.
                    _ => continue,
                };
                return Poll::Ready(Some(Ok(item)));
            }
            match &mut this.phase {
                Phase::Idle => this.phase = this.send(),
                Phase::Connecting { response, deadline } => match response.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        let item = this.on_response(response);
                        if item.is_err() {
                            this.phase = Phase::Closed;
                        }
                        return Poll::Ready(Some(item));
                    }
                    Poll::Ready(Err(error)) if error.is_redirect() => {
                        this.phase = Phase::Closed;
                        let error = Error::with_source(ErrorKind::TooManyRedirects, error);
                        return Poll::Ready(Some(Err(error)));
                    }
                    Poll::Ready(Err(error)) => {
                        let cause = Error::with_source(ErrorKind::Connect, error);
                        return Poll::Ready(this.reestablish(Some(cause)));
                    }
                    Poll::Pending => {
                        if let Some(deadline) = deadline {
                            if deadline.as_mut().poll(cx).is_ready() {
                                let cause = Error::new(ErrorKind::ConnectTimeout);
                                return Poll::Ready(this.reestablish(Some(cause)));
                            }
                        }
                        return Poll::Pending;
                    }
                },
                Phase::Open { body, deadline } => match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // Trailers (HTTP/2, chunked) carry no events.
                        let Ok(chunk) = frame.into_data() else {
                            continue;
                        };
                        if let (Some(deadline), Some(timeout)) =
                            (deadline, this.shared.config.read_timeout)
                        {
                            deadline.as_mut().reset(Instant::now() + timeout);
                        }
                        if let Err(error) = this.decoder.feed(&chunk) {
                            this.decoder.finish();
                            let error = Error::with_source(ErrorKind::TooLarge, error);
                            this.phase = Phase::Failed(error);
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        let cause = Error::with_source(ErrorKind::Body, error);
                        return Poll::Ready(this.reestablish(Some(cause)));
                    }
                    Poll::Ready(None) => return Poll::Ready(this.reestablish(None)),
                    Poll::Pending => {
                        if let Some(deadline) = deadline {
                            if deadline.as_mut().poll(cx).is_ready() {
                                let cause = Error::new(ErrorKind::ReadTimeout);
                                return Poll::Ready(this.reestablish(Some(cause)));
                            }
                        }
                        return Poll::Pending;
                    }
                },
                Phase::Waiting(sleep) => match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.phase = Phase::Idle,
                    Poll::Pending => return Poll::Pending,
                },
                Phase::Failed(_) => {
                    if let Phase::Failed(error) = std::mem::replace(&mut this.phase, Phase::Closed)
                    {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Phase::Closed => return Poll::Ready(None),
            }
        }
    }
}

impl FusedStream for EventStream {
    fn is_terminated(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("url", &self.shared.config.url.as_str())
            .field("ready_state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
