//! The `herald serve` configuration: one typed struct, read from a TOML
//! file and overridden by flags, with every default in one place.
//! `docs/configuration.md` is its table; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use herald_server::ServerConfig;
use serde::{Deserialize, Serialize};

/// Everything `herald serve` can be told. (`Serialize` lets a test hold
/// `docs/configuration.md` to these types.)
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeraldConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The hub's public URL (`…/.well-known/mercure`): the audience tokens
    /// must name, and the base of relative topics. Default: derived from
    /// `listen`.
    pub public_url: Option<String>,
    /// Where the hub keeps its key, tokens and (with the disk store) its
    /// history.
    pub data_dir: PathBuf,
    /// Serve over TLS with this certificate chain (PEM); needs `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// The history store.
    pub store: StoreSettings,
    /// Fan-out settings.
    pub hub: HubSettings,
    /// HTTP settings: anonymous access, CORS, limits, authorization.
    pub server: ServerConfig,
}

/// The `[store]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `disk`: durable history in `data_dir/herald.redb`; `memory`: history
    /// lives in memory and is lost at exit; `redis`: one log in Redis shared
    /// by every node of a cluster; `nats`: one log in NATS JetStream, the
    /// same.
    pub kind: StoreKind,
    /// With the disk store: `fsync` (a publish is answered once it is on
    /// disk) or `none` (answered at once, on disk within a second).
    pub durability: DurabilitySetting,
    /// With the Redis store: the server (`redis://[user:password@]host:port/db`).
    pub redis_url: String,
    /// With the Redis store: the prefix of its keys; nodes of one hub share
    /// it, hubs sharing a Redis each need their own.
    pub redis_prefix: String,
    /// With the NATS store: the server (`nats://[user:password@]host:4222`,
    /// `tls://host:4222`; a NATS cluster's servers comma-separated).
    pub nats_url: String,
    /// With the NATS store: the name of the hub's log (JetStream streams
    /// `NAME`, `NAME_mark`, `NAME_expiry`); nodes of one hub share it.
    pub nats_stream: String,
    /// With the NATS store: how many servers hold each stream, when a node
    /// creates them (1, or 3 or 5 in a NATS cluster).
    pub nats_replicas: usize,
    /// Keep at most this many events (0: unlimited).
    pub max_events: u64,
    /// Keep events at most this many seconds (0: unlimited).
    pub max_age_secs: u64,
    /// Per-topic retention: updates on matching topics are removed once
    /// their rule's time has run out (`[[store.topic_retention]]`).
    pub topic_retention: Vec<TopicRetentionSetting>,
}

/// One `[[store.topic_retention]]` rule, or one `--topic-retention
/// PATTERN=DURATION` flag.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicRetentionSetting {
    /// A URL pattern (`https://example.com/chat/*`; relative ones resolve
    /// against the hub's URL), as in a subscription's `match_urlpattern`.
    pub topics: String,
    /// Seconds an update on those topics is kept (at least 1).
    pub keep_secs: u64,
}

impl std::str::FromStr for TopicRetentionSetting {
    type Err = String;

    /// `PATTERN=DURATION`: the last `=` splits, since a pattern may hold
    /// one (`/chat/*?lang=en=1h`); the duration as `herald token --ttl`
    /// takes it (`90s`, `1h`, `7d`), rounded up to whole seconds.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (topics, keep) = text.rsplit_once('=').ok_or_else(|| {
            format!("expected PATTERN=DURATION (e.g. '/chat/*=1h'), got {text:?}")
        })?;
        let keep = crate::cmd::parse_duration(keep)?;
        let keep_secs = keep.as_secs() + u64::from(keep.subsec_nanos() > 0);
        Ok(TopicRetentionSetting {
            topics: topics.to_owned(),
            keep_secs,
        })
    }
}

/// Which store backs the hub.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// On disk (redb): survives restarts and crashes.
    Disk,
    /// In memory: fast, lost at exit.
    Memory,
    /// In Redis (Streams): shared by every node of a cluster.
    Redis,
    /// In NATS JetStream: shared by every node of a cluster.
    Nats,
}

/// `--compression`: the flag's face of `server.compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionSetting {
    /// Never compress.
    None,
    /// gzip, for clients whose `Accept-Encoding` takes it.
    Gzip,
}

impl From<CompressionSetting> for herald_server::Compression {
    fn from(setting: CompressionSetting) -> Self {
        match setting {
            CompressionSetting::None => herald_server::Compression::None,
            CompressionSetting::Gzip => herald_server::Compression::Gzip,
        }
    }
}

/// What an acknowledged publish survives (disk store).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    /// Answered once fsynced: survives `kill -9` and power loss.
    Fsync,
    /// Answered at once, fsynced within a second: a crash can lose the last
    /// second of acknowledged publishes (a clean shutdown loses nothing).
    None,
}

impl From<herald_store_disk::Durability> for DurabilitySetting {
    fn from(durability: herald_store_disk::Durability) -> Self {
        match durability {
            herald_store_disk::Durability::Fsync => DurabilitySetting::Fsync,
            herald_store_disk::Durability::Deferred => DurabilitySetting::None,
        }
    }
}

impl From<DurabilitySetting> for herald_store_disk::Durability {
    fn from(setting: DurabilitySetting) -> Self {
        match setting {
            DurabilitySetting::Fsync => herald_store_disk::Durability::Fsync,
            DurabilitySetting::None => herald_store_disk::Durability::Deferred,
        }
    }
}

/// The `[hub]` table: the settings of [`herald_hub::HubConfig`] a file can
/// set, with its defaults.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Seconds between comment heartbeats on idle streams (0: none).
    pub heartbeat_secs: u64,
    /// Unsent bytes a subscriber may have queued before it is disconnected
    /// as lagging (it can resume from history).
    pub max_pending_bytes: usize,
    /// Generate random (UUIDv4) ids instead of time-ordered (UUIDv7) ones,
    /// for private updates whose timing must not leak through cursors.
    pub random_ids: bool,
    /// Active subscriptions: subscription events and the subscriptions API.
    pub subscriptions: bool,
    /// With `subscriptions`: seconds a node counts as alive after renewing
    /// its lease; a dead node's subscriptions end this long after.
    pub subscription_lease_secs: u64,
}

impl Default for HeraldConfig {
    fn default() -> Self {
        HeraldConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("herald-data"),
            tls_cert: None,
            tls_key: None,
            store: StoreSettings::default(),
            hub: HubSettings::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: StoreKind::Disk,
            durability: herald_store_disk::DiskOptions::default().durability.into(),
            redis_url: "redis://127.0.0.1:6379/".to_owned(),
            redis_prefix: "herald".to_owned(),
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            nats_stream: "herald".to_owned(),
            nats_replicas: 1,
            // Retention is the binary's policy (the store keeps everything
            // unless told): enough history for reconnects, bounded disk.
            max_events: 100_000,
            max_age_secs: 0,
            topic_retention: Vec::new(),
        }
    }
}

impl Default for HubSettings {
    /// The hub's own defaults ([`herald_hub::HubConfig::new`]): one source.
    fn default() -> Self {
        let url = url::Url::parse("http://localhost/.well-known/mercure").expect("a valid URL");
        let hub = herald_hub::HubConfig::new(url);
        HubSettings {
            heartbeat_secs: hub.heartbeat.map_or(0, |every| every.as_secs()),
            max_pending_bytes: hub.max_pending_bytes,
            random_ids: hub.ids == herald_hub::IdKind::Random,
            subscriptions: hub.subscriptions,
            subscription_lease_secs: hub.subscription_lease.as_secs(),
        }
    }
}

impl StoreSettings {
    /// The retention these settings ask for (0: unlimited), which the hub
    /// applies ([`herald_hub::HubConfig::retention`]).
    pub fn retention(&self) -> herald_store::Retention {
        herald_store::Retention {
            max_events: (self.max_events > 0).then_some(self.max_events),
            max_age: (self.max_age_secs > 0)
                .then(|| std::time::Duration::from_secs(self.max_age_secs)),
        }
    }
}

impl HubSettings {
    /// The hub's configuration for a hub at `url`.
    pub fn to_hub_config(&self, url: url::Url) -> herald_hub::HubConfig {
        let mut hub = herald_hub::HubConfig::new(url);
        hub.heartbeat =
            (self.heartbeat_secs > 0).then(|| std::time::Duration::from_secs(self.heartbeat_secs));
        hub.max_pending_bytes = self.max_pending_bytes;
        if self.random_ids {
            hub.ids = herald_hub::IdKind::Random;
        }
        hub.subscriptions = self.subscriptions;
        hub.subscription_lease = std::time::Duration::from_secs(self.subscription_lease_secs);
        hub
    }
}

impl HeraldConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The hub's URL.
    pub fn hub_url(&self) -> anyhow::Result<url::Url> {
        let text = match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let host = match self.listen.ip() {
                    ip if ip.is_unspecified() => "localhost".to_owned(),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                };
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!(
                    "{scheme}://{host}:{}{}",
                    self.listen.port(),
                    herald_server::MERCURE_PATH
                )
            }
        };
        url::Url::parse(&text).with_context(|| format!("invalid public_url {text:?}"))
    }

    /// The per-topic retention rules, compiled against the hub's URL.
    pub fn topic_retention(
        &self,
        hub_url: &url::Url,
    ) -> anyhow::Result<Vec<herald_hub::TopicRetention>> {
        use herald_hub::matcher::{Matcher, MatcherKind};
        self.store
            .topic_retention
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                anyhow::ensure!(
                    rule.keep_secs > 0,
                    "store.topic_retention[{i}]: keep_secs must be at least 1"
                );
                let matcher = Matcher::new(MatcherKind::UrlPattern, &rule.topics, hub_url)
                    .with_context(|| {
                        format!(
                            "store.topic_retention[{i}]: {:?} is not a URL pattern",
                            rule.topics
                        )
                    })?;
                Ok(herald_hub::TopicRetention::new(
                    matcher,
                    std::time::Duration::from_secs(rule.keep_secs),
                ))
            })
            .collect()
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.topic_retention(&self.hub_url()?)?;
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "TLS needs both a certificate and its key (--tls-cert and --tls-key)"
        );
        anyhow::ensure!(
            self.hub.subscription_lease_secs > 0,
            "hub.subscription_lease_secs must be at least 1"
        );
        if self.hub.max_pending_bytes < 4096 {
            anyhow::bail!("hub.max_pending_bytes must be at least 4096");
        }
        if self.store.kind == StoreKind::Redis {
            let url = url::Url::parse(&self.store.redis_url).with_context(|| {
                format!("store.redis_url {:?} is not a URL", self.store.redis_url)
            })?;
            anyhow::ensure!(
                matches!(url.scheme(), "redis" | "rediss" | "redis+unix" | "unix"),
                "store.redis_url {:?} is not a redis:// URL",
                self.store.redis_url
            );
            anyhow::ensure!(
                !self.store.redis_prefix.is_empty(),
                "store.redis_prefix must not be empty"
            );
        }
        if self.store.kind == StoreKind::Nats {
            for server in self.store.nats_url.split(',') {
                let url = url::Url::parse(server.trim()).with_context(|| {
                    format!("store.nats_url {:?} is not a URL", self.store.nats_url)
                })?;
                anyhow::ensure!(
                    matches!(url.scheme(), "nats" | "tls" | "ws" | "wss"),
                    "store.nats_url {server:?} is not a nats:// (or tls://) URL"
                );
            }
            let name = &self.store.nats_stream;
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b"-_".contains(&byte)),
                "store.nats_stream {name:?} must be 1 to 64 ASCII letters, digits, '-' or '_'"
            );
            anyhow::ensure!(
                (1..=5).contains(&self.store.nats_replicas),
                "store.nats_replicas must be 1 to 5"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! `docs/configuration.md` held to the types: every key of every table
    //! is a field, every field has a row, and a default written as a single
    //! literal is the field's default. A new setting is a field with its
    //! doc line, and this test says when the table lags.

    use std::collections::BTreeSet;

    use serde_json::{Map, Value};

    use super::HeraldConfig;

    const DOC: &str = include_str!("../../../docs/configuration.md");

    /// The rows of the table under `## heading`: (key, default cell).
    fn table(heading: &str) -> Vec<(String, String)> {
        let start = DOC
            .find(&format!("\n## {heading}\n"))
            .unwrap_or_else(|| panic!("docs/configuration.md has no section {heading}"));
        let section = &DOC[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let mut rows = section.lines().filter(|line| line.starts_with('|'));
        let header: Vec<&str> = rows
            .next()
            .expect("a table")
            .split('|')
            .map(str::trim)
            .collect();
        let default_column = header
            .iter()
            .position(|cell| *cell == "default")
            .expect("a default column");
        rows.skip(1) // the --- row
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (
                    cells[1].trim_matches('`').to_owned(),
                    cells[default_column].to_owned(),
                )
            })
            .collect()
    }

    /// The fields of a table of the default config, objects (sub-tables)
    /// left out.
    fn fields(object: &Map<String, Value>) -> Map<String, Value> {
        object
            .iter()
            .filter(|(_, value)| !value.is_object())
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// A default cell that is one code span (`` `1024` ``), as the value it
    /// names; `None` for a description ("the hub URL").
    fn literal(cell: &str) -> Option<String> {
        let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
        (!inner.contains('`')).then(|| inner.replace(' ', ""))
    }

    fn rendered(value: &Value) -> Option<String> {
        match value {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string().replace(' ', "")),
        }
    }

    #[test]
    fn topic_retention_flags_and_their_errors() {
        use super::TopicRetentionSetting;
        let parse = |text: &str| text.parse::<TopicRetentionSetting>();
        assert_eq!(
            parse("/chat/*=1h"),
            Ok(TopicRetentionSetting {
                topics: "/chat/*".into(),
                keep_secs: 3600
            })
        );
        assert_eq!(parse("/a?b=c=1.5s").unwrap().topics, "/a?b=c");
        assert_eq!(parse("/a=1.5s").unwrap().keep_secs, 2, "rounded up");
        assert!(parse("/chat/*").unwrap_err().contains("PATTERN=DURATION"));
        assert!(parse("/chat/*=soon").is_err());

        let mut config = HeraldConfig::default();
        config.store.topic_retention = vec![parse("/chat/*=0s").unwrap()];
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("keep_secs must be at least 1"), "{error}");
        config.store.topic_retention = vec![parse("https://a.example/(=1h").unwrap()];
        let error = format!("{:#}", config.validate().unwrap_err());
        assert!(error.contains("is not a URL pattern"), "{error}");
        config.store.topic_retention = vec![parse("/chat/*=1h").unwrap()];
        let url = config.hub_url().unwrap();
        assert_eq!(config.topic_retention(&url).unwrap().len(), 1);
    }

    #[test]
    fn the_configuration_doc_matches_the_types() {
        let config = serde_json::to_value(HeraldConfig::default()).unwrap();
        let server = config["server"].as_object().unwrap();
        let sections = [
            ("Top level", fields(config.as_object().unwrap())),
            ("`[store]`", fields(config["store"].as_object().unwrap())),
            ("`[hub]`", fields(config["hub"].as_object().unwrap())),
            ("`[server]`", fields(server)),
            (
                "`[server.auth]`",
                fields(server["auth"].as_object().unwrap()),
            ),
        ];
        for (heading, fields) in sections {
            let rows = table(heading);
            let documented: BTreeSet<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
            let actual: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
            assert_eq!(documented, actual, "the keys of {heading}");
            for (key, cell) in &rows {
                let (Some(written), Some(value)) = (literal(cell), rendered(&fields[key])) else {
                    continue;
                };
                assert_eq!(written, value, "the default of {key} in {heading}");
            }
        }
    }
}
