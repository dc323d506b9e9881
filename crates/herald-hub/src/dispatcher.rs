//! The dispatcher: one task that follows the store's log and fans each new
//! record out through the registry, plus the heartbeat ticker.
//!
//! Live delivery reads the same log as replay, on one node or (with a
//! shared store) in a cluster, so there is one seam to get right. Records
//! are taken from the log in ready batches and dispatched one registry
//! lock each (never held across an await): a fan-out may write to
//! thousands of sockets under it (`direct`), and subscribers coming and
//! going wait for one record's fan-out at most, not a batch's.
//!
//! A batch of several records (publishes coming faster than one fan-out)
//! is written one write per subscriber, not one per record: the frames a
//! subscriber would be written directly are held in its queue until the
//! batch is dispatched, then released together. One record alone goes out
//! at once, as it is dispatched.
//!
//! When the follow fails, what the hub does depends on what was lost:
//!
//! - `Trimmed`: records were removed before they were dispatched, so every
//!   subscriber may have missed some; all are closed with
//!   [`CloseReason::Resync`] (they resume from their last id, or are told of
//!   the gap) and the dispatcher starts again from the head.
//! - Any other error (the store's engine or network failed): nothing is
//!   lost, the log is still there. The dispatcher follows again from the
//!   same cursor after a capped exponential backoff, counting the retries
//!   (`HubStats::follow_retries`); subscribers keep their streams and get
//!   every record once the store answers again. Resyncing everyone on a
//!   blip was rejected: it turns one failed read into a reconnect storm.
//! - The log ends (the store was closed): the hub closes itself, so new
//!   subscribes and publishes are refused instead of hanging forever.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_proto::Encoder;
use herald_store::{Cursor, ErrorKind, Record, StoreError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::presence;
use crate::state::Shared;
use crate::subscriber::{CloseReason, Subscriber};

/// Records taken from the log at once.
const BATCH: usize = 256;

/// The first wait before following the log again after it failed.
const RETRY_FIRST: Duration = Duration::from_millis(10);

/// The longest wait between two attempts: a store that is down for a while
/// is tried every few seconds, not hammered, and live delivery resumes at
/// most this long after it comes back.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// How one follow of the log ended.
enum Ended {
    /// The hub was dropped.
    Stopped,
    /// The store's live log ended: nothing more will ever come.
    StoreClosed,
    /// The follow failed with this error; `progressed` says whether it
    /// dispatched any record first.
    Failed { error: StoreError, progressed: bool },
}

pub(crate) async fn run(shared: Arc<Shared>, mut after: Cursor, mut stop: watch::Receiver<bool>) {
    let mut delay = RETRY_FIRST;
    loop {
        let started = Instant::now();
        let (error, progressed) = match follow(&shared, &mut after, &mut stop).await {
            Ended::Stopped => return,
            Ended::StoreClosed => {
                // The store was closed or dropped under the hub. Refuse what
                // can no longer work (subscribers would wait for records
                // that never come; publishes could not be delivered) and
                // end every stream, so clients retry elsewhere or later.
                tracing::warn!("the store's live log ended: the hub stops");
                let mut registry = shared.registry();
                registry.closed = true;
                registry.close_all(CloseReason::Shutdown, None);
                return;
            }
            Ended::Failed { error, progressed } => (error, progressed),
        };
        // A follow that worked for a while before failing starts the
        // backoff afresh: this is a new outage, not the same one.
        if progressed || started.elapsed() >= RETRY_MAX {
            delay = RETRY_FIRST;
        }
        if error.kind() == ErrorKind::Trimmed {
            tracing::warn!("the live log broke off: {error}");
            if !resync(&shared, &mut after).await {
                // The bounds could not be read: try again after a pause,
                // from the old position (which reports `Trimmed` again).
                let Some(next) = pause(delay, &mut stop).await else {
                    return;
                };
                delay = next;
            }
            continue;
        }
        // Any other error (a network blip, a busy disk) loses nothing: the
        // log is still there after `after`. Subscribers keep their streams
        // and get everything once the follow works again.
        shared.counters.follow_retries.fetch_add(1, Relaxed);
        tracing::warn!(
            "following the store's log failed ({error}); retrying from cursor {after} in {delay:?}"
        );
        let Some(next) = pause(delay, &mut stop).await else {
            return;
        };
        delay = next;
    }
}

/// Follows the log after `after`, dispatching every record, until it fails,
/// ends, or the hub stops. `after` tracks the last record dispatched.
async fn follow(shared: &Shared, after: &mut Cursor, stop: &mut watch::Receiver<bool>) -> Ended {
    let mut log = shared.store.follow(*after).ready_chunks(BATCH);
    let mut progressed = false;
    loop {
        let batch = tokio::select! {
            _ = stop.changed() => return Ended::Stopped,
            batch = log.next() => batch,
        };
        let Some(batch) = batch else {
            return Ended::StoreClosed;
        };
        // With several records at once, each subscriber's frames of the
        // batch go out in one write at its end, not one write each.
        let mut held = (batch.len() > 1).then(Vec::new);
        let ended = dispatch_batch(shared, batch, after, &mut progressed, held.as_mut());
        for subscriber in held.iter().flatten() {
            subscriber.release();
        }
        if let Some(ended) = ended {
            return ended;
        }
    }
}

/// Dispatches a batch of the log, one registry lock per record; `Some`
/// when the follow failed.
fn dispatch_batch(
    shared: &Shared,
    batch: Vec<Result<Record, StoreError>>,
    after: &mut Cursor,
    progressed: &mut bool,
    mut held: Option<&mut Vec<Arc<Subscriber>>>,
) -> Option<Ended> {
    for item in batch {
        let mut registry = shared.registry();
        match item {
            Ok(record) => {
                // Taken after the registry, as everywhere: the
                // subscriptions API reads it alone.
                if let Some(presence) = &shared.presence {
                    presence.lock().observe(presence, &record);
                }
                registry.dispatch(
                    &record,
                    &shared.config.url,
                    shared.config.max_pending_bytes,
                    &shared.counters,
                    held.as_deref_mut(),
                );
                *after = record.cursor;
                *progressed = true;
            }
            Err(error) => {
                if error.kind() == ErrorKind::Trimmed {
                    // Records were trimmed before they were dispatched:
                    // every subscriber may have missed some. They
                    // reconnect and replay from their last id (or are
                    // told of the gap).
                    registry.close_all(CloseReason::Resync, None);
                }
                return Some(Ended::Failed {
                    error,
                    progressed: *progressed,
                });
            }
        }
    }
    None
}

/// After records were trimmed under the dispatcher: starts again from the
/// newest record (what was trimmed cannot be dispatched) and resyncs every
/// subscriber. Returns false if the store's bounds could not be read.
async fn resync(shared: &Shared, after: &mut Cursor) -> bool {
    match shared.store.bounds().await {
        Ok(bounds) => {
            // The active subscriptions table missed the trimmed records
            // too: fold it again from what is retained, up to the head.
            let table = match &shared.presence {
                Some(presence) => {
                    match presence::Table::rebuilt(presence, shared.store.as_ref(), bounds.head)
                        .await
                    {
                        Ok(table) => Some(table),
                        Err(err) => {
                            tracing::warn!("cannot rebuild the active subscriptions: {err}");
                            return false;
                        }
                    }
                }
                None => None,
            };
            *after = bounds.head;
            // Whoever registered since the break expects live records from
            // the old position on: resync them too, in the same lock as the
            // move.
            let mut registry = shared.registry();
            tracing::info!(
                subscribers = registry.len(),
                "live delivery resumes at the newest record: every subscriber reconnects and replays from its last id"
            );
            registry.close_all(CloseReason::Resync, None);
            registry.dispatched = bounds.head;
            if let (Some(presence), Some(table)) = (&shared.presence, table) {
                *presence.lock() = table;
            }
            true
        }
        Err(err) => {
            tracing::warn!("cannot read the store's bounds: {err}");
            false
        }
    }
}

/// Waits `delay` and returns the next one (doubled, capped at
/// [`RETRY_MAX`]); `None` if the hub stopped meanwhile.
async fn pause(delay: Duration, stop: &mut watch::Receiver<bool>) -> Option<Duration> {
    tokio::select! {
        _ = stop.changed() => None,
        _ = tokio::time::sleep(delay) => Some((delay * 2).min(RETRY_MAX)),
    }
}

/// Heartbeats go out in this many slices of the subscribers, one slice
/// every `heartbeat / HEARTBEAT_SLICES`: each subscriber still gets one
/// per period, but the hub never wakes every idle connection at the same
/// instant (with 100,000 subscribers, one burst per period was the p99 of
/// the cluster bench, docs/performance.md).
const HEARTBEAT_SLICES: u64 = 16;

pub(crate) async fn heartbeat(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let frame: Bytes = Encoder::comment("");
    let tick = (every / HEARTBEAT_SLICES as u32).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut slice = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => {
                shared.registry().heartbeat(&frame, slice, HEARTBEAT_SLICES);
                slice = (slice + 1) % HEARTBEAT_SLICES;
            }
        }
    }
}
