//! The [`Hub`] handle: publish, subscribe, stats, shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use herald_store::{Bounds, Cursor, ErrorKind, Store, StoreError};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use url::Url;

use crate::delivery::{self, Addressed, Selection};
use crate::presence::{self, Snapshot};
use crate::reserved::EARLIEST;
use crate::state::{Registered, Shared};
use crate::subscriber::CloseReason;
use crate::subscription::{ResumePoint, SubscribeRequest, Subscription};
use crate::{
    dispatcher, HubConfig, HubStats, PublishError, Published, SubscribeError, Unhealthy, Update,
    ValidUpdate,
};

/// Which subscriptions [`Hub::active_subscriptions`] lists: the three
/// resources of the subscriptions API, by their decoded path segments.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionsScope<'a> {
    /// Every active subscription.
    All,
    /// The subscriptions made with one matcher.
    Matcher {
        /// `exact`, `urlpattern` or `topic` (legacy).
        match_type: &'a str,
        /// The matcher, as subscribers give it.
        matcher: &'a str,
    },
    /// One subscription.
    One {
        /// `exact`, `urlpattern` or `topic` (legacy).
        match_type: &'a str,
        /// The matcher, as subscribers give it.
        matcher: &'a str,
        /// The subscriber's id.
        subscriber: &'a str,
    },
}

/// A running hub. Cheap to clone; the background tasks (the dispatcher,
/// the heartbeat and retention) stop when the last clone is dropped.
#[derive(Clone)]
pub struct Hub {
    handle: Arc<Handle>,
}

/// Owned by the `Hub` clones only: dropping the last one stops the tasks,
/// which hold `Shared` but not this.
struct Handle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// The retention task ([`herald_store::spawn_retention`]): it holds
    /// only a weak handle of the store, so on its own it would outlive the
    /// hub for as long as anyone else keeps the store (the binary does, to
    /// close it): aborted here instead.
    retention: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.retention.abort();
    }
}

impl Hub {
    /// Starts a hub on `store`: live delivery begins after the store's
    /// current head, and [`HubConfig::retention`] is applied to the store
    /// from now on (the first time at once, then every
    /// [`HubConfig::retention_interval`]) until the hub is dropped. Must be
    /// called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The store's error if its bounds cannot be read.
    pub async fn start(store: Arc<dyn Store>, config: HubConfig) -> Result<Hub, StoreError> {
        let bounds = store.bounds().await?;
        let head = bounds.head;
        let shared = Arc::new(Shared::new(store, config, head));
        if let Some(presence) = &shared.presence {
            // The subscriptions other nodes hold, as far as their start
            // events are retained: the log up to where live delivery
            // starts, folded as the dispatcher will fold the rest.
            let table = presence::Table::rebuilt(presence, shared.store.as_ref(), head).await?;
            *presence.lock() = table;
        }
        shared.health.remember(bounds);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(dispatcher::run(Arc::clone(&shared), head, stopped.clone()));
        if shared.presence.is_some() {
            tokio::spawn(presence::keep_leases(Arc::clone(&shared), stopped.clone()));
        }
        if let Some(every) = shared.config.heartbeat {
            tokio::spawn(dispatcher::heartbeat(Arc::clone(&shared), every, stopped));
        }
        // One retention task per hub, whatever the store: it trims in the
        // background, so publishers never wait for a large trim.
        let retention = herald_store::spawn_retention(
            &shared.store,
            shared.config.retention.clone(),
            !shared.config.topic_retention.is_empty(),
            shared.config.effective_retention_interval(),
        )
        .abort_handle();
        Ok(Hub {
            handle: Arc::new(Handle {
                shared,
                stop,
                retention,
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The hub's URL (the base of relative topics and patterns).
    pub fn url(&self) -> &Url {
        &self.shared().config.url
    }

    /// Whether [`publish`](Hub::publish) futures take their places in the
    /// log in the order they are first polled (the store's
    /// [`Store::appends_in_poll_order`]): one poll of a publish puts it
    /// ahead of every publish polled after it.
    pub fn publishes_in_poll_order(&self) -> bool {
        self.shared().store.appends_in_poll_order()
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.shared().config
    }

    /// [`Update::validate`] with this hub's URL and publish limits.
    ///
    /// # Errors
    ///
    /// [`PublishError::Invalid`] or [`PublishError::TooLarge`].
    pub fn validate(&self, update: Update) -> Result<ValidUpdate, PublishError> {
        let config = &self.shared().config;
        update.validate(&config.url, &config.publish_limits)
    }

    /// Encodes a validated update once and appends it; it is acknowledged
    /// (this returns) only once the store has it, and is then delivered to
    /// every matching subscriber. Authorization is the caller's job (see
    /// [`Grants::may_publish_all`](crate::grant::Grants::may_publish_all)),
    /// between [`Hub::validate`] and this. Nothing waits before the store's
    /// append: the first poll of this future is the append's (see
    /// [`Hub::publishes_in_poll_order`]).
    ///
    /// # Errors
    ///
    /// [`PublishError`]: a custom id that a retained update already has
    /// ([`PublishError::DuplicateId`], checked by the store atomically with
    /// the append), a failed store, or a hub that is shutting down.
    pub async fn publish(&self, update: ValidUpdate) -> Result<Published, PublishError> {
        let shared = self.shared();
        if shared.registry().closed {
            return Err(PublishError::Closed);
        }
        let record = update.into_record(&shared.config)?;
        let id = Arc::clone(&record.id);
        let record = shared
            .store
            .append(record)
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::DuplicateId => PublishError::DuplicateId(id.to_string()),
                _ => PublishError::Store(err),
            })?;
        shared.counters.published.fetch_add(1, Ordering::Relaxed);
        Ok(Published {
            id: record.id,
            cursor: record.cursor,
        })
    }

    /// Publishes several validated updates in order, in one append where
    /// the store can (one transaction, one fsync): what a streaming
    /// publish does with the events that arrived while the previous batch
    /// was being stored. Acknowledged all together once the store has them
    /// all; returned in order, with increasing cursors.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`], for the whole batch: all or nothing. A
    /// [`PublishError::DuplicateId`] holds every custom id of the batch
    /// (the store does not say which one was taken, nor whether the batch
    /// repeated one).
    pub async fn publish_batch(
        &self,
        updates: Vec<ValidUpdate>,
    ) -> Result<Vec<Published>, PublishError> {
        let shared = self.shared();
        if shared.registry().closed {
            return Err(PublishError::Closed);
        }
        let ids = updates
            .iter()
            .filter_map(|update| update.as_update().id.as_deref())
            .filter(|id| !id.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        let records = updates
            .into_iter()
            .map(|update| update.into_record(&shared.config))
            .collect::<Result<Vec<_>, _>>()?;
        let records = shared
            .store
            .append_batch(records)
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::DuplicateId => PublishError::DuplicateId(ids),
                _ => PublishError::Store(err),
            })?;
        shared
            .counters
            .published
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(records
            .into_iter()
            .map(|record| Published {
                id: record.id,
                cursor: record.cursor,
            })
            .collect())
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
            Some(EARLIEST) => (Some(self.before_oldest().await?), ResumePoint::Earliest),
            Some(id) => match shared
                .store
                .resolve_record(id)
                .await
                .map_err(SubscribeError::Store)?
            {
                // A hub event of active subscriptions is a position anyone
                // may resume from (the subscriptions API hands its id out
                // as the cursor; see `presence`).
                Some(record)
                    if delivery::receives(
                        &Addressed::new(&record, &shared.config.url),
                        Selection::AnyTopic,
                        request.grants.as_ref(),
                    ) || shared
                        .presence
                        .as_ref()
                        .is_some_and(|presence| presence.namespace.holds_hub_event(&record)) =>
                {
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
        let docs = shared.presence.as_ref().map(|presence| {
            let subscriber = format!("urn:uuid:{}", uuid::Uuid::new_v4());
            presence::documents(
                &presence.namespace,
                &presence.node,
                &subscriber,
                &request.matchers,
                request.grants.as_ref(),
                &shared.config.url,
            )
        });
        let Registered { subscriber, until } = shared.register(
            request.matchers,
            request.grants,
            from,
            request.on_lag,
            request.direct,
        )?;
        let announced = docs.map(|docs| presence::Announcement::start(shared, docs));
        Ok(Subscription::new(
            Arc::clone(shared),
            subscriber,
            resume,
            from,
            until,
            announced,
        ))
    }

    /// The active subscriptions in `scope`, with the id of the last hub
    /// event (subscription event or lease) dispatched then: subscribe from
    /// that id to follow the changes without a gap or a duplicate, whatever
    /// the subscriber's grants. `None` when [`HubConfig::subscriptions`]
    /// is off.
    pub fn active_subscriptions(&self, scope: SubscriptionsScope<'_>) -> Option<Snapshot> {
        let presence = self.shared().presence.as_ref()?;
        let namespace = &presence.namespace;
        let prefix = match scope {
            SubscriptionsScope::All => format!("{}/", namespace.root()),
            SubscriptionsScope::Matcher {
                match_type,
                matcher,
            } => format!("{}/", namespace.topic(match_type, matcher, None)),
            SubscriptionsScope::One {
                match_type,
                matcher,
                subscriber,
            } => namespace.topic(match_type, matcher, Some(subscriber)),
        };
        let mut snapshot = presence.snapshot(&prefix);
        if matches!(scope, SubscriptionsScope::One { .. }) {
            // One id: not the others it is a prefix of.
            snapshot.subscriptions.retain(|doc| doc.id == prefix);
        }
        Some(snapshot)
    }

    /// The path of the subscriptions API's collection (`<hub path>/subscriptions`),
    /// when [`HubConfig::subscriptions`] is on.
    pub fn subscriptions_path(&self) -> Option<&str> {
        Some(self.shared().presence.as_ref()?.namespace.root())
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

    /// Whether the hub can serve now: it is open and its store answers a
    /// read. Cheap to call often: the store is asked at most once a second
    /// (see the `health` module), and never waited on for more than two.
    ///
    /// # Errors
    ///
    /// [`Unhealthy`] saying why not.
    pub async fn health(&self) -> Result<(), Unhealthy> {
        let shared = self.shared();
        if shared.registry().closed {
            return Err(Unhealthy::Closed);
        }
        shared.health.check(shared.store.as_ref()).await
    }

    /// The store's retained range as the health probe last read it, and
    /// when; `None` if no read has succeeded since the hub started (the
    /// start itself reads it, so in practice always `Some`). Never waits
    /// and never reads the store: for synchronous code such as a response
    /// body's `poll`; [`Hub::bounds`] refreshes it.
    pub fn last_bounds(&self) -> Option<(Bounds, Instant)> {
        self.shared().health.last_bounds()
    }

    /// The store's retained range, from a read at most a second old: the
    /// probe of [`Hub::health`], whose limit it shares, so the store is
    /// asked at most once a second however many callers (health checks
    /// and statistics pages alike) want it.
    ///
    /// # Errors
    ///
    /// [`Unhealthy`], as [`Hub::health`]: the hub is closed, or the probe
    /// failed (the last good answer stays in [`Hub::last_bounds`]).
    pub async fn bounds(&self) -> Result<(Bounds, Instant), Unhealthy> {
        self.health().await?;
        self.last_bounds()
            .ok_or_else(|| Unhealthy::Store("no bounds were read".to_owned()))
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
