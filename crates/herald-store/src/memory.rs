//! [`MemoryStore`]: the in-memory backend.
//!
//! For tests, demos and hubs that accept losing history on restart. It is
//! also the reference implementation of the [`Store`] contract: the simplest
//! code that passes the `testkit` suite.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use futures_util::stream::BoxStream;
use tokio::sync::watch;

use crate::follow::{follow_log, Batch};
use crate::{Bounds, Cursor, NewRecord, Record, Retention, Store, StoreError};

/// How many records a follower copies out per lock. Large enough that a
/// catching-up follower takes the lock rarely, small enough that it never
/// holds the lock (and blocks publishers) for long.
const FOLLOW_BATCH: usize = 256;

/// The in-memory [`Store`]: a cheap `Clone` handle; all clones share one log.
///
/// History lives as long as any handle does. With
/// [`with_retention`](MemoryStore::with_retention), `max_events` is enforced on
/// every append, so memory stays bounded without a background task;
/// `max_age` is applied by [`trim`](Store::trim).
///
/// Followers do not keep the log alive: when the last handle is dropped,
/// every [`follow`](Store::follow) stream ends.
///
/// ```
/// use herald_store::{MemoryStore, Retention, Store};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), herald_store::StoreError> {
/// let store = MemoryStore::with_retention(Retention { max_events: Some(2), max_age: None });
/// for id in ["a", "b", "c"] {
///     store.append(herald_store::NewRecord {
///         id: id.into(),
///         topics: vec!["t".to_owned()].into(),
///         private: false,
///         frame: bytes::Bytes::from(format!("id: {id}\ndata: x\n\n")),
///         keep_for: None,
///     }).await?;
/// }
/// assert_eq!(store.len(), 2);
/// assert_eq!(store.resolve("a").await?, None); // trimmed on the third append
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// A std mutex, not `tokio::sync::Mutex`: every critical section is a few
    /// pointer moves and never awaits, so an async mutex would only add
    /// overhead (the reasoning of mini-redis's `db.rs`). Never hold it across
    /// an `.await`.
    state: Mutex<State>,
    /// The head cursor, published after every append. Followers use it as a
    /// doorbell: a `watch` remembers which value a receiver has seen, so an
    /// append between "the log looked caught up" and "go to sleep" still wakes
    /// the follower (a bare `Notify::notify_waiters` would lose it). When the
    /// last handle drops, the sender drops and sleeping followers end.
    head_tx: watch::Sender<Cursor>,
    /// Applied on append (`max_events` only: age needs a clock sweep).
    retention: Retention,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(Retention::default())
    }
}

impl Shared {
    fn new(retention: Retention) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            head_tx: watch::Sender::new(Cursor::ZERO),
            retention,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section can panic halfway through an update (they only
        // push, pop and index; allocation failure aborts), so a poisoned lock
        // still guards a consistent log: keep serving rather than cascade the
        // panic to every publisher and follower.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends all of `records` or, if one's id is taken, none of them: the
    /// ids are checked and the records pushed under one lock, so concurrent
    /// appends of one id cannot both pass the check.
    fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.check_ids(&records)?;
        let appended: Vec<Record> = records
            .into_iter()
            .map(|record| state.push(record, now))
            .collect();
        if let Some(max_events) = self.retention.max_events {
            state.trim_to_count(max_events);
        }
        if !appended.is_empty() {
            // Sent under the lock so the head values followers see never go
            // backwards between concurrent appenders.
            self.head_tx.send_replace(state.head);
        }
        Ok(appended)
    }
}

/// The log proper; only ever touched under [`Shared::state`].
struct State {
    /// Retained records, ascending by cursor.
    records: VecDeque<Record>,
    /// Id index: the cursor of the retained record with each id. Ids are
    /// unique among retained records (appends of a taken id are refused), so
    /// one cursor per id; the entry goes when its record is trimmed, which
    /// frees the id for reuse.
    ids: HashMap<Arc<str>, Cursor>,
    /// Last cursor handed out; never decreases, never reset by trimming.
    head: Cursor,
    /// Highest cursor ever trimmed. Trimming is always from the oldest end,
    /// so a follower at `next` has missed a record iff this is > `next`.
    trimmed_through: Cursor,
    /// `published_at` of the latest append, to keep timestamps
    /// non-decreasing even if the wall clock steps back.
    last_published: SystemTime,
    /// The expiry index: (when, cursor) of every record appended with a
    /// [`NewRecord::keep_for`], soonest first. An entry whose record the
    /// log-wide policy removed first stays until its time comes (then it
    /// finds nothing): a few bytes, gone by the record's own deadline.
    expiring: BTreeSet<(SystemTime, Cursor)>,
}

impl Default for State {
    fn default() -> Self {
        State {
            records: VecDeque::new(),
            ids: HashMap::new(),
            head: Cursor::ZERO,
            trimmed_through: Cursor::ZERO,
            last_published: SystemTime::UNIX_EPOCH,
            expiring: BTreeSet::new(),
        }
    }
}

impl State {
    fn push(&mut self, record: NewRecord, now: SystemTime) -> Record {
        // u64 cursors cannot overflow in practice (a billion appends a second
        // for 500 years), so plain `+ 1` rather than an error path.
        let cursor = Cursor::new(self.head.get() + 1);
        // Retention by age trims from the front only, which requires
        // timestamps that never go down: clamp a clock that stepped back.
        let published_at = now.max(self.last_published);
        // A deadline past what `SystemTime` holds is never: no entry.
        if let Some(at) = record
            .keep_for
            .and_then(|keep| published_at.checked_add(keep))
        {
            self.expiring.insert((at, cursor));
        }
        let record = record.into_record(cursor, published_at);
        // `check_ids` ran first: the id is free, nothing is overwritten.
        self.ids.insert(Arc::clone(&record.id), cursor);
        self.records.push_back(record.clone());
        self.head = cursor;
        self.last_published = published_at;
        record
    }

    /// Refuses `records` if one's id is retained or repeats an earlier one
    /// of the same batch. One hash lookup per record; a set only for
    /// batches, where a repeat inside the batch is possible.
    fn check_ids(&self, records: &[NewRecord]) -> Result<(), StoreError> {
        let mut batch: HashSet<&str> = HashSet::new();
        for record in records {
            let repeated = records.len() > 1 && !batch.insert(&record.id);
            if repeated || self.ids.contains_key(&*record.id) {
                return Err(StoreError::duplicate_id(&record.id));
            }
        }
        Ok(())
    }

    fn pop_oldest(&mut self) -> Option<Record> {
        let record = self.records.pop_front()?;
        if self.ids.get(&*record.id) == Some(&record.cursor) {
            self.ids.remove(&*record.id);
        }
        self.trimmed_through = record.cursor;
        Some(record)
    }

    fn trim_to_count(&mut self, max_events: u64) -> u64 {
        let mut removed = 0;
        // `len` fits in u64 on every platform Rust supports.
        while self.records.len() as u64 > max_events {
            self.pop_oldest();
            removed += 1;
        }
        removed
    }

    fn trim(&mut self, retention: &Retention, now: SystemTime) -> u64 {
        let mut removed = retention
            .max_events
            .map_or(0, |max_events| self.trim_to_count(max_events));
        if let Some(max_age) = retention.max_age {
            while let Some(oldest) = self.records.front() {
                // A record stamped in the future (clock stepped back) counts
                // as brand new: never trim it early.
                match now.duration_since(oldest.published_at) {
                    Ok(age) if age > max_age => {
                        self.pop_oldest();
                        removed += 1;
                    }
                    _ => break,
                }
            }
        }
        removed + self.expire(now)
    }

    /// Removes the records whose [`NewRecord::keep_for`] has run out by
    /// `now`, wherever they are in the log. Not a trim from the oldest end:
    /// `trimmed_through` stays, so followers are not told of a gap.
    fn expire(&mut self, now: SystemTime) -> u64 {
        let mut due = Vec::new();
        while let Some(&(at, cursor)) = self.expiring.first() {
            if at > now {
                break;
            }
            self.expiring.pop_first();
            due.push(cursor);
        }
        if due.is_empty() {
            return 0;
        }
        due.sort_unstable();
        let before = self.records.len();
        let ids = &mut self.ids;
        // One pass over the log for the whole run, not a shift per record.
        self.records.retain(|record| {
            let expired = due.binary_search(&record.cursor).is_ok();
            if expired && ids.get(&*record.id) == Some(&record.cursor) {
                ids.remove(&*record.id);
            }
            !expired
        });
        (before - self.records.len()) as u64
    }

    fn read_after(&self, after: Cursor, limit: usize) -> Vec<Record> {
        // Cursors are ascending, so a binary search finds the start in
        // O(log n) without assuming they are contiguous.
        let start = self
            .records
            .partition_point(|record| record.cursor <= after);
        self.records.range(start..).take(limit).cloned().collect()
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            oldest: self.records.front().map(|record| record.cursor),
            head: self.head,
        }
    }
}

impl MemoryStore {
    /// An empty store that keeps everything until [`trim`](Store::trim).
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store that enforces `retention.max_events` on every append
    /// (dropping the oldest records), keeping memory bounded. `max_age` is
    /// applied only by [`trim`](Store::trim) (e.g. from a periodic task).
    pub fn with_retention(retention: Retention) -> Self {
        MemoryStore {
            shared: Arc::new(Shared::new(retention)),
        }
    }

    /// The retention applied on append.
    pub fn retention(&self) -> &Retention {
        &self.shared.retention
    }

    /// How many records are retained.
    pub fn len(&self) -> usize {
        self.shared.lock().records.len()
    }

    /// Whether no record is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bounds = self.shared.lock().bounds();
        f.debug_struct("MemoryStore")
            .field("bounds", &bounds)
            .field("len", &self.len())
            .field("retention", &self.shared.retention)
            .finish()
    }
}

// The method bodies never await: each takes the lock once, synchronously, so
// none can be cancelled halfway (append is all-or-nothing here).
#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        let mut appended = self.shared.append(vec![record])?;
        appended
            .pop()
            .ok_or_else(|| StoreError::corrupt("append produced no record"))
    }

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        self.shared.append(records)
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        Ok(self.shared.lock().read_after(after, limit))
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self.shared.lock().ids.get(id).copied())
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let state = self.shared.lock();
        let Some(&cursor) = state.ids.get(id) else {
            return Ok(None);
        };
        // Retained cursors are ascending: a binary search finds it.
        let record = state
            .records
            .binary_search_by_key(&cursor, |record| record.cursor)
            .ok()
            .and_then(|at| state.records.get(at).cloned());
        Ok(record)
    }

    /// An append is done within its first poll.
    fn appends_in_poll_order(&self) -> bool {
        true
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        Ok(self.shared.lock().bounds())
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        // Weak, so that followers do not keep a dropped store's log alive.
        let shared = Arc::downgrade(&self.shared);
        follow_log(self.shared.head_tx.subscribe(), after, move |after| {
            // One lock for the trim mark and the records, released before
            // the follower awaits anything.
            let batch = shared.upgrade().map(|shared| {
                let state = shared.lock();
                Ok(Batch {
                    records: state.read_after(after, FOLLOW_BATCH),
                    trimmed_through: state.trimmed_through,
                })
            });
            std::future::ready(batch)
        })
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        Ok(self.shared.lock().trim(retention, SystemTime::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> NewRecord {
        NewRecord {
            id: id.into(),
            topics: vec!["t".to_owned()].into(),
            private: false,
            frame: bytes::Bytes::from_static(b"data: x\n\n"),
            keep_for: None,
        }
    }

    #[test]
    fn state_read_after_uses_cursor_not_position() {
        let mut state = State::default();
        let now = SystemTime::now();
        for id in ["a", "b", "c", "d"] {
            state.push(record(id), now);
        }
        state.trim_to_count(2);
        assert_eq!(state.trimmed_through, Cursor::new(2));
        let ids =
            |records: Vec<Record>| records.iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(state.read_after(Cursor::ZERO, 10)), ["c", "d"]);
        assert_eq!(ids(state.read_after(Cursor::new(3), 10)), ["d"]);
        assert_eq!(
            ids(state.read_after(Cursor::new(4), 10)),
            Vec::<String>::new()
        );
        assert_eq!(ids(state.read_after(Cursor::ZERO, 1)), ["c"]);
    }

    #[test]
    fn published_at_never_goes_back() {
        let mut state = State::default();
        let now = SystemTime::now();
        let first = state.push(record("a"), now);
        let earlier = now - std::time::Duration::from_secs(60);
        let second = state.push(record("b"), earlier);
        assert_eq!(second.published_at, first.published_at);
    }

    #[test]
    fn index_drops_entries_when_trimmed() {
        let mut state = State::default();
        let now = SystemTime::now();
        state.push(record("a"), now);
        state.push(record("b"), now);
        state.trim_to_count(1);
        assert_eq!(state.ids.len(), 1);
        assert!(
            state.check_ids(&[record("a")]).is_ok(),
            "a trimmed id is free"
        );
        state.trim_to_count(0);
        assert!(state.ids.is_empty());
        assert!(state.records.is_empty());
        assert_eq!(state.head, Cursor::new(2));
    }

    #[test]
    fn check_ids_refuses_retained_and_repeated_ids() {
        let mut state = State::default();
        state.push(record("a"), SystemTime::now());
        let kind = |result: Result<(), StoreError>| result.map_err(|error| error.kind());
        assert_eq!(
            kind(state.check_ids(&[record("a")])),
            Err(crate::ErrorKind::DuplicateId)
        );
        assert_eq!(
            kind(state.check_ids(&[record("b"), record("b")])),
            Err(crate::ErrorKind::DuplicateId)
        );
        assert_eq!(kind(state.check_ids(&[record("b"), record("c")])), Ok(()));
    }
}
