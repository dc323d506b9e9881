//! The documents of active subscriptions (draft-08 "Subscription
//! Events") and the topics they live on: `<hub path>/subscriptions/…` for
//! the subscriptions, `<hub path>/nodes/…` for the leases.

use herald_proto::Decoder;
use herald_store::Record;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::matcher::{Matcher, MatcherKind};
use crate::reserved::{is_lease_topic, NODES_SEGMENT};

/// RFC 6570 simple expansion: everything but the unreserved characters
/// (`ALPHA / DIGIT / "-" / "." / "_" / "~"`) is percent-encoded, once, as
/// UTF-8 (a `%` already in the value becomes `%25`).
const EXPANSION: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `match_type` a subscription made from a legacy `topic` selector
/// reports (draft-08 names only `exact` and `urlpattern`; a legacy selector
/// is exact or a URI template, and is neither).
pub const LEGACY_MATCH_TYPE: &str = "topic";

/// One subscription, as the subscription events and the subscriptions API
/// describe it (draft-08 "Subscription Events").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDoc {
    /// The subscription's topic: the hub's path, then
    /// `/subscriptions/{match_type}/{match}/{subscriber}`.
    pub id: String,
    /// Always `subscription`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `exact`, `urlpattern`, or [`LEGACY_MATCH_TYPE`].
    pub match_type: String,
    /// The subscription's matcher, as the subscriber gave it.
    #[serde(rename = "match")]
    pub matcher: String,
    /// The subscriber: a `urn:uuid:` the hub made for the connection.
    pub subscriber: String,
    /// Whether the subscription is active.
    pub active: bool,
    /// The `payload` of the subscriber's token for this matcher (draft-08
    /// "Payloads").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The hub process holding the subscription (Herald's addition).
    pub node: String,
}

/// The name a matcher kind has in subscription topics and documents.
pub fn match_type(kind: MatcherKind) -> &'static str {
    kind.name().unwrap_or(LEGACY_MATCH_TYPE)
}

/// The topics of the subscriptions namespace, under a hub's URL.
#[derive(Clone, Debug)]
pub(crate) struct Namespace {
    /// `<hub path>/subscriptions`.
    root: String,
    /// `<hub path>/nodes`: the leases.
    nodes: String,
    /// The hub's URL, for [`is_lease_topic`].
    hub: Url,
}

impl Namespace {
    pub fn new(hub: &Url) -> Self {
        let path = hub.path().trim_end_matches('/');
        Namespace {
            root: format!("{path}/subscriptions"),
            nodes: format!("{path}/{NODES_SEGMENT}"),
            hub: hub.clone(),
        }
    }

    /// The collection of every subscription.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The topic (and document id) of one subscription; `Some(subscriber)`
    /// missing: the collection of the matcher's subscriptions.
    pub fn topic(&self, match_type: &str, matcher: &str, subscriber: Option<&str>) -> String {
        let mut topic = format!(
            "{}/{}/{}",
            self.root,
            utf8_percent_encode(match_type, EXPANSION),
            utf8_percent_encode(matcher, EXPANSION)
        );
        if let Some(subscriber) = subscriber {
            topic.push('/');
            topic.extend(utf8_percent_encode(subscriber, EXPANSION));
        }
        topic
    }

    /// Whether `topic` is in the namespace (a subscription event's topic).
    pub(super) fn holds(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.root)
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The topic of a node's lease records: `<hub path>/nodes/<node>`.
    pub(super) fn lease_topic(&self, node: &str) -> String {
        format!("{}/{}", self.nodes, utf8_percent_encode(node, EXPANSION))
    }

    /// Whether `record` is a hub event of active subscriptions: a
    /// subscription event or a lease, which only the hub writes.
    pub fn holds_hub_event(&self, record: &Record) -> bool {
        record
            .topics
            .first()
            .is_some_and(|topic| self.holds(topic) || self.holds_lease(topic))
    }

    /// Whether `topic` is a lease record's (the rule delivery uses too).
    pub(super) fn holds_lease(&self, topic: &str) -> bool {
        is_lease_topic(topic, &self.hub)
    }
}

/// The documents of one connection's subscriptions (one per matcher).
pub(crate) fn documents(
    namespace: &Namespace,
    node: &str,
    subscriber: &str,
    matchers: &[Matcher],
    grants: Option<&crate::grant::Grants>,
    hub: &Url,
) -> Vec<SubscriptionDoc> {
    matchers
        .iter()
        .map(|matcher| {
            let match_type = match_type(matcher.kind());
            let payload = grants.and_then(|grants| {
                let topic = crate::matcher::Topic::new(matcher.as_str(), hub);
                grants.subscribe_payload(&topic).cloned()
            });
            SubscriptionDoc {
                id: namespace.topic(match_type, matcher.as_str(), Some(subscriber)),
                kind: "subscription".to_owned(),
                match_type: match_type.to_owned(),
                matcher: matcher.as_str().to_owned(),
                subscriber: subscriber.to_owned(),
                active: true,
                payload,
                node: node.to_owned(),
            }
        })
        .collect()
}

/// The JSON document a hub event's frame carries.
pub(super) fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Option<T> {
    let mut decoder = Decoder::new();
    decoder.feed(frame).ok()?;
    let event = decoder.next_event()?;
    serde_json::from_str(event.data()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Url {
        Url::parse("https://example.com/.well-known/mercure").unwrap()
    }

    #[test]
    fn topics_are_expanded_as_rfc_6570_says() {
        let namespace = Namespace::new(&hub());
        assert_eq!(
            namespace.topic(
                "urlpattern",
                "https://example.com/:selector",
                Some("urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6")
            ),
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",
            "the draft's example"
        );
        assert_eq!(
            namespace.topic("exact", "/a%20b é", None),
            "/.well-known/mercure/subscriptions/exact/%2Fa%2520b%20%C3%A9",
            "encoded once: a % in the value is itself encoded"
        );
        assert!(namespace.holds("/.well-known/mercure/subscriptions/exact/x/y"));
        assert!(!namespace.holds("/.well-known/mercure/subscriptionsx/y"));
        assert!(!namespace.holds("https://example.com/books/1"));
    }

    #[test]
    fn documents_round_trip_through_a_frame() {
        let doc = SubscriptionDoc {
            id: "/.well-known/mercure/subscriptions/exact/a/b".into(),
            kind: "subscription".into(),
            match_type: "exact".into(),
            matcher: "a".into(),
            subscriber: "b".into(),
            active: true,
            payload: Some(serde_json::json!({"foo": "bar"})),
            node: "urn:uuid:n".into(),
        };
        let json = serde_json::to_string(&doc).unwrap();
        let frame = format!("id: x\nevent: mercure\ndata: {json}\n\n");
        assert_eq!(decode(frame.as_bytes()), Some(doc));
        assert_eq!(decode::<SubscriptionDoc>(b"data: not json\n\n"), None);
    }
}
