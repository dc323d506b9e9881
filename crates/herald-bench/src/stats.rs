//! What the subscribers count: connection and delivery counters, the
//! latency histogram, and the reconnect-storm timings, in forms that add up
//! across worker processes.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Counters of one process's subscribers (or, summed, of all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Subscriptions whose response head arrived with status 200.
    pub established: u64,
    /// Subscriptions that failed to connect or were refused.
    pub failed: u64,
    /// Established subscriptions the hub closed before the end.
    pub closed: u64,
    /// Established subscriptions whose stream could not be read: bad HTTP
    /// framing, a corrupt gzip stream, an event over the decoder's limits.
    pub corrupt: u64,
    /// Events received, over the whole run.
    pub deliveries: u64,
    /// Events received inside the measurement window.
    pub window_deliveries: u64,
    /// Events missing between two received ones (sequence jumps).
    pub gaps: u64,
    /// Events received twice or out of order.
    pub duplicates: u64,
    /// Events whose data was not a bench payload.
    pub foreign: u64,
    /// Bytes read after the response heads (the bodies with their HTTP
    /// framing), over the whole run.
    pub wire_bytes: u64,
    /// Of them, the bodies as the hub encoded them (compressed with
    /// `--gzip`).
    pub body_bytes: u64,
    /// The event streams themselves: the bodies, inflated with `--gzip`.
    pub stream_bytes: u64,
    /// [`Counters::wire_bytes`] inside the measurement window.
    pub window_wire_bytes: u64,
    /// [`Counters::body_bytes`] inside the measurement window.
    pub window_body_bytes: u64,
    /// [`Counters::stream_bytes`] inside the measurement window.
    pub window_stream_bytes: u64,
    /// Re-established subscriptions after a reconnect storm.
    pub reconnected: u64,
    /// Reconnections that failed.
    pub reconnect_failed: u64,
    /// Subscribers that have caught up after a reconnect storm.
    pub caught_up: u64,
    /// When the last subscription was established (or failed), Unix nanos.
    pub last_connect_nanos: u64,
    /// When the last storm reconnection was established, Unix nanos.
    pub last_reconnect_nanos: u64,
    /// When the last subscriber caught up after the storm, Unix nanos.
    pub last_caught_up_nanos: u64,
}

impl Counters {
    /// Adds another process's counters (latest times win).
    pub fn add(&mut self, other: &Counters) {
        self.established += other.established;
        self.failed += other.failed;
        self.closed += other.closed;
        self.corrupt += other.corrupt;
        self.deliveries += other.deliveries;
        self.window_deliveries += other.window_deliveries;
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
        self.foreign += other.foreign;
        self.wire_bytes += other.wire_bytes;
        self.body_bytes += other.body_bytes;
        self.stream_bytes += other.stream_bytes;
        self.window_wire_bytes += other.window_wire_bytes;
        self.window_body_bytes += other.window_body_bytes;
        self.window_stream_bytes += other.window_stream_bytes;
        self.reconnected += other.reconnected;
        self.reconnect_failed += other.reconnect_failed;
        self.caught_up += other.caught_up;
        self.last_connect_nanos = self.last_connect_nanos.max(other.last_connect_nanos);
        self.last_reconnect_nanos = self.last_reconnect_nanos.max(other.last_reconnect_nanos);
        self.last_caught_up_nanos = self.last_caught_up_nanos.max(other.last_caught_up_nanos);
    }

    /// Subscriptions that have settled, established or failed.
    pub fn settled(&self) -> u64 {
        self.established + self.failed
    }
}

/// Publish→receive latencies in microseconds, 1 µs to 10 min at three
/// significant figures.
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant, valid histogram bounds"),
        }
    }
}

impl Latency {
    /// Records one latency (clamped to the histogram's range).
    pub fn record(&mut self, micros: u64) {
        self.histogram.saturating_record(micros.max(1));
    }

    /// The samples as (value, count) pairs, for sending to the parent.
    pub fn to_pairs(&self) -> Vec<(u64, u64)> {
        self.histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// Adds samples from [`Latency::to_pairs`].
    pub fn add_pairs(&mut self, pairs: &[(u64, u64)]) {
        for &(value, count) in pairs {
            let _ = self.histogram.record_n(value.max(1), count);
        }
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at quantile `q` (0..=1), in milliseconds; 0 without
    /// samples.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.histogram.is_empty() {
            return 0.0;
        }
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest latency, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }
}

/// Everything one process's subscribers report at the end.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FinalStats {
    /// The counters.
    pub counters: Counters,
    /// Events published but never received by a live subscriber of their
    /// topic by the end (after the drain).
    pub missing: u64,
    /// Subscriptions established, per subscribe URL (node).
    pub established_per_target: Vec<u64>,
    /// The latency samples, as (µs, count) pairs.
    pub latency: Vec<(u64, u64)>,
    /// CPU seconds the process used.
    pub cpu_secs: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_round_trips_through_pairs() {
        let mut a = Latency::default();
        for v in [1, 10, 100, 1000, 10_000, 100_000] {
            a.record(v);
        }
        let mut b = Latency::default();
        b.add_pairs(&a.to_pairs());
        b.add_pairs(&a.to_pairs());
        assert_eq!(b.len(), 12);
        assert!((b.max_ms() - 100.0).abs() < 0.1, "{}", b.max_ms());
        assert!(
            (b.quantile_ms(0.5) - 0.1).abs() < 0.01,
            "{}",
            b.quantile_ms(0.5)
        );
        assert_eq!(Latency::default().quantile_ms(0.99), 0.0);
    }

    #[test]
    fn counters_add() {
        let mut a = Counters {
            established: 1,
            last_connect_nanos: 5,
            ..Counters::default()
        };
        a.add(&Counters {
            established: 2,
            failed: 1,
            last_connect_nanos: 3,
            ..Counters::default()
        });
        assert_eq!(
            (a.established, a.settled(), a.last_connect_nanos),
            (3, 4, 5)
        );
    }
}
