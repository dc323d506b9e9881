//! [`Hub::health`](crate::Hub::health): whether the hub can serve now —
//! open, and its store answering.
//!
//! A health check is an anonymous, unauthenticated request that load
//! balancers send every few seconds, and anyone else may send in a loop. So
//! the store is asked at most once per [`FRESH_FOR`], however many checks
//! arrive (they wait for the one probe in flight, then read its answer),
//! and a probe gives up after [`PROBE_TIMEOUT`]: a store that hangs is as
//! unhealthy as one that refuses.
//!
//! The probe reads the store's [`Bounds`], so it also keeps the last ones
//! it read: [`Hub::last_bounds`](crate::Hub::last_bounds) hands them out
//! without waiting, and [`Hub::bounds`](crate::Hub::bounds) refreshes them
//! through the same once-a-second limit. A statistics page that shows the
//! store's size therefore adds no store reads of its own, however many
//! are open (a second probe for the statistics was rejected: it would
//! double the reads for the same answer).

use std::fmt;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use herald_store::{Bounds, Store, StoreError};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long one probe's answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// How long a probe waits for the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the hub cannot serve now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unhealthy {
    /// The hub is shutting down, or its store's live log ended.
    Closed,
    /// The store did not answer a read: says why.
    Store(String),
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unhealthy::Closed => f.write_str("the hub is shutting down"),
            Unhealthy::Store(why) => write!(f, "the store is not answering: {why}"),
        }
    }
}

impl std::error::Error for Unhealthy {}

/// The last probe of the store and when it ran.
#[derive(Default)]
pub(crate) struct Probe {
    last: Mutex<Option<(Instant, Result<(), Unhealthy>)>>,
    /// The last bounds read successfully, and when. A std mutex, not
    /// tokio's: held for a copy, never across an await, and read from
    /// synchronous code (a response body's `poll`).
    bounds: SyncMutex<Option<(Bounds, Instant)>>,
}

impl Probe {
    /// The store's health, from a probe at most [`FRESH_FOR`] old.
    pub async fn check(&self, store: &dyn Store) -> Result<(), Unhealthy> {
        // Held across the probe on purpose: concurrent checks queue here
        // and then find a fresh answer, so the store sees one read.
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < FRESH_FOR {
                return answer.clone();
            }
        }
        let answer = match tokio::time::timeout(PROBE_TIMEOUT, store.bounds()).await {
            Ok(Ok(bounds)) => {
                self.remember(bounds);
                Ok(())
            }
            Ok(Err(error)) => Err(Unhealthy::Store(chain(&error))),
            Err(_) => Err(Unhealthy::Store(format!(
                "no answer within {PROBE_TIMEOUT:?}"
            ))),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Keeps `bounds`, read just now (by a probe, or by the hub's start).
    pub fn remember(&self, bounds: Bounds) {
        *self.bounds.lock().unwrap_or_else(|e| e.into_inner()) = Some((bounds, Instant::now()));
    }

    /// The last bounds read successfully, and when; never waits.
    pub fn last_bounds(&self) -> Option<(Bounds, Instant)> {
        *self.bounds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error and its causes on one line. A cause whose text its parent
/// already printed (some errors show their source in their own `Display`)
/// is not repeated.
fn chain(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
