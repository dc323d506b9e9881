//! The trim mark: the highest cursor retention ever trimmed, kept in a
//! stream of its own (one message, the mark in decimal).
//!
//! The stream's first sequence is no such mark: it also moves when the
//! oldest records are deleted one by one (expiry), and those must vanish
//! silently, while records trimmed by retention must be reported to a
//! follower as a gap. So [`trim`](herald_store::Store::trim) raises the
//! mark *before* it purges, and a follower that finds records missing
//! reads the mark *after* its read: whatever a purge removed under it is
//! then at or below the mark it sees. The mark only rises: it is raised
//! with `Nats-Expected-Last-Subject-Sequence` on its own message, so two
//! nodes trimming at once cannot lower each other's.
//!
//! It lives in its own stream, not on a subject of the records' stream,
//! so that record sequences have no holes but deleted records.

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::HeaderMap;
use herald_store::StoreError;

use crate::error;
use crate::Shared;

/// How many times a raise is tried against other nodes' raises.
const RAISE_ATTEMPTS: usize = 100;

impl Shared {
    /// The trim mark, and the sequence of its message (0 if none yet).
    pub(crate) async fn mark(&self) -> Result<(u64, u64), StoreError> {
        self.check_connected()?;
        match self
            .marks
            .get_last_raw_message_by_subject(&self.names.mark)
            .await
        {
            Ok(message) => {
                let mark = std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "the trim mark {:?} is not a number",
                            String::from_utf8_lossy(&message.payload)
                        ))
                    })?;
                Ok((mark, message.sequence))
            }
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok((0, 0)),
            Err(error) => Err(error::get(error)),
        }
    }

    /// Raises the trim mark to at least `to`; returns the mark.
    pub(crate) async fn raise_mark(&self, to: u64) -> Result<u64, StoreError> {
        for _ in 0..RAISE_ATTEMPTS {
            let (mark, seq) = self.mark().await?;
            if mark >= to {
                return Ok(mark);
            }
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Expected-Last-Subject-Sequence", seq.to_string());
            let ack = self
                .jetstream
                .publish_with_headers(self.names.mark.clone(), headers, to.to_string().into())
                .await
                .map_err(error::publish)?
                .await;
            match ack {
                Ok(_) => return Ok(to),
                // Another node raised it meanwhile: look again.
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {}
                Err(error) => return Err(error::publish(error)),
            }
        }
        Err(StoreError::unavailable(
            "the trim mark kept changing under this node",
        ))
    }
}
