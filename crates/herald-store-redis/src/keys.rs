//! [`Keys`]: the names of the Redis keys one log lives under.
//!
//! Every key of a log shares one prefix inside a hash tag (`{prefix}:log`,
//! `{prefix}:seq`, ...), so on Redis Cluster they all hash to one slot and
//! the scripts, which touch several of them atomically, are allowed to run.

/// The keys of one log. Cheap to clone (six short strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    /// The stream: one entry per record, entry id `0-<cursor>`.
    pub(crate) log: String,
    /// The cursor counter (`INCR`); its value is the head.
    pub(crate) seq: String,
    /// The id index: a hash from event id to cursor, retained records only.
    pub(crate) ids: String,
    /// The highest cursor ever trimmed (absent: none).
    pub(crate) trimmed: String,
    /// The latest `published_at` (microseconds since the epoch), so the
    /// stamps never go back even if Redis's clock does.
    pub(crate) last_ts: String,
    /// Per-record deadlines: a sorted set of cursors scored by the time
    /// (microseconds since the epoch) their record expires.
    pub(crate) expiry: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{{{prefix}}}:{name}");
        Keys {
            log: key("log"),
            seq: key("seq"),
            ids: key("ids"),
            trimmed: key("trimmed"),
            last_ts: key("last_ts"),
            expiry: key("expiry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("herald");
        assert_eq!(keys.log, "{herald}:log");
        assert_eq!(keys.seq, "{herald}:seq");
        assert_eq!(keys.ids, "{herald}:ids");
    }
}
