//! Grants: what a validated access token permits.
//!
//! A token grants `publish` and `subscribe` on topic matchers (draft-08
//! "Authorization Details", or the legacy `mercure` claim's selector lists).
//! The HTTP layer turns a token into [`Grants`]; the hub asks them two
//! questions:
//!
//! * may this publisher publish this update? — every topic, canonical and
//!   alternate, must be granted ([`Grants::may_publish_all`]);
//! * may this subscriber read this private update? — at least one of its
//!   topics must be granted ([`Grants::may_read`]). Subscription matchers
//!   (query parameters) never widen this.
//!
//! Grants also carry the `payload`s that subscription events show
//! ([`Grants::subscribe_payload`]).
//!
//! ```
//! use herald_hub::grant::Grants;
//! use herald_hub::matcher::{Matcher, MatcherKind, Topic};
//! let hub = url::Url::parse("https://example.com/.well-known/mercure").unwrap();
//! let books = Matcher::new(MatcherKind::UrlPattern, "/books/:id", &hub).unwrap();
//! let grants = Grants::new(vec![books], vec![]);
//! let topics = [Topic::new("/books/1", &hub), Topic::new("/authors/2", &hub)];
//! assert!(grants.may_publish(&topics[0]));
//! assert!(!grants.may_publish_all(&topics));
//! assert!(!grants.may_read(&topics));
//! ```

use std::sync::Arc;

use crate::matcher::{Matcher, Topic};

/// What a token permits. Cheap to clone (one reference count).
#[derive(Clone, Debug, Default)]
pub struct Grants {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    publish: Vec<Matcher>,
    subscribe: Vec<Matcher>,
    /// In token order: the first rule whose matchers match a subscription's
    /// matcher string gives its payload (`None` matchers: every
    /// subscription).
    payloads: Vec<PayloadRule>,
}

#[derive(Debug)]
struct PayloadRule {
    topics: Option<Vec<Matcher>>,
    payload: Option<serde_json::Value>,
}

impl Grants {
    /// Grants nothing: the state of an anonymous client.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// Grants `publish` on topics matching any of `publish` and `subscribe`
    /// on topics matching any of `subscribe`, with no payloads.
    pub fn new(publish: Vec<Matcher>, subscribe: Vec<Matcher>) -> Grants {
        let mut builder = GrantsBuilder::default();
        builder.publish(publish);
        builder.subscribe(subscribe, None);
        builder.build()
    }

    /// Starts grants assembled detail by detail (keeps payload order).
    pub fn builder() -> GrantsBuilder {
        GrantsBuilder::default()
    }

    /// Whether `topic` may be published (one topic's check).
    pub fn may_publish(&self, topic: &Topic<'_>) -> bool {
        self.inner.publish.iter().any(|m| m.matches(topic))
    }

    /// Whether an update with these topics may be published: every topic,
    /// canonical and alternate, must be granted. `true` for no topics (a
    /// publish without topics is refused earlier, as malformed).
    pub fn may_publish_all(&self, topics: &[Topic<'_>]) -> bool {
        topics.iter().all(|t| self.may_publish(t))
    }

    /// Whether a private update with these topics may be read: `subscribe`
    /// must be granted on at least one of them (canonical or alternate).
    pub fn may_read(&self, topics: &[Topic<'_>]) -> bool {
        topics
            .iter()
            .any(|t| self.inner.subscribe.iter().any(|m| m.matches(t)))
    }

    /// Whether any `publish` right is granted at all (a token granting none
    /// cannot publish anything: answer 403 without looking at topics).
    pub fn can_publish(&self) -> bool {
        !self.inner.publish.is_empty()
    }

    /// Whether any `subscribe` right is granted at all.
    pub fn can_subscribe(&self) -> bool {
        !self.inner.subscribe.is_empty()
    }

    /// The `publish` matchers, in token order.
    pub fn publish_matchers(&self) -> &[Matcher] {
        &self.inner.publish
    }

    /// The `subscribe` matchers, in token order.
    pub fn subscribe_matchers(&self) -> &[Matcher] {
        &self.inner.subscribe
    }

    /// The payload to show for a subscription: that of the first `subscribe`
    /// detail whose topics match the subscription's own matcher string,
    /// treated as a topic (draft-08 "Payloads"). Build `subscription_matcher`
    /// with [`Topic::new`] from the `match…` parameter's value and the hub's
    /// URL. `None` when no detail matches or the first match has no payload.
    pub fn subscribe_payload(
        &self,
        subscription_matcher: &Topic<'_>,
    ) -> Option<&serde_json::Value> {
        self.inner
            .payloads
            .iter()
            .find(|rule| {
                rule.topics
                    .as_ref()
                    .is_none_or(|ms| ms.iter().any(|m| m.matches(subscription_matcher)))
            })
            .and_then(|rule| rule.payload.as_ref())
    }
}

/// Assembles [`Grants`] from authorization details, in token order.
#[derive(Debug, Default)]
pub struct GrantsBuilder {
    inner: Inner,
}

impl GrantsBuilder {
    /// Adds `publish` rights on topics matching any of `matchers`.
    pub fn publish(&mut self, matchers: impl IntoIterator<Item = Matcher>) -> &mut Self {
        self.inner.publish.extend(matchers);
        self
    }

    /// Adds `subscribe` rights on topics matching any of `matchers`, from one
    /// authorization detail with its optional `payload` (kept in order for
    /// [`Grants::subscribe_payload`]).
    pub fn subscribe(
        &mut self,
        matchers: Vec<Matcher>,
        payload: Option<serde_json::Value>,
    ) -> &mut Self {
        if matchers.is_empty() {
            return self;
        }
        self.inner.subscribe.extend(matchers.iter().cloned());
        self.inner.payloads.push(PayloadRule {
            topics: Some(matchers),
            payload,
        });
        self
    }

    /// Adds a payload for every subscription not matched by an earlier
    /// detail, without granting anything (the legacy `mercure.payload`).
    pub fn default_payload(&mut self, payload: serde_json::Value) -> &mut Self {
        self.inner.payloads.push(PayloadRule {
            topics: None,
            payload: Some(payload),
        });
        self
    }

    /// Finishes the grants.
    pub fn build(&mut self) -> Grants {
        Grants {
            inner: Arc::new(std::mem::take(&mut self.inner)),
        }
    }
}
