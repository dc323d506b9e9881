//! [`Stats`]: what the writer has done, for metrics and for tests that check
//! group commit really batches.
//!
//! Plain relaxed atomics bumped by the writer thread after each commit:
//! they are counters read for monitoring, never used to synchronise, so a
//! mutex (or a channel round trip to the writer) would only cost.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a store's counters since it was opened.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records appended (acknowledged).
    pub appended: u64,
    /// Append requests served (`append` calls count one, `append_batch`
    /// calls one each).
    pub requests: u64,
    /// Write transactions committed for appends: with group commit, far
    /// fewer than `requests` under concurrent load.
    pub append_commits: u64,
    /// Commits that were durable (fsynced): every append commit with
    /// `Durability::Fsync`; the periodic and final syncs with `Deferred`.
    pub durable_commits: u64,
    /// Records removed by retention.
    pub trimmed: u64,
    /// Write transactions committed for trimming.
    pub trim_commits: u64,
    /// Largest number of records in one group commit.
    pub largest_batch: u64,
}

/// The live counters behind [`Stats`], shared by the writer and the handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    appended: AtomicU64,
    requests: AtomicU64,
    append_commits: AtomicU64,
    durable_commits: AtomicU64,
    trimmed: AtomicU64,
    trim_commits: AtomicU64,
    largest_batch: AtomicU64,
}

impl Counters {
    pub(crate) fn appended(&self, records: u64, requests: u64, durable: bool) {
        self.appended.fetch_add(records, Ordering::Relaxed);
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.append_commits.fetch_add(1, Ordering::Relaxed);
        if durable {
            self.durable_commits.fetch_add(1, Ordering::Relaxed);
        }
        self.largest_batch.fetch_max(records, Ordering::Relaxed);
    }

    pub(crate) fn trimmed(&self, records: u64, durable: bool) {
        self.trimmed.fetch_add(records, Ordering::Relaxed);
        self.trim_commits.fetch_add(1, Ordering::Relaxed);
        if durable {
            self.durable_commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn synced(&self) {
        self.durable_commits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            appended: self.appended.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            append_commits: self.append_commits.load(Ordering::Relaxed),
            durable_commits: self.durable_commits.load(Ordering::Relaxed),
            trimmed: self.trimmed.load(Ordering::Relaxed),
            trim_commits: self.trim_commits.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }
}
