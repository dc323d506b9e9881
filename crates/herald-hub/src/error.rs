//! The hub's errors: what a publish or a subscribe can fail with.
//!
//! A refused update keeps the rule it broke as data ([`InvalidUpdate`],
//! [`UpdateTooLarge`]), so a front end or a log can say which field and
//! which rule without parsing a message. Their `Display` is the sentence a
//! publisher reads in the 400 or 413 body; it already holds the inner
//! rule's text, so `source()` does not repeat it (a chain printer would
//! say it twice).

use std::fmt;

use herald_proto::EventError;
use herald_store::StoreError;

use crate::field_rules::{EventIdError, EventTypeError, TopicError};

/// A publish that was refused or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The update breaks a protocol rule (HTTP 400).
    Invalid(InvalidUpdate),
    /// The update exceeds a [`PublishLimits`](crate::PublishLimits) (HTTP 413).
    TooLarge(UpdateTooLarge),
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

/// The protocol rule an update breaks: which field, which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidUpdate {
    /// No topic was given: an update needs at least one.
    NoTopic,
    /// A topic, canonical or alternate, breaks a topic rule: a forbidden
    /// character, the wildcard `*`, or the hub's reserved namespace.
    Topic {
        /// The topic, as published.
        topic: String,
        /// The rule it breaks.
        rule: TopicError,
    },
    /// The custom id breaks an id rule.
    Id(EventIdError),
    /// The event type breaks a type rule.
    Type(EventTypeError),
    /// An id or type SSE cannot frame (CR, LF or NUL). The rules above
    /// refuse these characters first, so only an update the hub built
    /// itself can fail this way.
    Frame(EventError),
}

impl fmt::Display for InvalidUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidUpdate::NoTopic => f.write_str("at least one topic is required"),
            InvalidUpdate::Topic { topic, rule } => match rule {
                TopicError::Wildcard => {
                    f.write_str("the topic \"*\" is reserved for the wildcard matcher")
                }
                TopicError::ReservedNamespace => {
                    write!(f, "topic {topic:?} addresses the hub's reserved namespace")
                }
                rule => write!(f, "topic {topic:?}: {rule}"),
            },
            InvalidUpdate::Id(rule) => write!(f, "id: {rule}"),
            InvalidUpdate::Type(rule) => write!(f, "type: {rule}"),
            InvalidUpdate::Frame(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for InvalidUpdate {}

/// An update over one of the [`PublishLimits`](crate::PublishLimits): which
/// limit, the size found, and the limit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateTooLarge {
    /// The limit exceeded.
    pub limit: SizeLimit,
    /// The size found (a count of topics, or bytes).
    pub size: usize,
    /// The most allowed.
    pub max: usize,
}

/// One of the [`PublishLimits`](crate::PublishLimits).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeLimit {
    /// Topics per update ([`max_topics`](crate::PublishLimits::max_topics)).
    Topics,
    /// Bytes of one topic
    /// ([`max_topic_len`](crate::PublishLimits::max_topic_len)).
    TopicLen,
    /// Bytes of data ([`max_data_len`](crate::PublishLimits::max_data_len)).
    DataLen,
    /// Bytes of the custom id
    /// ([`max_field_len`](crate::PublishLimits::max_field_len)).
    IdLen,
    /// Bytes of the event type
    /// ([`max_field_len`](crate::PublishLimits::max_field_len)).
    TypeLen,
}

impl fmt::Display for UpdateTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let UpdateTooLarge { limit, size, max } = self;
        match limit {
            SizeLimit::Topics => write!(f, "{size} topics (at most {max})"),
            SizeLimit::TopicLen => write!(f, "a topic of {size} bytes (at most {max})"),
            SizeLimit::DataLen => write!(f, "{size} bytes of data (at most {max})"),
            SizeLimit::IdLen => write!(f, "an id of {size} bytes (at most {max})"),
            SizeLimit::TypeLen => write!(f, "a type of {size} bytes (at most {max})"),
        }
    }
}

impl std::error::Error for UpdateTooLarge {}

impl From<InvalidUpdate> for PublishError {
    fn from(err: InvalidUpdate) -> Self {
        PublishError::Invalid(err)
    }
}

impl From<UpdateTooLarge> for PublishError {
    fn from(err: UpdateTooLarge) -> Self {
        PublishError::TooLarge(err)
    }
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
