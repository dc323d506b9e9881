//! NATS errors as [`StoreError`]s, and [`Malformed`], the cause of a
//! [`Corrupt`](ErrorKind::Corrupt) error.
//!
//! A call that could not reach JetStream (not connected, timed out, no
//! responders while a server restarts, a cluster without a leader for the
//! moment) is [`ErrorKind::Unavailable`]: the call may work a moment later
//! (the hub answers publishes 503 with `Retry-After`, and its dispatcher
//! follows again with backoff). A request JetStream answered with an error
//! is [`ErrorKind::Backend`]. Either way the NATS error is the source.
//!
//! Each kind of async-nats error has its own function here, matching on
//! its kind enum: a catch-all on the error's text was rejected, because a
//! new async-nats wording would silently turn outages into hard failures.

use std::error::Error as StdError;
use std::fmt;

use async_nats::jetstream;
use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, PublishError, PublishErrorKind, RequestError,
    RequestErrorKind,
};
use async_nats::jetstream::stream::{
    DeleteMessageError, DeleteMessageErrorKind, LastRawMessageError, LastRawMessageErrorKind,
    PurgeError, PurgeErrorKind,
};
use async_nats::ConnectError;
use herald_store::{ErrorKind, StoreError};

/// Why a stored message is not a record: the source of a
/// [`Corrupt`](ErrorKind::Corrupt) error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    what: String,
}

impl Malformed {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Malformed { what: what.into() }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl StdError for Malformed {}

fn unavailable<E>(error: E) -> StoreError
where
    E: Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    StoreError::unavailable(error).with_message("cannot reach NATS JetStream")
}

fn refused<E>(error: E) -> StoreError
where
    E: Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    StoreError::backend(error).with_message("NATS JetStream refused a request")
}

/// JetStream's own answer: unavailable while it has no leader or is not
/// (yet) enabled, refused otherwise.
fn jetstream_error(error: jetstream::Error) -> StoreError {
    const CLUSTER_NOT_AVAILABLE: u64 = 10008;
    const NOT_ENABLED: u64 = 10076;
    const NOT_ENABLED_FOR_ACCOUNT: u64 = 10039;
    let code = error.error_code().0;
    if error.code() == 503
        || matches!(
            code,
            CLUSTER_NOT_AVAILABLE | NOT_ENABLED | NOT_ENABLED_FOR_ACCOUNT
        )
    {
        unavailable(error)
    } else {
        refused(error)
    }
}

/// The failure to connect at all.
pub(crate) fn connect(error: ConnectError) -> StoreError {
    use async_nats::ConnectErrorKind::*;
    match error.kind() {
        ServerParse | Authentication | AuthorizationViolation | Tls => {
            StoreError::backend(error).with_message("cannot connect to NATS")
        }
        _ => unavailable(error),
    }
}

/// A JetStream API request (stream info, a raw request).
pub(crate) fn request(error: RequestError) -> StoreError {
    match error.kind() {
        RequestErrorKind::TimedOut | RequestErrorKind::NoResponders => unavailable(error),
        RequestErrorKind::InvalidSubject | RequestErrorKind::Other => refused(error),
    }
}

/// Creating or looking up a stream.
pub(crate) fn create_stream(error: CreateStreamError) -> StoreError {
    match error.kind() {
        CreateStreamErrorKind::JetStreamUnavailable | CreateStreamErrorKind::TimedOut => {
            unavailable(error)
        }
        CreateStreamErrorKind::JetStream(inner) => jetstream_error(inner),
        _ => refused(error),
    }
}

/// A publish that failed for another reason than a refused expectation
/// (those are handled where they happen).
pub(crate) fn publish(error: PublishError) -> StoreError {
    match error.kind() {
        // No responders while JetStream restarts shows as "stream not
        // found": the same call works once it is back.
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::StreamNotFound
        | PublishErrorKind::MaxAckPending => unavailable(error),
        PublishErrorKind::MaxPayloadExceeded => StoreError::backend(error).with_message(
            "a record is larger than the NATS server's max_payload (raise it in the server's \
             configuration)",
        ),
        _ => refused(error),
    }
}

/// A message get. `NoMessageFound` is an answer, not an error: callers
/// match it before calling this.
pub(crate) fn get(error: LastRawMessageError) -> StoreError {
    match error.kind() {
        LastRawMessageErrorKind::JetStream(inner) => jetstream_error(inner),
        LastRawMessageErrorKind::Other => match error
            .source()
            .and_then(|source| source.downcast_ref::<RequestError>())
        {
            Some(inner)
                if matches!(
                    inner.kind(),
                    RequestErrorKind::TimedOut | RequestErrorKind::NoResponders
                ) =>
            {
                unavailable(error)
            }
            _ => refused(error),
        },
        LastRawMessageErrorKind::NoMessageFound | LastRawMessageErrorKind::InvalidSubject => {
            refused(error)
        }
    }
}

/// A purge.
pub(crate) fn purge(error: PurgeError) -> StoreError {
    match error.kind() {
        PurgeErrorKind::Request | PurgeErrorKind::TimedOut => unavailable(error),
        PurgeErrorKind::JetStream(inner) => jetstream_error(inner),
    }
}

/// A message delete.
pub(crate) fn delete(error: DeleteMessageError) -> StoreError {
    match error.kind() {
        DeleteMessageErrorKind::Request | DeleteMessageErrorKind::TimedOut => unavailable(error),
        DeleteMessageErrorKind::JetStream(inner) => jetstream_error(inner),
    }
}

/// A call made while the client is not connected: failed at once rather
/// than queued until a timeout, so a publisher gets its 503 without
/// waiting.
pub(crate) fn disconnected() -> StoreError {
    StoreError::new(ErrorKind::Unavailable).with_message("not connected to NATS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let timed_out = RequestError::new(RequestErrorKind::TimedOut);
        assert_eq!(request(timed_out).kind(), ErrorKind::Unavailable);
        let other = RequestError::new(RequestErrorKind::Other);
        assert_eq!(request(other).kind(), ErrorKind::Backend);
        let broken = PublishError::new(PublishErrorKind::BrokenPipe);
        assert_eq!(publish(broken).kind(), ErrorKind::Unavailable);
        let too_big = PublishError::new(PublishErrorKind::MaxPayloadExceeded);
        assert_eq!(publish(too_big).kind(), ErrorKind::Backend);
        assert_eq!(disconnected().kind(), ErrorKind::Unavailable);
        let malformed = Malformed::new("bad");
        assert_eq!(malformed.to_string(), "bad");
    }
}
