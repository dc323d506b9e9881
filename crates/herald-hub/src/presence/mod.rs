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
//! from which it could not resume without a gap. And since every node of
//! a cluster follows the same log, every node's table lists every node's
//! subscriptions.
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
//!
//! The module's parts: `document` (the documents and the topics they live
//! on), `table` (the fold), `events` (publishing the start and end events,
//! and the leases).

mod document;
mod events;
mod table;

use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;

pub(crate) use document::{documents, Namespace};
pub use document::{match_type, SubscriptionDoc, LEGACY_MATCH_TYPE};
pub(crate) use events::{keep_leases, Announcement};
pub(crate) use table::Table;

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
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(_, doc)| Arc::clone(doc))
            .collect();
        Snapshot {
            subscriptions,
            last_event_id: table.last_id.clone(),
        }
    }
}
