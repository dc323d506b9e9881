//! Batches: what makes an `append_batch` all or nothing on a server that
//! has no atomic multi-message publish (NATS 2.9).
//!
//! A batch of `n` records is `n` messages published as one chain: record
//! `k` expects the stream's last sequence to be `S + k`
//! (`Nats-Expected-Last-Sequence`), so the chain occupies `S + 1 ..= S + n`
//! with nothing of anyone else's in between, and each carries the header
//! `Herald-Batch: <S+1> <S+n>`. The chain can still break halfway: a
//! record's id turns out taken, or another writer lands a message at some
//! `S + j` first (its expectation was the same last sequence), or the
//! writer dies. Readers therefore apply one rule:
//!
//! - a batch whose last sequence is beyond the stream's head is *in
//!   flight*: a reader stops before it (and reads it again later);
//! - a batch with another writer's message inside its range is *void*: it
//!   never completed, was never acknowledged, and a reader skips it (its
//!   writer deletes what it managed to land; if it died first, the void
//!   records stay until an append of the same id replaces them, the
//!   stream keeping one message per subject, or retention trims them);
//! - otherwise the batch is complete.
//!
//! A writer that finds someone else's batch in flight at the head waits a
//! moment for it to complete before appending past it (which voids it):
//! that is how a dead writer's half batch stops holding readers back.
//!
//! Rejected: packing a batch into one message (atomic for free, but then a
//! record cannot be deleted on its own, which per-record expiry needs, and
//! its ids cannot each be a subject of the id index); a KV bucket of claims
//! written before the log (two writes that can disagree after a crash, so
//! more rules than this one).

use std::collections::HashSet;

use herald_store::Record;

/// A record as read from the stream, with its batch (if it is part of one
/// of more than one record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) record: Record,
    /// `(first, last)` sequences of its batch.
    pub(crate) batch: Option<(u64, u64)>,
}

impl Stored {
    pub(crate) fn seq(&self) -> u64 {
        self.record.cursor.get()
    }

    /// The last sequence of its batch, if that is after this record.
    pub(crate) fn pending_until(&self) -> Option<u64> {
        self.batch
            .map(|(_, last)| last)
            .filter(|last| *last > self.seq())
    }
}

/// What a reader may see of `stored` (ascending, every message of the
/// stream between the first one and the last batch end it names, as far
/// as they exist, so that every batch is judged on all of its range up to
/// `head`), with `head` the stream's last sequence as the reader knows it.
///
/// Returns the visible records, and whether the reader must stop there (a
/// batch in flight: the records after it are not returned).
pub(crate) fn visible(stored: Vec<Stored>, head: u64) -> (Vec<Record>, bool) {
    let void = void_batches(&stored);
    let mut records = Vec::with_capacity(stored.len());
    for item in stored {
        match item.batch {
            Some(batch) if void.contains(&batch) => continue,
            Some((_, last)) if last > head => return (records, true),
            _ => records.push(item.record),
        }
    }
    (records, false)
}

/// The batches of `stored` that another writer's message interrupted.
fn void_batches(stored: &[Stored]) -> HashSet<(u64, u64)> {
    let mut void = HashSet::new();
    let mut open: Option<(u64, u64)> = None;
    for item in stored {
        if let Some(batch) = open {
            if item.seq() <= batch.1 && item.batch != Some(batch) {
                void.insert(batch);
            }
            if item.seq() >= batch.1 || item.batch != Some(batch) {
                open = None;
            }
        }
        if item.pending_until().is_some() {
            open = item.batch;
        }
    }
    void
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::Cursor;

    fn stored(seq: u64, batch: Option<(u64, u64)>) -> Stored {
        let record = Record {
            cursor: Cursor::new(seq),
            id: seq.to_string().into(),
            topics: vec!["t".to_owned()].into(),
            private: false,
            frame: bytes::Bytes::from_static(b"data: x\n\n"),
            published_at: std::time::SystemTime::UNIX_EPOCH,
        };
        Stored { record, batch }
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|record| record.cursor.get()).collect()
    }

    #[test]
    fn complete_void_and_in_flight() {
        // 1 single, 2..=4 complete, 5..=6 of a batch up to 7 voided by 7.
        let log = vec![
            stored(1, None),
            stored(2, Some((2, 4))),
            stored(3, Some((2, 4))),
            stored(4, Some((2, 4))),
            stored(5, Some((5, 7))),
            stored(6, Some((5, 7))),
            stored(7, None),
            stored(8, Some((8, 10))),
            stored(9, Some((8, 10))),
        ];
        let (records, stopped) = visible(log.clone(), 9);
        assert_eq!(seqs(&records), [1, 2, 3, 4, 7]);
        assert!(stopped, "8..=10 is in flight");
        let (records, stopped) = visible(log[..7].to_vec(), 7);
        assert_eq!(seqs(&records), [1, 2, 3, 4, 7]);
        assert!(!stopped);
        // A batch whose last record was deleted (expired) is complete.
        let (records, _) = visible(vec![stored(2, Some((2, 4))), stored(3, Some((2, 4)))], 9);
        assert_eq!(seqs(&records), [2, 3]);
        // Another writer's batch right after a void one.
        let log = vec![
            stored(5, Some((5, 7))),
            stored(6, Some((6, 8))),
            stored(7, Some((6, 8))),
            stored(8, Some((6, 8))),
        ];
        assert_eq!(seqs(&visible(log, 8).0), [6, 7, 8]);
    }
}
