//! The subscribe response body: a `retry:` hint, then the subscription's
//! frames, written as they come, until the subscription ends or the token
//! expires.
//!
//! It implements `http_body::Body` directly over the hub's
//! [`Subscription`] rather than going through axum's `Sse` wrapper: the
//! frames are already encoded (once, for every subscriber), so there is
//! nothing left to format per connection.
//!
//! Both ways a stream reaches a client (hyper, and the lean path's own
//! writes) poll this body, so it is where the stream's bytes are counted
//! (`herald_bytes_written_total`: one relaxed atomic add per chunk, on a
//! handle taken once per stream) and where expiry ends the subscription
//! (`CloseReason::Expired`, which the hub counts with the other reasons a
//! stream ends).
//!
//! A compressed stream (`compression = "gzip"`, a client that accepts it)
//! passes every chunk through its [`StreamGzip`] on the way out, one
//! flushed piece per chunk, and ends with the gzip trailer when the hub
//! ends the stream (a client that leaves gets none: it is gone).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;
use herald_hub::{CloseReason, Subscription};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use tokio::time::Sleep;

use crate::gzip::StreamGzip;
use crate::limits::Slot;

/// The body of one event stream.
pub(crate) struct EventStreamBody {
    first: Option<Bytes>,
    subscription: Subscription,
    /// When the subscriber's token expires, the stream ends: the hub must
    /// not keep serving a connection past its credential (draft-08).
    expiry: Option<Pin<Box<Sleep>>>,
    /// `herald_bytes_written_total`.
    written: Counter,
    /// Compresses each chunk; taken to write the trailer at the end.
    /// Boxed: a plain stream pays one word for it.
    gzip: Option<Box<StreamGzip>>,
    _guard: Option<Slot>,
}

impl EventStreamBody {
    pub(crate) fn new(
        first: Bytes,
        subscription: Subscription,
        expires_at: Option<SystemTime>,
        written: Counter,
        guard: Option<Slot>,
    ) -> Self {
        let expiry = expires_at.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            Box::pin(tokio::time::sleep(left))
        });
        EventStreamBody {
            first: Some(first),
            subscription,
            expiry,
            written,
            gzip: None,
            _guard: guard,
        }
    }

    /// Compresses the stream with gzip.
    pub(crate) fn gzip(mut self) -> Self {
        self.gzip = Some(Box::new(StreamGzip::new()));
        self
    }

    /// The next chunk as the stream produces it, uncompressed; `None` at
    /// its end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        if let Some(expiry) = &mut self.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                self.subscription.end(CloseReason::Expired);
                return Poll::Ready(None);
            }
        }
        Pin::new(&mut self.subscription).poll_next(cx)
    }
}

impl Drop for EventStreamBody {
    fn drop(&mut self) {
        // `None`: the client left (or the connection was closed under it).
        tracing::debug!(reason = ?self.subscription.close_reason(), "subscription closed");
    }
}

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let data = match this.poll_chunk(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(chunk)) => match &mut this.gzip {
                Some(gzip) => gzip.encode(&chunk),
                None => chunk,
            },
            Poll::Ready(None) => match this.gzip.take() {
                // Polled again, the stream is over: `poll_chunk` says so.
                Some(gzip) => gzip.finish(),
                None => return Poll::Ready(None),
            },
        };
        this.written.inc_by(data.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
