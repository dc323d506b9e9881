//! [`Follower`]: the state machine behind [`DiskStore::follow`](herald_store::Store::follow).
//!
//! The same shape as `MemoryStore`'s: read the log in batches after the last
//! cursor yielded; when a read comes back empty, sleep on the head `watch`
//! until the writer announces a commit. Polling the file on a timer was
//! rejected (latency or wasted reads, never both small), and so was pushing
//! records to followers from the writer (a slow follower would then need an
//! unbounded queue, or the writer would wait for it). Reading the log is
//! what makes a slow follower catch up without skipping, and it is the same
//! code for history and live, so the seam has no gap.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures_util::stream::{self, BoxStream, StreamExt};
use herald_store::{Cursor, ErrorKind, Record, StoreError};
use tokio::sync::watch;

use crate::store::{read_after, trimmed_through, Shared};

/// How many records a follower reads per read transaction: enough that a
/// catching-up follower pays the blocking-pool hand-off rarely, few enough
/// that it holds at most a few hundred records in memory.
const FOLLOW_BATCH: usize = 256;

/// The state of one follow stream.
pub(crate) struct Follower {
    /// Weak, so that followers do not keep a dropped store open.
    shared: Weak<Shared>,
    head_rx: watch::Receiver<Cursor>,
    /// Cursor of the last record yielded (or the starting `after`).
    next: Cursor,
    /// Records read but not yet yielded.
    buffer: VecDeque<Record>,
    /// Set after yielding an error: the stream then ends.
    finished: bool,
}

impl Follower {
    pub(crate) fn start(
        shared: &Arc<Shared>,
        after: Cursor,
    ) -> BoxStream<'static, Result<Record, StoreError>> {
        let follower = Follower {
            shared: Arc::downgrade(shared),
            head_rx: shared.head_rx.clone(),
            next: after,
            buffer: VecDeque::new(),
            finished: false,
        };
        stream::unfold(follower, Follower::step).boxed()
    }

    async fn step(mut self) -> Option<(Result<Record, StoreError>, Self)> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.next = record.cursor;
                return Some((Ok(record), self));
            }
            if self.finished {
                return None;
            }
            // Mark the current head as seen *before* reading: a commit that
            // lands between the read and the sleep below then wakes the
            // sleep at once (no lost wake-up).
            self.head_rx.borrow_and_update();
            match self.fetch().await? {
                Ok(batch) if batch.is_empty() => {
                    // Caught up. An error means the writer is gone (store
                    // dropped or closed): end the stream.
                    self.head_rx.changed().await.ok()?;
                }
                Ok(batch) => self.buffer = batch.into(),
                Err(error) => {
                    self.finished = true;
                    return Some((Err(error), self));
                }
            }
        }
    }

    /// Reads the next batch, or `Trimmed` if records after `next` are gone,
    /// from one snapshot. `None` if the store was dropped or closed.
    ///
    /// Cancel safety comes from `unfold`: the stream owns the in-flight
    /// `step` future, so a dropped `next()` only pauses it, and the next
    /// call resumes the same read.
    async fn fetch(&self) -> Option<Result<Vec<Record>, StoreError>> {
        let shared = self.shared.upgrade()?;
        if shared.closed.load(Ordering::Acquire) {
            return None;
        }
        let next = self.next;
        let result = shared
            .read(move |txn| {
                let trimmed = trimmed_through(txn)?;
                if trimmed > next {
                    return Err(StoreError::new(ErrorKind::Trimmed).with_message(format!(
                        "follower at cursor {next} needs records up to {trimmed} that were trimmed"
                    )));
                }
                read_after(txn, next, FOLLOW_BATCH)
            })
            .await;
        match result {
            Err(error) if error.kind() == ErrorKind::Closed => None,
            result => Some(result),
        }
    }
}
