//! How a [`Record`] is laid out as a stream entry, and read back.
//!
//! The entry id is `0-<cursor>`: Redis orders entries by id, so the stream's
//! order is the cursor order, and `XRANGE (0-<after>` is "everything after
//! a cursor". The fields are `id`, `ts` (microseconds since the epoch),
//! `private` (`0`/`1`), `topics` (each topic as a 4-byte big-endian length
//! and its UTF-8 bytes) and `frame` (the bytes as given). Topics are packed
//! into one field rather than one `topic` field each, so an entry's fields
//! stay a fixed set that a `HashMap`-minded reader cannot collapse.
//!
//! Decoding never panics: whatever Redis holds, a malformed entry is a
//! [`ErrorKind::Corrupt`](herald_store::ErrorKind::Corrupt) error.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_store::{Cursor, Record, StoreError};
use redis::Value;

/// The stream entry id of `cursor`.
pub(crate) fn entry_id(cursor: Cursor) -> String {
    format!("0-{cursor}")
}

/// The cursor of an entry id `0-<cursor>`.
pub(crate) fn cursor_of(entry_id: &[u8]) -> Result<Cursor, StoreError> {
    std::str::from_utf8(entry_id)
        .ok()
        .and_then(|id| id.strip_prefix("0-"))
        .and_then(|cursor| cursor.parse().ok())
        .map(Cursor::new)
        .ok_or_else(|| {
            StoreError::corrupt(format!(
                "stream entry id {:?} is not 0-<cursor>",
                String::from_utf8_lossy(entry_id)
            ))
        })
}

/// A decimal counter as Redis returns it (a string or an integer).
pub(crate) fn number(value: &Value, what: &str) -> Result<u64, StoreError> {
    let parsed = match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| StoreError::corrupt(format!("{what} is not a number: {value:?}")))
}

/// Packs topics as 4-byte big-endian lengths each followed by the bytes.
pub(crate) fn encode_topics(topics: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(topics.iter().map(|t| t.len() + 4).sum());
    for topic in topics {
        // A topic over 4 GiB cannot reach the store: the hub bounds bodies
        // far below that. Saturating keeps this total without a panic path.
        let len = u32::try_from(topic.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
    }
    out
}

fn decode_topics(mut packed: &[u8]) -> Result<Arc<[String]>, StoreError> {
    let mut topics = Vec::new();
    while !packed.is_empty() {
        let corrupt = || StoreError::corrupt("topics field is truncated");
        let (len, rest) = packed.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| corrupt())?;
        if rest.len() < len {
            return Err(corrupt());
        }
        let (topic, rest) = rest.split_at(len);
        let topic = String::from_utf8(topic.to_vec())
            .map_err(|_| StoreError::corrupt("a topic is not UTF-8"))?;
        topics.push(topic);
        packed = rest;
    }
    Ok(topics.into())
}

/// The microseconds since the epoch of `published_at` as stored.
pub(crate) fn time_of(micros: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

/// Decodes an `XRANGE`/`XREAD` list of entries.
pub(crate) fn decode_entries(value: Value) -> Result<Vec<Record>, StoreError> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries.into_iter().map(decode_entry).collect(),
        other => Err(StoreError::corrupt(format!(
            "expected a list of stream entries, got {other:?}"
        ))),
    }
}

fn decode_entry(value: Value) -> Result<Record, StoreError> {
    let Value::Array(parts) = value else {
        return Err(StoreError::corrupt("a stream entry is not [id, fields]"));
    };
    let [Value::BulkString(entry_id), fields] = <[Value; 2]>::try_from(parts)
        .map_err(|_| StoreError::corrupt("a stream entry is not [id, fields]"))?
    else {
        return Err(StoreError::corrupt("a stream entry id is not a string"));
    };
    let cursor = cursor_of(&entry_id)?;
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Map(pairs) => pairs,
        Value::Array(flat) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let Some(name) = flat.next() {
                let value = flat.next().ok_or_else(|| {
                    StoreError::corrupt(format!("entry {cursor}: a field has no value"))
                })?;
                pairs.push((name, value));
            }
            pairs
        }
        _ => return Err(StoreError::corrupt(format!("entry {cursor}: no fields"))),
    };
    let mut id = None;
    let mut ts = None;
    let mut private = None;
    let mut topics = None;
    let mut frame = None;
    for (name, value) in pairs {
        let (Value::BulkString(name), Value::BulkString(value)) = (name, value) else {
            return Err(StoreError::corrupt(format!(
                "entry {cursor}: a field is not a string"
            )));
        };
        match name.as_slice() {
            b"id" => id = Some(value),
            b"ts" => ts = Some(value),
            b"private" => private = Some(value),
            b"topics" => topics = Some(value),
            b"frame" => frame = Some(value),
            // Unknown fields are left for later versions to add.
            _ => {}
        }
    }
    let missing = |field: &str| StoreError::corrupt(format!("entry {cursor}: no {field} field"));
    let id = String::from_utf8(id.ok_or_else(|| missing("id"))?)
        .map_err(|_| StoreError::corrupt(format!("entry {cursor}: id is not UTF-8")))?;
    let ts = number(&Value::BulkString(ts.ok_or_else(|| missing("ts"))?), "ts")?;
    let private = match private.ok_or_else(|| missing("private"))?.as_slice() {
        b"0" => false,
        b"1" => true,
        _ => {
            return Err(StoreError::corrupt(format!(
                "entry {cursor}: private is not 0 or 1"
            )))
        }
    };
    Ok(Record {
        cursor,
        id: id.into(),
        topics: decode_topics(&topics.ok_or_else(|| missing("topics"))?)?,
        private,
        frame: Bytes::from(frame.ok_or_else(|| missing("frame"))?),
        published_at: time_of(ts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::ErrorKind;

    #[test]
    fn topics_round_trip() {
        let topics = vec!["a".to_owned(), String::new(), "ünï 🎉".to_owned()];
        assert_eq!(
            &*decode_topics(&encode_topics(&topics)).unwrap(),
            &topics[..]
        );
        assert!(decode_topics(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_corrupt_not_a_panic() {
        for packed in [&[0u8, 0, 0][..], &[0, 0, 0, 5, b'a'], &[0, 0, 0, 1, 0xff]] {
            assert_eq!(
                decode_topics(packed).unwrap_err().kind(),
                ErrorKind::Corrupt
            );
        }
        for id in [&b"1-1"[..], b"0-", b"0-x", b"\xff"] {
            assert_eq!(cursor_of(id).unwrap_err().kind(), ErrorKind::Corrupt);
        }
        let entry = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"0-1".to_vec()),
            Value::Array(vec![Value::BulkString(b"id".to_vec())]),
        ])]);
        assert_eq!(
            decode_entries(entry).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            decode_entries(Value::Int(3)).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn cursors_and_entry_ids() {
        assert_eq!(entry_id(Cursor::new(7)), "0-7");
        assert_eq!(cursor_of(b"0-7").unwrap(), Cursor::new(7));
    }
}
