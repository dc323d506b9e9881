//! [`DiskStore::spawn_retention`]: applying a [`Retention`] policy in the
//! background.
//!
//! Retention is not applied on append (as `MemoryStore::with_retention`
//! does): with a disk store that would put deletes into every group commit,
//! on the publishers' latency path. Instead a task calls
//! [`trim`](herald_store::Store::trim) on an interval; each trim runs on the
//! writer thread in transactions of at most
//! [`DiskOptions::trim_batch`](crate::DiskOptions::trim_batch) removals,
//! interleaved with append batches, so publishers wait one step at most.
//! Between runs the log may exceed `max_events` by what was appended in one
//! interval, and hold records up to `max_age + interval` old: readers that
//! need the gap reported get it anyway (`follow` reports `Trimmed` from the
//! store's own trim mark).

use std::time::Duration;

use herald_store::{ErrorKind, Retention, Store};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::DiskStore;

impl DiskStore {
    /// Spawns a task on the current Tokio runtime that applies `retention`
    /// every `interval`, the first time at once. It holds no handle between
    /// runs, so it ends by itself when the last [`DiskStore`] handle is
    /// dropped or the store is closed; abort the returned handle to stop it
    /// sooner.
    ///
    /// Failed trims are logged (`tracing`, warn) and retried at the next
    /// tick. With an unlimited `retention` the task ends at once.
    ///
    /// # Panics
    ///
    /// If called outside a Tokio runtime, or with a zero `interval`.
    pub fn spawn_retention(&self, retention: Retention, interval: Duration) -> JoinHandle<()> {
        assert!(!interval.is_zero(), "retention interval must be above zero");
        let store = std::sync::Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            if retention.is_unlimited() {
                return;
            }
            let mut ticks = tokio::time::interval(interval);
            // After a slow trim, wait a full interval rather than catching up
            // with back-to-back trims.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(shared) = store.upgrade() else {
                    return;
                };
                let store = DiskStore { shared };
                match store.trim(&retention).await {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::debug!(removed, "herald-store-disk: retention trimmed records")
                    }
                    Err(error) if error.kind() == ErrorKind::Closed => return,
                    Err(error) => {
                        tracing::warn!(%error, "herald-store-disk: retention trim failed")
                    }
                }
            }
        })
    }
}
