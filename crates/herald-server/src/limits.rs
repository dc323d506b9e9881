//! Counted slots: at most N held in total and M per client address. The
//! accept loop holds one per TCP connection, the subscribe route one per
//! subscription; beyond them the hub answers 503 or 429 rather than run
//! out of file descriptors or memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Slots of one kind; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Slots {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    per_ip: usize,
    total: usize,
    counts: Mutex<Counts>,
    /// Told when a slot is released while all were taken.
    room: Notify,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Which limit a refused [`Slots::acquire`] ran into.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Every slot of the hub is taken.
    Total,
    /// The client address holds all the slots it may.
    PerAddress,
}

impl From<Full> for crate::ApiError {
    fn from(full: Full) -> Self {
        crate::ApiError::TooManyConnections(match full {
            Full::Total => "too many subscriptions on this hub",
            Full::PerAddress => "too many subscriptions from this address",
        })
    }
}

/// A held slot; released when dropped.
pub(crate) struct Slot {
    slots: Slots,
    ip: Option<IpAddr>,
}

impl Slots {
    /// At most `total` slots, `per_ip` per address; 0 is unlimited.
    pub fn new(per_ip: usize, total: usize) -> Self {
        Slots {
            inner: Arc::new(Inner {
                per_ip,
                total,
                counts: Mutex::default(),
                room: Notify::new(),
            }),
        }
    }

    /// Whether every slot is taken (never with no total limit).
    pub fn full(&self) -> bool {
        let counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.total > 0 && counts.total >= self.inner.total
    }

    /// Waits up to `patience` for a slot to be free; true if one is.
    pub async fn room_within(&self, patience: Duration) -> bool {
        let room = self.inner.room.notified();
        tokio::pin!(room);
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Listening before looking: a release in between is not lost.
            room.as_mut().enable();
            if !self.full() {
                return true;
            }
            if tokio::time::timeout_at(deadline, room.as_mut())
                .await
                .is_err()
            {
                return !self.full();
            }
            room.set(self.inner.room.notified());
        }
    }

    /// Takes a slot, or says which limit is reached.
    pub fn acquire(&self, ip: Option<IpAddr>) -> Result<Slot, Full> {
        let mut counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.total > 0 && counts.total >= self.inner.total {
            return Err(Full::Total);
        }
        let ip = ip.filter(|_| self.inner.per_ip > 0);
        if let Some(ip) = ip {
            let count = counts.by_ip.entry(ip).or_default();
            if *count >= self.inner.per_ip {
                return Err(Full::PerAddress);
            }
            *count += 1;
        }
        counts.total += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }

    /// Slots held now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .slots
            .inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if counts.total == self.slots.inner.total {
            self.slots.inner.room.notify_waiters();
        }
        counts.total -= 1;
        if let Some(ip) = self.ip {
            if let Some(count) = counts.by_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    counts.by_ip.remove(&ip);
                }
            }
        }
    }
}

/// The automatic connection cap: the process's open-files limit less a
/// reserve, so that the hub always has descriptors left to accept a
/// connection and answer 503, open its store's files and log. `None` when
/// the limit is unknown or unlimited.
pub(crate) fn automatic_connection_cap() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    let limit = usize::try_from(limit).ok()?;
    Some(limit.saturating_sub(descriptor_reserve(limit)).max(1))
}

/// Descriptors kept out of the connection cap: a sixteenth of the limit,
/// at least 32 and at most 256 (the store's files, logs, and refusals in
/// flight, at most a quarter of the reserve, fit in that).
pub(crate) fn descriptor_reserve(limit: usize) -> usize {
    (limit / 16).clamp(32, 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address() {
        let slots = Slots::new(2, 3);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let first = slots.acquire(a).unwrap();
        let _second = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).err(), Some(Full::PerAddress));
        let _third = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(b).err(), Some(Full::Total));
        drop(first);
        assert_eq!(slots.held(), 2);
        assert!(slots.acquire(a).is_ok());
    }

    #[test]
    fn the_reserve_leaves_room() {
        assert_eq!(descriptor_reserve(1024), 64);
        assert_eq!(descriptor_reserve(20_000), 256);
        assert_eq!(descriptor_reserve(100), 32);
    }
}
