//! A published update: validated against the Mercure rules, then encoded
//! once into the frame every subscriber will share.

use std::sync::Arc;

use herald_proto::{Encoder, Event};
use herald_store::{Cursor, NewRecord};
use url::Url;

use crate::{topic, IdKind, PublishError, PublishLimits};

/// An update to publish: the fields of a Mercure publish request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The canonical topic first, then alternates. At least one.
    pub topics: Vec<String>,
    /// The data (any text; line ends become several `data:` lines).
    pub data: String,
    /// A custom id; the hub generates one (`urn:uuid:…`) when absent or
    /// empty (an empty `id` field is how many publishers say "none", and the
    /// reference hub generates one for it too; as an SSE id it would reset
    /// the client's last event id). A custom id must be unique among the
    /// updates the hub retains, and survive a round trip through the
    /// `Last-Event-ID` header (see [`topic::check_event_id`]).
    pub id: Option<String>,
    /// The SSE event type.
    pub event_type: Option<String>,
    /// The SSE reconnection time, in milliseconds.
    pub retry: Option<u64>,
    /// Only subscribers granted one of the topics receive it.
    pub private: bool,
}

/// What a successful publish returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The update's id (custom or generated).
    pub id: Arc<str>,
    /// Its position in the hub's log.
    pub cursor: Cursor,
}

impl Update {
    /// A public update of `data` on one topic.
    pub fn new(topic: impl Into<String>, data: impl Into<String>) -> Self {
        Update {
            topics: vec![topic.into()],
            data: data.into(),
            ..Update::default()
        }
    }

    /// Checks every publish rule of Mercure draft-08 that does not depend
    /// on the token: topics present, valid text, not `*`, outside the hub's
    /// reserved namespace; id and type rules; size limits.
    ///
    /// # Errors
    ///
    /// [`PublishError::Invalid`] (400) or [`PublishError::TooLarge`] (413).
    pub fn validate(&self, hub_url: &Url, limits: &PublishLimits) -> Result<(), PublishError> {
        if self.topics.is_empty() {
            return Err(invalid("at least one topic is required"));
        }
        if self.topics.len() > limits.max_topics {
            return Err(too_large(format!(
                "{} topics (at most {})",
                self.topics.len(),
                limits.max_topics
            )));
        }
        for topic in &self.topics {
            if topic.len() > limits.max_topic_len {
                return Err(too_large(format!(
                    "a topic of {} bytes (at most {})",
                    topic.len(),
                    limits.max_topic_len
                )));
            }
            topic::check_text(topic).map_err(|err| invalid(format!("topic {topic:?}: {err}")))?;
            if topic == "*" {
                return Err(invalid(
                    "the topic \"*\" is reserved for the wildcard matcher",
                ));
            }
            if topic::addresses_reserved_namespace(topic, hub_url) {
                return Err(invalid(format!(
                    "topic {topic:?} addresses the hub's reserved namespace"
                )));
            }
        }
        if self.data.len() > limits.max_data_len {
            return Err(too_large(format!(
                "{} bytes of data (at most {})",
                self.data.len(),
                limits.max_data_len
            )));
        }
        if let Some(id) = self.custom_id() {
            if id.len() > limits.max_field_len {
                return Err(too_large(format!("an id of {} bytes", id.len())));
            }
            topic::check_event_id(id).map_err(|err| invalid(format!("id: {err}")))?;
        }
        if let Some(event_type) = &self.event_type {
            if event_type.len() > limits.max_field_len {
                return Err(too_large(format!("a type of {} bytes", event_type.len())));
            }
            topic::check_event_type(event_type).map_err(|err| invalid(format!("type: {err}")))?;
        }
        Ok(())
    }

    /// The custom id, if one was given (an empty one counts as none).
    fn custom_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|id| !id.is_empty())
    }

    /// Encodes the update once, under its final id, for the store.
    pub(crate) fn into_record(self, ids: IdKind) -> Result<NewRecord, PublishError> {
        let id: Arc<str> = match self.id.filter(|id| !id.is_empty()) {
            Some(id) => id.into(),
            None => {
                let uuid = match ids {
                    IdKind::TimeOrdered => uuid::Uuid::now_v7(),
                    IdKind::Random => uuid::Uuid::new_v4(),
                };
                format!("urn:uuid:{uuid}").into()
            }
        };
        let mut event = Event::new(self.data)
            .with_id(&*id)
            .map_err(|err| invalid(format!("id: {err}")))?;
        if let Some(event_type) = self.event_type {
            event = event
                .with_type(event_type)
                .map_err(|err| invalid(format!("type: {err}")))?;
        }
        if let Some(retry) = self.retry {
            event = event.with_retry(retry);
        }
        Ok(NewRecord {
            id,
            topics: self.topics.into(),
            private: self.private,
            frame: Encoder::encode(&event),
        })
    }
}

fn invalid(why: impl Into<String>) -> PublishError {
    PublishError::Invalid(why.into())
}

fn too_large(why: impl Into<String>) -> PublishError {
    PublishError::TooLarge(why.into())
}
