//! The hub's errors: what a publish or a subscribe can fail with.

use std::fmt;

use herald_store::StoreError;

/// A publish that was refused or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The update breaks a protocol rule (HTTP 400). The message says which.
    Invalid(String),
    /// The update exceeds a [`PublishLimits`](crate::PublishLimits) (HTTP 413).
    TooLarge(String),
    /// The custom id is already used by an update the hub retains (HTTP
    /// 409): ids name one position in the history, so that a client resuming
    /// from one gets no duplicates. Nothing was appended. An id is free again
    /// once retention has removed its update. Holds the id.
    DuplicateId(String),
    /// The store could not append it (HTTP 503): nothing was acknowledged.
    Store(StoreError),
    /// The hub is shutting down, or its store's live log ended (HTTP 503).
    Closed,
}

/// A subscription that could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The store could not be read to resolve the cursor.
    Store(StoreError),
    /// The hub is shutting down, or its store's live log ended, so nothing
    /// would ever be delivered (HTTP 503).
    Closed,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Invalid(why) => write!(f, "invalid update: {why}"),
            PublishError::TooLarge(why) => write!(f, "update too large: {why}"),
            PublishError::DuplicateId(id) => write!(
                f,
                "the id {id:?} is already used by a retained update; ids must be unique"
            ),
            PublishError::Store(err) => write!(f, "the store failed: {err}"),
            PublishError::Closed => f.write_str("the hub is shutting down"),
        }
    }
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::Store(err) => write!(f, "the store failed: {err}"),
            SubscribeError::Closed => f.write_str("the hub is shutting down"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl std::error::Error for SubscribeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubscribeError::Store(err) => Some(err),
            _ => None,
        }
    }
}
