//! The error type: one opaque [`Error`] with a [`ErrorKind`] to match on
//! and a `source()` chain to the underlying cause.
//!
//! The kind is `#[non_exhaustive]` and the error opaque (the shape of
//! ripgrep's `globset::Error`) so that new failure modes and richer context
//! can be added without breaking callers. The underlying HTTP library's
//! error is reachable through [`std::error::Error::source`] only, never as
//! a public type: it can change without this crate's API changing.
//!
//! Errors come in two roles. A *fatal* error is the last item of an
//! [`EventStream`](crate::EventStream): the connection failed in a way that
//! retrying cannot fix (a 404, the wrong content type, a 204 "stop"), or
//! the retry budget ran out. A *transient* error is the cause carried by a
//! [`Reconnect`](crate::Reconnect) item: the stream goes on. [`Error::is_fatal`]
//! tells them apart.

use std::fmt;

use http::StatusCode;

use crate::content_type::EVENT_STREAM;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error of the event source: a failed build, a fatal response, or a
/// transient failure that caused a reconnection.
///
/// `Display` describes this error alone, in one line; the cause, when there
/// is one, is its [`source`](std::error::Error::source) (print the chain,
/// e.g. with `anyhow`'s `{:#}`, to see both).
pub struct Error {
    /// Boxed so that `Result<SseItem, Error>` stays small on the hot path.
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    source: Option<BoxError>,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL does not parse, or its scheme is not `http` or `https`
    /// (the browser's `SyntaxError`). Reported by the builder.
    InvalidUrl,
    /// A header name or value given to the builder is invalid.
    InvalidHeader,
    /// The HTTP client could not be set up: a root certificate that does
    /// not parse, or a TLS setup failure. Reported by the builder.
    Client,
    /// Fatal: the server answered a status other than 200 (after following
    /// redirects). A browser does not retry these either, not even 503.
    Status(StatusCode),
    /// Fatal: the server answered `204 No Content`, the standard's way to
    /// tell a client to stop reconnecting.
    NoContent,
    /// Fatal: the response's `Content-Type` is not `text/event-stream`. The
    /// value received, or `None` when the header was missing.
    ContentType(Option<String>),
    /// Fatal: more redirects than the configured limit.
    TooManyRedirects,
    /// Fatal: an event or a line exceeded the decoder's
    /// [`Limits`](herald_proto::Limits).
    TooLarge,
    /// Fatal: reconnections kept failing; the configured cap of
    /// consecutive attempts was reached. The source is the last failure.
    TooManyRetries {
        /// How many consecutive reconnection attempts were made.
        attempts: u32,
    },
    /// Transient: the request failed before a response arrived (refused
    /// connection, DNS or TLS failure, connection closed early).
    Connect,
    /// Transient: no response headers within the connect timeout.
    ConnectTimeout,
    /// Transient: no body data within the read timeout.
    ReadTimeout,
    /// Transient: the response body broke off with an error.
    Body,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner { kind, source: None }),
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                source: Some(source.into()),
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// Whether this kind of failure makes an event source give up (a bad
    /// response, too many retries, a build error), as opposed to a
    /// transient network failure that it retries. A stream's `Err` item is
    /// fatal, except with reconnection turned off, where a transient
    /// failure ends the stream too; transient errors otherwise only appear
    /// as the cause of a [`Reconnect`](crate::Reconnect).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self.inner.kind,
            ErrorKind::Connect
                | ErrorKind::ConnectTimeout
                | ErrorKind::ReadTimeout
                | ErrorKind::Body
        )
    }

    /// The HTTP status of a [`ErrorKind::Status`] or [`ErrorKind::NoContent`]
    /// error.
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner.kind {
            ErrorKind::Status(status) => Some(status),
            ErrorKind::NoContent => Some(StatusCode::NO_CONTENT),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            ErrorKind::InvalidUrl => f.write_str("invalid event source URL"),
            ErrorKind::InvalidHeader => f.write_str("invalid request header"),
            ErrorKind::Client => f.write_str("could not set up the HTTP client"),
            // `StatusCode`'s own display: "404 Not Found".
            ErrorKind::Status(status) => write!(f, "{status}"),
            ErrorKind::NoContent => f.write_str("the server answered 204 No Content: stop"),
            ErrorKind::ContentType(Some(got)) if got.trim().is_empty() => {
                write!(f, "expected {EVENT_STREAM}, got an empty Content-Type")
            }
            ErrorKind::ContentType(Some(got)) => write!(f, "expected {EVENT_STREAM}, got {got}"),
            ErrorKind::ContentType(None) => {
                write!(f, "expected {EVENT_STREAM}, got no Content-Type")
            }
            ErrorKind::TooManyRedirects => f.write_str("too many redirects"),
            ErrorKind::TooLarge => f.write_str("the event stream exceeded a size limit"),
            ErrorKind::TooManyRetries { attempts } => {
                write!(
                    f,
                    "gave up after {attempts} consecutive reconnection attempts"
                )
            }
            ErrorKind::Connect => f.write_str("could not connect"),
            ErrorKind::ConnectTimeout => f.write_str("timed out waiting for the response"),
            ErrorKind::ReadTimeout => f.write_str("timed out waiting for stream data"),
            ErrorKind::Body => f.write_str("the event stream broke off"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &self.inner.kind);
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_problem() {
        let cases = [
            (ErrorKind::Status(StatusCode::NOT_FOUND), "404 Not Found"),
            (
                ErrorKind::NoContent,
                "the server answered 204 No Content: stop",
            ),
            (
                ErrorKind::ContentType(Some("text/html".into())),
                "expected text/event-stream, got text/html",
            ),
            (
                ErrorKind::ContentType(Some(String::new())),
                "expected text/event-stream, got an empty Content-Type",
            ),
            (
                ErrorKind::ContentType(None),
                "expected text/event-stream, got no Content-Type",
            ),
            (
                ErrorKind::TooManyRetries { attempts: 3 },
                "gave up after 3 consecutive reconnection attempts",
            ),
        ];
        for (kind, message) in cases {
            assert_eq!(Error::new(kind).to_string(), message);
        }
    }

    #[test]
    fn the_source_chain_is_kept() {
        let cause = std::io::Error::other("connection refused");
        let error = Error::with_source(ErrorKind::Connect, cause);
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "connection refused");
        assert!(!error.is_fatal());
        assert!(Error::new(ErrorKind::NoContent).is_fatal());
        assert_eq!(
            Error::new(ErrorKind::NoContent).status(),
            Some(StatusCode::NO_CONTENT)
        );
    }
}
