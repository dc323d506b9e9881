//! [`NewRecord`] (what the hub appends) and [`Record`] (what the store holds).
//!
//! Both carry the update already encoded: the store never parses or re-encodes
//! a frame, it keeps the bytes the hub produced once at publish and hands the
//! same `Bytes` to every reader, so fan-out shares one allocation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::Cursor;

/// What the hub hands to [`Store::append`](crate::Store::append): an update
/// already encoded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// Public event id (hub-generated or custom). Unique among retained
    /// records: the store refuses an append whose id is taken
    /// ([`ErrorKind::DuplicateId`](crate::ErrorKind::DuplicateId)).
    pub id: Arc<str>,
    /// The update's topics: the canonical topic first, then alternates.
    pub topics: Arc<[String]>,
    /// Whether only subscribers granted one of the topics may receive it.
    pub private: bool,
    /// The complete encoded SSE frame (`id:`/`event:`/`data:` lines and the
    /// terminating blank line), stored and returned byte for byte.
    pub frame: Bytes,
    /// Per-record retention: remove the record once it is older than this,
    /// wherever it is in the log, even if the log-wide [`Retention`]
    /// would keep it (`None`: only the log-wide policy applies). The hub
    /// sets it from its per-topic rules (keep `chat/*` for an hour).
    ///
    /// [`Store::trim`](crate::Store::trim) applies it, finding the records
    /// due through an index kept at append (never by scanning the log).
    /// An expired record leaves the log quietly: reads, resolves and
    /// follows no longer see it, its id is free again, and it is not a
    /// gap ([`ErrorKind::Trimmed`](crate::ErrorKind::Trimmed) is only for
    /// records the log-wide policy removed from the oldest end), because
    /// the publisher asked for it to go.
    ///
    /// [`Retention`]: crate::Retention
    pub keep_for: Option<Duration>,
}

impl NewRecord {
    /// Turns this into the stored form, for backends: `cursor` is the
    /// position the backend assigned, `published_at` the time it recorded.
    pub fn into_record(self, cursor: Cursor, published_at: SystemTime) -> Record {
        // `keep_for` is the store's business from here: a backend indexes
        // it at append, readers never see it.
        Record {
            cursor,
            id: self.id,
            topics: self.topics,
            private: self.private,
            frame: self.frame,
            published_at,
        }
    }
}

/// A stored record. Cheap to clone: every field is `Copy`, an `Arc` or
/// `Bytes`, so handing one record to many subscribers copies no payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the hub-wide log, assigned by the store at append.
    pub cursor: Cursor,
    /// Public event id, as given in [`NewRecord::id`].
    pub id: Arc<str>,
    /// Topics, canonical first, as given in [`NewRecord::topics`].
    pub topics: Arc<[String]>,
    /// Whether the update is private, as given in [`NewRecord::private`].
    pub private: bool,
    /// The encoded SSE frame, as given in [`NewRecord::frame`].
    pub frame: Bytes,
    /// When the store appended it; non-decreasing in cursor order, which is
    /// what lets retention by age trim from the oldest end only.
    pub published_at: SystemTime,
}
