//! [`DiskOptions`] and [`Durability`]: how a [`DiskStore`](crate::DiskStore)
//! is opened and what it promises.
//!
//! One typed struct with a doc comment per field and every default in
//! [`DiskOptions::default`], checked once by [`DiskOptions::validate`] at
//! [`open`](crate::DiskStore::open). Builder methods were rejected: public
//! fields with `..DiskOptions::default()` say the same in fewer words, and map
//! one-to-one onto a server's config table.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use herald_store::StoreError;

/// What an acknowledged append survives. See the crate docs' `# Durability`
/// section for the exact promises.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Every commit is fsynced before any append in it is answered: an
    /// acknowledged append survives `kill -9`, an OS crash and power loss
    /// (as far as the disk honours fsync). Concurrent appends share one
    /// commit (group commit), so this costs one fsync per batch, not per
    /// record. The default.
    #[default]
    Fsync,
    /// The fsync is deferred: commits are made visible without it, and a
    /// durable commit follows at most [`DiskOptions::sync_interval`] later
    /// (and at [`flush`](crate::DiskStore::flush),
    /// [`close`](crate::DiskStore::close) and drop). A crash or `kill -9` can
    /// lose the appends acknowledged since the last durable commit; the file
    /// stays consistent and cursors are still never reused. For throw-away
    /// streams. Configured as `none` (no fsync before the answer).
    Deferred,
}

impl Durability {
    /// The name used in configuration: `fsync`, or `none` for
    /// [`Durability::Deferred`] (no fsync before the answer).
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Deferred => "none",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Durability`] from a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDurabilityError {
    given: String,
}

impl fmt::Display for ParseDurabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown durability {:?}: expected \"fsync\" or \"none\"",
            self.given
        )
    }
}

impl std::error::Error for ParseDurabilityError {}

impl FromStr for Durability {
    type Err = ParseDurabilityError;

    /// Parses `fsync` or `none` (ASCII case-insensitive), as a CLI flag or
    /// config file gives it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("fsync") {
            Ok(Durability::Fsync)
        } else if s.eq_ignore_ascii_case("none") {
            Ok(Durability::Deferred)
        } else {
            Err(ParseDurabilityError {
                given: s.to_owned(),
            })
        }
    }
}

/// How a [`DiskStore`](crate::DiskStore) is opened. Start from
/// [`DiskOptions::default`] and override fields:
///
/// ```
/// use herald_store_disk::{DiskOptions, Durability};
///
/// let options = DiskOptions {
///     durability: Durability::Deferred,
///     ..DiskOptions::default()
/// };
/// assert!(options.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOptions {
    /// What an acknowledged append survives. Default: [`Durability::Fsync`].
    pub durability: Durability,
    /// With [`Durability::Deferred`], the longest a commit waits before a durable
    /// one covers it: the window of acknowledged appends a crash can lose.
    /// It also bounds what redb holds back (pages freed by non-durable
    /// commits are reclaimed only at a durable one). Ignored with
    /// [`Durability::Fsync`]. Default: 1 s.
    pub sync_interval: Duration,
    /// Most records per group commit. A batch always takes at least one
    /// caller's whole request (an `append_batch` is never split), then adds
    /// queued requests while under both limits. Default: 4096.
    pub max_batch_records: usize,
    /// Most frame bytes per group commit (same rule as
    /// [`max_batch_records`](DiskOptions::max_batch_records)).
    /// Default: 16 MiB.
    pub max_batch_bytes: usize,
    /// Most records one trim transaction removes. Trimming more is done in
    /// several transactions with queued appends committed between them, so a
    /// large trim delays publishers by one step at most. Default: 10,000.
    pub trim_batch: usize,
    /// Memory redb may use to cache pages (reads and the write buffer).
    /// Default: 64 MiB (redb's own default, 1 GiB, is a lot for a hub that
    /// mostly reads what it just wrote).
    pub cache_size: usize,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            durability: Durability::Fsync,
            sync_interval: Duration::from_secs(1),
            max_batch_records: 4096,
            max_batch_bytes: 16 * 1024 * 1024,
            trim_batch: 10_000,
            cache_size: 64 * 1024 * 1024,
        }
    }
}

impl DiskOptions {
    /// Checks the options, saying which field is wrong. Called by
    /// [`DiskStore::open`](crate::DiskStore::open).
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |message: &str| {
            Err(StoreError::new(herald_store::ErrorKind::Backend)
                .with_message(format!("invalid disk store options: {message}")))
        };
        if self.max_batch_records == 0 {
            return invalid("max_batch_records must be at least 1");
        }
        if self.max_batch_bytes == 0 {
            return invalid("max_batch_bytes must be at least 1");
        }
        if self.trim_batch == 0 {
            return invalid("trim_batch must be at least 1");
        }
        if self.durability == Durability::Deferred && self.sync_interval.is_zero() {
            return invalid(
                "sync_interval must be above zero (use Durability::Fsync to sync every commit)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_and_displays() {
        assert_eq!("fsync".parse(), Ok(Durability::Fsync));
        assert_eq!("NONE".parse(), Ok(Durability::Deferred));
        assert!("eventual".parse::<Durability>().is_err());
        assert_eq!(Durability::default().to_string(), "fsync");
        assert_eq!(Durability::Deferred.to_string(), "none");
    }

    #[test]
    fn defaults_are_valid_and_zeroes_are_not() {
        assert!(DiskOptions::default().validate().is_ok());
        for broken in [
            DiskOptions {
                max_batch_records: 0,
                ..DiskOptions::default()
            },
            DiskOptions {
                max_batch_bytes: 0,
                ..DiskOptions::default()
            },
            DiskOptions {
                trim_batch: 0,
                ..DiskOptions::default()
            },
            DiskOptions {
                durability: Durability::Deferred,
                sync_interval: Duration::ZERO,
                ..DiskOptions::default()
            },
        ] {
            let error = broken.validate().unwrap_err();
            assert!(error.to_string().contains("invalid disk store options"));
        }
    }
}
