//! The [`Store`] trait: the contract every backend implements.
//!
//! It is deliberately small and backend-neutral: an append-only log with
//! cursors, an id index, retention and a live tail. Everything Mercure-shaped
//! (topics matching, grants, the history→live seam) lives in the hub, on top.

use futures_util::stream::BoxStream;

use crate::{Bounds, Cursor, NewRecord, Record, Retention, StoreError};

/// One ordered, hub-wide log of published updates.
///
/// Implementations: [`MemoryStore`](crate::MemoryStore) here; the embedded
/// disk store and the Redis Streams store in their own crates. Every
/// implementation must pass the contract suite in `testkit` (cargo feature
/// `testkit`).
///
/// # Cancel safety
///
/// Dropping an `append`/`append_batch` future before it completes leaves it
/// unknown whether the records were appended (a durable backend may have
/// written them already): do not cancel a publish you must acknowledge.
/// Read-only methods are cancel safe. See [`follow`](Store::follow) for its
/// stream.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Appends one record, assigning the next cursor and `published_at`.
    ///
    /// When it returns `Ok`, the record is as durable as the backend promises
    /// and visible to every reader and follower. The returned record is
    /// exactly what later reads return (same cursor, fields and
    /// `published_at`).
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError>;

    /// Appends several records in order, in one batch where the backend can
    /// (one lock, one transaction, one fsync). Returns them in the same
    /// order, with increasing cursors. An empty batch appends nothing.
    ///
    /// The default implementation loops over [`append`](Store::append).
    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        let mut appended = Vec::with_capacity(records.len());
        for record in records {
            appended.push(self.append(record).await?);
        }
        Ok(appended)
    }

    /// Up to `limit` retained records with cursor > `after`, ascending.
    ///
    /// Records trimmed after `after` are simply absent: use
    /// [`bounds`](Store::bounds) or [`follow`](Store::follow) to detect a gap.
    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// The cursor of the earliest retained record whose id is `id` (ids may
    /// repeat: the earliest wins, as the Mercure spec requires). `None` if the
    /// id is unknown or all its records were trimmed.
    ///
    /// Backends answer from an index, never by scanning the log, so a
    /// `Last-Event-ID` lookup stays cheap however long the history is.
    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError>;

    /// The retained range.
    async fn bounds(&self) -> Result<Bounds, StoreError>;

    /// The live log: every record with cursor > `after`, in order, without
    /// gaps or duplicates, forever.
    ///
    /// The stream first catches up by reading the log, then waits for new
    /// appends (without polling). A slow consumer catches up the same way, so
    /// it never skips a record that is still retained. The stream ends when
    /// the store is dropped or closed.
    ///
    /// If a record with cursor > `after` that the stream has not yielded yet
    /// was trimmed (before or during the follow), the stream yields an error
    /// of kind [`Trimmed`](crate::ErrorKind::Trimmed) instead of skipping it.
    /// After yielding any error the stream ends; follow again from the last
    /// cursor seen to retry. To replay everything retained, follow from
    /// [`Bounds::before_oldest`], not [`Cursor::ZERO`].
    ///
    /// # Cancel safety
    ///
    /// Dropping a pending `next()` on the stream (e.g. in `select!`) loses
    /// nothing: the next call resumes where it was. Dropping the stream ends
    /// the follow and releases what it held.
    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>>;

    /// Applies `retention` now: removes records beyond `max_events` from the
    /// oldest end and records older than `max_age`. Returns how many were
    /// removed.
    ///
    /// The head's cursor counter is never reset: cursors are not reused even
    /// if everything is trimmed.
    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError>;
}
