//! Connection limits: at most N subscriptions per client address and in
//! total; beyond them the hub answers 429 rather than running out of file
//! descriptors or memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open subscriptions; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct ConnectionLimits {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    per_ip: usize,
    total: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Held by an open subscription; releases its slot when dropped.
pub struct ConnectionGuard {
    limits: ConnectionLimits,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(per_ip: usize, total: usize) -> Self {
        ConnectionLimits {
            inner: Arc::new(Inner {
                per_ip,
                total,
                counts: Mutex::default(),
            }),
        }
    }

    /// Takes a slot, or says which limit is reached.
    pub fn acquire(&self, ip: Option<IpAddr>) -> Result<ConnectionGuard, &'static str> {
        let mut counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.total > 0 && counts.total >= self.inner.total {
            return Err("too many subscriptions on this hub");
        }
        let ip = ip.filter(|_| self.inner.per_ip > 0);
        if let Some(ip) = ip {
            let count = counts.by_ip.entry(ip).or_default();
            if *count >= self.inner.per_ip {
                return Err("too many subscriptions from this address");
            }
            *count += 1;
        }
        counts.total += 1;
        Ok(ConnectionGuard {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
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
