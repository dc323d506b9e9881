//! How a [`Record`] is laid out as a JetStream message, and read back.
//!
//! One record is one message: its stream sequence is the cursor, its subject
//! names its id (see `names`), its payload is an envelope:
//!
//! ```text
//! "HR1"                 magic and version (3 bytes)
//! stamp                 published_at, microseconds since the epoch (u64 BE)
//! flags                 bit 0: private (u8; other bits must be 0)
//! id                    u32 BE length, UTF-8 bytes
//! topics                u32 BE count, then each: u32 BE length, UTF-8 bytes
//! frame                 the rest of the payload, byte for byte
//! ```
//!
//! The id and topics travel in the payload, not in NATS headers: header
//! values are text lines, and an id may be any Unicode (and a topic any
//! string), which headers would have to escape. The stamp is the
//! appending node's clock, clamped so that it never goes below the
//! record before it (see `append`): NATS 2.9 does not return its own stamp
//! in a publish acknowledgement, and a second round trip per append to read
//! it was rejected.
//!
//! A record of a batch of more than one carries the header
//! [`BATCH_HEADER`] `"<first> <last>"`: the sequences its batch occupies
//! (see `batch`).
//!
//! Decoding never panics: whatever the stream holds, a malformed message is
//! an [`ErrorKind::Corrupt`](herald_store::ErrorKind::Corrupt) error.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use herald_store::{Cursor, NewRecord, Record, StoreError};

use crate::error::Malformed;

/// The first bytes of every envelope: a magic and a format version.
const MAGIC: &[u8; 3] = b"HR1";

/// The header naming the sequences a record's batch occupies.
pub(crate) const BATCH_HEADER: &str = "Herald-Batch";

/// Encodes `record`'s envelope with `stamp` (microseconds since the epoch).
pub(crate) fn encode(record: &NewRecord, stamp: u64) -> Bytes {
    let topics_len: usize = record.topics.iter().map(|topic| topic.len() + 4).sum();
    let mut out = BytesMut::with_capacity(
        MAGIC.len() + 8 + 1 + 4 + record.id.len() + 4 + topics_len + record.frame.len(),
    );
    out.put_slice(MAGIC);
    out.put_u64(stamp);
    out.put_u8(u8::from(record.private));
    put_string(&mut out, &record.id);
    // A count or length over 4 GiB cannot reach the store: the hub bounds
    // bodies far below that, and NATS messages are a few MiB at most.
    // Saturating keeps this total without a panic path; the decoder would
    // then refuse the envelope rather than misread it.
    out.put_u32(u32::try_from(record.topics.len()).unwrap_or(u32::MAX));
    for topic in record.topics.iter() {
        put_string(&mut out, topic);
    }
    out.put_slice(&record.frame);
    out.freeze()
}

fn put_string(out: &mut BytesMut, value: &str) {
    out.put_u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
    out.put_slice(value.as_bytes());
}

/// A decoded envelope: the record but its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) stamp: u64,
    pub(crate) private: bool,
    pub(crate) id: Arc<str>,
    pub(crate) topics: Arc<[String]>,
    pub(crate) frame: Bytes,
}

impl Envelope {
    /// The record stored at `cursor`.
    pub(crate) fn into_record(self, cursor: Cursor) -> Record {
        Record {
            cursor,
            id: self.id,
            topics: self.topics,
            private: self.private,
            frame: self.frame,
            published_at: time_of(self.stamp),
        }
    }
}

/// Decodes an envelope; the frame shares `payload`'s allocation.
pub(crate) fn decode(payload: &Bytes) -> Result<Envelope, Malformed> {
    let mut reader = Reader { payload, at: 0 };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(Malformed::new("no Herald envelope (magic HR1)"));
    }
    let stamp = u64::from_be_bytes(reader.array()?);
    let private = match reader.array::<1>()? {
        [0] => false,
        [1] => true,
        _ => return Err(Malformed::new("unknown flags")),
    };
    let id = reader.string("the id")?;
    let count = u32::from_be_bytes(reader.array()?);
    // Each topic takes at least its 4-byte length: a count the payload
    // cannot hold is refused before anything is allocated for it.
    let left = payload.len() - reader.at;
    let count = usize::try_from(count)
        .ok()
        .filter(|count| count.saturating_mul(4) <= left)
        .ok_or_else(|| Malformed::new("the topic count exceeds the payload"))?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(reader.string("a topic")?);
    }
    Ok(Envelope {
        stamp,
        private,
        id: id.into(),
        topics: topics.into(),
        frame: payload.slice(reader.at..),
    })
}

/// A cursor over a payload; every read is bounds-checked.
struct Reader<'a> {
    payload: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], Malformed> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.payload.len())
            .ok_or_else(|| Malformed::new("the envelope is truncated"))?;
        let bytes = &self.payload[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes.
        <[u8; N]>::try_from(bytes).map_err(|_| Malformed::new("the envelope is truncated"))
    }

    fn string(&mut self, what: &str) -> Result<String, Malformed> {
        let len = u32::from_be_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| Malformed::new("a length overflows"))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Malformed::new(format!("{what} is not UTF-8")))
    }
}

/// The microseconds since the epoch of `time` (0 before the epoch, the
/// maximum past year 586,912).
pub(crate) fn micros_of(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// The time `micros` microseconds after the epoch.
pub(crate) fn time_of(micros: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

/// A batch header's value: the first and last sequence of the batch.
pub(crate) fn batch_value(first: u64, last: u64) -> String {
    format!("{first} {last}")
}

/// Parses a batch header's value; `None` if it is not two ascending
/// sequences.
pub(crate) fn parse_batch(value: &str) -> Option<(u64, u64)> {
    let (first, last) = value.split_once(' ')?;
    let first: u64 = first.parse().ok()?;
    let last: u64 = last.parse().ok()?;
    (first >= 1 && first <= last).then_some((first, last))
}

/// Decodes a stored message into a record, as a store error.
pub(crate) fn record_of(sequence: u64, payload: &Bytes) -> Result<Record, StoreError> {
    decode(payload)
        .map(|envelope| envelope.into_record(Cursor::new(sequence)))
        .map_err(|error| {
            StoreError::corrupt(format!("the message at sequence {sequence}")).with_source(error)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewRecord {
        NewRecord {
            id: "ünï 🎉".into(),
            topics: vec!["a".to_owned(), String::new(), "https://x/ü".to_owned()].into(),
            private: true,
            frame: Bytes::from_static(b"id: x\ndata: \xff\x00\n\n"),
            keep_for: None,
        }
    }

    #[test]
    fn round_trips() {
        let record = sample();
        let decoded = decode(&encode(&record, 1_234_567)).unwrap();
        assert_eq!(decoded.stamp, 1_234_567);
        assert_eq!(decoded.id, record.id);
        assert_eq!(decoded.topics, record.topics);
        assert!(decoded.private);
        assert_eq!(decoded.frame, record.frame);
        let empty = NewRecord {
            id: "".into(),
            topics: Vec::new().into(),
            private: false,
            frame: Bytes::new(),
            keep_for: None,
        };
        let decoded = decode(&encode(&empty, 0)).unwrap();
        assert!(decoded.topics.is_empty() && decoded.frame.is_empty() && !decoded.private);
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let encoded = encode(&sample(), 42);
        let header_len = encoded.len() - sample().frame.len();
        for len in 0..header_len {
            assert!(decode(&encoded.slice(..len)).is_err(), "length {len}");
        }
        let mut bad_flags = encoded.to_vec();
        bad_flags[11] = 2;
        assert!(decode(&Bytes::from(bad_flags)).is_err());
        let mut huge_count = encode(&sample(), 1).to_vec();
        let count_at = 3 + 8 + 1 + 4 + sample().id.len();
        huge_count[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&Bytes::from(huge_count)).is_err());
        let mut not_utf8 = encode(&sample(), 1).to_vec();
        not_utf8[3 + 8 + 1 + 4] = 0xff;
        assert!(decode(&Bytes::from(not_utf8)).is_err());
        assert!(decode(&Bytes::from_static(b"XX1")).is_err());
        assert_eq!(
            record_of(7, &Bytes::from_static(b"HR")).unwrap_err().kind(),
            herald_store::ErrorKind::Corrupt
        );
    }

    #[test]
    fn batch_headers() {
        assert_eq!(parse_batch(&batch_value(3, 5)), Some((3, 5)));
        for bad in ["", "3", "5 3", "0 2", "a b", "3 5 7", "-1 2"] {
            assert_eq!(parse_batch(bad), None, "{bad:?}");
        }
    }
}
