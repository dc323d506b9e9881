//! The live follow: replay through the shared connection, then `XREAD BLOCK`
//! on a connection of its own.
//!
//! A follower reads the log in batches after the last cursor it yielded,
//! each batch from one script that also returns the trim mark, so the trim
//! check is exact (as in `herald_store::follow`). When it is caught up it
//! blocks in `XREAD` from its cursor: an append that lands between the read
//! and the block is returned at once (the id names the position, not "new
//! from now", so no wake-up is lost). Entries `XREAD` returns are used as
//! they are when they continue the cursor without a hole (cursors are
//! gap-free, one `INCR` per record); otherwise the follower reads again
//! through the script, which reports the trim.
//!
//! The blocking read has its own connection: on the shared, multiplexed one
//! it would hold every publish behind it. Pub/sub as the doorbell was
//! rejected: a message published while a follower reconnects is lost, and
//! a stream id is not.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use herald_store::{Cursor, ErrorKind, Record, StoreError};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::watch;

use crate::entry::{decode_entries, entry_id};
use crate::error::from_redis;
use crate::Shared;

/// How many records one read returns.
pub(crate) const FOLLOW_BATCH: usize = 256;

/// How long one `XREAD` blocks before the follower reads again (a bound on
/// how long a dead connection goes unnoticed, not a latency: appends wake it
/// at once).
const BLOCK: Duration = Duration::from_secs(5);

pub(crate) fn follow(
    shared: Weak<Shared>,
    client: redis::Client,
    log: String,
    closed: watch::Receiver<bool>,
    after: Cursor,
) -> BoxStream<'static, Result<Record, StoreError>> {
    let follower = Follower {
        shared,
        client,
        log,
        closed,
        reader: None,
        next: after,
        buffer: VecDeque::new(),
        finished: false,
    };
    stream::unfold(follower, Follower::step).boxed()
}

struct Follower {
    /// Weak: a follower must not keep a dropped store open.
    shared: Weak<Shared>,
    client: redis::Client,
    log: String,
    /// `true` once the store is closed; errors once every handle is gone.
    /// Either ends the stream.
    closed: watch::Receiver<bool>,
    /// The dedicated connection for `XREAD BLOCK`, opened when first needed.
    reader: Option<MultiplexedConnection>,
    /// Cursor of the last record yielded (or the starting `after`).
    next: Cursor,
    buffer: VecDeque<Record>,
    finished: bool,
}

/// What a blocking wait brought.
enum Woken {
    Records(Vec<Record>),
    Closed,
}

impl Follower {
    async fn step(mut self) -> Option<(Result<Record, StoreError>, Self)> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.next = record.cursor;
                return Some((Ok(record), self));
            }
            if self.finished || *self.closed.borrow() {
                return None;
            }
            let shared = self.shared.upgrade()?;
            let batch = shared.read_batch(self.next, FOLLOW_BATCH).await;
            drop(shared);
            match batch {
                Ok((trimmed_through, _)) if trimmed_through > self.next => {
                    self.finished = true;
                    let error = StoreError::new(ErrorKind::Trimmed).with_message(format!(
                        "follower at cursor {} needs records up to {} that were trimmed",
                        self.next, trimmed_through
                    ));
                    return Some((Err(error), self));
                }
                Ok((_, records)) if !records.is_empty() => {
                    self.buffer = records.into();
                    continue;
                }
                Ok(_) => {}
                Err(error) => return self.fail(error),
            }
            match self.wait().await {
                Ok(Woken::Closed) => return None,
                Ok(Woken::Records(records)) => {
                    let mut expected = self.next.get();
                    let contiguous = records.iter().all(|record| {
                        expected += 1;
                        record.cursor.get() == expected
                    });
                    if contiguous {
                        if let (Some(last), Some(shared)) = (records.last(), self.shared.upgrade())
                        {
                            shared.saw(last.cursor.get());
                        }
                        self.buffer = records.into();
                    }
                    // Else a hole: read again, the script reports the trim.
                }
                Err(error) => return self.fail(error),
            }
        }
    }

    fn fail(mut self, error: StoreError) -> Option<(Result<Record, StoreError>, Self)> {
        self.finished = true;
        self.reader = None;
        Some((Err(error), self))
    }

    /// Blocks until entries after `next` exist (or `BLOCK` passes: then an
    /// empty list), or the store is dropped.
    async fn wait(&mut self) -> Result<Woken, StoreError> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
                let connection = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(from_redis)?;
                self.reader.insert(connection)
            }
        };
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(FOLLOW_BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.log)
            .arg(entry_id(self.next));
        tokio::select! {
            reply = xread.query_async::<Value>(reader) => {
                decode_xread(reply.map_err(from_redis)?).map(Woken::Records)
            }
            _ = self.closed.wait_for(|closed| *closed) => Ok(Woken::Closed),
        }
    }
}

/// The entries of the one stream an `XREAD` named (nil on a timeout).
fn decode_xread(reply: Value) -> Result<Vec<Record>, StoreError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(pair) => <[Value; 2]>::try_from(pair)
                    .map(|[_, entries]| entries)
                    .map_err(|_| StoreError::corrupt("XREAD reply is not [key, entries]")),
                _ => Err(StoreError::corrupt("XREAD reply is not [key, entries]")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
        other => {
            return Err(StoreError::corrupt(format!(
                "unexpected XREAD reply {other:?}"
            )))
        }
    };
    let mut records = Vec::new();
    for entries in streams {
        records.extend(decode_entries(entries)?);
    }
    Ok(records)
}
