//! [`DiskStore`]: the handle, opening a data directory, and the read side of
//! the [`Store`] contract.
//!
//! Writes go to the writer thread (`writer.rs`); reads open their own redb
//! read transaction (an MVCC snapshot: readers never block the writer, nor
//! it them) on the blocking pool. Followers are such reads too, in the loop
//! every backend shares ([`herald_store::follow`]), woken by the head the
//! writer announces after each commit.
//!
//! Reads run under `spawn_blocking`, not inline on the async worker, though
//! inline would be cheaper when the pages are hot: a one-record read takes
//! about 1 µs inline and 8–15 µs through the hand-off (`docs/performance.md`).
//! The hand-off is paid per call, and calls are few: the hub has one
//! follower for live delivery (one read per commit, 256 records at most),
//! and a reconnecting subscriber does one `resolve` and a replay in batches.
//! A read that misses redb's cache (a replay from `earliest` over a long
//! history, or the first reads after a restart) does disk I/O, possibly for
//! milliseconds; inline, that would stall every connection on the worker.
//! Deciding per call (inline when "small") was rejected: how many pages a
//! read touches, and whether they are cached, is not known in advance.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::SystemTime;

use futures_util::stream::BoxStream;
use herald_store::follow::{follow_log, Batch};
use herald_store::{Bounds, Cursor, NewRecord, Record, Retention, Store, StoreError};
use redb::{Database, ReadTransaction, ReadableTable};
use tokio::sync::{oneshot, watch};

use crate::appender::Appender;
use crate::codec;
use crate::error::{closed, context, open_failed};
use crate::options::{DiskOptions, Durability};
use crate::schema::{
    EVENTS, EXPIRY, FILE_NAME, HEAD, IDS, META, RESERVED, SCHEMA, SCHEMA_VERSION, TRIMMED_THROUGH,
};
use crate::stats::{Counters, Stats};
use crate::tail::{Seen, Tail};
use crate::wal::{self, Wal};
use crate::writer::{index_entries, Appended, Command, Logged, Records, Recovered, Writer};

/// How many records a follower reads per read transaction: enough that a
/// catching-up follower pays the blocking-pool hand-off rarely, few enough
/// that it holds at most a few hundred records in memory.
const FOLLOW_BATCH: usize = 256;

/// The durable [`Store`]: a cheap `Clone` handle; all clones share one open
/// database and one writer thread.
///
/// Open one per data directory with [`DiskStore::open`]. The writer thread
/// stops, after a final durable commit, when the last handle is dropped (or
/// at [`close`](DiskStore::close)); dropping the last handle waits for that
/// commit (at most one batch and one fsync) so that the file is released
/// when `drop` returns and can be reopened at once.
///
/// See the crate docs for durability, cancel safety and limits.
#[derive(Clone)]
pub struct DiskStore {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// First field, so it is dropped (joining the writer) before `db`.
    writer: WriterHandle,
    pub(crate) db: Arc<Database>,
    /// With `Durability::Fsync`: the appended records not yet in redb.
    tail: Option<Arc<Tail>>,
    /// Receives the head after every append commit; cloned by followers.
    head_rx: watch::Receiver<Cursor>,
    closed: AtomicBool,
    counters: Arc<Counters>,
    options: DiskOptions,
    file: PathBuf,
}

/// The sending end of the front thread's channel (the appender's with the
/// log, else the writer's), and the threads, joined on drop in that order.
struct WriterHandle {
    tx: Option<mpsc::Sender<Command>>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Disconnecting the channel is the signal to sync and stop; the
        // appender, ending, disconnects the writer.
        drop(self.tx.take());
        for thread in self.threads.drain(..) {
            let name = thread.thread().name().unwrap_or("writer").to_owned();
            if thread.join().is_err() {
                tracing::error!("herald-store-disk: the {name} thread panicked");
            }
        }
    }
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map_err(|error| StoreError::backend(error).with_message(format!("starting {name}")))
}

/// How much lower than the process's the background writer's priority is:
/// nice +10, a weight of 110 against 1,024 (Linux's CFS), so it takes
/// about a tenth of a core the hub also wants, and all of an idle one.
const BACKGROUND_NICENESS: i32 = 10;

/// Spawns a thread whose work nobody waits for, at a lower CPU priority
/// (on Linux): with [`Durability::Fsync`], the writer thread only copies
/// the tail into redb, and each copy is milliseconds of CPU that would
/// otherwise preempt the runtime's workers on a busy core (measured: S3's
/// p99 with the disk store 3.4–4.0 ms at equal priority, 2.2–3.3 ms below it,
/// docs/performance.md).
/// The tail's bound (`tail.rs`) keeps a starved writer from falling behind
/// without end: the log's appends then wait for it.
fn spawn_background(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    spawn(name, move || {
        lower_priority(BACKGROUND_NICENESS);
        body();
    })
}

/// Raises the calling thread's nice value by `by` (at most to 19). Only
/// Linux gives each thread its own nice value; elsewhere this does
/// nothing. A failure is logged and changes nothing else.
fn lower_priority(by: i32) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let result =
            getpriority_process(me).and_then(|nice| setpriority_process(me, (nice + by).min(19)));
        if let Err(error) = result {
            tracing::debug!(%error, "herald-store-disk: cannot lower the writer's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

impl DiskStore {
    /// Opens the store in directory `dir` (created if missing), in the file
    /// `dir/herald.redb` (created if missing).
    ///
    /// This is blocking: it may run redb's crash recovery (after an unclean
    /// shutdown, in time proportional to the file's size) and makes one
    /// durable commit. From async code, call it in
    /// [`spawn_blocking`](tokio::task::spawn_blocking) if that matters.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Backend`](herald_store::ErrorKind::Backend) if the
    ///   directory or file cannot be created or read, if the options are
    ///   invalid, or if the file is already open: redb locks it, so a second
    ///   hub (or a second `DiskStore` in this process) on the same directory
    ///   is refused instead of corrupting it.
    /// - [`ErrorKind::Corrupt`](herald_store::ErrorKind::Corrupt) if the file
    ///   is not a redb database, is damaged beyond recovery, or was written
    ///   by a newer, incompatible version of this crate.
    pub fn open(dir: impl AsRef<Path>, options: DiskOptions) -> Result<DiskStore, StoreError> {
        options.validate()?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|error| {
            StoreError::backend(error)
                .with_message(format!("creating data directory {}", dir.display()))
        })?;
        let file = dir.join(FILE_NAME);
        let existed = file.exists();
        let mut builder = redb::Builder::new();
        builder
            .set_cache_size(options.cache_size)
            // The only format redb 3 and later read: no upgrade step when the
            // engine moves up a major version.
            .create_with_file_format_v3(true)
            .set_repair_callback(move |session| {
                // redb also runs this pass when it lays out a brand-new
                // v3 file: only a file that existed was shut down uncleanly.
                if existed {
                    tracing::warn!(
                        progress = session.progress(),
                        "herald-store-disk: repairing the database after an unclean shutdown"
                    );
                }
            });
        let db = builder
            .create(&file)
            .map_err(|error| open_failed(&file, error))?;
        let recovered = prepare(&db, &file)?;
        let wal_dir = wal::dir_of(dir);
        let recovered = replay(&db, &wal_dir, recovered)?;
        let db = Arc::new(db);

        let (head_tx, head_rx) = watch::channel(Cursor::new(recovered.head));
        let counters = Arc::new(Counters::default());
        let (tx, front_rx) = mpsc::channel();
        let mut threads = Vec::new();
        let durability = options.durability;
        let (writer_rx, logged) = match durability {
            Durability::Fsync => {
                let wal = Wal::create(&wal_dir, recovered.head + 1).map_err(|error| {
                    StoreError::backend(error)
                        .with_message(format!("starting a log segment in {}", wal_dir.display()))
                })?;
                let tail = Arc::new(Tail::default());
                let (writer_tx, writer_rx) = mpsc::channel();
                let appender = Appender {
                    db: Arc::clone(&db),
                    wal,
                    tail: Arc::clone(&tail),
                    options: options.clone(),
                    rx: front_rx,
                    writer: writer_tx,
                    head_tx: head_tx.clone(),
                    counters: Arc::clone(&counters),
                    head: recovered.head,
                    last_published: recovered.last_published,
                    broken: None,
                };
                threads.push(spawn("herald-appender", move || appender.run())?);
                let logged = Logged {
                    tail,
                    dir: wal_dir,
                    due: None,
                };
                (writer_rx, Some(logged))
            }
            Durability::Deferred => (front_rx, None),
        };
        let tail = logged.as_ref().map(|logged| Arc::clone(&logged.tail));
        let writer = Writer::new(
            Arc::clone(&db),
            options.clone(),
            writer_rx,
            head_tx,
            Arc::clone(&counters),
            recovered,
            logged,
        );
        // With the log, nobody waits for the writer but trims and flushes:
        // it runs in the background. Without, it answers appends.
        let writer_thread = match durability {
            Durability::Fsync => spawn_background("herald-store-disk-writer", move || writer.run()),
            Durability::Deferred => spawn("herald-store-disk-writer", move || writer.run()),
        };
        threads.push(writer_thread?);
        tracing::debug!(file = %file.display(), "herald-store-disk: opened");
        Ok(DiskStore {
            shared: Arc::new(Shared {
                writer: WriterHandle {
                    tx: Some(tx),
                    threads,
                },
                db,
                tail,
                head_rx,
                closed: AtomicBool::new(false),
                counters,
                options,
                file,
            }),
        })
    }

    /// The database file (`dir/herald.redb`).
    pub fn path(&self) -> &Path {
        &self.shared.file
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &DiskOptions {
        &self.shared.options
    }

    /// Counters since open: appends, commits (how well group commit
    /// batches), trims.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Makes every append acknowledged so far durable (fsync). A no-op with
    /// [`Durability::Fsync`](crate::Durability::Fsync), where that is already
    /// true when `append` returns.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.request(|reply| Command::Flush { reply }).await?
    }

    /// Graceful shutdown: waits for the appends already queued, makes
    /// everything durable, and stops the writer. Afterwards every call on
    /// any clone fails with [`ErrorKind::Closed`](herald_store::ErrorKind::Closed)
    /// and follow streams end. Closing twice is fine.
    ///
    /// The file stays locked until the last handle is dropped.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match self.request(|reply| Command::Close { reply }).await {
            Ok(result) => result,
            // The writer was already gone: nothing left to make durable.
            Err(_) => Ok(()),
        }
    }

    /// Sends a request to the writer and waits for its answer.
    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared.send(command(reply))?;
        // The writer drops the sender without answering only when it stops.
        answer.await.map_err(|_| closed())
    }

    /// `Closed` once closed, for answers that need no snapshot.
    fn checked_open(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(closed())
        } else {
            Ok(())
        }
    }

    async fn append_records(&self, records: Records) -> Result<Appended, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.request(|reply| Command::Append { records, reply })
            .await?
    }
}

impl Shared {
    /// Records after `after` read from the tail, taken before any redb
    /// snapshot (see `tail.rs`): the part of a read redb need not give.
    fn seen(&self, after: Cursor, limit: usize) -> Option<Seen> {
        Some(self.tail.as_ref()?.read_after(after.get(), limit))
    }

    /// Up to `limit` records after `after`: from the tail alone when it
    /// holds all of them (no blocking-pool hand-off: a live follower's
    /// usual case), else from a redb snapshot followed by the tail.
    async fn read_log(
        self: &Arc<Self>,
        after: Cursor,
        limit: usize,
    ) -> Result<(Cursor, Vec<Record>), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let seen = self.seen(after, limit);
        let in_tail = seen.as_ref().is_some_and(|seen| {
            seen.first
                .is_some_and(|first| after.get().saturating_add(1) >= first.get())
        });
        if in_tail {
            // Nothing after `after` can have been trimmed: trims only
            // remove indexed records, which are all before the tail.
            return Ok((
                Cursor::ZERO,
                seen.map(|seen| seen.records).unwrap_or_default(),
            ));
        }
        self.read(move |txn| {
            let before = seen.as_ref().and_then(|seen| seen.first);
            let mut records = read_after(txn, after, limit, before)?;
            if let Some(seen) = seen {
                let room = limit - records.len();
                records.extend(seen.records.into_iter().take(room));
            }
            Ok((trimmed_through(txn)?, records))
        })
        .await
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        self.writer
            .tx
            .as_ref()
            .ok_or_else(closed)?
            .send(command)
            .map_err(|_| closed())
    }

    /// Runs `read` on a fresh read transaction on the blocking pool.
    async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        // The closure holds the `Shared` (not just the database) so that a
        // store dropped during a read is released, file lock included, when
        // the read ends: a reopen right after sees it closed.
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let txn = shared
                .db
                .begin_read()
                .map_err(context("starting a read transaction"))?;
            read(&txn)
        })
        .await
        .map_err(|error| StoreError::backend(error).with_message("read task failed"))?
    }
}

/// Creates the tables on first open, checks the schema version, and reads
/// the state the writer continues from, in one durable transaction.
fn prepare(db: &Database, file: &Path) -> Result<Recovered, StoreError> {
    const DOING: &str = "preparing the database";
    let txn = db.begin_write().map_err(context(DOING))?;
    let recovered = {
        let events = txn.open_table(EVENTS).map_err(context(DOING))?;
        txn.open_table(IDS).map_err(context(DOING))?;
        txn.open_table(EXPIRY).map_err(context(DOING))?;
        let mut meta = txn.open_table(META).map_err(context(DOING))?;
        let get = |meta: &redb::Table<'_, &str, u64>, key: &str| {
            meta.get(key)
                .map(|value| value.map(|value| value.value()))
                .map_err(context(DOING))
        };
        match get(&meta, SCHEMA)? {
            None => {
                meta.insert(SCHEMA, SCHEMA_VERSION)
                    .map_err(context(DOING))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::corrupt(format!(
                    "{} has schema version {other}; this build reads version {SCHEMA_VERSION}",
                    file.display()
                )))
            }
        }
        // Cursors a crash may have un-persisted (Durability::Deferred) lie at or
        // below the reservation: continue above it, and record that as the
        // head so `bounds().head` never goes back.
        let newest = events
            .last()
            .map_err(context(DOING))?
            .map_or(0, |(cursor, _)| cursor.value());
        let head = get(&meta, HEAD)?
            .unwrap_or(0)
            .max(newest)
            .max(get(&meta, RESERVED)?.unwrap_or(0));
        meta.insert(HEAD, head).map_err(context(DOING))?;
        meta.insert(RESERVED, head).map_err(context(DOING))?;
        let last_published = match events.last().map_err(context(DOING))? {
            Some((_, value)) => codec::published_nanos(value.value())?,
            None => 0,
        };
        Recovered {
            head,
            last_published,
        }
    };
    txn.commit().map_err(context(DOING))?;
    Ok(recovered)
}

/// Copies into redb what the write-ahead log holds past redb's last durable
/// commit (the appends acknowledged before a crash, or before a shutdown
/// that could not index them), commits durably, and deletes the log.
fn replay(db: &Database, dir: &Path, recovered: Recovered) -> Result<Recovered, StoreError> {
    const DOING: &str = "replaying the write-ahead log";
    let logged = wal::read_all(dir)?;
    let fresh = logged
        .iter()
        .skip_while(|entry| entry.cursor <= recovered.head);
    for (next, entry) in (recovered.head + 1..).zip(fresh.clone()) {
        if entry.cursor != next {
            return Err(StoreError::corrupt(format!(
                "the write-ahead log in {} has cursor {} where {next} was expected",
                dir.display(),
                entry.cursor
            )));
        }
    }
    let Some(last) = fresh.clone().last() else {
        wal::remove_all(dir)?;
        return Ok(recovered);
    };
    let txn = db.begin_write().map_err(context(DOING))?;
    index_entries(
        &txn,
        fresh
            .clone()
            .map(|entry| (entry.cursor, entry.value.as_slice(), entry.deadline)),
        &mut Vec::new(),
    )?;
    txn.commit().map_err(context(DOING))?;
    tracing::info!(
        records = last.cursor - recovered.head,
        head = last.cursor,
        "herald-store-disk: replayed the write-ahead log"
    );
    let head = last.cursor;
    let last_published = codec::published_nanos(&last.value)?.max(recovered.last_published);
    wal::remove_all(dir)?;
    Ok(Recovered {
        head,
        last_published,
    })
}

/// Up to `limit` records after `after` and before `before` (if given),
/// from one snapshot.
fn read_after(
    txn: &ReadTransaction,
    after: Cursor,
    limit: usize,
    before: Option<Cursor>,
) -> Result<Vec<Record>, StoreError> {
    const DOING: &str = "reading the log";
    if limit == 0 || before.is_some_and(|before| before.get() <= after.get().saturating_add(1)) {
        return Ok(Vec::new());
    }
    let events = txn.open_table(EVENTS).map_err(context(DOING))?;
    let end = before.map_or(Bound::Unbounded, |before| Bound::Excluded(before.get()));
    let range = (Bound::Excluded(after.get()), end);
    let mut records = Vec::with_capacity(limit.min(256));
    for entry in events.range::<u64>(range).map_err(context(DOING))? {
        let (cursor, value) = entry.map_err(context(DOING))?;
        records.push(codec::decode(Cursor::new(cursor.value()), value.value())?);
        if records.len() == limit {
            break;
        }
    }
    Ok(records)
}

/// The highest trimmed cursor, from one snapshot.
/// The cursor the id index holds for `id`, if any.
fn cursor_of_id(txn: &ReadTransaction, id: &str) -> Result<Option<Cursor>, StoreError> {
    const DOING: &str = "resolving an id";
    // An id too long to index was never appended.
    let Some((low, high)) = codec::id_range(id) else {
        return Ok(None);
    };
    let ids = txn.open_table(IDS).map_err(context(DOING))?;
    let mut range = ids
        .range::<&[u8]>(low.as_slice()..=high.as_slice())
        .map_err(context(DOING))?;
    match range.next() {
        Some(entry) => {
            let (key, _) = entry.map_err(context(DOING))?;
            codec::cursor_of_id_key(key.value()).map(Some)
        }
        None => Ok(None),
    }
}

fn trimmed_through(txn: &ReadTransaction) -> Result<Cursor, StoreError> {
    const DOING: &str = "reading the trim mark";
    let meta = txn.open_table(META).map_err(context(DOING))?;
    let value = meta.get(TRIMMED_THROUGH).map_err(context(DOING))?;
    Ok(Cursor::new(value.map_or(0, |value| value.value())))
}

impl fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStore")
            .field("file", &self.shared.file)
            .field("head", &*self.shared.head_rx.borrow())
            .field("durability", &self.shared.options.durability)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish()
    }
}

#[async_trait::async_trait]
impl Store for DiskStore {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        match self.append_records(Records::One(record)).await? {
            Appended::One(record) => Ok(record),
            Appended::Many(_) => Err(StoreError::corrupt("writer answered one append with many")),
        }
    }

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        if records.is_empty() {
            // Nothing to write: no round trip to the writer.
            return if self.shared.closed.load(Ordering::Acquire) {
                Err(closed())
            } else {
                Ok(Vec::new())
            };
        }
        match self.append_records(Records::Many(records)).await? {
            Appended::Many(records) => Ok(records),
            Appended::One(record) => Ok(vec![record]),
        }
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        Ok(self.shared.read_log(after, limit).await?.1)
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        // The tail first, redb after (see `tail.rs`).
        if let Some(cursor) = self
            .shared
            .tail
            .as_ref()
            .and_then(|tail| tail.cursor_of(id))
        {
            return self.checked_open().map(|()| Some(Cursor::new(cursor)));
        }
        let id = id.to_owned();
        self.shared.read(move |txn| cursor_of_id(txn, &id)).await
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        const DOING: &str = "resolving an id";
        if let Some(record) = self
            .shared
            .tail
            .as_ref()
            .and_then(|tail| tail.record_of(id))
        {
            return self.checked_open().map(|()| Some(record));
        }
        let id = id.to_owned();
        // The index entry and the record from one snapshot: a trim cannot
        // fall between them.
        self.shared
            .read(move |txn| {
                let Some(cursor) = cursor_of_id(txn, &id)? else {
                    return Ok(None);
                };
                let events = txn.open_table(EVENTS).map_err(context(DOING))?;
                match events.get(cursor.get()).map_err(context(DOING))? {
                    Some(value) => codec::decode(cursor, value.value()).map(Some),
                    None => Err(StoreError::corrupt(format!(
                        "the id index names cursor {cursor}, which the log does not hold"
                    ))),
                }
            })
            .await
    }

    /// An append's first poll sends it to the writer's queue, whose
    /// order is the log's.
    fn appends_in_poll_order(&self) -> bool {
        true
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        const DOING: &str = "reading bounds";
        // The tail first, redb after (see `tail.rs`).
        let span = self.shared.tail.as_ref().and_then(|tail| tail.span());
        self.shared
            .read(move |txn| {
                let events = txn.open_table(EVENTS).map_err(context(DOING))?;
                let oldest = events
                    .first()
                    .map_err(context(DOING))?
                    .map(|(cursor, _)| Cursor::new(cursor.value()))
                    .or(span.map(|(first, _)| first));
                let newest = events
                    .last()
                    .map_err(context(DOING))?
                    .map_or(0, |(cursor, _)| cursor.value());
                // See `schema::HEAD`: the stored head is only a floor.
                let meta = txn.open_table(META).map_err(context(DOING))?;
                let floor = meta
                    .get(HEAD)
                    .map_err(context(DOING))?
                    .map_or(0, |value| value.value());
                let logged = span.map_or(0, |(_, last)| last.get());
                Ok(Bounds {
                    oldest,
                    head: Cursor::new(floor.max(newest).max(logged)),
                })
            })
            .await
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        // Weak, so that followers do not keep a dropped store open.
        let shared = Arc::downgrade(&self.shared);
        follow_log(self.shared.head_rx.clone(), after, move |after| {
            let shared = shared.upgrade();
            async move {
                // One snapshot for the trim mark and the records.
                let result = shared?.read_log(after, FOLLOW_BATCH).await.map(
                    |(trimmed_through, records)| Batch {
                        trimmed_through,
                        records,
                    },
                );
                match result {
                    // Closed (also checked by `read` before it starts): the
                    // follow ends rather than fails.
                    Err(error) if error.kind() == herald_store::ErrorKind::Closed => None,
                    result => Some(result),
                }
            }
        })
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let retention = retention.clone();
        let now = SystemTime::now();
        self.request(|reply| Command::Trim {
            retention,
            now,
            as_of: u64::MAX,
            reply,
        })
        .await?
    }

    async fn close(&self) -> Result<(), StoreError> {
        DiskStore::close(self).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use herald_store::testkit::sample;
    use herald_store::{Cursor, Store};

    use super::DiskStore;
    use crate::options::DiskOptions;
    use crate::tail::{testing::entry, MAX_RECORDS};

    /// A full tail holds appends back until the writer has made room, and
    /// the append then goes in as usual.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_wait_while_the_tail_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
        let tail = Arc::clone(store.shared.tail.as_ref().expect("the log's tail"));
        // Records that do not follow redb's head: the writer cannot index
        // them, so the tail stays full until they are dropped.
        tail.push((2..).take(MAX_RECORDS).map(|c| entry(c, 1)).collect());

        let append = tokio::spawn({
            let store = store.clone();
            async move { store.append(sample("late")).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!append.is_finished(), "answered while the tail was full");

        // The writer catches up.
        tail.drop_through(u64::MAX);
        let record = tokio::time::timeout(Duration::from_secs(10), append)
            .await
            .expect("answered once there is room")
            .unwrap()
            .expect("appended");
        assert_eq!(record.cursor, Cursor::new(1));
        assert_eq!(
            store.read_after(Cursor::ZERO, 10).await.unwrap(),
            vec![record]
        );
    }

    /// A tail that stays full (the writer failing) refuses appends after
    /// `ROOM_WAIT`, with an error that says why, and appends nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_is_refused_when_the_tail_stays_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
        let tail = Arc::clone(store.shared.tail.as_ref().expect("the log's tail"));
        tail.push((2..).take(MAX_RECORDS).map(|c| entry(c, 1)).collect());

        let started = std::time::Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(30), store.append(sample("late")))
            .await
            .expect("answered within the wait")
            .expect_err("refused while the tail is full");
        assert!(
            started.elapsed() >= Duration::from_secs(9),
            "{:?}",
            started.elapsed()
        );
        assert!(
            error
                .to_string()
                .contains("the index is too far behind the log"),
            "{error}"
        );
        tail.drop_through(u64::MAX);
        assert_eq!(store.read_after(Cursor::ZERO, 10).await.unwrap(), vec![]);
    }
}
