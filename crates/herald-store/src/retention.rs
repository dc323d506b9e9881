//! [`Retention`]: how much history the log keeps, and [`spawn_retention`],
//! the one task that applies it to any [`Store`].
//!
//! Retention is applied by a task calling [`Store::trim`] on an interval,
//! not on append: a durable backend would otherwise put deletes into every
//! commit, on the publishers' latency path. Between runs the log may
//! exceed `max_events` by what was appended in one interval, and hold
//! records up to `max_age + interval` old; readers that need a gap
//! reported get it anyway (`follow` reports what was trimmed).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::{ErrorKind, Store};

/// Retention policy. Both limits are optional (`None` = unlimited); when both
/// are set a record is kept only while it satisfies both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many of the newest records.
    pub max_events: Option<u64>,
    /// Drop records whose age (now minus
    /// [`Record::published_at`](crate::Record::published_at)) exceeds this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Whether this policy never removes anything.
    pub fn is_unlimited(&self) -> bool {
        self.max_events.is_none() && self.max_age.is_none()
    }
}

/// Spawns a task on the current Tokio runtime that applies `retention` to
/// `store` every `interval`, the first time at once. It holds no strong
/// handle between runs, so it ends by itself when the last other `Arc` of
/// the store is dropped or the store is closed; abort the returned handle
/// to stop it sooner. With an unlimited `retention` it still runs when
/// `expiring` is set (records may carry a
/// [`keep_for`](crate::NewRecord::keep_for)), else it ends at once.
///
/// Failed trims are logged (`tracing`, warn) and retried at the next tick.
///
/// # Panics
///
/// If called outside a Tokio runtime, or with a zero `interval`.
pub fn spawn_retention(
    store: &Arc<dyn Store>,
    retention: Retention,
    expiring: bool,
    interval: Duration,
) -> JoinHandle<()> {
    assert!(!interval.is_zero(), "retention interval must be above zero");
    let store: Weak<dyn Store> = Arc::downgrade(store);
    tokio::spawn(async move {
        if retention.is_unlimited() && !expiring {
            return;
        }
        let mut ticks = tokio::time::interval(interval);
        // After a slow trim, wait a full interval rather than catching up
        // with back-to-back trims.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            match store.trim(&retention).await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "retention trimmed records"),
                Err(error) if error.kind() == ErrorKind::Closed => return,
                Err(error) => tracing::warn!(%error, "retention trim failed"),
            }
        }
    })
}
