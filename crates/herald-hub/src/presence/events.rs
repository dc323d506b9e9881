//! Publishing what the table folds: a connection's start and end events
//! ([`Announcement`]), and this node's lease with the ends of dead nodes'
//! subscriptions ([`keep_leases`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Presence, SubscriptionDoc};
use crate::reserved::HUB_EVENT_TYPE;
use crate::state::Shared;
use crate::{Update, ValidUpdate};

/// A lease record's data.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Lease {
    /// Always `node`.
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) node: String,
    /// How long after this record the node counts as alive.
    pub(super) lease_ms: u64,
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
