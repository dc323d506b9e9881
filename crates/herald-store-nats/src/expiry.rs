//! Per-record retention ([`NewRecord::keep_for`]): the expiry index, and
//! how a trim removes the records whose time ran out, wherever they are in
//! the log.
//!
//! The index is a third stream, `<name>_expiry`, with one subject per
//! `keep_for` value, `<name>.exp.<microseconds>`, holding one entry per
//! record appended with that `keep_for`: `"<cursor> <stamp> <id>"`. A
//! record's deadline is its stamp plus its `keep_for`, and stamps never go
//! back along the log (see `append`), so on each subject the entries come
//! in deadline order: a trim reads each subject from its first entry and
//! stops at the first one not due. The hub sets `keep_for` from a handful
//! of per-topic rules, so there are a handful of subjects, listed from the
//! stream's state.
//!
//! An entry is published, and acknowledged, before its record: a record
//! that landed always has its entry. An entry whose record did not land
//! (the append was refused and retried at another cursor) is harmless: a
//! trim deletes a record only if the one at the entry's cursor has the
//! entry's id and stamp, and drops the entry either way.
//!
//! Expired records are deleted one by one (`STREAM.MSG.DELETE`), and the
//! trim mark is not raised for them: they leave quietly, no follower is
//! told of a gap.
//!
//! Rejected: one subject per deadline bucket (seconds since the epoch):
//! as many subjects as pending seconds to list on every trim; a key-value
//! bucket keyed by deadline: the same, with no order to stop at.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use herald_store::{NewRecord, StoreError};
use serde_json::{json, Value};

use crate::envelope::micros_of;
use crate::error;
use crate::Shared;

/// How many subjects the server lists at most (JetStream's own cap on one
/// info answer); more `keep_for` values than this are not expected.
const MAX_CLASSES: usize = 100_000;

/// One entry of the index.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    cursor: u64,
    stamp: u64,
    id: String,
}

impl Entry {
    fn encode(&self) -> String {
        format!("{} {} {}", self.cursor, self.stamp, self.id)
    }

    fn decode(payload: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut parts = text.splitn(3, ' ');
        let cursor = parts.next()?.parse().ok()?;
        let stamp = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        Some(Entry { cursor, stamp, id })
    }
}

impl Shared {
    /// Publishes the index entries of the records of `records` that have a
    /// `keep_for`, as they will be if the chain lands after `after` with
    /// `stamp`; returns once all are acknowledged.
    pub(crate) async fn index_expiry(
        &self,
        records: &[NewRecord],
        after: u64,
        stamp: u64,
    ) -> Result<(), StoreError> {
        let mut acks = Vec::new();
        for (k, record) in records.iter().enumerate() {
            let Some(keep_for) = record.keep_for else {
                continue;
            };
            let keep_for = u64::try_from(keep_for.as_micros()).unwrap_or(u64::MAX);
            let entry = Entry {
                cursor: after + 1 + k as u64,
                stamp,
                id: record.id.to_string(),
            };
            let ack = self
                .jetstream
                .publish(self.names.expiry_subject(keep_for), entry.encode().into())
                .await
                .map_err(error::publish)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(error::publish)?;
        }
        Ok(())
    }

    /// Deletes every record whose `keep_for` ran out; returns how many.
    pub(crate) async fn expire(&self) -> Result<u64, StoreError> {
        let now = micros_of(SystemTime::now());
        let mut removed = 0;
        for (subject, keep_for) in self.expiry_classes().await? {
            loop {
                let first = match self
                    .expiry
                    .get_first_raw_message_by_subject(&subject, 1)
                    .await
                {
                    Ok(message) => message,
                    Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                    Err(error) => return Err(error::get(error)),
                };
                match Entry::decode(&first.payload) {
                    Some(entry) if entry.stamp.saturating_add(keep_for) > now => break,
                    Some(entry) => {
                        if self.delete_if(&entry).await? {
                            removed += 1;
                        }
                    }
                    None => tracing::warn!(
                        subject,
                        seq = first.sequence,
                        "dropping an expiry entry that is not \"<cursor> <stamp> <id>\""
                    ),
                }
                self.expiry
                    .delete_message(first.sequence)
                    .await
                    .map_err(error::delete)?;
            }
        }
        Ok(removed)
    }

    /// Deletes the record `entry` names, if it is still there.
    async fn delete_if(&self, entry: &Entry) -> Result<bool, StoreError> {
        // A record that no longer decodes is not ours to judge: it stays,
        // and readers report it.
        let Ok(Some(stored)) = self.get(entry.cursor).await else {
            return Ok(false);
        };
        if *stored.record.id != *entry.id || micros_of(stored.record.published_at) != entry.stamp {
            return Ok(false);
        }
        match self.records.delete_message(entry.cursor).await {
            Ok(deleted) => Ok(deleted),
            // Gone meanwhile (a purge, another node's trim).
            Err(error) => {
                tracing::debug!(cursor = entry.cursor, %error, "an expired record is gone already");
                Ok(false)
            }
        }
    }

    /// The index's subjects, with the `keep_for` (microseconds) of each.
    async fn expiry_classes(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let info: Value = self
            .jetstream
            .request(
                format!("STREAM.INFO.{}", self.names.expiry_stream),
                &json!({ "subjects_filter": self.names.expiry_all }),
            )
            .await
            .map_err(error::request)?;
        if let Some(problem) = info.get("error") {
            return Err(StoreError::backend(format!(
                "NATS JetStream refused the expiry index's info: {problem}"
            )));
        }
        let mut classes = BTreeMap::new();
        if let Some(Value::Object(subjects)) = info.pointer("/state/subjects") {
            for subject in subjects.keys().take(MAX_CLASSES) {
                match self.names.keep_for_of(subject) {
                    Some(keep_for) => {
                        classes.insert(subject.clone(), keep_for);
                    }
                    None => tracing::warn!(subject, "ignoring a foreign expiry subject"),
                }
            }
        }
        Ok(classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_refuse_garbage() {
        let entry = Entry {
            cursor: 7,
            stamp: 1_000,
            id: "a b ü".to_owned(),
        };
        assert_eq!(Entry::decode(entry.encode().as_bytes()), Some(entry));
        for bad in [&b""[..], b"7", b"7 x a", b"x 1 a", b"7 1", b"\xff 1 a"] {
            assert_eq!(Entry::decode(bad), None, "{bad:?}");
        }
    }
}
