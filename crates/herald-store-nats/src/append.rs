//! Appending: the id check and the append in one publish, and one log
//! order across nodes, by JetStream's optimistic concurrency.
//!
//! Every record is published with two expectations the stream checks
//! before it stores the message, atomically:
//!
//! - `Nats-Expected-Last-Subject-Sequence: 0` on the subject of its id
//!   (see `names`): no retained record has this id. That is the id check
//!   and the append in one step, as the Redis store's script is; the
//!   stream keeps one message per subject, and a stale one (trimmed but
//!   not purged yet, or of a void batch) is replaced by expecting its
//!   sequence instead of 0.
//! - `Nats-Expected-Last-Sequence: S`: the stream's last message is the one
//!   this node knows, `S`. It makes every node's appends one chain, which
//!   is what lets a batch occupy consecutive sequences (see `batch`), and
//!   lets the stamp be clamped to the previous record's, so `published_at`
//!   never goes back along the log even when nodes' clocks disagree a
//!   little.
//!
//! A node keeps its view of the stream's tail (last sequence, its stamp,
//! whether it ends an unfinished batch) and appends under one lock, so its
//! own appends never race each other; when another node appended since,
//! the publish is refused, the node reloads the tail and tries again. So
//! appends across the whole cluster are serialized: JetStream has no
//! multi-subject compare-and-set, and without the chain a batch could not
//! be all or nothing.
//!
//! A refused expectation reads `wrong last sequence: N`, with `N` the
//! stream's last sequence when the stream's check failed, or the subject's
//! when the id's check failed (a sequence at or below the one expected).
//! Which one it was is settled by looking at the id's subject.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::HeaderMap;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use herald_store::{Cursor, NewRecord, Record, StoreError};
use tokio::time::Instant;

use crate::envelope::{self, batch_value, micros_of, time_of, BATCH_HEADER};
use crate::error;
use crate::log::MAX_BATCH;
use crate::Shared;

/// How long an append keeps retrying against other nodes' appends before
/// it gives up (as `Unavailable`: the same publish may work a moment later).
const PATIENCE: Duration = Duration::from_secs(10);

/// How long an append waits for another writer's unfinished batch at the
/// tail to complete before it appends past it (voiding it): long enough
/// for a live writer to land the rest of a pipelined chain, short enough
/// that a dead writer holds nobody up for long.
const UNFINISHED_GRACE: Duration = Duration::from_millis(500);

/// This node's view of the stream's tail.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The stream's last sequence.
    seq: u64,
    /// The last record's stamp (microseconds since the epoch).
    stamp: u64,
    /// Whether the last message belongs to a batch that is not complete
    /// (in flight, or its writer died).
    unfinished: bool,
}

/// Who holds an id's subject.
enum Occupant {
    /// Nobody.
    Free,
    /// A retained record (or a batch in flight): the id is taken.
    Taken,
    /// A record that no longer counts (trimmed but not yet purged, or of a
    /// void batch), at this sequence: replace it by expecting it.
    Stale(u64),
}

impl Shared {
    pub(crate) async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.check_open()?;
        if records.len() as u64 > MAX_BATCH {
            return Err(StoreError::backend(format!(
                "a batch of {} records is over the {MAX_BATCH} one batch may hold",
                records.len()
            )));
        }
        let subjects: Vec<String> = records
            .iter()
            .map(|record| self.names.subject_of(&record.id))
            .collect();
        let mut expected = vec![0u64; records.len()];
        if records.len() > 1 {
            // A batch checks its ids first, so that a taken id refuses it
            // before any of it lands (a single record's publish is its own
            // check).
            let mut seen = HashSet::with_capacity(records.len());
            if let Some(repeated) = records.iter().find(|record| !seen.insert(&record.id)) {
                return Err(StoreError::duplicate_id(&repeated.id));
            }
            let occupants: Vec<Occupant> = stream::iter(0..records.len())
                .map(|k| self.occupant(&subjects[k], &records[k].id))
                .buffered(16)
                .try_collect()
                .await?;
            for (k, occupant) in occupants.into_iter().enumerate() {
                match occupant {
                    Occupant::Free => {}
                    Occupant::Taken => return Err(StoreError::duplicate_id(&records[k].id)),
                    Occupant::Stale(seq) => expected[k] = seq,
                }
            }
        }

        let mut tail_slot = self.tail.lock().await;
        let deadline = Instant::now() + PATIENCE;
        let mut waited = Duration::ZERO;
        loop {
            self.check_open()?;
            if Instant::now() > deadline {
                return Err(StoreError::unavailable(
                    "other nodes kept appending first for 10 s",
                ));
            }
            let tail = match *tail_slot {
                Some(tail) => tail,
                None => *tail_slot.insert(self.load_tail().await?),
            };
            if tail.unfinished && waited < UNFINISHED_GRACE {
                let pause = Duration::from_millis(20);
                tokio::time::sleep(pause).await;
                waited += pause;
                *tail_slot = None;
                continue;
            }
            let stamp = micros_of(std::time::SystemTime::now()).max(tail.stamp);
            if records.iter().any(|record| record.keep_for.is_some()) {
                // Indexed first: a record that lands always has its entry.
                self.index_expiry(&records, tail.seq, stamp).await?;
            }
            let first = tail.seq + 1;
            let last = tail.seq + records.len() as u64;
            let outcome = self
                .publish_chain(&records, &subjects, &expected, tail.seq, stamp)
                .await;
            match outcome {
                Chain::Landed => {
                    *tail_slot = Some(Tail {
                        seq: last,
                        stamp,
                        unfinished: false,
                    });
                    drop(tail_slot);
                    self.appended(last);
                    return Ok(records
                        .into_iter()
                        .zip(first..)
                        .map(|(record, seq)| record.into_record(Cursor::new(seq), time_of(stamp)))
                        .collect());
                }
                Chain::Refused {
                    landed,
                    at,
                    reported,
                } => {
                    *tail_slot = None;
                    self.unland(first, landed).await;
                    if reported.is_some_and(|reported| reported > tail.seq + at as u64) {
                        // Another node appended first: reload and retry.
                        continue;
                    }
                    match self.occupant(&subjects[at], &records[at].id).await? {
                        Occupant::Taken => return Err(StoreError::duplicate_id(&records[at].id)),
                        Occupant::Stale(seq) => expected[at] = seq,
                        Occupant::Free => expected[at] = 0,
                    }
                }
                Chain::Failed { landed, error } => {
                    *tail_slot = None;
                    self.unland(first, landed).await;
                    return Err(error);
                }
            }
        }
    }

    /// Publishes `records` as one chain after `after`, all sent before the
    /// first acknowledgement is awaited (one round trip for the lot).
    async fn publish_chain(
        &self,
        records: &[NewRecord],
        subjects: &[String],
        expected: &[u64],
        after: u64,
        stamp: u64,
    ) -> Chain {
        let batch =
            (records.len() > 1).then(|| batch_value(after + 1, after + records.len() as u64));
        let mut acks = Vec::with_capacity(records.len());
        let mut send_error = None;
        for (k, record) in records.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(
                "Nats-Expected-Last-Sequence",
                (after + k as u64).to_string(),
            );
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                expected[k].to_string(),
            );
            if let Some(batch) = &batch {
                headers.insert(BATCH_HEADER, batch.as_str());
            }
            let payload = envelope::encode(record, stamp);
            match self
                .jetstream
                .publish_with_headers(subjects[k].clone(), headers, payload)
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(error) => {
                    send_error = Some(error);
                    break;
                }
            }
        }
        let mut landed = 0;
        let mut refusal = None;
        for (k, ack) in acks.into_iter().enumerate() {
            let ack = ack.await;
            if refusal.is_some() {
                // The chain is broken: the rest is refused too. Awaited
                // only to leave nothing in flight.
                continue;
            }
            match ack {
                Ok(ack) if ack.sequence == after + 1 + k as u64 => landed += 1,
                Ok(ack) => {
                    refusal = Some(Err(StoreError::corrupt(format!(
                        "a publish expecting sequence {} landed at {}",
                        after + 1 + k as u64,
                        ack.sequence
                    ))));
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                    refusal = Some(Ok((k, reported_sequence(&error))));
                }
                Err(error) => refusal = Some(Err(error::publish(error))),
            }
        }
        match (refusal, send_error) {
            (Some(Ok((at, reported))), _) => Chain::Refused {
                landed,
                at,
                reported,
            },
            (Some(Err(error)), _) => Chain::Failed { landed, error },
            (None, Some(error)) => Chain::Failed {
                landed,
                error: error::publish(error),
            },
            (None, None) => Chain::Landed,
        }
    }

    /// Deletes the first `landed` records of a chain that broke (best
    /// effort: if this fails, readers skip them anyway as a void batch).
    async fn unland(&self, first: u64, landed: usize) {
        for seq in (first..).take(landed) {
            if let Err(error) = self.records.delete_message(seq).await {
                tracing::debug!(seq, %error, "cannot delete a record of a broken batch");
            }
        }
    }

    /// The tail as the stream has it now.
    async fn load_tail(&self) -> Result<Tail, StoreError> {
        let state = self.state().await?;
        if state.last == 0 {
            return Ok(Tail {
                seq: 0,
                stamp: 0,
                unfinished: false,
            });
        }
        Ok(match self.get(state.last).await? {
            Some(stored) => Tail {
                seq: state.last,
                stamp: micros_of(stored.record.published_at),
                unfinished: stored.pending_until().is_some(),
            },
            // The last record was deleted: the server's time of it stands
            // in for its stamp.
            None => Tail {
                seq: state.last,
                stamp: state.last_stamp,
                unfinished: false,
            },
        })
    }

    /// Who holds the subject of `id`.
    async fn occupant(&self, subject: &str, id: &str) -> Result<Occupant, StoreError> {
        let Some(stored) = self.get_last(subject).await? else {
            return Ok(Occupant::Free);
        };
        if &*stored.record.id != id {
            // Two ids with one SHA-256: the second one cannot be stored.
            return Ok(Occupant::Taken);
        }
        let seq = stored.seq();
        if let Some(until) = stored.pending_until() {
            let head = self.state().await?.last;
            if until > head {
                return Ok(Occupant::Taken);
            }
            if !self.is_complete(&stored, head).await? {
                return Ok(Occupant::Stale(seq));
            }
        }
        let (mark, _) = self.mark().await?;
        if seq <= mark {
            return Ok(Occupant::Stale(seq));
        }
        Ok(Occupant::Taken)
    }
}

/// How a chain of publishes ended.
enum Chain {
    /// Every record landed.
    Landed,
    /// The stream refused record `at` (an expectation did not hold);
    /// `landed` records before it did land. `reported` is the sequence the
    /// refusal named.
    Refused {
        landed: usize,
        at: usize,
        reported: Option<u64>,
    },
    /// Anything else (unreachable, timed out, ...).
    Failed { landed: usize, error: StoreError },
}

/// The `N` of a refusal's `wrong last sequence: N`.
fn reported_sequence(error: &PublishError) -> Option<u64> {
    let mut source = error.source();
    while let Some(current) = source {
        let text = current.to_string();
        if let Some((_, rest)) = text.split_once("wrong last sequence: ") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok();
        }
        source = current.source();
    }
    None
}
