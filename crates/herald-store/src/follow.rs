//! [`follow_log`]: the live-follow loop behind every backend's
//! [`Store::follow`](crate::Store::follow), written once.
//!
//! A follower reads the log in batches after the last cursor it yielded;
//! when a read comes back empty it sleeps on the backend's head `watch`
//! until an append announces a new head. Reading the log is what makes a
//! slow follower catch up without skipping, and it is the same code for
//! history and live, so the seam between them has no gap. Polling the log
//! on a timer was rejected (latency or wasted reads, never both small), and
//! so was pushing records to followers from the appender (a slow follower
//! would then need an unbounded queue, or appends would wait for it).
//!
//! A backend supplies only what differs: its head `watch`, and how to read
//! one [`Batch`] from one consistent view of its log.
//!
//! ```
//! use futures_util::StreamExt;
//! use herald_store::follow::{follow_log, Batch};
//! use herald_store::Cursor;
//! use tokio::sync::watch;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A log that is always empty, and a head that never moves.
//! let (head_tx, head_rx) = watch::channel(Cursor::ZERO);
//! let mut follower = follow_log(head_rx, Cursor::ZERO, |_after| async {
//!     Some(Ok(Batch { records: Vec::new(), trimmed_through: Cursor::ZERO }))
//! });
//! drop(head_tx); // The store is gone: the follower ends.
//! assert!(follower.next().await.is_none());
//! # }
//! ```

use std::collections::VecDeque;
use std::future::Future;

use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use crate::{Cursor, ErrorKind, Record, StoreError};

/// One read of the log for a follower, from a single consistent view (one
/// lock, one snapshot, one transaction): taking both fields from the same
/// view is what makes the trim check exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Retained records with cursor > the one asked for, ascending, as many
    /// as the backend reads at a time; empty when there are none.
    ///
    /// Not used when `trimmed_through` is past the cursor asked for (the
    /// follower then reports `Trimmed`), so a backend may skip reading them.
    pub records: Vec<Record>,
    /// The highest cursor ever trimmed ([`Cursor::ZERO`] if none).
    /// Retention trims from the oldest end only, so a follower positioned at
    /// `after` has missed a record exactly when this is greater than `after`.
    pub trimmed_through: Cursor,
}

/// The live log after `after`, as [`Store::follow`](crate::Store::follow)
/// must return it, for a backend that announces every new head on `head`
/// and reads its log with `fetch`.
///
/// `fetch(after)` reads the next [`Batch`] after cursor `after`; it resolves
/// to `None` when the store is gone (dropped or closed), which ends the
/// stream, and to `Some(Err(..))` on a failed read, which the stream yields
/// before ending. The stream also ends when every sender of `head` is
/// dropped while it waits. A backend whose read never suspends can return
/// [`std::future::ready`].
///
/// `fetch` should not hold the store alive (keep a `Weak` handle in it):
/// followers must not keep a dropped store open.
///
/// # Cancel safety
///
/// The stream owns the in-flight read and wait, so dropping a pending
/// `next()` only pauses them; the next call resumes the same read.
pub fn follow_log<F, Fut>(
    head: watch::Receiver<Cursor>,
    after: Cursor,
    fetch: F,
) -> BoxStream<'static, Result<Record, StoreError>>
where
    F: FnMut(Cursor) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Result<Batch, StoreError>>> + Send + 'static,
{
    let follower = Follower {
        head,
        next: after,
        buffer: VecDeque::new(),
        finished: false,
        fetch,
    };
    stream::unfold(follower, Follower::step).boxed()
}

/// The state of one [`follow_log`] stream.
struct Follower<F> {
    head: watch::Receiver<Cursor>,
    /// Cursor of the last record yielded (or the starting `after`).
    next: Cursor,
    /// Records read from the log but not yet yielded.
    buffer: VecDeque<Record>,
    /// Set after yielding an error: the stream then ends.
    finished: bool,
    fetch: F,
}

impl<F, Fut> Follower<F>
where
    F: FnMut(Cursor) -> Fut,
    Fut: Future<Output = Option<Result<Batch, StoreError>>>,
{
    async fn step(mut self) -> Option<(Result<Record, StoreError>, Self)> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.next = record.cursor;
                return Some((Ok(record), self));
            }
            if self.finished {
                return None;
            }
            // Mark the current head as seen *before* reading the log: an
            // append that lands between the read and the sleep below then
            // makes `changed()` return at once (no lost wake-up), while
            // appends the read already returned do not wake it again.
            self.head.borrow_and_update();
            match (self.fetch)(self.next).await? {
                Ok(batch) if batch.trimmed_through > self.next => {
                    self.finished = true;
                    let error = StoreError::new(ErrorKind::Trimmed).with_message(format!(
                        "follower at cursor {} needs records up to {} that were trimmed",
                        self.next, batch.trimmed_through
                    ));
                    return Some((Err(error), self));
                }
                Ok(batch) if batch.records.is_empty() => {
                    // Caught up: sleep until the next append. An error means
                    // the sender (the store) is gone: end the stream.
                    self.head.changed().await.ok()?;
                }
                Ok(batch) => self.buffer = batch.records.into(),
                Err(error) => {
                    self.finished = true;
                    return Some((Err(error), self));
                }
            }
        }
    }
}
