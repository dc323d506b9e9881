//! Reading the records' stream: one message by sequence, the next one from
//! a sequence, the last one on an id's subject, and ranges.
//!
//! Every read goes to the stream's leader (`STREAM.MSG.GET`), not to any
//! replica (`DIRECT.GET`): a replica may lag, and a node must read what
//! another node's append just acknowledged (resume on any node). A range is
//! read as many gets in flight at once, by sequence: JetStream 2.9 has no
//! batched get, and an ephemeral consumer per read was rejected because the
//! hub reads history for every resuming subscriber, and each consumer is
//! server-side state to create (through the meta leader, in a cluster) and
//! delete again.

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use herald_store::{Record, StoreError};

use crate::batch::{self, Stored};
use crate::envelope::{self, parse_batch, BATCH_HEADER};
use crate::error;
use crate::Shared;

/// How many gets one range read keeps in flight.
const GETS_IN_FLIGHT: usize = 64;

/// How many sequences one step of a range read asks for.
const WAVE: u64 = 256;

/// The most records one batch may hold: what a batch header may claim, so
/// that a forged header cannot send a reader through billions of gets.
pub(crate) const MAX_BATCH: u64 = 1 << 16;

/// The stream's state, as far as the store uses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    /// Retained messages.
    pub(crate) messages: u64,
    /// The first retained sequence (the last plus one when empty).
    pub(crate) first: u64,
    /// The last sequence ever stored.
    pub(crate) last: u64,
    /// Interior deletes.
    pub(crate) deleted: u64,
    /// The server's time of the last message, microseconds since the epoch.
    pub(crate) last_stamp: u64,
}

/// A range read: what a reader may see, and where the stream had its
/// first message in the range (to tell a gap from the end of the log).
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) records: Vec<Record>,
    /// The sequence of the first message found after the cursor (visible
    /// or not); `None` if none was found up to the head.
    pub(crate) first_found: Option<u64>,
}

impl Shared {
    /// The stream's state (one request to its leader).
    pub(crate) async fn state(&self) -> Result<State, StoreError> {
        self.check_connected()?;
        let info = self.records.get_info().await.map_err(error::request)?;
        let state = info.state;
        Ok(State {
            messages: state.messages,
            first: state.first_sequence,
            last: state.last_sequence,
            deleted: state.deleted_count.unwrap_or(0),
            last_stamp: u64::try_from(state.last_timestamp.unix_timestamp_nanos() / 1_000)
                .unwrap_or(0),
        })
    }

    /// Decodes a message of the records' stream, checking that it sits on
    /// the subject of the id it holds.
    fn decode(&self, message: StreamMessage) -> Result<Stored, StoreError> {
        let seq = message.sequence;
        let record = envelope::record_of(seq, &message.payload)?;
        if message.subject.as_str() != self.names.subject_of(&record.id) {
            return Err(StoreError::corrupt(format!(
                "the message at sequence {seq} is on subject {:?}, not its id's",
                message.subject.as_str()
            )));
        }
        let batch = match message.headers.get(BATCH_HEADER) {
            None => None,
            Some(value) => Some(
                parse_batch(value.as_str())
                    .filter(|(first, last)| {
                        (*first..=*last).contains(&seq) && last - first < MAX_BATCH
                    })
                    .ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "the message at sequence {seq} has a bad {BATCH_HEADER} header"
                        ))
                    })?,
            ),
        };
        Ok(Stored { record, batch })
    }

    /// The message at `seq`, if the stream holds one.
    pub(crate) async fn get(&self, seq: u64) -> Result<Option<Stored>, StoreError> {
        if seq == 0 {
            return Ok(None);
        }
        let got = self.records.get_raw_message(seq).await;
        self.found(got)
    }

    /// The first message at or after `from`.
    pub(crate) async fn get_next(&self, from: u64) -> Result<Option<Stored>, StoreError> {
        let got = self
            .records
            .raw_message_builder()
            .sequence(from.max(1))
            .next_by_subject(self.names.records.clone())
            .send()
            .await;
        self.found(got)
    }

    /// The last message on `subject`.
    pub(crate) async fn get_last(&self, subject: &str) -> Result<Option<Stored>, StoreError> {
        self.check_connected()?;
        let got = self.records.get_last_raw_message_by_subject(subject).await;
        self.found(got)
    }

    fn found(
        &self,
        got: Result<StreamMessage, async_nats::jetstream::stream::LastRawMessageError>,
    ) -> Result<Option<Stored>, StoreError> {
        match got {
            Ok(message) => self.decode(message).map(Some),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(error) => Err(error::get(error)),
        }
    }

    /// Every message in `first ..= last` that the stream holds, ascending.
    pub(crate) async fn get_range(&self, first: u64, last: u64) -> Result<Vec<Stored>, StoreError> {
        if first > last {
            return Ok(Vec::new());
        }
        self.check_connected()?;
        let found: Vec<Option<Stored>> = stream::iter(first..=last)
            .map(|seq| self.get(seq))
            .buffered(GETS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Up to `limit` records a reader may see after `after`, reading no
    /// further than `bound` (the stream's last sequence as the caller
    /// believes it: a doorbell's word, which anyone may forge, so it only
    /// bounds the reading). `head` is the last sequence from the stream
    /// itself, if the caller has it; it is fetched here when a batch must be
    /// judged in flight or not and its end is not found.
    pub(crate) async fn read(
        &self,
        after: u64,
        limit: usize,
        bound: u64,
        mut head: Option<u64>,
    ) -> Result<Read, StoreError> {
        let mut read = Read::default();
        let mut start = after.saturating_add(1);
        while read.records.len() < limit && start <= bound {
            let want = u64::try_from(limit - read.records.len()).unwrap_or(u64::MAX);
            let mut end = start.saturating_add(want.min(WAVE) - 1).min(bound);
            let mut stored = self.get_range(start, end).await?;
            if stored.is_empty() {
                // A hole (deleted or trimmed records): one request finds
                // the next message, however far.
                match self.get_next(end.saturating_add(1)).await? {
                    Some(next) if next.seq() <= bound => {
                        read.first_found.get_or_insert(next.seq());
                        start = next.seq();
                        continue;
                    }
                    _ => break,
                }
            }
            // Judge every batch on its whole range (as far as the bound).
            while let Some(until) = stored
                .iter()
                .filter_map(Stored::pending_until)
                .filter(|until| *until > end && *until <= bound)
                .max()
            {
                stored.extend(self.get_range(end + 1, until).await?);
                end = until;
            }
            if let Some(first) = stored.first() {
                read.first_found.get_or_insert(first.seq());
            }
            let unfound_end = stored
                .iter()
                .filter_map(Stored::pending_until)
                .any(|until| !stored.iter().any(|item| item.seq() == until));
            let judge = match head {
                Some(head) => head,
                None if unfound_end => *head.insert(self.state().await?.last),
                None => bound,
            };
            let (records, stopped) = batch::visible(stored, judge);
            read.records.extend(records);
            if stopped {
                break;
            }
            start = end.saturating_add(1);
        }
        read.records.truncate(limit);
        Ok(read)
    }

    /// Whether `stored` belongs to a complete batch (or to none): `false`
    /// for a batch in flight past `head` or voided.
    pub(crate) async fn is_complete(&self, stored: &Stored, head: u64) -> Result<bool, StoreError> {
        let Some(until) = stored.pending_until() else {
            return Ok(true);
        };
        if until > head {
            return Ok(false);
        }
        let mut range = vec![stored.clone()];
        range.extend(self.get_range(stored.seq() + 1, until).await?);
        let (records, _) = batch::visible(range, head);
        Ok(records.first().map(|record| record.cursor) == Some(stored.record.cursor))
    }
}
