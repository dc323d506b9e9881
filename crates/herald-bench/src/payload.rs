//! The event payload: a sequence number, the topic index and the send time,
//! then either padding to the requested size or the fields of a market-data
//! feed.
//!
//! `{"seq":12,"k":3,"t":1700000000123456789,"pad":"xxxx"}` ([`PayloadKind::Padded`]):
//! JSON, so a person reading a stream sees what it is, yet laid out in a
//! fixed order so the receiver reads it with a few byte comparisons instead
//! of a JSON parser (it runs once per delivery). Bodies carry no line break,
//! so every hub passes them through as one `data:` line.
//!
//! [`PayloadKind::Json`] keeps that prefix and adds what a real JSON feed
//! carries, different in every event: a trade id, a symbol, a price, a
//! quantity, a side and an ISO 8601 timestamp. The padding is the worst
//! case for nothing but compression (a run of `x` shrinks to a few bytes);
//! the feed is what a compressed stream is measured on. Its values come
//! from a hash of the topic and sequence number, so a run is reproducible
//! and needs no random generator.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What an event's data looks like beyond its stamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// The stamp padded with `x` to `--size` bytes.
    #[default]
    Padded,
    /// A trade on a market-data feed (about 160 bytes, 9 keys; `--size`
    /// does not apply): `{"seq":…,"k":…,"t":…,"id":"trd_…","symbol":"MSFT",
    /// "price":412.37,"qty":300,"side":"buy","ts":"2026-11-30T17:23:02.123456Z"}`.
    Json,
}

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

/// Appends the payload of the given kind for `stamp`; `size` is the
/// padded payload's size.
pub fn encode(kind: PayloadKind, stamp: Stamp, size: usize, out: &mut Vec<u8>) {
    match kind {
        PayloadKind::Padded => encode_padded(stamp, size, out),
        PayloadKind::Json => encode_feed(stamp, out),
    }
}

/// Writes the stamp, the part [`decode`] reads: `{"seq":…,"k":…,"t":…`.
fn write_stamp(stamp: Stamp, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"seq":{},"k":{},"t":{}"#,
        stamp.seq, stamp.topic, stamp.sent_nanos
    );
}

/// Appends the payload for `stamp`, padded with `x` to at least `size` bytes.
fn encode_padded(stamp: Stamp, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    write_stamp(stamp, out);
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

/// Symbols of the feed and their prices in cents, around which each
/// trade's price moves.
const SYMBOLS: [(&str, u64); 16] = [
    ("AAPL", 18_723),
    ("MSFT", 41_237),
    ("AMZN", 17_856),
    ("GOOGL", 16_302),
    ("NVDA", 12_114),
    ("META", 49_871),
    ("TSLA", 24_560),
    ("BRK.B", 40_815),
    ("JPM", 19_842),
    ("V", 27_619),
    ("XOM", 11_803),
    ("UNH", 52_710),
    ("BTC-USD", 6_712_345),
    ("ETH-USD", 345_678),
    ("AMD", 15_234),
    ("GLD", 21_488),
];

/// Appends a trade of a market-data feed carrying `stamp`.
fn encode_feed(stamp: Stamp, out: &mut Vec<u8>) {
    let h = mix(stamp.topic.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stamp.seq);
    let (symbol, base) = SYMBOLS[(h % SYMBOLS.len() as u64) as usize];
    // Within ±1% of the symbol's price, to the cent (at least one cent).
    let spread = (base / 100).max(1);
    let price = (base + (h >> 8) % (2 * spread + 1))
        .saturating_sub(spread)
        .max(1);
    let qty = ((h >> 24) % 50 + 1) * 10;
    let side = if (h >> 40) & 1 == 0 { "buy" } else { "sell" };
    let id = mix(h) & 0xffff_ffff_ffff;
    let secs = stamp.sent_nanos / 1_000_000_000;
    let micros = stamp.sent_nanos % 1_000_000_000 / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    write_stamp(stamp, out);
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        r#","id":"trd_{id:012x}","symbol":"{symbol}","price":{}.{:02},"qty":{qty},"side":"{side}","ts":"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"}}"#,
        price / 100,
        price % 100,
    );
}

/// splitmix64's finalizer: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
            encode(PayloadKind::Padded, stamp, size, &mut out);
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

    #[test]
    fn a_feed_event_carries_its_stamp_and_changes_every_time() {
        let mut previous: Option<serde_json::Value> = None;
        let mut prices = std::collections::HashSet::new();
        for seq in 0..200 {
            let stamp = Stamp {
                seq,
                topic: seq % 3,
                sent_nanos: 1_700_000_000_123_456_789 + seq * 1_000_000,
            };
            let mut out = Vec::new();
            encode(PayloadKind::Json, stamp, 128, &mut out);
            let text = String::from_utf8(out.clone()).unwrap();
            assert_eq!(decode(&out), Some(stamp), "{text}");
            assert!(!text.contains('\n'), "{text}");
            let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let object = value.as_object().unwrap();
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            for key in [
                "seq", "k", "t", "id", "symbol", "price", "qty", "side", "ts",
            ] {
                assert!(keys.contains(&key), "{key}: {text}");
            }
            assert_eq!(keys.len(), 9, "{text}");
            assert!(object["price"].as_f64().unwrap() > 0.0, "{text}");
            prices.insert(object["price"].to_string());
            assert!(
                (140..=200).contains(&out.len()),
                "{} bytes: {text}",
                out.len()
            );
            if let Some(previous) = &previous {
                for key in ["id", "ts"] {
                    assert_ne!(previous[key], value[key], "{key}: {text}");
                }
            }
            previous = Some(value);
        }
        assert!(prices.len() > 150, "{} distinct prices", prices.len());
    }

    #[test]
    fn feed_timestamps_are_utc_dates() {
        let stamp = Stamp {
            seq: 0,
            topic: 0,
            sent_nanos: 1_700_000_000_123_456_789,
        };
        let mut out = Vec::new();
        encode(PayloadKind::Json, stamp, 0, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""ts":"2023-11-14T22:13:20.123456Z""#),
            "{text}"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
    }
}
