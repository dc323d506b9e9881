//! The hub's state kernel: what the [`Hub`](crate::Hub) handle, its
//! background tasks and every live subscription share.
//!
//! As in mini-redis's `db.rs`, the state sits behind one `Arc<Shared>`:
//! the `Hub` clones, the dispatcher and heartbeat tasks (`dispatcher`) and
//! each `Subscription` hold it, and none of them needs the others. Keeping
//! it out of `hub.rs` is what lets `hub`, `dispatcher` and `subscription`
//! depend on this module instead of on each other.
//!
//! The registry lock is a `std::sync::Mutex`, not tokio's: it is held for
//! an index update or one batch of pushes into queues, never across an
//! await, and an async mutex would only add cost to every dispatch.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use herald_store::{Cursor, Store};
use tokio::sync::Notify;

use crate::direct::DirectWriter;
use crate::grant::Grants;
use crate::health::Probe;
use crate::matcher::Matcher;
use crate::presence::Presence;
use crate::registry::Registry;
use crate::stats::Counters;
use crate::subscriber::Subscriber;
use crate::{HubConfig, SubscribeError};

/// The state shared by the hub, its tasks and its subscriptions.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub config: HubConfig,
    registry: Mutex<Registry>,
    pub counters: Counters,
    pub health: Probe,
    /// The active subscriptions table, when [`HubConfig::subscriptions`]
    /// is on.
    pub presence: Option<Presence>,
    next_subscriber: AtomicU64,
}

/// A subscriber just registered, and where its replay must stop.
pub(crate) struct Registered {
    pub subscriber: Arc<Subscriber>,
    /// The dispatcher's position when the subscriber was registered: live
    /// delivery covers everything after it, the replay everything up to it.
    pub until: Cursor,
}

impl Shared {
    /// The state of a hub whose live delivery starts after `head`.
    pub fn new(store: Arc<dyn Store>, config: HubConfig, head: Cursor) -> Self {
        let presence = config
            .subscriptions
            .then(|| Presence::new(&config.url, config.subscription_lease));
        Shared {
            presence,
            store,
            config,
            registry: Mutex::new(Registry::starting_at(head)),
            counters: Counters::default(),
            health: Probe::default(),
            next_subscriber: AtomicU64::new(1),
        }
    }

    /// The registry lock. A panic while holding it cannot leave the index
    /// half-updated in a way that matters more than losing the hub, so a
    /// poisoned lock is simply taken over.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscriber that already has every record up to `from`
    /// (`None`: live only), reading the dispatcher's position in the same
    /// lock: the history→live seam.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] once the hub is closed.
    pub fn register(
        &self,
        matchers: Vec<Matcher>,
        grants: Option<Grants>,
        from: Option<Cursor>,
        on_lag: Option<Arc<Notify>>,
        direct: Option<Arc<dyn DirectWriter>>,
    ) -> Result<Registered, SubscribeError> {
        let id = self.next_subscriber.fetch_add(1, Relaxed);
        let registered = {
            let mut registry = self.registry();
            if registry.closed {
                return Err(SubscribeError::Closed);
            }
            let until = registry.dispatched;
            // Live records after `until` are queued from now on; anything
            // at or before the resume cursor is a duplicate of what the
            // client has.
            let last = from.map_or(until, |from| from.max(until));
            let subscriber = Arc::new(Subscriber::new(id, matchers, grants, last, on_lag, direct));
            registry.insert(Arc::clone(&subscriber));
            Registered { subscriber, until }
        };
        self.counters.subscribers.fetch_add(1, Relaxed);
        self.counters.subscriptions_total.fetch_add(1, Relaxed);
        Ok(registered)
    }

    /// Removes a subscriber (its subscription was dropped).
    pub fn unregister(&self, id: u64) {
        if self.registry().remove(id) {
            self.counters.subscribers.fetch_sub(1, Relaxed);
        }
    }
}
