//! The event payload: a sequence number, the topic index and the send time,
//! padded to the requested size.
//!
//! `{"seq":12,"k":3,"t":1700000000123456789,"pad":"xxxx"}`: JSON, so a
//! person reading a stream sees what it is, yet laid out in a fixed order so
//! the receiver reads it with a few byte comparisons instead of a JSON
//! parser (it runs once per delivery). Bodies carry no line break, so every
//! hub passes them through as one `data:` line.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a subscriber learns from one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number within the topic, from 0.
    pub seq: u64,
    /// Topic index.
    pub topic: u64,
    /// Send time, nanoseconds since the Unix epoch.
    pub sent_nanos: u64,
}

/// Nanoseconds since the Unix epoch, now. (The wall clock, not `Instant`:
/// publisher and subscribers may be different processes.)
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Appends the payload for `stamp`, padded with `x` to at least `size` bytes.
pub fn encode(stamp: Stamp, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"seq":{},"k":{},"t":{}"#,
        stamp.seq, stamp.topic, stamp.sent_nanos
    );
    // With the closing `}`: `,"pad":""` costs 9 bytes; smaller shortfalls
    // are made up with spaces (JSON whitespace), so the size is exact.
    let len = out.len() - start + 1;
    if size >= len + 9 {
        out.extend_from_slice(br#","pad":""#);
        out.resize(out.len() + size - len - 9, b'x');
        out.push(b'"');
    } else if size > len {
        out.resize(out.len() + size - len, b' ');
    }
    out.push(b'}');
}

/// Reads a payload written by [`encode`]; `None` for anything else.
pub fn decode(data: &[u8]) -> Option<Stamp> {
    let rest = data.strip_prefix(br#"{"seq":"#)?;
    let (seq, rest) = number(rest)?;
    let rest = rest.strip_prefix(br#","k":"#)?;
    let (topic, rest) = number(rest)?;
    let rest = rest.strip_prefix(br#","t":"#)?;
    let (sent_nanos, _) = number(rest)?;
    Some(Stamp {
        seq,
        topic,
        sent_nanos,
    })
}

fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
    Some((value, &bytes[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        let stamp = Stamp {
            seq: 42,
            topic: 7,
            sent_nanos: 1_700_000_000_123_456_789,
        };
        for size in [0, 10, 40, 41, 45, 48, 49, 50, 51, 128, 1000] {
            let mut out = Vec::new();
            encode(stamp, size, &mut out);
            assert_eq!(out.len(), size.max(40), "{size}");
            assert_eq!(
                decode(&out),
                Some(stamp),
                "{}",
                String::from_utf8_lossy(&out)
            );
            let _: serde_json::Value = serde_json::from_slice(&out).unwrap();
        }
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(br#"{"seq":,"k":1,"t":1}"#), None);
    }
}
