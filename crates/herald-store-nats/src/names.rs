//! [`Names`]: the streams and subjects one log uses, all derived from the
//! log's name, so every node that connects with the same name shares them.
//!
//! - stream `<name>`, subjects `<name>.id.*`: the records, one message per
//!   record on the subject of its id;
//! - stream `<name>_mark`, subject `<name>.mark`: the trim mark (see
//!   `mark`);
//! - stream `<name>_expiry`, subjects `<name>.exp.<microseconds>`: the
//!   expiry index (see `expiry`);
//! - subject `<name>.head` (core NATS, no stream): the doorbell appenders
//!   ring after every append (see `head`).
//!
//! An id's subject token is the unpadded base64url SHA-256 of the id:
//! ids are any Unicode of any length, subject tokens are not (no `.`,
//! spaces, wildcards, and a bounded length). Two ids with one hash would
//! share a subject, and the second would be refused as a duplicate;
//! SHA-256 makes that as likely as never.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use herald_store::StoreError;
use sha2::{Digest, Sha256};

/// The longest log name: stream names go into JetStream API subjects and
/// file names, which a few hundred bytes would strain.
const MAX_NAME: usize = 64;

/// The streams and subjects of the log called `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Names {
    /// The records' stream.
    pub(crate) stream: String,
    /// The wildcard subject of every record.
    pub(crate) records: String,
    /// The trim mark's stream.
    pub(crate) mark_stream: String,
    /// The trim mark's subject.
    pub(crate) mark: String,
    /// The expiry index's stream.
    pub(crate) expiry_stream: String,
    /// The wildcard subject of the expiry index.
    pub(crate) expiry_all: String,
    /// The doorbell subject.
    pub(crate) head: String,
    /// `<name>.id.`, the prefix of every record's subject.
    id_prefix: String,
}

impl Names {
    /// The names of the log `name`: ASCII letters, digits, `-` and `_`,
    /// 1 to 64 of them (what a stream name and a subject token both allow).
    pub(crate) fn new(name: &str) -> Result<Self, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid {
            return Err(StoreError::backend(format!(
                "invalid NATS log name {name:?}: use 1 to {MAX_NAME} ASCII letters, digits, \
                 '-' or '_'"
            )));
        }
        Ok(Names {
            stream: name.to_owned(),
            records: format!("{name}.id.*"),
            mark_stream: format!("{name}_mark"),
            mark: format!("{name}.mark"),
            expiry_stream: format!("{name}_expiry"),
            expiry_all: format!("{name}.exp.*"),
            head: format!("{name}.head"),
            id_prefix: format!("{name}.id."),
        })
    }

    /// The expiry index's subject for records kept `keep_for`
    /// microseconds.
    pub(crate) fn expiry_subject(&self, keep_for: u64) -> String {
        format!(
            "{}{keep_for}",
            &self.expiry_all[..self.expiry_all.len() - 1]
        )
    }

    /// The `keep_for` of an expiry subject; `None` if it is not one.
    pub(crate) fn keep_for_of(&self, subject: &str) -> Option<u64> {
        let digits = subject.strip_prefix(&self.expiry_all[..self.expiry_all.len() - 1])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The subject of the record whose id is `id`.
    pub(crate) fn subject_of(&self, id: &str) -> String {
        let digest = Sha256::digest(id.as_bytes());
        let mut subject = self.id_prefix.clone();
        URL_SAFE_NO_PAD.encode_string(digest, &mut subject);
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subjects() {
        let names = Names::new("herald").unwrap();
        assert_eq!(names.stream, "herald");
        assert_eq!(names.records, "herald.id.*");
        assert_eq!(names.mark_stream, "herald_mark");
        let subject = names.subject_of("ünï.cödé *>");
        assert!(subject.starts_with("herald.id."));
        let token = &subject["herald.id.".len()..];
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(names.subject_of("a"), names.subject_of("A"));
        assert_eq!(names.subject_of(""), names.subject_of(""));
        assert_eq!(names.expiry_subject(1500), "herald.exp.1500");
        assert_eq!(names.keep_for_of("herald.exp.1500"), Some(1500));
        for bad in [
            "herald.exp.",
            "herald.exp.1x",
            "other.exp.1",
            "herald.exp.-1",
        ] {
            assert_eq!(names.keep_for_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", "a.b", "a b", "a*", ">", "ü", &"x".repeat(65)] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
        assert!(Names::new("Herald_prod-1").is_ok());
    }
}
