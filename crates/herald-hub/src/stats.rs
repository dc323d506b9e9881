//! Counters the hub keeps for `/metrics` and `herald bench`.
//!
//! Plain relaxed atomics, bumped where each thing happens (one place per
//! counter) and read all at once by [`Hub::stats`](crate::Hub::stats): the
//! hub depends on no metrics library, and a front end exposes the snapshot
//! in whatever format it serves (`herald-server` reads it at each scrape).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::subscriber::CloseReason;

/// Live counters, updated without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub subscribers: AtomicU64,
    pub subscriptions_total: AtomicU64,
    pub lagged: AtomicU64,
    pub delivered: AtomicU64,
    pub gaps: AtomicU64,
    pub follow_retries: AtomicU64,
    pub replay_errors: AtomicU64,
    pub ended: Ended,
}

/// Subscriptions ended, by reason; counted once each, when the
/// `Subscription` is dropped (see [`Ended::count`]).
#[derive(Debug, Default)]
pub(crate) struct Ended {
    client_gone: AtomicU64,
    lagged: AtomicU64,
    expired: AtomicU64,
    shutdown: AtomicU64,
    resync: AtomicU64,
}

impl Ended {
    /// Counts one subscription that ended for `reason`; `None`: its owner
    /// dropped it while the hub still had it open (the client went away).
    pub(crate) fn count(&self, reason: Option<CloseReason>) {
        let counter = match reason {
            None => &self.client_gone,
            Some(CloseReason::Lagged) => &self.lagged,
            Some(CloseReason::Expired) => &self.expired,
            Some(CloseReason::Shutdown) => &self.shutdown,
            Some(CloseReason::Resync) => &self.resync,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// A snapshot of the hub's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Updates published since start.
    pub published: u64,
    /// Subscribers connected now.
    pub subscribers: u64,
    /// Subscriptions opened since start.
    pub subscriptions_total: u64,
    /// Subscribers cut off because they fell too far behind, counted when
    /// the hub cuts them off (their streams end, and are counted in
    /// [`Disconnects::lagged`], once their owners drop them).
    pub lagged: u64,
    /// Frames queued to subscribers (live fan-out).
    pub delivered: u64,
    /// Resumes whose cursor was unknown, trimmed or not visible to the
    /// subscriber (reported in-band).
    pub gaps: u64,
    /// Times the live follow of the store failed (not by trimming) and was
    /// retried from the same cursor.
    pub follow_retries: u64,
    /// Replays of history that failed on a store error other than trimming
    /// (the stream ended with [`CloseReason::Resync`]).
    pub replay_errors: u64,
    /// Subscriptions ended since start, by reason.
    pub disconnects: Disconnects,
}

/// Subscriptions ended since start, by reason: each is counted once, when
/// its [`Subscription`](crate::Subscription) is dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disconnects {
    /// Dropped while the hub still had them open: the client went away.
    pub client_gone: u64,
    /// Ended with [`CloseReason::Lagged`].
    pub lagged: u64,
    /// Ended with [`CloseReason::Expired`] (their front end ended them
    /// when the subscriber's credential expired).
    pub expired: u64,
    /// Ended with [`CloseReason::Shutdown`].
    pub shutdown: u64,
    /// Ended with [`CloseReason::Resync`].
    pub resync: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> HubStats {
        let ended = &self.ended;
        HubStats {
            published: self.published.load(Relaxed),
            subscribers: self.subscribers.load(Relaxed),
            subscriptions_total: self.subscriptions_total.load(Relaxed),
            lagged: self.lagged.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            follow_retries: self.follow_retries.load(Relaxed),
            replay_errors: self.replay_errors.load(Relaxed),
            disconnects: Disconnects {
                client_gone: ended.client_gone.load(Relaxed),
                lagged: ended.lagged.load(Relaxed),
                expired: ended.expired.load(Relaxed),
                shutdown: ended.shutdown.load(Relaxed),
                resync: ended.resync.load(Relaxed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::StreamExt;

    use crate::matcher::{Matcher, MatcherKind};
    use crate::{CloseReason, Disconnects, Hub, HubConfig, SubscribeRequest, Subscription, Update};

    async fn hub(max_pending_bytes: usize) -> Hub {
        let mut config = HubConfig::new("https://hub.example/.well-known/mercure".parse().unwrap());
        config.heartbeat = None;
        config.max_pending_bytes = max_pending_bytes;
        Hub::start(Arc::new(herald_store::MemoryStore::new()), config)
            .await
            .unwrap()
    }

    async fn subscribe(hub: &Hub) -> Subscription {
        let matcher = Matcher::new(MatcherKind::Exact, "/t", hub.url()).unwrap();
        hub.subscribe(SubscribeRequest::new(vec![matcher]))
            .await
            .unwrap()
    }

    async fn publish(hub: &Hub, data: &str) {
        let update = hub.validate(Update::new("/t", data)).unwrap();
        hub.publish(update).await.unwrap();
    }

    /// Every end is counted once, under the reason the hub (or the owner,
    /// with `end`) gave it, also when the stream never saw its end.
    #[tokio::test]
    async fn each_subscription_end_is_counted_once_by_reason() {
        let hub = hub(1024).await;

        drop(subscribe(&hub).await);

        let mut expired = subscribe(&hub).await;
        expired.end(CloseReason::Expired);
        expired.end(CloseReason::Shutdown);
        assert!(expired.next().await.is_none());
        assert_eq!(expired.close_reason(), Some(CloseReason::Expired));
        drop(expired);

        // Cut off for lagging and dropped without being polled again, as a
        // stalled connection is.
        let lagging = subscribe(&hub).await;
        let big = "x".repeat(2048);
        for _ in 0..3 {
            publish(&hub, &big).await;
        }
        let cut_off = async {
            while hub.stats().lagged == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), cut_off)
            .await
            .expect("the subscriber is cut off for lagging");
        drop(lagging);

        let mut closing = subscribe(&hub).await;
        hub.shutdown(None);
        assert!(closing.next().await.is_none());
        drop(closing);

        let stats = hub.stats();
        let expected = Disconnects {
            client_gone: 1,
            lagged: 1,
            expired: 1,
            shutdown: 1,
            resync: 0,
        };
        assert_eq!(stats.disconnects, expected);
        assert_eq!(stats.subscribers, 0);
        assert_eq!(stats.subscriptions_total, 4);
    }
}
