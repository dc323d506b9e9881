//! Counters the hub keeps for `/metrics` and `herald bench`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    /// Subscribers closed because they fell too far behind.
    pub lagged: u64,
    /// Frames queued to subscribers (live fan-out).
    pub delivered: u64,
    /// Resumes whose cursor was unknown, trimmed or not visible to the
    /// subscriber (reported in-band).
    pub gaps: u64,
    /// Times the live follow of the store failed (not by trimming) and was
    /// retried from the same cursor.
    pub follow_retries: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> HubStats {
        HubStats {
            published: self.published.load(Relaxed),
            subscribers: self.subscribers.load(Relaxed),
            subscriptions_total: self.subscriptions_total.load(Relaxed),
            lagged: self.lagged.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            follow_retries: self.follow_retries.load(Relaxed),
        }
    }
}
