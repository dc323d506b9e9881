//! [`Table`]: the active subscriptions as a fold over the hub's log (see
//! the parent module), and which nodes are alive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use herald_store::Record;

use super::document::decode;
use super::events::Lease;
use super::{Presence, SubscriptionDoc};

/// The table of active subscriptions (see the parent module).
#[derive(Default)]
pub(crate) struct Table {
    /// Active subscriptions by id; ordered, so a matcher's collection is a
    /// range of ids.
    pub(super) active: BTreeMap<String, Arc<SubscriptionDoc>>,
    pub(super) last_id: Option<Arc<str>>,
    /// Until when each node that holds (or held) subscriptions is alive,
    /// by the store's clock: the latest lease or event of it, plus its
    /// lease.
    alive_until: HashMap<String, SystemTime>,
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
