//! The redb tables this crate keeps, and what each key means.
//!
//! | table | key → value | holds |
//! | --- | --- | --- |
//! | `events` | cursor (`u64`) → record (`codec` layout) | the log; a range scan from a cursor is "read after" |
//! | `ids` | `codec::id_key` (`&[u8]`) → `()` | one entry per retained record: resolve is the first key of an id's range |
//! | `meta` | name (`&str`) → `u64` | the counters below |
//! | `expiry` | (deadline in ns since the epoch, cursor) → `()` | one entry per record appended with a `keep_for`, soonest first |
//!
//! There is no age index for the log-wide retention: cursor order is
//! publish order and `published_at` never decreases along it, so the
//! records to trim by age are always a prefix of `events`, found by reading
//! the oldest first. Per-record deadlines (`NewRecord::keep_for`) fall
//! anywhere in the log, hence `expiry`: a trim reads its first keys up to
//! "now" and removes those records. An entry whose record the log-wide
//! retention removed first stays until its deadline (then finds nothing).
//!
//! The write-ahead log (`wal.rs`, `DIR/wal/`) was added without a new
//! schema version either: redb's tables and layouts did not change, a
//! directory without `wal/` has nothing to replay, and a clean shutdown
//! leaves everything in redb.
//!
//! `expiry` was added without a new schema version: it is created at open
//! when missing, and a file without it has no deadlines to keep.
//!
//! A multimap `id → cursors` was the other candidate for `ids`; a plain table
//! with composite keys was kept because removing one (id, cursor) pair is an
//! ordinary delete, and the earliest cursor is an ordinary range start.

use redb::TableDefinition;

/// The log: cursor → encoded record.
pub(crate) const EVENTS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("events");

/// The id index: (id, cursor) composite key → nothing.
pub(crate) const IDS: TableDefinition<'static, &[u8], ()> = TableDefinition::new("ids");

/// Per-record deadlines: (deadline in nanoseconds since the epoch, cursor).
pub(crate) const EXPIRY: TableDefinition<'static, (u64, u64), ()> = TableDefinition::new("expiry");

/// Counters that must survive restarts.
pub(crate) const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");

/// `meta` key: a floor for the head (the last cursor handed out). The head
/// is the larger of this and the last key of `events`; this key only has to
/// hold it when `events` does not, so it is written by trims (which may
/// remove the newest record) and at open, not by every append: one table
/// fewer rewritten per group commit.
pub(crate) const HEAD: &str = "head";

/// `meta` key: the highest cursor any append may have handed out that a
/// crash could un-persist. With `Durability::Deferred`, a commit that would hand
/// out cursors above it is made durable and raises it by [`RESERVE_BLOCK`]
/// first; at open, the next cursor starts above it. So cursors acknowledged
/// by non-durable commits that a crash then lost are skipped, never reused.
pub(crate) const RESERVED: &str = "reserved";

/// `meta` key: the highest cursor trimmed so far. A follower positioned
/// before it has missed records and gets `ErrorKind::Trimmed`.
pub(crate) const TRIMMED_THROUGH: &str = "trimmed_through";

/// `meta` key: the schema version of this file (tables and their layouts).
pub(crate) const SCHEMA: &str = "schema";

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// How far a durable commit raises [`RESERVED`] past the head with
/// `Durability::Deferred`: one extra durable commit per this many appends (a
/// rounding error next to the periodic sync), and the most cursors a crash
/// skips.
pub(crate) const RESERVE_BLOCK: u64 = 1 << 20;

/// The file inside the data directory.
pub(crate) const FILE_NAME: &str = "herald.redb";
