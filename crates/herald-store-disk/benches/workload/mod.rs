//! The append workload, shared by the `append` bench and the `append_load`
//! example (`#[path]`-included there) so that both measure the same
//! publishes: a UUID id, one topic, a ~100-byte JSON payload.
//!
//! A directory module, not `benches/workload.rs`: Cargo would take that for
//! a bench target of its own.

// Each includer uses a part: the bench only ordered ids.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_store::NewRecord;

/// How the benchmark's event ids are made.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ids {
    /// UUIDv7-shaped (`urn:uuid:` + time-ordered hex): what a hub that
    /// generates its ids in publish order produces. The id index then grows
    /// at its end, like the log.
    Ordered,
    /// UUIDv4-shaped (random): every id lands at a random place in the id
    /// index, the worst case for a B-tree (one leaf page rewritten per
    /// record).
    Random,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // A different seed per thread, so workers do not repeat each other's ids.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(
        0x9E37_79B9_7F4A_7C15_u64
            .wrapping_mul(SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1)
            | 1
    );
}

fn random_u64() -> u64 {
    RNG.with(|rng| {
        // xorshift64*: plenty for spreading keys.
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn event_id(ids: Ids) -> String {
    let (high, low) = match ids {
        Ids::Ordered => {
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64;
            // Version 7 and variant bits, then a sequence for uniqueness.
            (
                (millis << 16) | 0x7000,
                (0x8000 << 48) | SEQUENCE.fetch_add(1, Ordering::Relaxed),
            )
        }
        Ids::Random => (random_u64(), random_u64()),
    };
    format!(
        "urn:uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// A typical publish, the `i`th of `publisher`.
pub fn record(ids: Ids, publisher: usize, i: u64) -> NewRecord {
    let id = event_id(ids);
    NewRecord {
        frame: Bytes::from(format!(
            "id: {id}\ndata: {{\"publisher\":{publisher},\"seq\":{i},\"status\":\"in progress\",\"progress\":0.42,\"note\":\"lorem ipsum\"}}\n\n"
        )),
        id: id.into(),
        topics: vec!["https://example.com/jobs/42".to_owned()].into(),
        private: false,
        keep_for: None,
    }
}
