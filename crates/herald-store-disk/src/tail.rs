//! The [`Tail`]: records that are durable in the write-ahead log but not yet
//! in redb's tables, held in memory so that they can be read, resolved and
//! followed at once.
//!
//! With [`Durability::Fsync`](crate::Durability::Fsync) an append is
//! acknowledged once its batch is fsynced in the log (`wal.rs`); the writer
//! thread copies the tail into redb later, many batches per transaction,
//! and drops what it copied. So the log's records are always in exactly
//! one of two places a reader can see: the tail (cursors from
//! [`Tail::first`] on, consecutive) or redb (everything before). A reader
//! locks the tail first and reads redb after: a record leaves the tail only
//! once its redb commit is visible, so whatever the tail no longer held at
//! the lock is in the snapshot read after it.
//!
//! A `std::sync::Mutex` and not an `RwLock` or a lock-free queue: every
//! critical section is a few clones of reference-counted records, the
//! writers are two threads, and measured contention is nil next to an
//! fsync.
//!
//! The tail is bounded ([`MAX_RECORDS`], [`MAX_BYTES`]): when the writer
//! falls behind (it runs at a lower priority, and redb slows down as its
//! index outgrows the cache), the log's appends wait for room
//! ([`Tail::wait_for_room`]) instead of the tail growing without end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use herald_store::{Cursor, Record};

/// Most records the tail holds before appends wait for the writer: four
/// of its largest transactions (65,536).
pub(crate) const MAX_RECORDS: usize = 4 * crate::writer::FOLD_MAX;

/// Most bytes of stored records (the `codec` form; the records readers
/// are given share their frames) the tail holds before appends wait.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;

/// One record of the tail: what the writer thread needs to index it, and
/// what readers are given.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) record: Record,
    /// The stored form (`codec` layout), as the log holds it.
    pub(crate) value: Arc<[u8]>,
    /// The record's own deadline (nanoseconds since the epoch), if it was
    /// appended with a `keep_for`.
    pub(crate) deadline: Option<u64>,
}

impl Entry {
    fn cursor(&self) -> u64 {
        self.record.cursor.get()
    }
}

/// The records not yet indexed, shared by the log thread (which pushes),
/// the writer thread (which indexes and drops) and readers.
#[derive(Debug)]
pub(crate) struct Tail {
    inner: Mutex<Inner>,
    /// Signalled when entries are dropped.
    room: Condvar,
    max_records: usize,
    max_bytes: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail::with_limits(MAX_RECORDS, MAX_BYTES)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Consecutive cursors, oldest first.
    entries: VecDeque<Entry>,
    /// Id → cursor of every entry.
    ids: HashMap<Arc<str>, u64>,
    /// The entries' stored bytes.
    bytes: usize,
}

impl Inner {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(Entry::cursor)
    }

    /// The position of the first entry after `after`.
    fn index_after(&self, after: u64) -> usize {
        match self.first() {
            Some(first) => usize::try_from(after.saturating_add(1).saturating_sub(first))
                .unwrap_or(usize::MAX)
                .min(self.entries.len()),
            None => 0,
        }
    }
}

/// What a reader saw of the tail, taken before it reads redb.
pub(crate) struct Seen {
    /// The tail's first cursor at the time: redb holds everything before
    /// it that is retained. `None` if the tail was empty.
    pub(crate) first: Option<Cursor>,
    /// Up to the asked number of records after the asked cursor, from the
    /// tail.
    pub(crate) records: Vec<Record>,
}

impl Tail {
    /// A tail that holds at most `max_records` records and `max_bytes`
    /// stored bytes before [`wait_for_room`](Tail::wait_for_room) waits.
    pub(crate) fn with_limits(max_records: usize, max_bytes: usize) -> Tail {
        Tail {
            inner: Mutex::default(),
            room: Condvar::new(),
            max_records,
            max_bytes,
        }
    }

    fn has_room(&self, inner: &Inner) -> bool {
        inner.entries.len() < self.max_records && inner.bytes < self.max_bytes
    }

    /// Whether a batch may be pushed now, without waiting.
    pub(crate) fn has_room_now(&self) -> bool {
        self.has_room(&self.lock())
    }

    /// Waits until the tail is below its bounds, at most `timeout`;
    /// returns whether it is. A batch may take the tail past its bounds
    /// (a batch is never split): the bound is checked before each push.
    pub(crate) fn wait_for_room(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        while !self.has_room(&inner) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = match self.room.wait_timeout(inner, left) {
                Ok((inner, _)) => inner,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // critical section is a push, a pop or clones): go on.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a batch the log has made durable. Its cursors follow the last
    /// entry's. Returns how many records were held before.
    pub(crate) fn push(&self, entries: Vec<Entry>) -> usize {
        let mut inner = self.lock();
        let before = inner.entries.len();
        for entry in entries {
            debug_assert!(inner
                .entries
                .back()
                .is_none_or(|last| last.cursor() + 1 == entry.cursor()));
            inner
                .ids
                .insert(Arc::clone(&entry.record.id), entry.cursor());
            inner.bytes += entry.value.len();
            inner.entries.push_back(entry);
        }
        before
    }

    /// The cursor an id has in the tail, if any.
    pub(crate) fn cursor_of(&self, id: &str) -> Option<u64> {
        self.lock().ids.get(id).copied()
    }

    /// The record an id has in the tail, if any.
    pub(crate) fn record_of(&self, id: &str) -> Option<Record> {
        let inner = self.lock();
        let cursor = *inner.ids.get(id)?;
        let at = inner.index_after(cursor - 1);
        inner.entries.get(at).map(|entry| entry.record.clone())
    }

    /// Up to `limit` records after `after`, and where the tail began.
    pub(crate) fn read_after(&self, after: u64, limit: usize) -> Seen {
        let inner = self.lock();
        let from = inner.index_after(after);
        Seen {
            first: inner.first().map(Cursor::new),
            records: inner
                .entries
                .range(from..)
                .take(limit)
                .map(|entry| entry.record.clone())
                .collect(),
        }
    }

    /// The first and last cursor held, if any.
    pub(crate) fn span(&self) -> Option<(Cursor, Cursor)> {
        let inner = self.lock();
        Some((
            Cursor::new(inner.first()?),
            inner.entries.back()?.record.cursor,
        ))
    }

    /// How many records are held.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Copies of up to `limit` of the oldest entries, for the writer to
    /// index.
    pub(crate) fn oldest(&self, limit: usize) -> Vec<Entry> {
        self.lock().entries.iter().take(limit).cloned().collect()
    }

    /// Drops the entries up to `through`, once redb's commit of them is
    /// visible.
    pub(crate) fn drop_through(&self, through: u64) {
        let mut inner = self.lock();
        while inner
            .entries
            .front()
            .is_some_and(|entry| entry.cursor() <= through)
        {
            if let Some(entry) = inner.entries.pop_front() {
                inner.ids.remove(&*entry.record.id);
                inner.bytes -= entry.value.len();
            }
        }
        drop(inner);
        self.room.notify_all();
    }
}

/// Entries made up for tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::SystemTime;

    use bytes::Bytes;
    use herald_store::{Cursor, NewRecord};

    use super::Entry;

    /// An entry at `cursor` whose frame and stored form are `bytes` long.
    pub(crate) fn entry(cursor: u64, bytes: usize) -> Entry {
        let record = NewRecord {
            id: format!("urn:{cursor}").into(),
            topics: vec!["t".to_owned()].into(),
            private: false,
            frame: Bytes::from(vec![b'x'; bytes]),
            keep_for: None,
        };
        Entry {
            record: record.into_record(Cursor::new(cursor), SystemTime::UNIX_EPOCH),
            value: vec![0; bytes].into(),
            deadline: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use super::testing::entry;
    use super::Tail;

    #[test]
    fn a_full_tail_waits_until_the_writer_drops_entries() {
        let tail = Arc::new(Tail::with_limits(2, 1 << 20));
        tail.push(vec![entry(1, 10)]);
        assert!(tail.has_room_now());
        tail.push(vec![entry(2, 10), entry(3, 10)]);
        assert!(!tail.has_room_now(), "three records, at most two");
        assert!(
            !tail.wait_for_room(Duration::from_millis(20)),
            "nobody drops"
        );

        let writer = {
            let tail = Arc::clone(&tail);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                tail.drop_through(2);
            })
        };
        assert!(tail.wait_for_room(Duration::from_secs(10)));
        assert_eq!(tail.len(), 1);
        writer.join().unwrap();
    }

    #[test]
    fn bytes_bound_the_tail_too() {
        let tail = Tail::with_limits(100, 1000);
        tail.push(vec![entry(1, 600)]);
        assert!(tail.has_room_now());
        tail.push(vec![entry(2, 600)]);
        assert!(!tail.has_room_now(), "1,200 bytes, at most 1,000");
        tail.drop_through(1);
        assert!(tail.has_room_now());
        tail.drop_through(2);
        assert_eq!(tail.len(), 0);
        assert!(tail.has_room_now());
    }
}
