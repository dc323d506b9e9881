//! A published update: validated against the Mercure rules, then encoded
//! once into the frame every subscriber will share.

use std::sync::Arc;

use herald_proto::{Encoder, Event};
use herald_store::{Cursor, NewRecord};
use url::Url;

use crate::error::{InvalidUpdate, SizeLimit, UpdateTooLarge};
use crate::{field_rules, topic_retention, HubConfig, IdKind, PublishError, PublishLimits};

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
    /// `Last-Event-ID` header (see [`field_rules::check_event_id`]).
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
    /// on the token: topics present, within the limits, valid text, not
    /// `*`, outside the hub's reserved namespace ([`field_rules::check_topic`]);
    /// id and type rules; size limits. The [`ValidUpdate`] it returns is
    /// what [`Hub::publish`](crate::Hub::publish) takes, so the rules run
    /// once, before the token is looked at (a malformed update is 400/413
    /// whatever the token).
    ///
    /// # Errors
    ///
    /// [`PublishError::Invalid`] (400) or [`PublishError::TooLarge`] (413),
    /// naming the rule or the limit.
    pub fn validate(
        self,
        hub_url: &Url,
        limits: &PublishLimits,
    ) -> Result<ValidUpdate, PublishError> {
        if self.topics.is_empty() {
            return Err(InvalidUpdate::NoTopic.into());
        }
        check_size(SizeLimit::Topics, self.topics.len(), limits.max_topics)?;
        for topic in &self.topics {
            check_size(SizeLimit::TopicLen, topic.len(), limits.max_topic_len)?;
            field_rules::check_topic(topic, hub_url).map_err(|rule| InvalidUpdate::Topic {
                topic: topic.clone(),
                rule,
            })?;
        }
        check_size(SizeLimit::DataLen, self.data.len(), limits.max_data_len)?;
        if let Some(id) = self.custom_id() {
            check_size(SizeLimit::IdLen, id.len(), limits.max_field_len)?;
            field_rules::check_event_id(id).map_err(InvalidUpdate::Id)?;
        }
        if let Some(event_type) = &self.event_type {
            check_size(SizeLimit::TypeLen, event_type.len(), limits.max_field_len)?;
            field_rules::check_event_type(event_type).map_err(InvalidUpdate::Type)?;
        }
        Ok(ValidUpdate(self))
    }

    /// The custom id, if one was given (an empty one counts as none).
    fn custom_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|id| !id.is_empty())
    }
}

/// An [`Update`] that passed [`Update::validate`]: the only thing
/// [`Hub::publish`](crate::Hub::publish) accepts.
///
/// A front end validates first (a malformed update is refused before the
/// token is checked), authorizes with [`topics`](ValidUpdate::topics), then
/// publishes this value; the hub does not check the rules again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidUpdate(Update);

impl ValidUpdate {
    /// The topics, canonical first: what a publisher must be granted.
    pub fn topics(&self) -> &[String] {
        &self.0.topics
    }

    /// The update, as validated.
    pub fn as_update(&self) -> &Update {
        &self.0
    }

    /// Gives the update back (to change it, and validate it again).
    pub fn into_update(self) -> Update {
        self.0
    }

    /// The way in for updates the hub writes itself (subscription events,
    /// say), which may use what publishers may not: the reserved namespace,
    /// the `mercure` type. The hub's code answers for them; SSE framing is
    /// still checked when the update is encoded.
    pub(crate) fn from_hub(update: Update) -> ValidUpdate {
        ValidUpdate(update)
    }

    /// Encodes the update once, under its final id (generated as `config`
    /// says when it has none) and with its per-topic retention, for the
    /// store.
    pub(crate) fn into_record(self, config: &HubConfig) -> Result<NewRecord, InvalidUpdate> {
        let update = self.0;
        let keep_for =
            topic_retention::keep_for(&config.topic_retention, &update.topics, &config.url);
        let id: Arc<str> = match update.id.filter(|id| !id.is_empty()) {
            Some(id) => id.into(),
            None => {
                let uuid = match config.ids {
                    IdKind::TimeOrdered => uuid::Uuid::now_v7(),
                    IdKind::Random => uuid::Uuid::new_v4(),
                };
                format!("urn:uuid:{uuid}").into()
            }
        };
        // Validated ids and types cannot break framing (the character rule
        // forbids CR, LF and NUL): only `from_hub` updates can fail here.
        let mut event = Event::new(update.data)
            .with_id(&*id)
            .map_err(InvalidUpdate::Frame)?;
        if let Some(event_type) = update.event_type {
            event = event.with_type(event_type).map_err(InvalidUpdate::Frame)?;
        }
        if let Some(retry) = update.retry {
            event = event.with_retry(retry);
        }
        Ok(NewRecord {
            id,
            topics: update.topics.into(),
            private: update.private,
            frame: Encoder::encode(&event),
            keep_for,
        })
    }
}

/// A size within its limit, or which limit it exceeds.
fn check_size(limit: SizeLimit, size: usize, max: usize) -> Result<(), UpdateTooLarge> {
    if size > max {
        return Err(UpdateTooLarge { limit, size, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reserved::HUB_EVENT_TYPE;

    fn hub_url() -> Url {
        Url::parse("https://hub.example/.well-known/mercure").unwrap()
    }

    fn random_ids() -> HubConfig {
        HubConfig {
            ids: IdKind::Random,
            ..HubConfig::new(hub_url())
        }
    }

    #[test]
    fn the_hub_may_write_what_publishers_may_not() {
        let update = Update {
            topics: vec!["/.well-known/mercure/subscriptions/x".into()],
            event_type: Some(HUB_EVENT_TYPE.into()),
            ..Update::new("", "{}")
        };
        assert!(update
            .clone()
            .validate(&hub_url(), &PublishLimits::default())
            .is_err());
        let record = ValidUpdate::from_hub(update)
            .into_record(&random_ids())
            .unwrap();
        let frame = std::str::from_utf8(&record.frame).unwrap();
        assert!(frame.contains("event: mercure\n"), "{frame}");
    }

    #[test]
    fn framing_is_still_checked_for_the_hubs_own_updates() {
        let update = Update {
            event_type: Some("a\nb".into()),
            ..Update::new("/t", "x")
        };
        assert!(matches!(
            ValidUpdate::from_hub(update).into_record(&random_ids()),
            Err(InvalidUpdate::Frame(_))
        ));
    }
}
