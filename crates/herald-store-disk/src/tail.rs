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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use herald_store::{Cursor, Record};

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
#[derive(Debug, Default)]
pub(crate) struct Tail {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Consecutive cursors, oldest first.
    entries: VecDeque<Entry>,
    /// Id → cursor of every entry.
    ids: HashMap<Arc<str>, u64>,
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
            }
        }
    }
}
