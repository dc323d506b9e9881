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
            _guard: guard,
        }
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
        if let Some(first) = self.first.take() {
            self.written.inc_by(first.len() as u64);
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if let Some(expiry) = &mut self.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                self.subscription.end(CloseReason::Expired);
                return Poll::Ready(None);
            }
        }
        match Pin::new(&mut self.subscription).poll_next(cx) {
            Poll::Ready(Some(frames)) => {
                self.written.inc_by(frames.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(frames))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
