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
/// disk store in `herald-store-disk`; the cluster store on Redis Streams in
/// `herald-store-redis`. Every implementation must pass the contract
/// suite in `testkit` (cargo feature `testkit`).
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
    ///
    /// # Errors
    ///
    /// [`DuplicateId`](crate::ErrorKind::DuplicateId) if a retained record
    /// already has this id: ids are unique among retained records, so a
    /// `Last-Event-ID` names one position and a resume from it gives no
    /// duplicates. The check and the append are one atomic step (one lock,
    /// one transaction, one script), so two concurrent appends of the same
    /// id cannot both succeed. Once every record with an id has been trimmed
    /// by retention, the id may be used again: the store keeps no memory of
    /// trimmed ids (that would grow without bound), and a client resuming
    /// from the old occurrence is told of a gap either way.
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError>;

    /// Appends several records in order, in one batch where the backend can
    /// (one lock, one transaction, one fsync). Returns them in the same
    /// order, with increasing cursors. An empty batch appends nothing.
    ///
    /// All or nothing: if one record's id is already retained, or repeats an
    /// earlier record of the same batch, the whole batch is refused with
    /// [`DuplicateId`](crate::ErrorKind::DuplicateId) and nothing of it is
    /// appended. There is no default implementation, because a loop over
    /// [`append`](Store::append) would leave a refused batch half appended.
    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError>;

    /// Up to `limit` retained records with cursor > `after`, ascending.
    ///
    /// Records trimmed after `after` are simply absent: use
    /// [`bounds`](Store::bounds) or [`follow`](Store::follow) to detect a gap.
    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// The cursor of the retained record whose id is `id`; `None` if the id
    /// is unknown or its record was trimmed. (Ids are unique among retained
    /// records; should a backend's older data hold an id twice, the earliest
    /// wins, as the Mercure spec requires.)
    ///
    /// Backends answer from an index, never by scanning the log, so a
    /// `Last-Event-ID` lookup stays cheap however long the history is.
    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError>;

    /// The retained record that [`resolve`](Store::resolve) would point at,
    /// whole: what the hub needs to check that a subscriber may see the
    /// cursor it resumes from (a private record's id must not be confirmed
    /// to a subscriber without a grant for it).
    ///
    /// One index lookup and one read from one consistent view (one lock,
    /// one snapshot, one round trip for a network store). There is no
    /// default built from `resolve` then `read_after`: that would be two
    /// round trips, and a trim between them could return the wrong record.
    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError>;

    /// The retained range.
    async fn bounds(&self) -> Result<Bounds, StoreError>;

    /// Whether appends take their places in the log in the order their
    /// futures are first polled: an append polled once is ahead of every
    /// append first polled after it, even before either is done. The hub's
    /// HTTP side relies on it to hand a connection's pipelined publishes
    /// to the store together (one commit for them all) and still have
    /// them appended in the order they were sent. A store that cannot
    /// promise it (one whose append starts with a round trip) keeps the
    /// default, `false`, and such publishes are appended one after the
    /// other.
    fn appends_in_poll_order(&self) -> bool {
        false
    }

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
    /// oldest end and records older than `max_age`; and, whatever
    /// `retention` says (unlimited too), every record whose own
    /// [`NewRecord::keep_for`] has run out, wherever it is in the log,
    /// found through an index rather than a scan. Returns how many were
    /// removed.
    ///
    /// Expired records leave quietly: they do not count as trimmed for
    /// [`follow`](Store::follow) (no [`Trimmed`](crate::ErrorKind::Trimmed)
    /// error), since their publisher asked for them to go.
    ///
    /// The head's cursor counter is never reset: cursors are not reused even
    /// if everything is trimmed.
    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError>;

    /// Makes everything appended durable and releases the backend (flushes
    /// and closes files, closes connections). After it, appends fail with
    /// [`Closed`](crate::ErrorKind::Closed) and live follows end. Closing
    /// twice is not an error.
    ///
    /// The default does nothing: a backend whose appends are durable when
    /// they return, and that holds nothing to release, needs no more.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
