//! Retention: first the records whose own `keep_for` ran out (see
//! `expiry`), then the log-wide policy: where to cut the log, found from the stream's state and a
//! binary search, never by reading the records in between; then the trim
//! mark (see `mark`) and one purge of everything up to the cut.
//!
//! - By count: the stream's state counts its messages, so the cut is the
//!   `messages - max_events`-th retained sequence: plain arithmetic, or,
//!   when records were deleted inside the log, arithmetic over the list of
//!   deleted sequences the server keeps.
//! - By age: stamps never go back along the log (see `append`), so the
//!   first record young enough is found by a binary search over sequences,
//!   one get (of the next message at or after a sequence) per step.
//!
//! Stream limits (`max_msgs`, `max_age`) were rejected as the mechanism:
//! JetStream would remove records without raising the mark, and a
//! follower would then skip them silently instead of reporting a gap.

use herald_store::{Retention, StoreError};
use serde_json::{json, Value};

use crate::envelope::micros_of;
use crate::error;
use crate::log::State;
use crate::Shared;

impl Shared {
    pub(crate) async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        self.check_open()?;
        // Expiry first, so that the count below counts what stays.
        let expired = self.expire().await?;
        if retention.is_unlimited() {
            return Ok(expired);
        }
        let state = self.state().await?;
        if state.messages == 0 {
            return Ok(expired);
        }
        let mut cut = 0;
        if let Some(max_events) = retention.max_events {
            if state.messages > max_events {
                cut = cut.max(
                    self.nth_retained(&state, state.messages - max_events)
                        .await?,
                );
            }
        }
        if let Some(max_age) = retention.max_age {
            let now = micros_of(std::time::SystemTime::now());
            let max_age = u64::try_from(max_age.as_micros()).unwrap_or(u64::MAX);
            cut = cut.max(self.age_cut(&state, now.saturating_sub(max_age)).await?);
        }
        // A trim that raised the mark but died before its purge left records
        // at or below the mark: purge them too.
        let (mark, _) = self.mark().await?;
        cut = cut.max(mark).min(state.last);
        if cut < state.first {
            return Ok(expired);
        }
        self.raise_mark(cut).await?;
        let purged = self
            .records
            .purge()
            .sequence(cut + 1)
            .await
            .map_err(error::purge)?;
        Ok(expired + purged.purged)
    }

    /// The sequence of the `n`-th retained message (1-based).
    async fn nth_retained(&self, state: &State, n: u64) -> Result<u64, StoreError> {
        let mut seq = state.first + n - 1;
        if state.deleted == 0 {
            return Ok(seq);
        }
        // Every deleted sequence at or below the candidate pushes it one
        // further (the list is ascending).
        for deleted in self.deleted().await? {
            if deleted < state.first {
                continue;
            }
            if deleted > seq {
                break;
            }
            seq += 1;
        }
        Ok(seq)
    }

    /// The sequences deleted inside the stream, ascending.
    async fn deleted(&self) -> Result<Vec<u64>, StoreError> {
        let info: Value = self
            .jetstream
            .request(
                format!("STREAM.INFO.{}", self.names.stream),
                &json!({ "deleted_details": true }),
            )
            .await
            .map_err(error::request)?;
        if let Some(problem) = info.get("error") {
            return Err(StoreError::backend(format!(
                "NATS JetStream refused the stream info: {problem}"
            )));
        }
        let mut deleted = match info.pointer("/state/deleted") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|seq| {
                    seq.as_u64().ok_or_else(|| {
                        StoreError::corrupt(format!("a deleted sequence {seq} is not a number"))
                    })
                })
                .collect::<Result<Vec<u64>, _>>()?,
            Some(other) => {
                return Err(StoreError::corrupt(format!(
                    "the deleted sequences are not a list: {other}"
                )))
            }
        };
        deleted.sort_unstable();
        Ok(deleted)
    }

    /// The last sequence whose record is older than `cutoff` (stamp below
    /// it), or one before the first retained if none is.
    async fn age_cut(&self, state: &State, cutoff: u64) -> Result<u64, StoreError> {
        let (mut low, mut high) = (state.first, state.last);
        // The first sequence whose record is young enough, if one is.
        let mut young = None;
        while low <= high {
            let middle = low + (high - low) / 2;
            match self.get_next(middle).await? {
                Some(next) if next.seq() <= high => {
                    if micros_of(next.record.published_at) >= cutoff {
                        young = Some(next.seq());
                        high = middle - 1;
                    } else {
                        low = next.seq() + 1;
                    }
                }
                // Nothing retained in middle..=high.
                _ => high = middle - 1,
            }
        }
        Ok(match young {
            Some(seq) => seq - 1,
            None => state.last,
        })
    }
}
