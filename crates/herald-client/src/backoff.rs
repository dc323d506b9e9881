//! The reconnection delay: the server's reconnection time, then exponential
//! backoff with jitter while reconnections keep failing.
//!
//! The first reconnection after a connection that delivered something waits
//! exactly the reconnection time, as a browser does: the server chose it
//! (`retry:`), and a hub that asks its clients to come back in 100 ms after
//! a restart should see them in 100 ms. Waiting less than that is never
//! allowed. Only when reconnections keep failing (refused connections,
//! timeouts, streams that end without a single frame) does the delay
//! double per attempt, up to a cap, so a dead server is not hammered.
//!
//! Jitter is "equal jitter" bounded below by the reconnection time: the
//! delay of attempt `n >= 2` is drawn uniformly from
//! `[max(base, d/2), d]` where `d = min(growth * 2^(n-1), cap)`. Full jitter
//! (`[0, d]`) would spread clients more, but could wait less than the
//! server asked; no jitter would make every client of a restarted hub come
//! back in the same instant.

use std::time::Duration;

/// The floor for the exponential growth. A server may send `retry: 0`
/// ("come back at once"), which the first reconnection honours; without a
/// floor, doubling zero would keep a client spinning against a dead server.
const MIN_GROWTH: Duration = Duration::from_millis(100);

/// The backoff policy of one event source.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The longest delay backoff grows to (a server's own longer
    /// reconnection time still wins: it asked for it).
    pub(crate) max_delay: Duration,
}

impl Backoff {
    /// The delay before reconnection attempt `attempt` (1 for the first
    /// reconnection after progress), given the current reconnection time.
    pub(crate) fn delay(&self, attempt: u32, base: Duration) -> Duration {
        self.delay_with(attempt, base, |low, high| fastrand::u64(low..=high))
    }

    /// [`Backoff::delay`] with the random draw injected (`pick(low, high)`
    /// returns a value in `low..=high`), so tests can pin it.
    pub(crate) fn delay_with(
        &self,
        attempt: u32,
        base: Duration,
        pick: impl FnOnce(u64, u64) -> u64,
    ) -> Duration {
        if attempt <= 1 {
            return base;
        }
        let cap = self.max_delay.max(base);
        let growth = base.max(MIN_GROWTH);
        // 2^(attempt-1), saturating: past 2^31 every sane delay is capped.
        let factor = 1u32 << (attempt - 1).min(31);
        let ceiling = growth.saturating_mul(factor).min(cap);
        let floor = base.max(ceiling / 2);
        match (
            u64::try_from(floor.as_nanos()),
            u64::try_from(ceiling.as_nanos()),
        ) {
            (Ok(low), Ok(high)) if low < high => Duration::from_nanos(pick(low, high)),
            // Equal bounds, or delays too long to count in nanoseconds (a
            // server sent an absurd `retry:`): nothing to spread.
            _ => ceiling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> Backoff {
        Backoff {
            max_delay: 30_000 * MS,
        }
    }

    #[test]
    fn the_first_reconnection_waits_exactly_the_reconnection_time() {
        for base in [Duration::ZERO, 2 * MS, 3000 * MS, 90_000 * MS] {
            assert_eq!(policy().delay(1, base), base);
        }
    }

    #[test]
    fn later_attempts_grow_exponentially_within_bounds() {
        let base = 1000 * MS;
        let low = |attempt| policy().delay_with(attempt, base, |low, _| low);
        let high = |attempt| policy().delay_with(attempt, base, |_, high| high);
        assert_eq!((low(2), high(2)), (1000 * MS, 2000 * MS));
        assert_eq!((low(3), high(3)), (2000 * MS, 4000 * MS));
        assert_eq!((low(4), high(4)), (4000 * MS, 8000 * MS));
        assert_eq!((low(10), high(10)), (15_000 * MS, 30_000 * MS));
        assert_eq!((low(1000), high(1000)), (15_000 * MS, 30_000 * MS));
        for attempt in 2..40 {
            let delay = policy().delay(attempt, base);
            assert!(
                delay >= base && delay <= 30_000 * MS,
                "{attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn zero_retry_still_backs_off_on_failures() {
        assert_eq!(policy().delay(1, Duration::ZERO), Duration::ZERO);
        let low = policy().delay_with(2, Duration::ZERO, |low, _| low);
        let high = policy().delay_with(2, Duration::ZERO, |_, high| high);
        assert_eq!((low, high), (100 * MS, 200 * MS));
    }

    #[test]
    fn a_server_reconnection_time_above_the_cap_wins() {
        let base = 60_000 * MS;
        assert_eq!(policy().delay(5, base), base);
        let huge = Duration::from_millis(u64::MAX);
        assert_eq!(policy().delay(1, huge), huge);
        assert_eq!(policy().delay(7, huge), huge);
    }
}
