//! The appender thread: with [`Durability::Fsync`](crate::Durability::Fsync),
//! the one place that answers appends. It does group commit into the
//! write-ahead log (`wal.rs`): takes the requests already queued, checks
//! their ids, gives them cursors, writes them as one frame, `fdatasync`s
//! it, puts the records in the [`Tail`] (where readers find them at once),
//! announces the new head and answers. redb is not touched on this path
//! except to read the id index: the writer thread (`writer.rs`) copies the
//! tail into redb in the background, many batches per transaction.
//!
//! It is the front of the store: every request arrives here, in order.
//! Trims, flushes and the close are passed on to the writer thread
//! unchanged, after the appends queued before them are in the tail, so
//! the writer sees them in the order they were asked.
//!
//! A write or fsync error leaves the log in an unknown state (the frame
//! may or may not be on disk), so the appender then refuses every later
//! append until the store is opened again, which reads what the log
//! really holds: cursors are never handed out twice.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use herald_store::{Cursor, StoreError};
use redb::Database;
use tokio::sync::watch;

use crate::codec;
use crate::error::context;
use crate::options::DiskOptions;
use crate::schema::IDS;
use crate::stats::Counters;
use crate::tail::{Entry, Tail};
use crate::wal::{self, Wal};
use crate::writer::{answer_batch, gather, reply_to_batch, Appended, Command, Pending};

/// The appender's state; owned by its thread.
pub(crate) struct Appender {
    pub(crate) db: Arc<Database>,
    pub(crate) wal: Wal,
    pub(crate) tail: Arc<Tail>,
    pub(crate) options: DiskOptions,
    pub(crate) rx: Receiver<Command>,
    /// The writer thread, for trims, flushes, the close, and the news that
    /// the tail has grown.
    pub(crate) writer: Sender<Command>,
    pub(crate) head_tx: watch::Sender<Cursor>,
    pub(crate) counters: Arc<Counters>,
    /// The last cursor handed out.
    pub(crate) head: u64,
    /// Nanoseconds of the newest `published_at`.
    pub(crate) last_published: u64,
    /// Why the log cannot be appended to any more, once a write failed.
    pub(crate) broken: Option<String>,
}

impl Appender {
    /// The thread's body: serve requests until disconnected or closed.
    pub(crate) fn run(mut self) {
        let mut deferred = None;
        loop {
            let command = match deferred.take() {
                Some(command) => command,
                None => match self.rx.recv() {
                    Ok(command) => command,
                    // Every handle is gone: dropping `self.writer` tells
                    // the writer to index the rest, sync and stop.
                    Err(_) => return,
                },
            };
            match command {
                Command::Append { records, reply } => {
                    deferred = self.append_batch(Pending { records, reply });
                }
                Command::Trim {
                    retention,
                    now,
                    reply,
                    ..
                } => {
                    let trim = Command::Trim {
                        retention,
                        now,
                        as_of: self.head,
                        reply,
                    };
                    if self.writer.send(trim).is_err() {
                        return;
                    }
                }
                close @ Command::Close { .. } => {
                    // The writer answers it once everything is in redb and
                    // durable; requests still queued here get `Closed`.
                    let _ = self.writer.send(close);
                    return;
                }
                other => {
                    if self.writer.send(other).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Gathers queued append requests behind `first` (as the writer does
    /// without a log), logs them as one frame and answers every one.
    /// Returns a request taken off the channel that did not fit.
    fn append_batch(&mut self, first: Pending) -> Option<Command> {
        let (batch, deferred) = gather(&self.rx, &self.options, first);
        let records: usize = batch.iter().map(|pending| pending.records.len()).sum();
        let bytes: usize = batch.iter().map(|pending| pending.records.bytes()).sum();
        if records == 0 {
            for pending in batch {
                let _ = pending.reply.send(Ok(Appended::Many(Vec::new())));
            }
            return deferred;
        }
        if !self.room_in_tail() {
            let error = StoreError::backend(format!(
                "{} records wait to be copied into the index, for over {} s",
                self.tail.len(),
                ROOM_WAIT.as_secs()
            ));
            reply_to_batch(
                batch,
                &error,
                "the index is too far behind the log: nothing was appended",
            );
            return deferred;
        }
        if let Some(why) = &self.broken {
            let why = why.clone();
            for pending in batch {
                let _ = pending
                    .reply
                    .send(Err(StoreError::backend(why.clone()).with_message(
                        "the write-ahead log failed earlier; reopen the store to append again",
                    )));
            }
            return deferred;
        }

        let refused = match self.taken_ids(&batch) {
            Ok(refused) => refused,
            Err(error) => {
                reply_to_batch(
                    batch,
                    &error,
                    "checking event ids failed: nothing was appended",
                );
                return deferred;
            }
        };

        let published = codec::nanos_since_epoch(SystemTime::now()).max(self.last_published);
        let published_at = codec::time_from_nanos(published);
        let mut payload = Vec::with_capacity(bytes + 64 * records);
        let mut entries = Vec::with_capacity(records);
        let mut value = Vec::new();
        let mut cursor = self.head;
        for (pending, refused) in batch.iter().zip(&refused) {
            if refused.is_some() {
                continue;
            }
            for record in pending.records.iter() {
                cursor += 1;
                value.clear();
                codec::encode(record, published, &mut value);
                let deadline = record.keep_for.map(|keep_for| {
                    let keep = u64::try_from(keep_for.as_nanos()).unwrap_or(u64::MAX);
                    published.saturating_add(keep)
                });
                wal::put_entry(&mut payload, cursor, deadline, &value);
                entries.push(Entry {
                    record: record
                        .clone()
                        .into_record(Cursor::new(cursor), published_at),
                    value: value.as_slice().into(),
                    deadline,
                });
            }
        }

        if cursor > self.head {
            if let Err(error) = self.wal.append(self.head + 1, &payload) {
                let why = format!("writing the write-ahead log: {error}");
                tracing::error!(error = %why, records, "herald-store-disk: group commit failed");
                self.broken = Some(why.clone());
                let error = StoreError::backend(error).with_message(why);
                reply_to_batch(
                    batch,
                    &error,
                    "group commit failed: it may or may not be stored",
                );
                return deferred;
            }
            let appended = cursor - self.head;
            let grew_from = self.tail.push(entries);
            // Wake followers before answering: when `append` returns, the
            // record is already announced. (Answering first measured no
            // different in S3; see docs/profiles.)
            self.head_tx.send_replace(Cursor::new(cursor));
            let requests = refused.iter().filter(|r| r.is_none()).count() as u64;
            self.counters.appended(appended, requests, true);
            self.last_published = published;
            // The writer hears only of an empty tail filling, or of one
            // worth indexing at once: not of every batch.
            if grew_from == 0 || (grew_from < FOLD_AT && grew_from + appended as usize >= FOLD_AT) {
                let _ = self.writer.send(Command::Index);
            }
        }

        let after = self.head;
        self.head = cursor;
        answer_batch(batch, refused, after, published_at);
        deferred
    }

    /// Waits, if the tail is full, until the writer has copied enough of
    /// it into redb (at most [`ROOM_WAIT`]); returns whether there is room.
    /// Meanwhile requests queue behind this batch, as during a sync.
    fn room_in_tail(&self) -> bool {
        if self.tail.has_room_now() {
            return true;
        }
        // The writer indexes at once when told of a full tail.
        let _ = self.writer.send(Command::Index);
        self.tail.wait_for_room(ROOM_WAIT)
    }

    /// Per request: `None` if its ids are free, else why it is refused. An
    /// id is taken if an earlier request of the batch has it, the tail has
    /// it, or redb's index does. The tail is asked first and redb after:
    /// a record leaves the tail only once redb has it.
    fn taken_ids(&self, batch: &[Pending]) -> Result<Vec<Option<StoreError>>, StoreError> {
        const DOING: &str = "checking event ids";
        let mut seen: HashSet<&str> = HashSet::new();
        let mut refused: Vec<Option<StoreError>> = Vec::with_capacity(batch.len());
        for pending in batch {
            let mut mine = HashSet::new();
            let taken = pending.records.iter().find(|record| {
                let id: &str = &record.id;
                !mine.insert(id) || seen.contains(id) || self.tail.cursor_of(id).is_some()
            });
            match taken {
                Some(record) => refused.push(Some(StoreError::duplicate_id(&record.id))),
                None => {
                    seen.extend(mine);
                    refused.push(None);
                }
            }
        }
        let txn = self.db.begin_read().map_err(context(DOING))?;
        let ids = txn.open_table(IDS).map_err(context(DOING))?;
        let mut range = [Vec::new(), Vec::new()];
        for (pending, refused) in batch.iter().zip(refused.iter_mut()) {
            if refused.is_some() {
                continue;
            }
            for record in pending.records.iter() {
                let id: &str = &record.id;
                let [low, high] = &mut range;
                if !codec::put_id_key(low, id, 0) || !codec::put_id_key(high, id, u64::MAX) {
                    *refused = Some(StoreError::backend(
                        "an event id longer than 4 GiB cannot be indexed",
                    ));
                    break;
                }
                let mut found = ids
                    .range::<&[u8]>(low.as_slice()..=high.as_slice())
                    .map_err(context(DOING))?;
                if found.next().transpose().map_err(context(DOING))?.is_some() {
                    *refused = Some(StoreError::duplicate_id(id));
                    break;
                }
            }
        }
        Ok(refused)
    }
}

/// How many records in the tail make the writer index it at once, rather
/// than at its next timer.
pub(crate) const FOLD_AT: usize = 4096;

/// How long appends wait for room in a full tail before they are refused
/// (the writer is then failing to index, or far too slow for the load).
const ROOM_WAIT: Duration = Duration::from_secs(10);
