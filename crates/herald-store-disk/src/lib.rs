//! The durable, embedded store of the Herald hub: the
//! [`herald_store::Store`] contract on [redb], for a single node.
//!
//! A [`DiskStore`] keeps the hub's ordered log of published updates in one
//! file, `DIR/herald.redb`, so that history survives restarts and crashes: a
//! subscriber that comes back with a `Last-Event-ID` from before a restart
//! resumes exactly where it was. redb provides the file format, checksummed
//! copy-on-write B-trees and crash recovery; this crate adds the log's
//! tables, group commit (one fsync shared by all concurrent publishers),
//! retention in bounded steps, and live following. It passes
//! `herald_store::testkit` unchanged.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::StreamExt;
//! use herald_store::{NewRecord, Store};
//! use herald_store_disk::{DiskOptions, DiskStore};
//!
//! fn update(id: &str) -> NewRecord {
//!     NewRecord {
//!         id: id.into(),
//!         topics: vec!["https://example.com/books/1".to_owned()].into(),
//!         private: false,
//!         frame: Bytes::from(format!("id: {id}\ndata: hello\n\n")),
//!         keep_for: None,
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = DiskStore::open(dir.path(), DiskOptions::default())?;
//! // Durable (fsynced) when `append` returns.
//! let first = store.append(update("urn:uuid:1")).await?;
//! let second = store.append(update("urn:uuid:2")).await?;
//! drop(store);
//!
//! // After a restart: the same records, and cursors keep increasing.
//! let store = DiskStore::open(dir.path(), DiskOptions::default())?;
//! assert_eq!(store.resolve("urn:uuid:1").await?, Some(first.cursor));
//! let mut live = store.follow(first.cursor);
//! assert_eq!(live.next().await.transpose()?, Some(second.clone()));
//! let third = store.append(update("urn:uuid:3")).await?;
//! assert!(third.cursor > second.cursor);
//! assert_eq!(live.next().await.transpose()?, Some(third));
//! store.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A server opens one store per data directory, runs
//! [`herald_store::spawn_retention`] on it once (the hub does, from its
//! `HubConfig::retention`), and calls [`close`](DiskStore::close) at
//! shutdown.
//!
//! # Durability
//!
//! [`DiskOptions::durability`] chooses what an acknowledged append (one
//! whose future returned `Ok`) survives:
//!
//! - [`Durability::Fsync`] (default): the record was fsynced before the
//!   answer, in an append-only write-ahead log (`DIR/wal/`) in front of the
//!   redb file. It survives `kill -9`, an OS crash and power loss, as far as
//!   the disk honours fsync. Concurrent appends share one log write and one
//!   `fdatasync` (group commit): throughput grows with the number of
//!   concurrent publishers, and a lone publisher waits one `fdatasync` per
//!   append. Answered records are readable at once (from memory); redb's
//!   tables catch up in the background, many batches per transaction, and
//!   are made durable about every [`DiskOptions::sync_interval`], after
//!   which the log's covered segments are deleted. [`DiskStore::open`]
//!   copies into redb whatever the log holds past redb's last durable
//!   commit, so a crash loses nothing that was answered.
//! - [`Durability::Deferred`]: the commit is visible to readers and followers
//!   at once, but not fsynced; a durable commit follows within
//!   [`DiskOptions::sync_interval`] (default 1 s), and at
//!   [`flush`](DiskStore::flush), [`close`](DiskStore::close) and when the
//!   last handle drops. A `kill -9` or crash loses the appends acknowledged
//!   since the last durable commit (at most about one interval's worth);
//!   what remains is always a consistent prefix of the log (redb falls back
//!   to its last durable commit), and cursors handed out to lost records are
//!   skipped, never reused (a durable cursor reservation, raised in blocks
//!   of 2^20). A clean shutdown loses nothing.
//!
//! In both modes: cursors are never reused, also after trimming everything
//! and across restarts; `published_at` never goes back, also across
//! restarts (unless the wall clock does while the store is closed).
//!
//! # Cancel safety
//!
//! Dropping an [`append`](herald_store::Store::append) or
//! [`append_batch`](herald_store::Store::append_batch) future after its first poll does
//! not withdraw the request: the writer still commits it, and nobody hears
//! the cursor. Do not cancel a publish you will acknowledge. Dropping a
//! [`trim`](herald_store::Store::trim) future stops the trim after its current step
//! (whatever was removed stays removed). Reads are cancel safe, and so is a
//! [`follow`](herald_store::Store::follow) stream's `next()`: a dropped call is resumed by
//! the next one; dropping the stream frees what it held at once.
//!
//! # Limits
//!
//! - One process, one directory: the file is locked while open, and a second
//!   [`DiskStore::open`] of the same directory fails instead of corrupting it.
//! - With [`Durability::Fsync`], throughput is bounded by the log's
//!   `fdatasync` (120–500 µs here): publishers that each await their answer
//!   split into two groups that alternate between writes, so expect about
//!   `publishers / (2 × fdatasync)` events per second, up to
//!   [`DiskOptions::max_batch_records`] per write. `docs/performance.md` and
//!   `docs/profiles/durable-publishes-round-two.md` have the measured
//!   figures.
//! - With [`Durability::Fsync`], answered records wait in memory until the
//!   writer thread has copied them into redb (within about 100 ms). That
//!   thread runs ten nice levels below the rest (Linux), so its copies do
//!   not preempt the threads that answer publishes on a busy core; if it
//!   falls behind by 65,536 records or 64 MiB, appends wait for it, and
//!   are refused with a backend error after 10 s (the hub answers 503).
//! - A data directory written with the log and then opened by a version
//!   without it after a crash (not after a clean shutdown, which leaves
//!   everything in redb) misses the appends only the log held.
//! - Event ids are indexed in a B-tree: ids that grow in publish order
//!   (time-ordered, like UUIDv7) are appended at its end, while random ids
//!   (UUIDv4) each rewrite a page somewhere in it, costing 2–3× the
//!   append throughput on a small history and up to 5× once the index
//!   outgrows [`DiskOptions::cache_size`]. A hub that generates ids should
//!   generate time-ordered ones.
//! - On disk a record takes about twice its encoded size (redb splits full
//!   leaves in half, so append-only B-trees are about half full), e.g.
//!   ~1 GB for 1M records with 250-byte frames. Trimmed pages are reused by
//!   later appends; the file shrinks only when free space is at its end.
//! - After an unclean shutdown, [`DiskStore::open`] runs redb's repair,
//!   which walks the whole file (about 1 s for that 1 GB file here); a clean
//!   shutdown reopens in milliseconds. Retention bounds both.
//! - Retention runs in the background ([`herald_store::spawn_retention`]),
//!   not on append: between runs the log may exceed its limits by one
//!   interval's worth. Each trim runs on the writer thread in transactions
//!   of at most [`DiskOptions::trim_batch`] removals, interleaved with
//!   append batches, so publishers wait one step at most.
//! - Ids are unique among retained records: an append whose id is taken is
//!   refused with [`DuplicateId`](herald_store::ErrorKind::DuplicateId),
//!   checked in the group commit's transaction (one index lookup per
//!   record), so of two requests with one id in the same commit the first
//!   goes in and only the second is refused. A file written before this
//!   rule may hold an id twice: [`resolve`](herald_store::Store::resolve)
//!   then finds the earliest. An id must be under 4 GiB.
//!
//! [redb]: https://docs.rs/redb

mod appender;
mod codec;
mod error;
mod options;
mod schema;
mod stats;
mod store;
mod tail;
mod wal;
mod writer;

pub use options::{DiskOptions, Durability, ParseDurabilityError};
pub use stats::Stats;
pub use store::DiskStore;
