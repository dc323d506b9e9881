//! The dispatcher: one task that follows the store's log and fans each new
//! record out through the registry, plus the heartbeat ticker.
//!
//! Live delivery reads the same log as replay, on one node or (with a
//! shared store) in a cluster, so there is one seam to get right. Records
//! are taken in ready batches and dispatched under one registry lock per
//! batch; the lock is never held across an await.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_proto::Encoder;
use herald_store::{Cursor, ErrorKind};
use tokio::sync::watch;

use crate::hub::Shared;
use crate::subscriber::CloseReason;

/// Records dispatched under one registry lock.
const BATCH: usize = 256;

pub(crate) async fn run(shared: Arc<Shared>, mut after: Cursor, mut stop: watch::Receiver<bool>) {
    loop {
        let mut log = shared.store.follow(after).ready_chunks(BATCH);
        loop {
            let batch = tokio::select! {
                _ = stop.changed() => return,
                batch = log.next() => batch,
            };
            let Some(batch) = batch else {
                // The store was closed: nothing more will come.
                shared.registry().close_all(CloseReason::Shutdown, None);
                return;
            };
            let mut broke_off = false;
            {
                let mut registry = shared.registry();
                for item in batch {
                    match item {
                        Ok(record) => {
                            registry.dispatch(
                                &record,
                                &shared.config.url,
                                shared.config.max_pending_bytes,
                                &shared.counters,
                            );
                            after = record.cursor;
                        }
                        Err(err) => {
                            tracing::warn!("the live log broke off: {err}");
                            broke_off = true;
                            if err.kind() == ErrorKind::Trimmed {
                                // Records were trimmed before they were
                                // dispatched: every subscriber may have missed
                                // some. They reconnect and replay from their
                                // last id (or are told of the gap).
                                registry.close_all(CloseReason::Resync, None);
                            }
                            break;
                        }
                    }
                }
            }
            if broke_off {
                break;
            }
        }
        // Start again from the newest record: what was trimmed cannot be
        // dispatched, and subscribers were told to resync.
        tokio::time::sleep(Duration::from_millis(10)).await;
        match shared.store.bounds().await {
            Ok(bounds) => {
                after = bounds.head;
                // Whoever registered since the break expects live records
                // from the old position on: resync them too, in the same
                // lock as the move.
                let mut registry = shared.registry();
                registry.close_all(CloseReason::Resync, None);
                registry.dispatched = after;
            }
            Err(err) => tracing::warn!("cannot read the store's bounds: {err}"),
        }
    }
}

pub(crate) async fn heartbeat(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let frame: Bytes = Encoder::comment("");
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => shared.registry().heartbeat(&frame),
        }
    }
}
