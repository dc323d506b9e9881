//! A cache of validated tokens, so that a publisher sending thousands of
//! updates with the same token pays for one signature check, not one each.
//!
//! An entry is the [`Claims`] of a token that passed every check, kept until
//! the token's `exp` (plus the same leeway validation allows): a hit answers
//! exactly what validating again would. The cache is bounded; when it is
//! full it is emptied rather than tracking recency, which costs a few
//! re-validations and keeps the hot path to one hash lookup under a short
//! `std::sync::Mutex` (never held across an await).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::authenticator::Claims;

/// Most tokens remembered.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    claims: Claims,
    /// `exp` + leeway; `None` for a (legacy) token without `exp`.
    valid_until: Option<SystemTime>,
}

impl TokenCache {
    /// The claims of `token` if it was validated before and is still valid
    /// at `now`.
    pub fn get(&self, token: &str, now: SystemTime) -> Option<Claims> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        if entry.valid_until.is_some_and(|until| now >= until) {
            entries.remove(token);
            return None;
        }
        Some(entry.claims.clone())
    }

    /// Remembers a token that just passed validation.
    pub fn insert(&self, token: &str, claims: &Claims, leeway: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                valid_until: claims.expires_at.map(|exp| exp + leeway),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_hub::grant::Grants;

    fn claims(expires_at: Option<SystemTime>) -> Claims {
        Claims {
            issuer: Some("iss".into()),
            subject: Some("sub".into()),
            expires_at,
            grants: Grants::none(),
            legacy: false,
        }
    }

    #[test]
    fn a_hit_never_outlives_the_token() {
        let cache = TokenCache::default();
        let now = SystemTime::now();
        let exp = now + Duration::from_secs(10);
        cache.insert("t", &claims(Some(exp)), Duration::from_secs(5));
        assert!(cache.get("t", now).is_some());
        assert!(
            cache.get("t", exp + Duration::from_secs(4)).is_some(),
            "within the leeway"
        );
        assert!(
            cache.get("t", exp + Duration::from_secs(5)).is_none(),
            "expired"
        );
        assert!(cache.get("t", now).is_none(), "and forgotten");
        assert!(cache.get("other", now).is_none());
    }

    #[test]
    fn it_stays_bounded() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY + 10 {
            cache.insert(&i.to_string(), &claims(None), Duration::ZERO);
        }
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= CAPACITY, "{len}");
    }
}
