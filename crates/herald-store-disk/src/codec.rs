//! The byte layouts this crate keeps inside redb values and keys: a record,
//! and the key of the id index.
//!
//! redb owns the file format (pages, B-trees, checksums, crash recovery);
//! this module only decides how one record becomes one value. A small
//! hand-written, versioned layout was chosen over serde with a general codec
//! (bincode, postcard): it is a dozen lines each way, adds no dependency
//! whose encoding could shift under a semver bump, and puts `published_at`
//! at a fixed offset so trimming by age reads 8 bytes instead of decoding
//! the record.
//!
//! # Record value, version 1
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | layout version, `1` |
//! | 8 | `published_at`: nanoseconds since the Unix epoch, u64 little-endian |
//! | 1 | flags: bit 0 = `private`; other bits are zero |
//! | varint + n | id: length (LEB128), then UTF-8 bytes |
//! | varint | number of topics |
//! | per topic: varint + n | length, then UTF-8 bytes |
//! | rest | the SSE frame, byte for byte |
//!
//! A reader meeting a version it does not know reports
//! [`ErrorKind::Corrupt`](herald_store::ErrorKind::Corrupt) rather than
//! guessing; a future layout gets a new version byte and both are read.
//!
//! # Id index key
//!
//! `u32 big-endian id length ‖ id bytes ‖ u64 big-endian cursor`, ordered as
//! bytes. The length prefix makes "all keys of one id" a contiguous range
//! that no other id can fall into (without it, id `a` followed by some
//! cursor bytes could equal a longer id's prefix), and the big-endian cursor
//! orders one id's occurrences by cursor, so the earliest is the range's
//! first key. redb's tuple keys were rejected: their encoding changed between
//! redb 2 and 3, and this table must outlive an engine upgrade.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_store::{Cursor, NewRecord, Record, StoreError};

/// The layout version written by [`encode`].
const VERSION: u8 = 1;
/// Offset of the flags byte (after version and timestamp).
const FLAGS_AT: usize = 9;
/// Flag bit: the record is private.
const PRIVATE: u8 = 1;

/// Nanoseconds since the Unix epoch, the stored form of `published_at`
/// (clamped: times before 1970 become 0; u64 nanoseconds last until 2554).
pub(crate) fn nanos_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    })
}

/// The inverse of [`nanos_since_epoch`].
pub(crate) fn time_from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// Appends the stored form of `record`, published at `published_nanos`, to
/// `out`.
pub(crate) fn encode(record: &NewRecord, published_nanos: u64, out: &mut Vec<u8>) {
    out.reserve(16 + record.id.len() + record.frame.len() + 64);
    out.push(VERSION);
    out.extend_from_slice(&published_nanos.to_le_bytes());
    out.push(if record.private { PRIVATE } else { 0 });
    put_str(out, &record.id);
    put_varint(out, record.topics.len() as u64);
    for topic in record.topics.iter() {
        put_str(out, topic);
    }
    out.extend_from_slice(&record.frame);
}

/// The `published_at` of a stored record, read without decoding the rest.
pub(crate) fn published_nanos(value: &[u8]) -> Result<u64, StoreError> {
    check_version(value)?;
    let stamp = value
        .get(1..FLAGS_AT)
        .ok_or_else(|| StoreError::corrupt("record shorter than its header"))?;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(stamp);
    Ok(u64::from_le_bytes(bytes))
}

/// The id of a stored record, borrowed from the value (for trimming, which
/// must remove the record's id index entry).
pub(crate) fn decode_id(value: &[u8]) -> Result<&str, StoreError> {
    check_version(value)?;
    let mut reader = Reader::new(value, FLAGS_AT + 1)?;
    reader.str()
}

/// Decodes a stored record. The frame is copied once into its own `Bytes`
/// (the value borrows redb's page cache, which it must not outlive).
pub(crate) fn decode(cursor: Cursor, value: &[u8]) -> Result<Record, StoreError> {
    let published_at = time_from_nanos(published_nanos(value)?);
    let flags = value[FLAGS_AT..]
        .first()
        .copied()
        .ok_or_else(|| StoreError::corrupt("record shorter than its header"))?;
    if flags & !PRIVATE != 0 {
        return Err(StoreError::corrupt(format!(
            "record {cursor} has unknown flags {flags:#04x}"
        )));
    }
    let mut reader = Reader::new(value, FLAGS_AT + 1)?;
    let id: Arc<str> = reader.str()?.into();
    let topic_count = reader.varint()?;
    // Each topic takes at least one byte, which bounds a corrupt count
    // before it becomes a huge allocation.
    if topic_count > reader.remaining() as u64 {
        return Err(StoreError::corrupt(format!(
            "record {cursor} claims {topic_count} topics"
        )));
    }
    let topics = (0..topic_count)
        .map(|_| reader.str().map(str::to_owned))
        .collect::<Result<Arc<[String]>, _>>()?;
    let frame = Bytes::copy_from_slice(reader.rest());
    Ok(Record {
        cursor,
        id,
        topics,
        private: flags & PRIVATE != 0,
        frame,
        published_at,
    })
}

/// The id index key of (`id`, `cursor`). `None` for an id longer than
/// 4 GiB, which no caller can send in practice.
pub(crate) fn id_key(id: &str, cursor: u64) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(4 + id.len() + 8);
    put_id_key(&mut key, id, cursor).then_some(key)
}

/// Writes the id index key of (`id`, `cursor`) into `out` (cleared first),
/// so the writer reuses one buffer for a whole batch. `false` for an id
/// longer than 4 GiB.
pub(crate) fn put_id_key(out: &mut Vec<u8>, id: &str, cursor: u64) -> bool {
    out.clear();
    let Ok(len) = u32::try_from(id.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&cursor.to_be_bytes());
    true
}

/// The inclusive key range holding every occurrence of `id`.
pub(crate) fn id_range(id: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((id_key(id, 0)?, id_key(id, u64::MAX)?))
}

/// The cursor in an id index key.
pub(crate) fn cursor_of_id_key(key: &[u8]) -> Result<Cursor, StoreError> {
    let tail = key
        .len()
        .checked_sub(8)
        .map(|start| &key[start..])
        .ok_or_else(|| StoreError::corrupt("id index key shorter than a cursor"))?;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(tail);
    Ok(Cursor::new(u64::from_be_bytes(bytes)))
}

fn check_version(value: &[u8]) -> Result<(), StoreError> {
    match value.first() {
        Some(&VERSION) => Ok(()),
        Some(other) => Err(StoreError::corrupt(format!(
            "record layout version {other} is unknown to this build (it reads {VERSION})"
        ))),
        None => Err(StoreError::corrupt("empty record value")),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// LEB128: seven bits per byte, low bits first, high bit = "more follows".
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A bounds-checked cursor over a value: every read either succeeds or says
/// the record is corrupt; nothing indexes out of range.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Result<Self, StoreError> {
        if at > bytes.len() {
            return Err(StoreError::corrupt("record shorter than its header"));
        }
        Ok(Reader { bytes, at })
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| StoreError::corrupt("record truncated inside a length"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(StoreError::corrupt("record length does not fit 64 bits"))
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.remaining())
            .ok_or_else(|| StoreError::corrupt("record string runs past its end"))?;
        let bytes = &self.bytes[self.at..self.at + len];
        self.at += len;
        std::str::from_utf8(bytes).map_err(|_| StoreError::corrupt("record string is not UTF-8"))
    }

    fn rest(self) -> &'a [u8] {
        &self.bytes[self.at..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::ErrorKind;

    fn new_record(id: &str, topics: &[&str], private: bool, frame: &[u8]) -> NewRecord {
        NewRecord {
            id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            private,
            frame: Bytes::copy_from_slice(frame),
            keep_for: None,
        }
    }

    /// The one check helper: encode, then decode, and compare every field.
    #[track_caller]
    fn check(record: NewRecord, nanos: u64) {
        let mut value = Vec::new();
        encode(&record, nanos, &mut value);
        assert_eq!(published_nanos(&value).unwrap(), nanos);
        assert_eq!(decode_id(&value).unwrap(), &*record.id);
        let cursor = Cursor::new(42);
        let decoded = decode(cursor, &value).unwrap();
        assert_eq!(
            decoded,
            record.into_record(cursor, time_from_nanos(nanos)),
            "round trip"
        );
    }

    #[test]
    fn round_trips() {
        check(new_record("", &[], false, b""), 0);
        check(new_record("a", &["t"], true, b"data: x\n\n"), 1);
        check(
            new_record(
                "ünïcödé ✓ 🎉",
                &["https://example.com/a", "", "urn:x"],
                false,
                &[0, 255, 10, 13],
            ),
            u64::MAX,
        );
        let long_id = "i".repeat(300);
        let many_topics: Vec<String> = (0..200).map(|i| format!("topic-{i}")).collect();
        let topics: Vec<&str> = many_topics.iter().map(String::as_str).collect();
        check(
            new_record(&long_id, &topics, true, &vec![7; 70_000]),
            1_700_000_000_123_456_789,
        );
    }

    #[test]
    fn times_round_trip_exactly() {
        let now = SystemTime::now();
        let nanos = nanos_since_epoch(now);
        assert_eq!(nanos_since_epoch(time_from_nanos(nanos)), nanos);
        assert_eq!(nanos_since_epoch(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut reader = Reader::new(&out, 0).unwrap();
            assert_eq!(reader.varint().unwrap(), value);
            assert_eq!(reader.remaining(), 0);
        }
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let mut value = Vec::new();
        encode(
            &new_record("id", &["a", "b"], false, b"frame"),
            5,
            &mut value,
        );
        // Every truncation of the header and the strings must fail cleanly
        // (past the strings, a shorter value is just a shorter frame).
        let frame_at = value.len() - b"frame".len();
        for len in 0..frame_at {
            let error = decode(Cursor::new(1), &value[..len]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Corrupt, "truncated to {len}");
        }
        let mut future = value.clone();
        future[0] = 2;
        assert!(decode(Cursor::new(1), &future)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
        let mut flags = value.clone();
        flags[FLAGS_AT] = 0x80;
        assert_eq!(
            decode(Cursor::new(1), &flags).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        let mut huge_count = value[..FLAGS_AT + 1].to_vec();
        put_str(&mut huge_count, "id");
        put_varint(&mut huge_count, u64::MAX);
        assert_eq!(
            decode(Cursor::new(1), &huge_count).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        let mut bad_utf8 = value[..FLAGS_AT + 1].to_vec();
        bad_utf8.extend_from_slice(&[2, 0xff, 0xfe, 0]);
        assert_eq!(
            decode(Cursor::new(1), &bad_utf8).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn id_keys_of_one_id_form_one_range() {
        let (lo, hi) = id_range("a").unwrap();
        let inside = id_key("a", 7).unwrap();
        assert!(lo <= inside && inside <= hi);
        assert_eq!(cursor_of_id_key(&inside).unwrap(), Cursor::new(7));
        // Ids that share a prefix with "a", or whose bytes mimic a cursor,
        // never fall into its range.
        for other in ["", "b", "a\0", "a\0\0\0\0\0\0\0\u{1}", "ab", "\0a"] {
            for cursor in [0, 1, u64::MAX] {
                let key = id_key(other, cursor).unwrap();
                assert!(key < lo || key > hi, "{other:?}/{cursor} inside a's range");
            }
        }
        // One id's occurrences order by cursor.
        assert!(id_key("a", 2).unwrap() < id_key("a", 256).unwrap());
        assert!(cursor_of_id_key(b"short").is_err());
    }
}
