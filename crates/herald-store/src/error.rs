//! [`StoreError`]: the one error type of every backend.
//!
//! Opaque on purpose (in the style of ripgrep's `globset::Error`): callers
//! branch on [`StoreError::kind`], read the cause through
//! [`source`](std::error::Error::source), and new kinds can be added without
//! breaking anyone. An enum with public variants carrying each backend's error
//! type was rejected: it would make this crate depend on redb and on a
//! Redis client.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error from a backend's engine (disk, network, ...).
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong, coarsely enough that the hub can react to it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Records the caller needed were removed by retention; the caller cannot
    /// continue without a gap (the hub reports this to the subscriber).
    Trimmed,
    /// The store was closed or shut down.
    Closed,
    /// The backend's engine failed (I/O, a refused command, ...); the cause
    /// is the error's [`source`](std::error::Error::source).
    Backend,
    /// The backend could not be reached (a network store that is down,
    /// restarting or partitioned away): nothing was done, and the same call
    /// may well work a moment later. The cause is the error's
    /// [`source`](std::error::Error::source).
    Unavailable,
    /// Stored data could not be decoded, or broke an invariant of the log.
    Corrupt,
    /// An append was refused because a retained record already has its id
    /// (or, in a batch, an earlier record of the same batch does): ids are
    /// unique among retained records. Nothing of that append was stored.
    DuplicateId,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Trimmed => "records were trimmed by retention",
            ErrorKind::Closed => "store is closed",
            ErrorKind::Backend => "storage backend failed",
            ErrorKind::Unavailable => "storage backend is unavailable",
            ErrorKind::Corrupt => "stored data is corrupt",
            ErrorKind::DuplicateId => "an event with this id is already stored",
        })
    }
}

/// An error from a [`Store`](crate::Store).
///
/// `Display` shows the kind and any message, not the source: walk
/// [`source`](std::error::Error::source) for the cause (so reporters that
/// print the chain do not print it twice).
#[derive(Debug)]
pub struct StoreError {
    kind: ErrorKind,
    message: Option<Box<str>>,
    source: Option<BoxError>,
}

impl StoreError {
    /// An error of `kind` with no message and no source.
    pub fn new(kind: ErrorKind) -> Self {
        StoreError {
            kind,
            message: None,
            source: None,
        }
    }

    /// A [`ErrorKind::Backend`] error caused by `source` (any error, or a
    /// string).
    pub fn backend<E>(source: E) -> Self
    where
        E: Into<Box<dyn StdError + Send + Sync + 'static>>,
    {
        StoreError::new(ErrorKind::Backend).with_source(source)
    }

    /// An [`ErrorKind::Unavailable`] error caused by `source`.
    pub fn unavailable<E>(source: E) -> Self
    where
        E: Into<Box<dyn StdError + Send + Sync + 'static>>,
    {
        StoreError::new(ErrorKind::Unavailable).with_source(source)
    }

    /// A [`ErrorKind::Corrupt`] error saying what was wrong.
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError::new(ErrorKind::Corrupt).with_message(message)
    }

    /// A [`ErrorKind::DuplicateId`] error naming the id that is taken.
    pub fn duplicate_id(id: &str) -> Self {
        StoreError::new(ErrorKind::DuplicateId).with_message(format!("{id:?}"))
    }

    /// Adds a human-readable detail, shown after the kind by `Display`.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into().into_boxed_str());
        self
    }

    /// Sets the underlying cause, returned by
    /// [`source`](std::error::Error::source).
    pub fn with_source<E>(mut self, source: E) -> Self
    where
        E: Into<Box<dyn StdError + Send + Sync + 'static>>,
    {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<ErrorKind> for StoreError {
    fn from(kind: ErrorKind) -> Self {
        StoreError::new(kind)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {}", self.kind, message),
            None => fmt::Display::fmt(&self.kind, f),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_source_chain() {
        let io = std::io::Error::other("disk on fire");
        let err = StoreError::backend(io).with_message("appending batch");
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(err.to_string(), "storage backend failed: appending batch");
        assert_eq!(err.source().unwrap().to_string(), "disk on fire");

        let err = StoreError::unavailable("connection refused");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.to_string(), "storage backend is unavailable");

        let err = StoreError::from(ErrorKind::Trimmed);
        assert_eq!(err.to_string(), "records were trimmed by retention");
        assert!(err.source().is_none());

        let err = StoreError::corrupt("bad length");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert_eq!(err.to_string(), "stored data is corrupt: bad length");

        let err = StoreError::duplicate_id("a\"b");
        assert_eq!(err.kind(), ErrorKind::DuplicateId);
        assert_eq!(
            err.to_string(),
            "an event with this id is already stored: \"a\\\"b\""
        );
    }

    #[test]
    fn is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + StdError>() {}
        assert_bounds::<StoreError>();
    }
}
