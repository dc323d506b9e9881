//! The [`Hub`] handle: publish, subscribe, stats, shutdown.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use herald_store::{Cursor, ErrorKind, Record, Store, StoreError};
use tokio::sync::watch;
use url::Url;

use crate::grant::Grants;
use crate::matcher::Topic;
use crate::registry::Registry;
use crate::stats::Counters;
use crate::subscriber::{self, CloseReason, Subscriber};
use crate::subscription::{ResumePoint, SubscribeRequest, Subscription};
use crate::{dispatcher, HubConfig, HubStats, PublishError, Published, SubscribeError, Update};

/// A running hub. Cheap to clone; the background tasks (the dispatcher and
/// the heartbeat) stop when the last clone is dropped.
#[derive(Clone)]
pub struct Hub {
    handle: Arc<Handle>,
}

/// Owned by the `Hub` clones only: dropping the last one stops the tasks,
/// which hold `Shared` but not this.
struct Handle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The state shared by the hub, its tasks and its subscriptions.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub config: HubConfig,
    registry: Mutex<Registry>,
    pub counters: Counters,
    next_subscriber: AtomicU64,
}

impl Shared {
    /// The registry lock. A panic while holding it cannot leave the index
    /// half-updated in a way that matters more than losing the hub, so a
    /// poisoned lock is simply taken over.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn unregister(&self, id: u64) {
        if self.registry().remove(id) {
            self.counters.subscribers.fetch_sub(1, Relaxed);
        }
    }
}

impl Hub {
    /// Starts a hub on `store`: live delivery begins after the store's
    /// current head. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The store's error if its bounds cannot be read.
    pub async fn start(store: Arc<dyn Store>, config: HubConfig) -> Result<Hub, StoreError> {
        let head = store.bounds().await?.head;
        let registry = Registry::starting_at(head);
        let shared = Arc::new(Shared {
            store,
            config,
            registry: Mutex::new(registry),
            counters: Counters::default(),
            next_subscriber: AtomicU64::new(1),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(dispatcher::run(Arc::clone(&shared), head, stopped.clone()));
        if let Some(every) = shared.config.heartbeat {
            tokio::spawn(dispatcher::heartbeat(Arc::clone(&shared), every, stopped));
        }
        Ok(Hub {
            handle: Arc::new(Handle { shared, stop }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The hub's URL (the base of relative topics and patterns).
    pub fn url(&self) -> &Url {
        &self.shared().config.url
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.shared().config
    }

    /// The hub's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared().store
    }

    /// Validates, encodes once and appends an update; it is acknowledged
    /// (this returns) only once the store has it, and is then delivered to
    /// every matching subscriber. Authorization is the caller's job (see
    /// [`Grants::may_publish_all`](crate::grant::Grants::may_publish_all)).
    ///
    /// # Errors
    ///
    /// [`PublishError`]: invalid or too large updates, a custom id that a
    /// retained update already has ([`PublishError::DuplicateId`], checked
    /// by the store atomically with the append), a failed store, or a hub
    /// that is shutting down.
    pub async fn publish(&self, update: Update) -> Result<Published, PublishError> {
        let shared = self.shared();
        if shared.registry().closed {
            return Err(PublishError::Closed);
        }
        update.validate(&shared.config.url, &shared.config.publish_limits)?;
        let record = update.into_record(shared.config.ids)?;
        let id = Arc::clone(&record.id);
        let record = shared
            .store
            .append(record)
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::DuplicateId => PublishError::DuplicateId(id.to_string()),
                _ => PublishError::Store(err),
            })?;
        shared.counters.published.fetch_add(1, Relaxed);
        Ok(Published {
            id: record.id,
            cursor: record.cursor,
        })
    }

    /// Opens a subscription: replay after `last_event_id` (if any), then
    /// live updates, as one stream of frames.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] if the store cannot be read, or the hub is closing
    /// or closed (also when its store's live log ended).
    pub async fn subscribe(
        &self,
        request: SubscribeRequest,
    ) -> Result<Subscription, SubscribeError> {
        let shared = self.shared();
        // Checked again under the registry lock below; this only spares a
        // closed hub (or one whose store is gone) the store reads.
        if shared.registry().closed {
            return Err(SubscribeError::Closed);
        }
        let (from, resume) = match request.last_event_id.as_deref() {
            None => (None, ResumePoint::Live),
            Some("earliest") => (Some(self.before_oldest().await?), ResumePoint::Earliest),
            Some(id) => match shared
                .store
                .resolve_record(id)
                .await
                .map_err(SubscribeError::Store)?
            {
                Some(record) if self.may_see(&record, request.grants.as_ref()) => {
                    (Some(record.cursor), ResumePoint::After(id.into()))
                }
                // Unknown, trimmed, or private to others: answered alike, so
                // that the answer does not tell which (echoing a private id
                // would confirm that an update with it exists).
                _ => (
                    Some(self.before_oldest().await?),
                    ResumePoint::Gap(id.into()),
                ),
            },
        };
        let id = shared.next_subscriber.fetch_add(1, Relaxed);
        let (subscriber, until) = {
            let mut registry = shared.registry();
            if registry.closed {
                return Err(SubscribeError::Closed);
            }
            let until = registry.dispatched;
            // Live records after `until` are queued from now on; anything at
            // or before the resume cursor is a duplicate of what the client has.
            let last = from.map_or(until, |from| from.max(until));
            let subscriber = Arc::new(Subscriber::new(
                id,
                request.matchers,
                request.grants,
                last,
                request.on_lag,
            ));
            registry.insert(Arc::clone(&subscriber));
            (subscriber, until)
        };
        shared.counters.subscribers.fetch_add(1, Relaxed);
        shared.counters.subscriptions_total.fetch_add(1, Relaxed);
        Ok(Subscription::new(
            Arc::clone(shared),
            subscriber,
            resume,
            from,
            until,
        ))
    }

    /// Whether a subscriber with `grants` may see `record`, by the rule of
    /// delivery: public, or private with a grant on one of its topics.
    fn may_see(&self, record: &Record, grants: Option<&Grants>) -> bool {
        if !record.private {
            return true;
        }
        let url = &self.shared().config.url;
        let topics: Vec<Topic<'_>> = record.topics.iter().map(|t| Topic::new(t, url)).collect();
        subscriber::may_read(grants, &topics)
    }

    async fn before_oldest(&self) -> Result<Cursor, SubscribeError> {
        let bounds = self
            .shared()
            .store
            .bounds()
            .await
            .map_err(SubscribeError::Store)?;
        Ok(bounds.before_oldest())
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        self.shared().counters.snapshot()
    }

    /// Subscribers connected now.
    pub fn subscriber_count(&self) -> usize {
        self.shared().registry().len()
    }

    /// Stops the hub: new publishes and subscriptions are refused, and every
    /// subscription ends after its queued frames and `last_words` (say, a
    /// short `retry:` so clients come back soon to another node).
    pub fn shutdown(&self, last_words: Option<Bytes>) {
        let mut registry = self.shared().registry();
        registry.closed = true;
        registry.close_all(CloseReason::Shutdown, last_words.as_ref());
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("url", &self.url().as_str())
            .field("stats", &self.stats())
            .finish()
    }
}
