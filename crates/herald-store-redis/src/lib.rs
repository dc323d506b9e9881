//! The clustered store of the Herald hub: the [`herald_store::Store`]
//! contract on one Redis Stream, shared by every `herald serve` node.
//!
//! One stream is the hub-wide log. Every record is an entry whose id is
//! `0-<cursor>`, with the cursor taken from an `INCR` counter in the same
//! Lua script as the `XADD` and the id index (a hash from event id to
//! cursor). Redis runs a script as one step, so cursors are gap-free and
//! ordered across all nodes, a duplicate id is refused atomically, and a
//! batch is stored whole or not at all. History is `XRANGE` after a cursor;
//! [`follow`](Store::follow) replays that way, then blocks in `XREAD` on a
//! connection of its own; [`trim`](Store::trim) removes records from the
//! oldest end, their index entries with them, in a script. Redis's clock
//! stamps `published_at`, so all nodes share one clock.
//!
//! TLS and AUTH come with the URL (`redis://user:password@host:6379/0`);
//! see the [`redis`] crate for the URL forms.
//!
//! # Example
//!
//! ```no_run
//! use herald_store::{NewRecord, Store};
//! use herald_store_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald_store::StoreError> {
//! // Every node of one hub connects with the same prefix.
//! let store = RedisStore::connect("redis://127.0.0.1:6379/", "herald").await?;
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
//! - Cursors and stamps pass through Lua's doubles: exact below 2^53
//!   (a million appends a second for 285 years).
//! - An append is acknowledged once Redis has it in memory; how durable that
//!   is depends on Redis's `appendonly`/`appendfsync` and replicas.
//! - A Redis that lost acknowledged records (restarted without its data,
//!   lost the tail of its AOF, failed over to a replica that lagged) is
//!   detected by the next call of any node that had seen them: the counter
//!   is moved back up so no cursor is handed out twice, and the history up
//!   to the loss counts as trimmed, so whoever resumes into it is told of a
//!   gap (see the `scripts` module). A node that started after the loss and
//!   appended before the others noticed may see those few records reported
//!   as trimmed too: a gap is reported where none was, never the reverse.
//! - One `XREAD` connection per [`follow`](Store::follow) call: the hub
//!   makes one per node, which is what this is for; a follow per subscriber
//!   would be a connection per subscriber.
//! - `rediss://` needs one of the `redis` crate's TLS features, not enabled
//!   here yet.

mod entry;
mod error;
mod follow;
mod keys;
mod scripts;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::BoxStream;
use herald_store::{Bounds, Cursor, ErrorKind, NewRecord, Record, Retention, Store, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use tokio::sync::watch;

use crate::entry::{decode_entries, encode_topics, number, time_of};
use crate::error::from_redis;
use crate::keys::Keys;

/// How many records one trim script removes at most: a trim of millions of
/// records is many short scripts, never one that stalls Redis (and every
/// node) for seconds.
const TRIM_CHUNK: u64 = 1_000;

/// The longest `keep_for` given to Redis, in microseconds: 2^52, so that
/// a deadline (now + this) stays exact in Lua's doubles.
const MAX_KEEP_MICROS: i64 = 1 << 52;

/// How long one command may take before it fails: well above a large batch
/// or a trim chunk on a loaded Redis, well below a client's patience.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis Streams [`Store`]: a cheap `Clone` handle; all clones share one
/// connection manager (multiplexed, reconnecting).
///
/// Handles made by separate [`connect`](RedisStore::connect) calls with the
/// same prefix (on one node or many) see one log. Followers end when the
/// last clone of the handle they came from is dropped.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    connection: ConnectionManager,
    keys: Keys,
    /// `true` once [`close`](Store::close) ran; dropped with the last
    /// handle. Either ends followers.
    closed: watch::Sender<bool>,
    /// This, for the background sweep a restore starts.
    me: Weak<Shared>,
    /// The highest cursor this handle has seen appended, read or followed:
    /// the floor below which the log's counter must never be (see
    /// `scripts`, "A log that went back").
    seen: AtomicU64,
}

impl RedisStore {
    /// Connects to the Redis at `url` and uses the log under `prefix` (its
    /// keys are `{prefix}:log`, `{prefix}:seq`, ...: one hash slot).
    ///
    /// # Errors
    ///
    /// [`Backend`](herald_store::ErrorKind::Backend) if the URL is invalid,
    /// [`Unavailable`](herald_store::ErrorKind::Unavailable) if Redis cannot
    /// be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(from_redis)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(from_redis)?;
        Ok(RedisStore {
            shared: Arc::new_cyclic(|me| Shared {
                client,
                connection,
                keys: Keys::new(prefix),
                closed: watch::Sender::new(false),
                me: me.clone(),
                seen: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("log", &self.shared.keys.log)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A handle on the shared connection, or `Closed` after
    /// [`close`](Store::close).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if *self.closed.borrow() {
            return Err(StoreError::new(ErrorKind::Closed));
        }
        // A clone is a handle on the same multiplexed connection.
        Ok(self.connection.clone())
    }

    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = scripts::APPEND.prepare_invoke();
        invocation
            .key(&self.keys.log)
            .key(&self.keys.seq)
            .key(&self.keys.ids)
            .key(&self.keys.last_ts)
            .key(&self.keys.trimmed)
            .key(&self.keys.expiry)
            .arg(self.floor())
            .arg(records.len());
        for record in &records {
            // Lua's numbers are doubles: a deadline is kept exact below
            // 2^53 µs (285 years), so longer is as good as forever.
            let keep_for = record.keep_for.map_or(-1, |keep| {
                i64::try_from(keep.as_micros())
                    .map_or(MAX_KEEP_MICROS, |micros| micros.min(MAX_KEEP_MICROS))
            });
            invocation
                .arg(record.id.as_bytes())
                .arg(if record.private { "1" } else { "0" })
                .arg(encode_topics(&record.topics))
                .arg(&record.frame[..])
                .arg(keep_for);
        }
        let reply: Vec<Value> = invocation
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(from_redis)?;
        match reply.as_slice() {
            [Value::Int(0), Value::BulkString(id), restored] => {
                self.restored(restored);
                Err(StoreError::duplicate_id(&String::from_utf8_lossy(id)))
            }
            [Value::Int(1), last, ts, restored] => {
                self.restored(restored);
                let last = number(last, "the appended cursor")?;
                self.saw(last);
                let published_at = time_of(number(ts, "the append's stamp")?);
                let count = records.len() as u64;
                let first = last
                    .checked_sub(count - 1)
                    .filter(|first| *first > 0)
                    .ok_or_else(|| StoreError::corrupt("the cursor counter is behind the log"))?;
                Ok(records
                    .into_iter()
                    .zip(first..)
                    .map(|(record, cursor)| record.into_record(Cursor::new(cursor), published_at))
                    .collect())
            }
            _ => Err(StoreError::corrupt(format!(
                "unexpected append reply {reply:?}"
            ))),
        }
    }

    /// The trim mark and up to `limit` retained records after `after`, in
    /// one step.
    async fn read_batch(
        &self,
        after: Cursor,
        limit: usize,
    ) -> Result<(Cursor, Vec<Record>), StoreError> {
        // Past the last possible cursor nothing follows (and Redis refuses
        // an exclusive start at the maximum id).
        let after = if after.get() < u64::MAX {
            after.to_string()
        } else {
            String::new()
        };
        // Redis takes a signed 64-bit count.
        let count = i64::try_from(limit).unwrap_or(i64::MAX);
        let reply: Vec<Value> = scripts::READ
            .key(&self.keys.log)
            .key(&self.keys.trimmed)
            .key(&self.keys.seq)
            .arg(self.floor())
            .arg(after)
            .arg(count)
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(from_redis)?;
        let [trimmed, entries, restored] = <[Value; 3]>::try_from(reply)
            .map_err(|_| StoreError::corrupt("unexpected read reply"))?;
        self.restored(&restored);
        let trimmed = number(&trimmed, "the trim mark")?;
        let records = decode_entries(entries)?;
        self.saw(records.last().map_or(trimmed, |record| record.cursor.get()));
        Ok((Cursor::new(trimmed), records))
    }

    /// The floor this handle passes to the scripts.
    fn floor(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Notes that the log had a record at `cursor`.
    pub(crate) fn saw(&self, cursor: u64) {
        self.seen.fetch_max(cursor, Ordering::Relaxed);
    }

    /// Acts on a script's restore answer: `-1` if the counter was in step,
    /// else the counter Redis had before the script moved it up to this
    /// handle's floor. Records up to the floor are now trimmed: says so,
    /// and sweeps the survivors below the mark out of Redis's memory in the
    /// background (reads already skip them).
    fn restored(&self, restored: &Value) {
        let Value::Int(before) = *restored else {
            return;
        };
        let Ok(before) = u64::try_from(before) else {
            return;
        };
        tracing::warn!(
            log = %self.keys.log,
            counter = before,
            floor = self.floor(),
            "redis lost acknowledged records (cursors {} to {}): it restarted without \
             its data, failed over to a replica that lagged, or the keys were deleted; \
             the history up to cursor {} is dropped so that every client resuming into \
             it is told of the gap",
            before + 1,
            self.floor(),
            self.floor(),
        );
        tokio::spawn(sweep(self.me.clone()));
    }

    /// Runs the trim script once: removes up to [`TRIM_CHUNK`] records
    /// below the trim mark, then by `retention`, then past their deadline.
    /// Returns how many were removed and whether more may be due.
    async fn trim_chunk(&self, retention: &Retention) -> Result<(u64, bool), StoreError> {
        let max_events = retention
            .max_events
            .map_or(-1, |max| i64::try_from(max).unwrap_or(i64::MAX));
        let max_age = retention
            .max_age
            .map_or(-1, |age| i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
        let (removed, work): (u64, u64) = scripts::TRIM
            .key(&self.keys.log)
            .key(&self.keys.ids)
            .key(&self.keys.trimmed)
            .key(&self.keys.expiry)
            .arg(max_events)
            .arg(max_age)
            .arg(TRIM_CHUNK)
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(from_redis)?;
        Ok((removed, work >= TRIM_CHUNK))
    }
}

/// Removes the records a restore left below the trim mark, chunk by chunk.
async fn sweep(shared: Weak<Shared>) {
    let everything = Retention::default();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.trim_chunk(&everything).await {
            Ok((_, false)) => return,
            Ok((_, true)) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot sweep the records below the trim mark");
                return;
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (_, records) = self.shared.read_batch(after, limit).await?;
        Ok(records)
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        let reply: Value = scripts::RESOLVE
            .key(&self.shared.keys.ids)
            .key(&self.shared.keys.trimmed)
            .arg(id)
            .invoke_async(&mut self.shared.connection()?)
            .await
            .map_err(from_redis)?;
        match reply {
            Value::Nil => Ok(None),
            value => Ok(Some(Cursor::new(number(&value, "an indexed cursor")?))),
        }
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let reply: Value = scripts::RESOLVE_RECORD
            .key(&self.shared.keys.log)
            .key(&self.shared.keys.ids)
            .key(&self.shared.keys.trimmed)
            .arg(id)
            .invoke_async(&mut self.shared.connection()?)
            .await
            .map_err(from_redis)?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let mut records = decode_entries(reply)?;
        match records.pop() {
            Some(record) if records.is_empty() && &*record.id == id => Ok(Some(record)),
            None => Err(StoreError::corrupt(format!(
                "the index names a record for {id:?} that is not in the log"
            ))),
            Some(_) => Err(StoreError::corrupt(format!(
                "the index names the wrong record for {id:?}"
            ))),
        }
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        let reply: Vec<Value> = scripts::BOUNDS
            .key(&self.shared.keys.log)
            .key(&self.shared.keys.seq)
            .key(&self.shared.keys.trimmed)
            .arg(self.shared.floor())
            .invoke_async(&mut self.shared.connection()?)
            .await
            .map_err(from_redis)?;
        let (restored, head, oldest) = match reply.as_slice() {
            [restored, head] => (restored, head, None),
            [restored, head, Value::BulkString(oldest)] => {
                (restored, head, Some(entry::cursor_of(oldest)?))
            }
            _ => return Err(StoreError::corrupt("unexpected bounds reply")),
        };
        self.shared.restored(restored);
        let head = number(head, "the head")?;
        self.shared.saw(head);
        Ok(Bounds {
            oldest,
            head: Cursor::new(head),
        })
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        follow::follow(
            Arc::downgrade(&self.shared),
            self.shared.client.clone(),
            self.shared.keys.log.clone(),
            self.shared.closed.subscribe(),
            after,
        )
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let (chunk, more) = self.shared.trim_chunk(retention).await?;
            removed += chunk;
            if !more {
                return Ok(removed);
            }
        }
    }

    /// Every append was in Redis when it returned, so there is nothing to
    /// flush: closing refuses further calls (`Closed`) and ends this
    /// handle's followers, which drop their connections. The shared
    /// connection goes with the last clone of the handle.
    async fn close(&self) -> Result<(), StoreError> {
        self.shared.closed.send_replace(true);
        Ok(())
    }
}
