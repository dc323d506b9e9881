//! The writer thread: the one place that writes to the database, doing group
//! commit for appends and bounded steps for trims.
//!
//! redb allows one write transaction at a time, and a durable commit costs
//! an fsync (milliseconds on most disks). So every write goes through one
//! dedicated thread fed by a channel: when it is free, it takes the append
//! requests already queued (up to [`DiskOptions::max_batch_records`] /
//! [`max_batch_bytes`](DiskOptions::max_batch_bytes)), writes them all in
//! one transaction, commits once, and only then answers each waiter through
//! its oneshot. It never waits for a batch to fill: under light load a
//! batch is one request and its latency one commit; under heavy load the
//! requests that queued during one commit share the next, so throughput
//! grows with concurrency while latency stays about two commits.
//!
//! Rejected alternatives:
//! - `spawn_blocking` per append, each `begin_write`ing: redb serialises
//!   write transactions on a lock, so N appenders would park N blocking-pool
//!   threads, each paying its own fsync, one after another: no batching at
//!   all, and up to 512 threads parked on a mutex.
//! - A tokio task as the writer: commits block for an fsync, which must not
//!   happen on a runtime worker; a dedicated `std::thread` also keeps the
//!   store usable from any runtime (or several).
//! - A bounded channel for backpressure: every request has a caller awaiting
//!   its reply, so the queue never holds more than one request per concurrent
//!   caller; the hub bounds those (connections). `std::sync::mpsc` is used
//!   because its `recv_timeout` drives the periodic sync of
//!   `Durability::Deferred` without a second timer thread.
//!
//! Trims run as jobs on the same thread, one transaction of at most
//! [`DiskOptions::trim_batch`] removals per step, with an append batch taken
//! between steps whenever appends are queued, so a big trim never holds
//! publishers back for more than one step.
//!
//! The thread ends when every [`DiskStore`](crate::DiskStore) handle is
//! dropped (the channel disconnects) or on [`Command::Close`]; either way it
//! makes everything durable first. Requests still queued at a close are
//! dropped with their oneshot senders, so their callers get `Closed`.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use herald_store::{Cursor, NewRecord, Record, Retention, StoreError};
use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};
use tokio::sync::{oneshot, watch};

use crate::codec;
use crate::error::{context, engine};
use crate::options::{DiskOptions, Durability};
use crate::schema::{EVENTS, EXPIRY, HEAD, IDS, META, RESERVED, RESERVE_BLOCK, TRIMMED_THROUGH};
use crate::stats::Counters;
use crate::tail::Tail;
use crate::wal;

/// A request to the writer thread.
pub(crate) enum Command {
    /// Append records (in order, in one transaction) and answer with them.
    Append {
        records: Records,
        reply: oneshot::Sender<Result<Appended, StoreError>>,
    },
    /// Apply a retention policy as of `now`; answer with how many records
    /// were removed.
    Trim {
        retention: Retention,
        now: SystemTime,
        /// The last cursor appended when it was asked (set by the
        /// appender; `u64::MAX` without the log): the trim counts the
        /// records up to it, not those appended since.
        as_of: u64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Make every commit so far durable.
    Flush {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Make every commit so far durable, then stop serving.
    Close {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// From the appender: the tail has records to index (it was empty, or
    /// has grown past [`FOLD_AT`](crate::appender::FOLD_AT)).
    Index,
}

/// The records of one append request. A single `append` is by far the
/// common case, so it travels without a `Vec` allocation.
pub(crate) enum Records {
    One(NewRecord),
    Many(Vec<NewRecord>),
}

impl Records {
    pub(crate) fn len(&self) -> usize {
        match self {
            Records::One(_) => 1,
            Records::Many(records) => records.len(),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        let size = |record: &NewRecord| record.frame.len() + record.id.len();
        match self {
            Records::One(record) => size(record),
            Records::Many(records) => records.iter().map(size).sum(),
        }
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, NewRecord> {
        match self {
            Records::One(record) => std::slice::from_ref(record).iter(),
            Records::Many(records) => records.iter(),
        }
    }
}

/// What an append request gets back, shaped like its [`Records`].
pub(crate) enum Appended {
    One(Record),
    Many(Vec<Record>),
}

/// The state the writer starts from, read from the file at open.
pub(crate) struct Recovered {
    /// The last cursor handed out (also the next reservation floor).
    pub(crate) head: u64,
    /// `published_at` (nanoseconds) of the newest record, to keep
    /// timestamps non-decreasing across restarts.
    pub(crate) last_published: u64,
}

/// The writer thread's state. Owned by the thread; nothing else touches it.
pub(crate) struct Writer {
    db: Arc<Database>,
    options: DiskOptions,
    rx: Receiver<Command>,
    /// Doorbell for followers: the head after every append commit.
    head_tx: watch::Sender<Cursor>,
    counters: Arc<Counters>,
    /// The last committed cursor.
    head: u64,
    /// With `Durability::Deferred`: the durable ceiling of handed-out cursors
    /// (`schema::RESERVED`). Unused with `Fsync`, where every commit is
    /// durable.
    reserved: u64,
    /// Nanoseconds of the newest `published_at`.
    last_published: u64,
    /// With `Durability::Deferred`: when the oldest commit not yet covered by a
    /// durable one was made. `None` when everything is durable.
    unsynced_since: Option<Instant>,
    /// Trim jobs, served one step at a time, oldest first.
    trims: VecDeque<TrimJob>,
    /// A request taken off the channel while gathering a batch that did not
    /// fit in it; served before the channel's next one (keeps FIFO order).
    deferred: Option<Command>,
    /// Reused encoding buffers, so a batch allocates no value or key
    /// buffers.
    scratch: Vec<u8>,
    key_scratch: Vec<u8>,
    /// The bounds of one id's key range, for the duplicate check.
    range_scratch: [Vec<u8>; 2],
    /// With `Durability::Fsync`: the records the appender has logged,
    /// which this thread indexes, and the log's directory, whose segments
    /// it deletes once a durable commit covers them. Then `head` is the
    /// last cursor indexed, and every commit made here is non-durable
    /// except trims and syncs.
    logged: Option<Logged>,
}

/// The log's side of the writer (`Durability::Fsync`).
pub(crate) struct Logged {
    pub(crate) tail: Arc<Tail>,
    pub(crate) dir: PathBuf,
    /// When the tail is to be indexed, if it holds records.
    pub(crate) due: Option<Instant>,
}

/// A trim in progress.
struct TrimJob {
    retention: Retention,
    /// The trim's "now", fixed when asked, so the job terminates even while
    /// appends keep arriving.
    now_nanos: u64,
    /// Records still to remove by count, computed at the first step from the
    /// log's length then (later appends are the next trim's business).
    count_left: Option<u64>,
    /// Whether the log-wide part (a prefix of the log) is done: the job
    /// then removes the records whose own deadline is past.
    prefix_done: bool,
    /// See [`Command::Trim`].
    as_of: u64,
    /// Whether a step ran (the first indexes the tail).
    started: bool,
    removed: u64,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// What one wait on the channel produced.
enum Received {
    Command(Command),
    /// Nothing arrived (a trim step or a timed sync is due).
    Nothing,
    /// Every handle is gone.
    Disconnected,
}

/// What [`Writer::write_appends`] did with one group commit.
struct Written {
    /// Per request, in batch order: `None` if appended, else why it was
    /// refused (a taken id).
    refused: Vec<Option<StoreError>>,
    /// The last cursor handed out: the old head if nothing was appended.
    last_cursor: u64,
}

/// The first id of `records` that is taken: retained in `ids` (which, read
/// inside the write transaction, includes this commit's earlier requests),
/// or repeated within `records`. One index lookup per record.
fn taken_id<'r>(
    ids: &redb::Table<'_, &'static [u8], ()>,
    records: &'r Records,
    [low, high]: &mut [Vec<u8>; 2],
) -> Result<Option<&'r str>, StoreError> {
    const DOING: &str = "checking event ids";
    let mut seen = HashSet::new();
    for record in records.iter() {
        let id: &str = &record.id;
        if records.len() > 1 && !seen.insert(id) {
            return Ok(Some(id));
        }
        // An id too long to index cannot be retained; the insert reports it.
        if !codec::put_id_key(low, id, 0) || !codec::put_id_key(high, id, u64::MAX) {
            continue;
        }
        let mut range = ids
            .range::<&[u8]>(low.as_slice()..=high.as_slice())
            .map_err(context(DOING))?;
        if range.next().transpose().map_err(context(DOING))?.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Takes the append requests queued behind `first` into one batch, up to
/// the batch limits. Also returns what was taken off the channel but must
/// wait: a request that would overflow the batch, or any other command (a
/// trim, flush or close waits for this batch: FIFO order).
pub(crate) fn gather(
    rx: &Receiver<Command>,
    options: &DiskOptions,
    first: Pending,
) -> (Vec<Pending>, Option<Command>) {
    let mut records = first.records.len();
    let mut bytes = first.records.bytes();
    let mut batch = vec![first];
    while records < options.max_batch_records && bytes < options.max_batch_bytes {
        match rx.try_recv() {
            Ok(Command::Append {
                records: more,
                reply,
            }) => {
                let (len, size) = (more.len(), more.bytes());
                if records + len > options.max_batch_records
                    || bytes + size > options.max_batch_bytes
                {
                    let deferred = Command::Append {
                        records: more,
                        reply,
                    };
                    return (batch, Some(deferred));
                }
                records += len;
                bytes += size;
                batch.push(Pending {
                    records: more,
                    reply,
                });
            }
            Ok(other) => return (batch, Some(other)),
            Err(_) => break,
        }
    }
    (batch, None)
}

/// One append request inside a batch.
pub(crate) struct Pending {
    pub(crate) records: Records,
    pub(crate) reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Answers every request of a committed batch: a refused one with its
/// error, the others with their records, numbered on from `after` in
/// order (refused requests take no cursor).
pub(crate) fn answer_batch(
    batch: Vec<Pending>,
    refused: Vec<Option<StoreError>>,
    after: u64,
    published_at: SystemTime,
) {
    let mut cursor = after;
    for (pending, refused) in batch.into_iter().zip(refused) {
        if let Some(error) = refused {
            let _ = pending.reply.send(Err(error));
            continue;
        }
        let mut stamp = |record: NewRecord| {
            cursor += 1;
            record.into_record(Cursor::new(cursor), published_at)
        };
        let appended = match pending.records {
            Records::One(record) => Appended::One(stamp(record)),
            Records::Many(records) => Appended::Many(records.into_iter().map(stamp).collect()),
        };
        let _ = pending.reply.send(Ok(appended));
    }
}

/// Answers every request of a batch with its own copy of `error` (which is
/// not `Clone`), carrying the whole cause chain as text.
pub(crate) fn reply_to_batch(batch: Vec<Pending>, error: &StoreError, message: &str) {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    tracing::error!(error = %cause, requests = batch.len(), "herald-store-disk: {message}");
    for pending in batch {
        let _ = pending.reply.send(Err(
            StoreError::backend(cause.clone()).with_message(message.to_owned())
        ));
    }
}

/// How long records may wait in the tail before the writer indexes them
/// (unless [`FOLD_AT`](crate::appender::FOLD_AT) of them wait): long enough
/// that one redb transaction takes many batches (a transaction costs about
/// 115 µs of CPU however few records it has, and rewrites its B-tree paths:
/// every 10 ms instead measured 1.5–2× slower appends at 16 publishers, the
/// rewritten pages competing with the log for the disk at each sync),
/// short enough that the tail stays small.
const FOLD_DELAY: Duration = Duration::from_millis(100);

/// Most records indexed in one redb transaction.
pub(crate) const FOLD_MAX: usize = 16_384;

/// Writes log entries into redb's tables in `txn`: the record, its id and
/// its deadline. Used to index the tail and to replay the log at open.
pub(crate) fn index_entries<'v>(
    txn: &WriteTransaction,
    entries: impl Iterator<Item = (u64, &'v [u8], Option<u64>)>,
    key_scratch: &mut Vec<u8>,
) -> Result<(), StoreError> {
    const DOING: &str = "indexing logged appends";
    let mut events = txn.open_table(EVENTS).map_err(context(DOING))?;
    let mut ids = txn.open_table(IDS).map_err(context(DOING))?;
    let mut expiry = None;
    for (cursor, value, deadline) in entries {
        events.insert(cursor, value).map_err(context(DOING))?;
        if !codec::put_id_key(key_scratch, codec::decode_id(value)?, cursor) {
            return Err(StoreError::corrupt("a logged id longer than 4 GiB"));
        }
        ids.insert(key_scratch.as_slice(), ())
            .map_err(context(DOING))?;
        if let Some(deadline) = deadline {
            let table = match &mut expiry {
                Some(table) => table,
                None => expiry.insert(txn.open_table(EXPIRY).map_err(context(DOING))?),
            };
            table
                .insert((deadline, cursor), ())
                .map_err(context(DOING))?;
        }
    }
    Ok(())
}

impl Writer {
    pub(crate) fn new(
        db: Arc<Database>,
        options: DiskOptions,
        rx: Receiver<Command>,
        head_tx: watch::Sender<Cursor>,
        counters: Arc<Counters>,
        recovered: Recovered,
        logged: Option<Logged>,
    ) -> Self {
        Writer {
            db,
            options,
            rx,
            head_tx,
            counters,
            head: recovered.head,
            reserved: recovered.head,
            last_published: recovered.last_published,
            unsynced_since: None,
            trims: VecDeque::new(),
            deferred: None,
            scratch: Vec::new(),
            key_scratch: Vec::new(),
            range_scratch: [Vec::new(), Vec::new()],
            logged,
        }
    }

    /// The thread's body: serve requests until disconnected or closed.
    pub(crate) fn run(mut self) {
        loop {
            let command = match self.deferred.take() {
                Some(command) => Some(command),
                None => match self.receive() {
                    Received::Command(command) => Some(command),
                    Received::Nothing => None,
                    Received::Disconnected => break,
                },
            };
            match command {
                Some(Command::Append { records, reply }) => {
                    self.append_batch(Pending { records, reply })
                }
                Some(Command::Trim {
                    retention,
                    now,
                    as_of,
                    reply,
                }) => self.trims.push_back(TrimJob {
                    retention,
                    as_of,
                    now_nanos: codec::nanos_since_epoch(now),
                    count_left: None,
                    prefix_done: false,
                    started: false,
                    removed: 0,
                    reply,
                }),
                Some(Command::Flush { reply }) => {
                    // The caller may have given up; nothing to tell then.
                    let _ = reply.send(self.sync());
                }
                Some(Command::Index) => self.index_soon(),
                Some(Command::Close { reply }) => {
                    let result = self.shut_down();
                    let _ = reply.send(result);
                    // Dropping `self` drops the receiver: queued requests'
                    // callers see their oneshot close and report `Closed`.
                    return;
                }
                None => {}
            }
            if self
                .logged
                .as_ref()
                .and_then(|logged| logged.due)
                .is_some_and(|due| due <= Instant::now())
            {
                self.index_tail();
            }
            if self.sync_due() {
                if let Err(error) = self.sync() {
                    tracing::warn!(%error, "herald-store-disk: periodic sync failed");
                }
            }
            self.trim_step();
        }
        if let Err(error) = self.shut_down() {
            tracing::error!(%error, "herald-store-disk: final sync at shutdown failed");
        }
    }

    /// Waits for the next request: not at all while a trim has steps left,
    /// until the periodic sync is due while commits are unsynced, else for
    /// as long as it takes.
    fn receive(&mut self) -> Received {
        if !self.trims.is_empty() {
            return match self.rx.try_recv() {
                Ok(command) => Received::Command(command),
                Err(TryRecvError::Empty) => Received::Nothing,
                Err(TryRecvError::Disconnected) => Received::Disconnected,
            };
        }
        let index_in = self
            .logged
            .as_ref()
            .and_then(|logged| logged.due)
            .map(|due| due.saturating_duration_since(Instant::now()));
        let sync_in = self
            .unsynced_since
            .map(|since| self.options.sync_interval.saturating_sub(since.elapsed()));
        match index_in.into_iter().chain(sync_in).min() {
            Some(wait) => {
                let wait = wait.max(Duration::from_millis(1));
                match self.rx.recv_timeout(wait) {
                    Ok(command) => Received::Command(command),
                    Err(RecvTimeoutError::Timeout) => Received::Nothing,
                    Err(RecvTimeoutError::Disconnected) => Received::Disconnected,
                }
            }
            None => match self.rx.recv() {
                Ok(command) => Received::Command(command),
                Err(_) => Received::Disconnected,
            },
        }
    }

    fn sync_due(&self) -> bool {
        self.unsynced_since
            .is_some_and(|since| since.elapsed() >= self.options.sync_interval)
    }

    /// Whether the next commit must be durable.
    fn commit_durably(&self, last_cursor: u64) -> bool {
        match self.options.durability {
            Durability::Fsync => true,
            // Above the reservation, the reservation itself must be raised
            // durably before these cursors are handed out.
            Durability::Deferred => last_cursor > self.reserved || self.sync_due(),
        }
    }

    fn begin(&self, durable: bool, doing: &'static str) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(context(doing))?;
        txn.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        });
        Ok(txn)
    }

    /// Records that a commit succeeded, for the periodic sync's clock. A
    /// durable one covers every logged record indexed so far: their log
    /// segments can go.
    fn committed(&mut self, durable: bool) {
        if durable {
            self.unsynced_since = None;
            if let Some(logged) = &self.logged {
                wal::remove_through(&logged.dir, self.head);
            }
        } else if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
    }

    /// The appender says the tail has records: index them now if there are
    /// many, else within [`FOLD_DELAY`].
    fn index_soon(&mut self) {
        let Some(logged) = &mut self.logged else {
            return;
        };
        if logged.tail.len() >= crate::appender::FOLD_AT {
            self.index_tail();
        } else if logged.due.is_none() {
            logged.due = Some(Instant::now() + FOLD_DELAY);
        }
    }

    /// Indexes the tail's records (up to [`FOLD_MAX`]) in one non-durable
    /// transaction, then drops them from the tail. On failure they stay in
    /// the tail (and in the log) and are tried again a second later.
    fn index_tail(&mut self) {
        let Some(logged) = &mut self.logged else {
            return;
        };
        logged.due = None;
        let entries = logged.tail.oldest(FOLD_MAX);
        let Some(last) = entries.last().map(|entry| entry.record.cursor.get()) else {
            return;
        };
        let result = if entries[0].record.cursor.get() != self.head + 1 {
            Err(StoreError::corrupt(format!(
                "the tail starts at cursor {} but redb ends at {}",
                entries[0].record.cursor, self.head
            )))
        } else {
            self.begin(false, "indexing logged appends")
                .and_then(|txn| {
                    index_entries(
                        &txn,
                        entries.iter().map(|entry| {
                            (entry.record.cursor.get(), &*entry.value, entry.deadline)
                        }),
                        &mut self.key_scratch,
                    )?;
                    Ok(txn)
                })
                .and_then(|txn| txn.commit().map_err(context("indexing logged appends")))
        };
        match result {
            Ok(()) => {
                self.head = last;
                if let Some(logged) = &self.logged {
                    logged.tail.drop_through(last);
                }
                self.committed(false);
                // Records that came in meanwhile: the appender told only
                // of an empty tail filling, so the next round is ours.
                if let Some(logged) = &mut self.logged {
                    let left = logged.tail.len();
                    if left >= crate::appender::FOLD_AT {
                        logged.due = Some(Instant::now());
                    } else if left > 0 {
                        logged.due = Some(Instant::now() + FOLD_DELAY);
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "herald-store-disk: indexing logged appends failed; retrying in 1 s");
                if let Some(logged) = &mut self.logged {
                    logged.due = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }

    /// Indexes the whole tail, at shutdown.
    fn index_all(&mut self) -> Result<(), StoreError> {
        self.index_through(u64::MAX)
    }

    /// Indexes the tail up to cursor `through` at least, before a trim
    /// (which counts and removes what redb holds).
    fn index_through(&mut self, through: u64) -> Result<(), StoreError> {
        while let Some(logged) = &self.logged {
            if logged.tail.len() == 0 || self.head >= through {
                break;
            }
            let before = self.head;
            self.index_tail();
            if self.head == before {
                return Err(StoreError::backend(
                    "indexing logged appends failed (see the log)",
                ));
            }
        }
        Ok(())
    }

    /// Gathers queued append requests behind `first`, commits them as one
    /// transaction, then answers every one.
    fn append_batch(&mut self, first: Pending) {
        let (batch, deferred) = gather(&self.rx, &self.options, first);
        if deferred.is_some() {
            self.deferred = deferred;
        }
        let records: usize = batch.iter().map(|pending| pending.records.len()).sum();

        // Empty `append_batch` calls need no transaction.
        if records == 0 {
            for pending in batch {
                let _ = pending.reply.send(Ok(Appended::Many(Vec::new())));
            }
            return;
        }

        let published = codec::nanos_since_epoch(SystemTime::now()).max(self.last_published);
        // The most cursors this commit can hand out; fewer if some requests
        // are refused for a duplicate id. The reservation and durability are
        // decided on this bound, which is safe: it only ever reserves more.
        let bound = self.head + records as u64;
        let durable = self.commit_durably(bound);
        match self.write_appends(&batch, published, bound, durable) {
            Ok(written) => {
                let appended_records = written.last_cursor - self.head;
                if appended_records > 0 {
                    self.committed(durable);
                    if self.options.durability == Durability::Deferred && bound > self.reserved {
                        self.reserved = bound + RESERVE_BLOCK;
                    }
                    let requests = written.refused.iter().filter(|r| r.is_none()).count() as u64;
                    self.counters.appended(appended_records, requests, durable);
                    self.last_published = published;
                    // Wake followers before answering: when `append`
                    // returns, the record is already announced.
                    self.head_tx.send_replace(Cursor::new(written.last_cursor));
                }
                let published_at = codec::time_from_nanos(published);
                let after = self.head;
                self.head = written.last_cursor;
                answer_batch(batch, written.refused, after, published_at);
            }
            Err(error) => reply_to_batch(
                batch,
                &error,
                "group commit failed: nothing in it was appended",
            ),
        }
    }

    /// Writes and commits one batch: each request whose ids are all free
    /// gets the next cursors (from `head + 1`, at most up to `bound`); a
    /// request with a taken id is refused whole and takes no cursor.
    ///
    /// The ids are checked inside the write transaction, which reads its own
    /// writes: a request repeating an id appended by an earlier request of
    /// the same group commit is refused, and the earlier one still goes in.
    fn write_appends(
        &mut self,
        batch: &[Pending],
        published: u64,
        bound: u64,
        durable: bool,
    ) -> Result<Written, StoreError> {
        const DOING: &str = "committing appends";
        let txn = self.begin(durable, DOING)?;
        let mut refused = Vec::with_capacity(batch.len());
        let mut cursor = self.head;
        {
            let mut events = txn.open_table(EVENTS).map_err(context(DOING))?;
            let mut ids = txn.open_table(IDS).map_err(context(DOING))?;
            // Opened only by a batch that has deadlines: one table fewer
            // rewritten per group commit otherwise.
            let mut expiry = None;
            for pending in batch {
                if let Some(id) = taken_id(&ids, &pending.records, &mut self.range_scratch)? {
                    refused.push(Some(StoreError::duplicate_id(id)));
                    continue;
                }
                refused.push(None);
                for record in pending.records.iter() {
                    cursor += 1;
                    self.scratch.clear();
                    codec::encode(record, published, &mut self.scratch);
                    events
                        .insert(cursor, self.scratch.as_slice())
                        .map_err(context(DOING))?;
                    if !codec::put_id_key(&mut self.key_scratch, &record.id, cursor) {
                        return Err(StoreError::backend(
                            "an event id longer than 4 GiB cannot be indexed",
                        ));
                    }
                    ids.insert(self.key_scratch.as_slice(), ())
                        .map_err(context(DOING))?;
                    if let Some(keep_for) = record.keep_for {
                        let keep = u64::try_from(keep_for.as_nanos()).unwrap_or(u64::MAX);
                        let table = match &mut expiry {
                            Some(table) => table,
                            None => expiry.insert(txn.open_table(EXPIRY).map_err(context(DOING))?),
                        };
                        table
                            .insert((published.saturating_add(keep), cursor), ())
                            .map_err(context(DOING))?;
                    }
                }
            }
            // The head is the last key of `events` now: no `meta` write,
            // except to raise the reservation.
            if cursor > self.head
                && self.options.durability == Durability::Deferred
                && bound > self.reserved
            {
                txn.open_table(META)
                    .map_err(context(DOING))?
                    .insert(RESERVED, bound + RESERVE_BLOCK)
                    .map_err(context(DOING))?;
            }
        }
        if cursor == self.head {
            // Every request was refused: nothing to commit (or fsync).
            txn.abort().map_err(context(DOING))?;
        } else {
            // On error the transaction is dropped, which aborts it: nothing
            // of the batch is kept, and `head` has not moved, so no cursor is
            // skipped or doubled.
            txn.commit().map_err(context(DOING))?;
        }
        Ok(Written {
            refused,
            last_cursor: cursor,
        })
    }

    /// Makes every commit so far durable (an empty durable commit carries the
    /// non-durable ones before it). A no-op when nothing is unsynced.
    fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let txn = self.begin(true, "syncing")?;
        txn.commit().map_err(context("syncing"))?;
        // With the log, appends were durable already: this is not one of
        // the durable commits `Stats` counts.
        if self.logged.is_none() {
            self.counters.synced();
        }
        self.committed(true);
        Ok(())
    }

    /// The last durable commit: with `Durability::Deferred`, also gives back the
    /// unused reservation, so a clean restart continues right after the head
    /// instead of skipping a block of cursors.
    fn shut_down(&mut self) -> Result<(), StoreError> {
        // What stays unindexed is still in the log, and read at the next
        // open: no loss, only a slower open.
        self.index_all()?;
        if self.reserved > self.head {
            const DOING: &str = "releasing the cursor reservation";
            let txn = self.begin(true, DOING)?;
            txn.open_table(META)
                .map_err(context(DOING))?
                .insert(RESERVED, self.head)
                .map_err(context(DOING))?;
            txn.commit().map_err(context(DOING))?;
            self.reserved = self.head;
            self.counters.synced();
            self.committed(true);
            Ok(())
        } else {
            self.sync()
        }
    }

    /// Runs one step of the oldest trim job, answering it when it is done.
    fn trim_step(&mut self) {
        let Some(mut job) = self.trims.pop_front() else {
            return;
        };
        // A caller that stopped waiting (dropped `trim` future) no longer
        // needs the rest; the next trim will do it.
        if job.reply.is_closed() {
            return;
        }
        // The trim counts and removes what redb holds: the records appended
        // before it was asked go in first.
        if !job.started {
            job.started = true;
            if let Err(error) = self.index_through(job.as_of) {
                let _ = job.reply.send(Err(error));
                return;
            }
        }
        match self.trim_once(&mut job) {
            Ok(true) => {
                let _ = job.reply.send(Ok(job.removed));
            }
            Ok(false) => self.trims.push_front(job),
            Err(error) => {
                let _ = job.reply.send(Err(error));
            }
        }
    }

    /// Removes up to `trim_batch` records in one transaction: first the
    /// log-wide retention's prefix, then the records past their own
    /// deadline. Returns whether the job is finished.
    fn trim_once(&mut self, job: &mut TrimJob) -> Result<bool, StoreError> {
        if job.prefix_done {
            return self.expire_once(job);
        }
        job.prefix_done = job.retention.is_unlimited() || self.trim_prefix_once(job)?;
        Ok(false)
    }

    /// Removes up to `trim_batch` records whose deadline
    /// ([`NewRecord::keep_for`](herald_store::NewRecord::keep_for)) is at
    /// or before the job's "now", in one transaction. The trim mark stays:
    /// expired records are not a gap. Returns whether none is left due.
    fn expire_once(&mut self, job: &mut TrimJob) -> Result<bool, StoreError> {
        const DOING: &str = "removing expired records";
        let durable = self.commit_durably(self.head);
        let txn = self.begin(durable, DOING)?;
        let (removed, finished) = {
            let mut expiry = txn.open_table(EXPIRY).map_err(context(DOING))?;
            let mut due: Vec<(u64, u64)> = Vec::new();
            let mut finished = true;
            for entry in expiry
                .range::<(u64, u64)>(..=(job.now_nanos, u64::MAX))
                .map_err(context(DOING))?
            {
                if due.len() >= self.options.trim_batch {
                    finished = false;
                    break;
                }
                due.push(entry.map_err(context(DOING))?.0.value());
            }
            if due.is_empty() {
                drop(expiry);
                txn.abort().map_err(context(DOING))?;
                return Ok(true);
            }
            let mut events = txn.open_table(EVENTS).map_err(context(DOING))?;
            let mut ids = txn.open_table(IDS).map_err(context(DOING))?;
            let mut removed = 0;
            for (deadline, cursor) in due {
                expiry.remove((deadline, cursor)).map_err(context(DOING))?;
                // Absent when the log-wide retention removed it first.
                let key = match events.get(cursor).map_err(context(DOING))? {
                    Some(value) => codec::id_key(codec::decode_id(value.value())?, cursor)
                        .ok_or_else(|| StoreError::corrupt("stored id longer than 4 GiB"))?,
                    None => continue,
                };
                events.remove(cursor).map_err(context(DOING))?;
                ids.remove(key.as_slice()).map_err(context(DOING))?;
                removed += 1;
            }
            // This may remove the newest record, which held the head.
            txn.open_table(META)
                .map_err(context(DOING))?
                .insert(HEAD, self.head)
                .map_err(context(DOING))?;
            (removed, finished)
        };
        txn.commit().map_err(|error| engine(DOING, error))?;
        self.committed(durable);
        self.counters.trimmed(removed, durable);
        job.removed += removed;
        Ok(finished)
    }

    /// Removes up to `trim_batch` records of the log-wide retention's
    /// prefix in one transaction. Returns whether that part is finished.
    fn trim_prefix_once(&mut self, job: &mut TrimJob) -> Result<bool, StoreError> {
        const DOING: &str = "trimming";
        let durable = self.commit_durably(self.head);
        let txn = self.begin(durable, DOING)?;
        let (removed, finished) = {
            let mut events = txn.open_table(EVENTS).map_err(context(DOING))?;
            let mut ids = txn.open_table(IDS).map_err(context(DOING))?;
            let count_left = match job.count_left {
                Some(left) => left,
                None => {
                    // Records indexed since the trim was asked are the next
                    // trim's business.
                    let newer = self.head.saturating_sub(job.as_of);
                    let len = events.len().map_err(context(DOING))?.saturating_sub(newer);
                    let left = job
                        .retention
                        .max_events
                        .map_or(0, |max| len.saturating_sub(max));
                    job.count_left = Some(left);
                    left
                }
            };
            // Strictly older than `now - max_age` is expired; a record
            // stamped after `now` (clock stepped back) never is.
            let cutoff = job.retention.max_age.map(|age| {
                job.now_nanos
                    .saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX))
            });

            // Collect first, delete after: the range borrows the table.
            let mut victims: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut finished = true;
            for entry in events.range::<u64>(..).map_err(context(DOING))? {
                let (cursor, value) = entry.map_err(context(DOING))?;
                if victims.len() >= self.options.trim_batch {
                    finished = false;
                    break;
                }
                let value = value.value();
                let by_count = (victims.len() as u64) < count_left;
                let by_age = match cutoff {
                    Some(cutoff) => codec::published_nanos(value)? < cutoff,
                    None => false,
                };
                if !by_count && !by_age {
                    break;
                }
                let cursor = cursor.value();
                let key = codec::id_key(codec::decode_id(value)?, cursor)
                    .ok_or_else(|| StoreError::corrupt("stored id longer than 4 GiB"))?;
                victims.push((cursor, key));
            }
            let Some(&(last, _)) = victims.last() else {
                drop((events, ids));
                txn.abort().map_err(context(DOING))?;
                return Ok(true);
            };
            for (cursor, key) in &victims {
                events.remove(cursor).map_err(context(DOING))?;
                ids.remove(key.as_slice()).map_err(context(DOING))?;
            }
            let mut meta = txn.open_table(META).map_err(context(DOING))?;
            meta.insert(TRIMMED_THROUGH, last).map_err(context(DOING))?;
            // This trim may remove the newest record, which held the head.
            meta.insert(HEAD, self.head).map_err(context(DOING))?;
            (victims.len() as u64, finished)
        };
        txn.commit().map_err(|error| engine(DOING, error))?;
        self.committed(durable);
        self.counters.trimmed(removed, durable);
        job.removed += removed;
        job.count_left = job.count_left.map(|left| left.saturating_sub(removed));
        Ok(finished)
    }
}
