//! The storage contract of the Herald hub: one ordered, hub-wide log of
//! published updates.
//!
//! Every update the hub accepts is appended to the log once, already encoded
//! as an SSE frame, and gets a [`Cursor`]: a position that only grows and is
//! never reused. Everything else is reading that log: replaying history after
//! a `Last-Event-ID` ([`Store::resolve`] then [`Store::read_after`]), and live
//! delivery ([`Store::follow`]), which is the same log read as it grows, so
//! the seam between history and live has no gap and no duplicate, on one node
//! or in a cluster alike. Retention ([`Retention`], [`Store::trim`]) removes
//! records from the oldest end only.
//!
//! This crate holds the [`Store`] trait, its value types, the error type, the
//! in-memory backend [`MemoryStore`], the live-follow loop backends build
//! [`Store::follow`] from ([`follow::follow_log`]), and (cargo feature
//! `testkit`) the contract suite that every backend must pass. Durable
//! backends live in their own crates: `herald-store-disk` (one node, redb)
//! and `herald-store-redis` (a cluster's shared log on Redis Streams).
//! Nothing here knows HTTP or the Mercure wire format.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::StreamExt;
//! use herald_store::{Cursor, MemoryStore, NewRecord, Store};
//!
//! fn update(id: &str, data: &str) -> NewRecord {
//!     NewRecord {
//!         id: id.into(),
//!         topics: vec!["https://example.com/books/1".to_owned()].into(),
//!         private: false,
//!         frame: Bytes::from(format!("id: {id}\ndata: {data}\n\n")),
//!         keep_for: None,
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald_store::StoreError> {
//! let store = MemoryStore::new();
//! let first = store.append(update("urn:uuid:1", "hello")).await?;
//! let second = store.append(update("urn:uuid:2", "world")).await?;
//! assert!(first.cursor < second.cursor);
//!
//! // History: everything after the id a subscriber last saw.
//! let after = store.resolve("urn:uuid:1").await?.expect("retained");
//! let replay = store.read_after(after, 100).await?;
//! assert_eq!(replay, [second.clone()]);
//! assert_eq!(&replay[0].frame[..], b"id: urn:uuid:2\ndata: world\n\n");
//!
//! // Live: the same log, followed as it grows.
//! let mut live = store.follow(second.cursor);
//! let third = store.append(update("urn:uuid:3", "again")).await?;
//! assert_eq!(live.next().await.transpose()?, Some(third));
//! # Ok(())
//! # }
//! ```
//!
//! # Cancel safety
//!
//! Dropping an [`append`](Store::append) future before it completes leaves
//! it unknown whether the record was appended (a durable backend may already
//! have written it), so the hub must not cancel a publish it will answer.
//! [`MemoryStore::append`](Store::append) itself never suspends, so with it a
//! record is appended exactly when the future completes.
//!
//! A [`follow`](Store::follow) stream is cancel safe: dropping a pending
//! `next()` (in `select!`, or on a timeout) loses nothing, and dropping the
//! stream ends the follow and frees what it held at once.
//!
//! # Limits
//!
//! - Ids are unique among *retained* records: an append whose id is taken
//!   is refused ([`ErrorKind::DuplicateId`]). Once a record is trimmed its id
//!   is free again; the store does not remember trimmed ids.
//! - A follower that falls behind past retention gets an error of kind
//!   [`ErrorKind::Trimmed`] instead of a silent gap; the hub decides what to
//!   tell the subscriber.

mod bounds;
mod cursor;
mod error;
pub mod follow;
pub mod memory;
mod record;
mod retention;
mod store;
#[cfg(feature = "testkit")]
pub mod test_server;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bounds::Bounds;
pub use cursor::Cursor;
pub use error::{ErrorKind, StoreError};
pub use memory::MemoryStore;
pub use record::{NewRecord, Record};
pub use retention::{spawn_retention, Retention};
pub use store::Store;
