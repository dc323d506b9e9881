//! Active subscriptions (Mercure draft-08, "Active Subscriptions"): the
//! documents that describe a subscription, the events the hub publishes
//! when one starts and ends, and the table the subscriptions API answers
//! from.
//!
//! The table is a fold over the hub's log, not a list of this node's
//! subscribers: the dispatcher applies every subscription event it
//! dispatches (`active: true` adds, `false` removes), and remembers the id
//! of the last hub event (subscription event or lease) dispatched, under
//! one lock. So a snapshot (the subscriptions and that id) is exactly the
//! state after that record: a client that fetches it, then subscribes with
//! `Last-Event-ID` set to the id, gets every later event once and none
//! twice, whatever races the two requests. Records of other topics do not
//! change the table, so they need not move the cursor; and the cursor must
//! be a hub event, since any subscriber may resume from one whatever its
//! grants (`Hub::subscribe`): its id is the hub's (random, or derived from
//! a random subscriber id) and names nothing of anyone's updates. The last
//! record of any kind could be a private update the client may not read,
//! from which it could not resume without a gap. And since every node of a cluster follows the same log, every
//! node's table lists every node's subscriptions.
//!
//! A node that starts folds the retained history first (`Hub::start`), so
//! it knows the subscriptions that other nodes already hold, as far as
//! their start events are retained.
//!
//! Each event's data is the subscription's document, with one property
//! beside those of the draft: `node`, the random id of the hub process
//! holding it (`urn:uuid:…`, new at every start), which is what lets the
//! other nodes end the subscriptions of a node that died.
//!
//! # Leases
//!
//! A node that dies (`kill -9`, a lost machine) publishes no end events.
//! So every node renews a lease through the log: a record on
//! `<hub path>/nodes/<node>` every third of
//! [`HubConfig::subscription_lease`](crate::HubConfig::subscription_lease),
//! private and in the reserved namespace like the subscription events (so
//! it cannot be forged, and only subscribers granted it see it). Each node
//! folds the leases with the rest, stamped with the store's clock
//! (`published_at`), and ends the subscriptions of any node whose lease
//! ran out: within the lease and a third, the end events are published.
//! Several nodes may notice at once; an end event's id is derived from its
//! subscription, so the store keeps one. A single node that restarts after
//! a crash ends its former self's subscriptions the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use herald_proto::Decoder;
use herald_store::Record;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::matcher::{Matcher, MatcherKind};
use crate::reserved::HUB_EVENT_TYPE;
use crate::state::Shared;
use crate::{Update, ValidUpdate};

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
}

impl Namespace {
    pub fn new(hub: &Url) -> Self {
        let hub = hub.path().trim_end_matches('/');
        Namespace {
            root: format!("{hub}/subscriptions"),
            nodes: format!("{hub}/nodes"),
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
    fn holds(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.root)
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The topic of a node's lease records: `<hub path>/nodes/<node>`.
    fn lease_topic(&self, node: &str) -> String {
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

    /// Whether `topic` is a lease record's.
    fn holds_lease(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.nodes)
            .is_some_and(|rest| rest.starts_with('/'))
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

/// A lease record's data.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    /// Always `node`.
    #[serde(rename = "type")]
    kind: String,
    node: String,
    /// How long after this record the node counts as alive.
    lease_ms: u64,
}

/// A consistent view of the table: the subscriptions, and the id of the
/// last record the hub had dispatched when it was taken.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The active subscriptions asked for, by id.
    pub subscriptions: Vec<Arc<SubscriptionDoc>>,
    /// The id of the last hub event (subscription event or lease)
    /// dispatched: the `last-event-id` to subscribe from, which any
    /// subscriber may resume from; `None` if there was none (then
    /// `earliest` replays everything).
    pub last_event_id: Option<Arc<str>>,
}

/// The table of active subscriptions (see the module docs).
pub(crate) struct Presence {
    pub namespace: Namespace,
    /// This hub process's id (`urn:uuid:…`).
    pub node: Arc<str>,
    /// How long a node counts as alive after its last lease.
    lease: Duration,
    table: Mutex<Table>,
}

#[derive(Default)]
pub(crate) struct Table {
    /// Active subscriptions by id; ordered, so a matcher's collection is a
    /// range of ids.
    active: BTreeMap<String, Arc<SubscriptionDoc>>,
    last_id: Option<Arc<str>>,
    /// Until when each node that holds (or held) subscriptions is alive,
    /// by the store's clock: the latest lease or event of it, plus its
    /// lease.
    alive_until: HashMap<String, SystemTime>,
}

impl Presence {
    pub fn new(hub: &Url, lease: Duration) -> Self {
        Presence {
            namespace: Namespace::new(hub),
            node: format!("urn:uuid:{}", uuid::Uuid::new_v4()).into(),
            lease,
            table: Mutex::new(Table::default()),
        }
    }

    /// The table lock; never held across an await. A poisoned lock holds a
    /// table that is at worst one event behind: keep serving.
    pub fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The subscriptions whose ids start with `prefix` (one id, or a
    /// collection's ids followed by `/`), with the cursor they hold at.
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        let table = self.lock();
        let subscriptions = table
            .active
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(_, doc)| Arc::clone(doc))
            .collect();
        Snapshot {
            subscriptions,
            last_event_id: table.last_id.clone(),
        }
    }
}

impl Table {
    /// Applies one record of the log: every record moves the cursor; a
    /// subscription event also adds or removes its subscription.
    pub fn observe(&mut self, presence: &Presence, record: &Record) {
        let namespace = &presence.namespace;
        if !namespace.holds_hub_event(record) {
            return;
        }
        self.last_id = Some(Arc::clone(&record.id));
        let Some(topic) = record.topics.first() else {
            return;
        };
        if namespace.holds_lease(topic) {
            let Some(lease) = decode::<Lease>(&record.frame) else {
                tracing::warn!(id = %record.id, "a record in the nodes namespace is not a lease");
                return;
            };
            let lease_for = Duration::from_millis(lease.lease_ms);
            self.alive(lease.node, record.published_at, lease_for);
            return;
        }
        if !namespace.holds(topic) {
            return;
        }
        // Only the hub writes in its namespace (publishers are refused
        // there), so a record that does not decode is a bug or a store
        // written by another program: skipped, and said.
        let Some(doc) = decode::<SubscriptionDoc>(&record.frame) else {
            tracing::warn!(id = %record.id, "a record in the subscriptions namespace is not a subscription event");
            return;
        };
        if doc.active {
            self.alive(doc.node.clone(), record.published_at, presence.lease);
            self.active.insert(doc.id.clone(), Arc::new(doc));
        } else {
            self.active.remove(&doc.id);
        }
    }

    /// The table after every retained record up to `up_to`, read from the
    /// store: what a node starting, or resuming live delivery after records
    /// were trimmed under it, holds.
    pub async fn rebuilt(
        presence: &Presence,
        store: &dyn herald_store::Store,
        up_to: herald_store::Cursor,
    ) -> Result<Table, herald_store::StoreError> {
        let mut table = Table::default();
        let mut after = store.bounds().await?.before_oldest();
        while after < up_to {
            let records = store.read_after(after, 1024).await?;
            for record in records.iter().take_while(|record| record.cursor <= up_to) {
                table.observe(presence, record);
            }
            match records.last() {
                Some(last) => after = last.cursor,
                None => break,
            }
        }
        Ok(table)
    }

    fn alive(&mut self, node: String, at: SystemTime, lease: Duration) {
        let until = at.checked_add(lease).unwrap_or(at);
        let entry = self.alive_until.entry(node).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// The active subscriptions of the nodes other than `me` whose lease
    /// ran out before `now`; dead nodes left with none are forgotten.
    pub fn orphans(&mut self, me: &str, now: SystemTime) -> Vec<SubscriptionDoc> {
        let dead: HashSet<String> = self
            .alive_until
            .iter()
            .filter(|(node, until)| node.as_str() != me && **until < now)
            .map(|(node, _)| node.clone())
            .collect();
        let orphans: Vec<SubscriptionDoc> = self
            .active
            .values()
            .filter(|doc| dead.contains(&doc.node))
            .map(|doc| (**doc).clone())
            .collect();
        let holding: HashSet<&str> = self.active.values().map(|doc| doc.node.as_str()).collect();
        self.alive_until
            .retain(|node, _| !dead.contains(node) || holding.contains(node.as_str()));
        orphans
    }
}

/// One connection's subscriptions as announced: their documents, and the
/// task appending their start events. The subscribe does not wait for the
/// store (a reconnect storm on a fsyncing disk would wait on it, one
/// round after another); the end waits for the start instead, so a
/// subscription's end is never appended before its start.
pub(crate) struct Announcement {
    docs: Vec<SubscriptionDoc>,
    started: Option<tokio::task::JoinHandle<()>>,
}

impl Announcement {
    /// Appends the start events of `docs` (one append), in the background.
    /// A store that fails is logged and the subscription goes on without
    /// its events (its end is then an end without a start, which the table
    /// ignores).
    pub fn start(shared: &Arc<Shared>, docs: Vec<SubscriptionDoc>) -> Self {
        let started = {
            let shared = Arc::clone(shared);
            let docs = docs.clone();
            tokio::spawn(async move { append_until_done(&shared, &docs, "start").await })
        };
        Announcement {
            docs,
            started: Some(started),
        }
    }

    /// The documents, as announced.
    pub fn docs(&self) -> &[SubscriptionDoc] {
        &self.docs
    }

    /// Appends the end events, after the start events, from a spawned
    /// task (a subscription ends in `Drop`, which cannot wait), including
    /// when its client vanished without a word. Each end event's id is
    /// derived from its subscription, so however many nodes try to end one
    /// subscription (a node that died, see the module docs), the store
    /// keeps one end event.
    pub fn end(mut self, shared: Arc<Shared>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime: the process is ending; its subscriptions end
            // with its lease.
            return;
        };
        let started = self.started.take();
        let docs: Vec<SubscriptionDoc> = self
            .docs
            .into_iter()
            .map(|doc| SubscriptionDoc {
                active: false,
                ..doc
            })
            .collect();
        runtime.spawn(async move {
            if let Some(started) = started {
                let _ = started.await;
            }
            append_until_done(&shared, &docs, "end").await;
        });
    }
}

/// The id of a subscription's end event: one per subscription.
fn end_id(doc: &SubscriptionDoc) -> String {
    format!("ended:{}", doc.id)
}

/// How often a subscription event is tried, the last time about a minute
/// after the first (waits of 0.1 s doubling up to 10 s between them).
const EVENT_ATTEMPTS: u32 = 10;

/// Appends the events of `docs`, trying again with a growing pause while
/// the store fails (an outage of up to a minute loses no event), and
/// giving up once the store is closed (the process is stopping: a start
/// not written leaves nothing to end; an end not written is published by
/// the other nodes when this node's lease runs out).
async fn append_until_done(shared: &Shared, docs: &[SubscriptionDoc], what: &str) {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=EVENT_ATTEMPTS {
        match append_events(shared, docs).await {
            Ok(()) => return,
            Err(EventError::Closed) => return,
            Err(EventError::Failed(error)) if attempt == EVENT_ATTEMPTS => {
                tracing::warn!(%error, "gave up publishing a subscription's {what} event");
            }
            Err(EventError::Failed(error)) => {
                tracing::debug!(%error, attempt, "publishing a subscription's {what} event failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Why subscription events were not appended.
enum EventError {
    /// The store is closed: nothing more will be appended.
    Closed,
    /// Anything else; the message says what.
    Failed(String),
}

async fn append_events(shared: &Shared, docs: &[SubscriptionDoc]) -> Result<(), EventError> {
    let records = docs
        .iter()
        .map(|doc| {
            let data = serde_json::to_string(doc).map_err(|error| error.to_string())?;
            let update = Update {
                topics: vec![doc.id.clone()],
                data,
                id: (!doc.active).then(|| end_id(doc)),
                event_type: Some(HUB_EVENT_TYPE.to_owned()),
                retry: None,
                private: true,
            };
            ValidUpdate::from_hub(update)
                .into_record(&shared.config)
                .map_err(|error| error.to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(EventError::Failed)?;
    match shared.store.append_batch(records).await {
        Ok(_) => Ok(()),
        // Another node ended it first.
        Err(error) if error.kind() == herald_store::ErrorKind::DuplicateId => Ok(()),
        Err(error) if error.kind() == herald_store::ErrorKind::Closed => Err(EventError::Closed),
        Err(error) => Err(EventError::Failed(error.to_string())),
    }
}

/// Renews this node's lease and ends the subscriptions of the nodes whose
/// lease ran out, every third of the lease, until the hub stops.
pub(crate) async fn keep_leases(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(presence) = shared.presence.as_ref() else {
        return;
    };
    let every = (presence.lease / 3).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = renew(&shared, presence).await {
            tracing::warn!(%error, "cannot renew this node's subscriptions lease");
        }
        let orphans = presence.lock().orphans(&presence.node, SystemTime::now());
        if !orphans.is_empty() {
            tracing::info!(
                subscriptions = orphans.len(),
                "ending the subscriptions of hub nodes whose lease ran out"
            );
            let ended: Vec<SubscriptionDoc> = orphans
                .into_iter()
                .map(|doc| SubscriptionDoc {
                    active: false,
                    ..doc
                })
                .collect();
            // Tried again at the next tick if it fails: they are still
            // orphans then.
            if let Err(EventError::Failed(error)) = append_events(&shared, &ended).await {
                tracing::warn!(%error, "cannot end the subscriptions of a dead node");
            }
        }
    }
}

async fn renew(shared: &Shared, presence: &Presence) -> Result<(), String> {
    let lease = Lease {
        kind: "node".to_owned(),
        node: presence.node.to_string(),
        lease_ms: u64::try_from(presence.lease.as_millis()).unwrap_or(u64::MAX),
    };
    let update = Update {
        topics: vec![presence.namespace.lease_topic(&presence.node)],
        data: serde_json::to_string(&lease).map_err(|error| error.to_string())?,
        event_type: Some(HUB_EVENT_TYPE.to_owned()),
        private: true,
        ..Update::default()
    };
    let record = ValidUpdate::from_hub(update)
        .into_record(&shared.config)
        .map_err(|error| error.to_string())?;
    shared
        .store
        .append(record)
        .await
        .map(drop)
        .map_err(|error| error.to_string())
}

/// The JSON document a hub event's frame carries.
fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Option<T> {
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
