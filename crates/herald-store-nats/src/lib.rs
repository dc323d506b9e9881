//! A clustered store of the Herald hub: the [`herald_store::Store`]
//! contract on one NATS JetStream stream, shared by every `herald serve`
//! node.
//!
//! One stream is the hub-wide log, one message per record: the stream
//! sequence is the cursor, the subject `<name>.id.<sha256(id)>` is the id
//! index (JetStream keeps an index of the last message per subject, so a
//! `Last-Event-ID` is resolved with one lookup, never a scan), and the
//! payload carries the record (see the `envelope` module). An append
//! publishes with two expectations JetStream checks atomically before it
//! stores anything: that no message holds the id's subject, and that the
//! stream's last sequence is the one the node knows (see `append`). The
//! first is the duplicate-id check; the second makes the appends of every
//! node one chain, so a batch occupies consecutive sequences, and readers
//! can tell a complete batch from one that broke halfway (see `batch`): a
//! NATS 2.9 server has no atomic multi-message publish. Retention finds
//! its cut from the stream's state and purges up to it, after raising a
//! trim mark kept in a second stream (see `mark` and `trim`), so followers
//! report records trimmed under them as a gap; records whose own
//! `keep_for` ran out are found through an expiry index (a third stream,
//! see `expiry`) and deleted one by one, quietly. Live follow is
//! [`herald_store::follow::follow_log`] over range reads, woken by a core
//! NATS doorbell every node rings after its appends (see `head`).
//!
//! Credentials and TLS come with the URL: `nats://user:password@host:4222`,
//! `nats://token@host:4222`, `tls://host:4222`.
//!
//! # Example
//!
//! ```no_run
//! use herald_store::{NewRecord, Store};
//! use herald_store_nats::NatsStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald_store::StoreError> {
//! // Every node of one hub connects with the same log name.
//! let store = NatsStore::connect("nats://127.0.0.1:4222", "herald").await?;
//! let record = store
//!     .append(NewRecord {
//!         id: "urn:uuid:1".into(),
//!         topics: vec!["https://example.com/books/1".to_owned()].into(),
//!         private: false,
//!         frame: bytes::Bytes::from_static(b"id: urn:uuid:1\ndata: hello\n\n"),
//!         keep_for: None,
//!     })
//!     .await?;
//! assert_eq!(store.resolve("urn:uuid:1").await?, Some(record.cursor));
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! - Appends are serialized across the whole cluster (each node's under a
//!   lock, nodes against each other by JetStream's expected last
//!   sequence, retrying when another node appended first): correct and
//!   ordered, but the cluster's publish rate is bounded by one round trip
//!   to the stream leader per append.
//! - An append is acknowledged once JetStream has stored it: on one
//!   server, written to its file store (fsynced on the server's own
//!   schedule, not per message, in NATS 2.9); with `replicas` 3, on a
//!   majority of the stream's peers. docs/cluster.md says what that means.
//! - `published_at` is stamped with the appending node's clock, clamped to
//!   never go below the record before it: nodes' clocks should agree
//!   (NTP); retention by age compares them with the trimming node's clock.
//! - A record is one NATS message: a frame larger than the server's
//!   `max_payload` (1 MiB by default) is refused; a batch holds at most
//!   65,536 records.
//! - A stream deleted or recreated under running nodes starts its
//!   sequences again: the nodes' followers, waiting after the old head,
//!   would not see the new records until they are past it. Do not delete
//!   the stream of a running hub.

mod append;
mod batch;
mod envelope;
mod error;
mod expiry;
mod head;
mod log;
mod mark;
mod names;
#[cfg(feature = "testkit")]
pub mod testkit;
mod trim;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures_util::stream::{BoxStream, StreamExt};
use herald_store::follow::{follow_log, Batch};
use herald_store::{Bounds, Cursor, ErrorKind, NewRecord, Record, Retention, Store, StoreError};
use tokio::sync::watch;

pub use crate::error::Malformed;
use crate::names::Names;

/// How many records a follower reads at a time.
const FOLLOW_BATCH: usize = 256;

/// How long one JetStream request may take before it fails as
/// `Unavailable`: well above a loaded server's answer, well below a
/// client's patience.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How the streams are created, when the first node creates them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Replicas of each stream (1, or 3 or 5 in a NATS cluster): how many
    /// servers hold every record, a majority of which have it when an
    /// append is acknowledged. Default 1.
    pub replicas: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { replicas: 1 }
    }
}

impl Options {
    /// Sets [`replicas`](Options::replicas).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }
}

/// The NATS JetStream [`Store`]: a cheap `Clone` handle; all clones share
/// one connection.
///
/// Handles made by separate [`connect`](NatsStore::connect) calls with the
/// same name (on one node or many) see one log. Followers end when the last
/// clone of the handle they came from is dropped, or at
/// [`close`](Store::close).
#[derive(Clone)]
pub struct NatsStore {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// The records' stream.
    records: stream::Stream,
    /// The trim mark's stream.
    marks: stream::Stream,
    /// The expiry index's stream.
    expiry: stream::Stream,
    names: Names,
    /// This node's view of the stream's tail, under the append lock (see
    /// `append`): a tokio mutex, because it is held across the publishes.
    tail: tokio::sync::Mutex<Option<append::Tail>>,
    /// The head followers sleep on (see `head`); taken at close, which
    /// ends them.
    head: Mutex<Option<watch::Sender<Cursor>>>,
    /// `true` once closed; dropped with the last handle. Either ends the
    /// head tracker.
    closed: watch::Sender<bool>,
}

impl NatsStore {
    /// Connects to the NATS at `url` and uses the log called `name`
    /// (streams `<name>`, `<name>_mark` and `<name>_expiry`, created with default
    /// [`Options`] if they do not exist).
    ///
    /// # Errors
    ///
    /// [`Backend`](ErrorKind::Backend) if the URL or name is invalid or
    /// JetStream refuses the streams,
    /// [`Unavailable`](ErrorKind::Unavailable) if NATS cannot be reached.
    pub async fn connect(url: &str, name: &str) -> Result<Self, StoreError> {
        NatsStore::connect_with(url, name, &Options::default()).await
    }

    /// As [`connect`](NatsStore::connect), creating missing streams with
    /// `options` (existing streams are used as they are).
    ///
    /// # Errors
    ///
    /// As [`connect`](NatsStore::connect).
    pub async fn connect_with(
        url: &str,
        name: &str,
        options: &Options,
    ) -> Result<Self, StoreError> {
        let names = Names::new(name)?;
        let client = async_nats::ConnectOptions::new()
            .name("herald")
            .request_timeout(Some(REQUEST_TIMEOUT))
            .connect(url)
            .await
            .map_err(error::connect)?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(REQUEST_TIMEOUT);
        let records = jetstream
            .get_or_create_stream(stream::Config {
                name: names.stream.clone(),
                subjects: vec![names.records.clone()],
                // The id index: one record per id. A new record on a
                // subject replaces a stale one (see `append`).
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                description: Some("Herald: the hub-wide log of published updates".into()),
                ..Default::default()
            })
            .await
            .map_err(error::create_stream)?;
        let marks = jetstream
            .get_or_create_stream(stream::Config {
                name: names.mark_stream.clone(),
                subjects: vec![names.mark.clone()],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                description: Some("Herald: the highest cursor retention trimmed".into()),
                ..Default::default()
            })
            .await
            .map_err(error::create_stream)?;
        let expiry = jetstream
            .get_or_create_stream(stream::Config {
                name: names.expiry_stream.clone(),
                subjects: vec![names.expiry_all.clone()],
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                description: Some("Herald: records to delete when their keep_for runs out".into()),
                ..Default::default()
            })
            .await
            .map_err(error::create_stream)?;
        let doorbell = client
            .subscribe(names.head.clone())
            .await
            .map_err(StoreError::unavailable)?;
        let (closed, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            client,
            jetstream,
            records,
            marks,
            expiry,
            names,
            tail: tokio::sync::Mutex::new(None),
            head: Mutex::new(Some(watch::Sender::new(Cursor::ZERO))),
            closed,
        });
        shared.saw_head(shared.state().await?.last);
        tokio::spawn(head::track(Arc::downgrade(&shared), doorbell, closed_rx));
        Ok(NatsStore { shared })
    }
}

impl fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsStore")
            .field("stream", &self.shared.names.stream)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn head_lock(&self) -> MutexGuard<'_, Option<watch::Sender<Cursor>>> {
        // Nothing panics while holding it (a take or a send).
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// `Closed` after [`close`](Store::close), `Unavailable` while the
    /// client is not connected.
    fn check_open(&self) -> Result<(), StoreError> {
        if self.is_closed() {
            return Err(StoreError::new(ErrorKind::Closed));
        }
        self.check_connected()
    }

    fn check_connected(&self) -> Result<(), StoreError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(error::disconnected()),
        }
    }

    /// One follower read: the records after `after` and, if some are
    /// missing there, the trim mark read after them.
    async fn follow_batch(&self, after: Cursor) -> Result<Batch, StoreError> {
        self.check_open()?;
        let bound = self.head_now();
        let read = self.read(after.get(), FOLLOW_BATCH, bound, None).await?;
        let gap = match read.first_found {
            Some(first) => first > after.get().saturating_add(1),
            None => bound > after.get(),
        };
        let trimmed_through = if gap { self.mark().await?.0 } else { 0 };
        Ok(Batch {
            records: read.records,
            trimmed_through: Cursor::new(trimmed_through),
        })
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.check_open()?;
        let Some(stored) = self.get_last(&self.names.subject_of(id)).await? else {
            return Ok(None);
        };
        if &*stored.record.id != id {
            return Ok(None);
        }
        if stored.pending_until().is_some() {
            let head = self.state().await?.last;
            if !self.is_complete(&stored, head).await? {
                return Ok(None);
            }
        }
        Ok(Some(stored.record))
    }
}

#[async_trait::async_trait]
impl Store for NatsStore {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        let mut appended = self.shared.append(vec![record]).await?;
        appended
            .pop()
            .ok_or_else(|| StoreError::corrupt("append produced no record"))
    }

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        self.shared.append(records).await
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.shared.check_open()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let state = self.shared.state().await?;
        let after = after.get().max(state.first.saturating_sub(1));
        let read = self
            .shared
            .read(after, limit, state.last, Some(state.last))
            .await?;
        Ok(read.records)
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self
            .shared
            .resolve_record(id)
            .await?
            .map(|record| record.cursor))
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.shared.resolve_record(id).await
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        self.shared.check_open()?;
        let (state, (mark, _)) = tokio::try_join!(self.shared.state(), self.shared.mark())?;
        self.shared.saw_head(state.last);
        let oldest = state.first.max(mark.saturating_add(1));
        Ok(Bounds {
            oldest: (state.messages > 0 && oldest <= state.last).then_some(Cursor::new(oldest)),
            head: Cursor::new(state.last),
        })
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        let Some(head) = self
            .shared
            .head_lock()
            .as_ref()
            .map(watch::Sender::subscribe)
        else {
            return futures_util::stream::empty().boxed();
        };
        // Weak, so that followers do not keep a dropped store open.
        let shared = Arc::downgrade(&self.shared);
        follow_log(head, after, move |after| {
            let shared = shared.upgrade();
            async move {
                let shared = shared.filter(|shared| !shared.is_closed())?;
                Some(shared.follow_batch(after).await)
            }
        })
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        self.shared.trim(retention).await
    }

    /// Every append was stored by JetStream when it returned, so there is
    /// nothing to flush: closing refuses further calls (`Closed`) and ends
    /// this handle's followers. The connection goes with the last clone of
    /// the handle.
    async fn close(&self) -> Result<(), StoreError> {
        self.shared.closed.send_replace(true);
        self.shared.head_lock().take();
        Ok(())
    }
}
