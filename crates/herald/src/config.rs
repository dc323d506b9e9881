//! The `herald serve` configuration: one typed struct, read from a TOML
//! file and overridden by flags, with every default in one place.
//! `docs/configuration.md` is its table; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use herald_server::ServerConfig;
use serde::Deserialize;

/// Everything `herald serve` can be told.
#[derive(Clone, Debug, Deserialize)]
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
    /// The history store.
    pub store: StoreSettings,
    /// Fan-out settings.
    pub hub: HubSettings,
    /// HTTP settings: anonymous access, CORS, limits, authorization.
    pub server: ServerConfig,
}

/// The `[store]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `disk`: durable history in `data_dir/herald.redb`; `memory`: history
    /// lives in memory and is lost at exit.
    pub kind: StoreKind,
    /// With the disk store: `fsync` (a publish is answered once it is on
    /// disk) or `none` (answered at once, on disk within a second).
    pub durability: DurabilitySetting,
    /// Keep at most this many events (0: unlimited).
    pub max_events: u64,
    /// Keep events at most this many seconds (0: unlimited).
    pub max_age_secs: u64,
}

/// Which store backs the hub.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// On disk (redb): survives restarts and crashes.
    Disk,
    /// In memory: fast, lost at exit.
    Memory,
}

/// What an acknowledged publish survives (disk store).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    /// Answered once fsynced: survives `kill -9` and power loss.
    Fsync,
    /// Answered at once, fsynced within a second: a crash can lose the last
    /// second of acknowledged publishes (a clean shutdown loses nothing).
    None,
}

impl From<DurabilitySetting> for herald_store_disk::Durability {
    fn from(setting: DurabilitySetting) -> Self {
        match setting {
            DurabilitySetting::Fsync => herald_store_disk::Durability::Fsync,
            DurabilitySetting::None => herald_store_disk::Durability::Deferred,
        }
    }
}

/// The `[hub]` table.
#[derive(Clone, Debug, Deserialize)]
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
}

impl Default for HeraldConfig {
    fn default() -> Self {
        HeraldConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("herald-data"),
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
            durability: DurabilitySetting::Fsync,
            max_events: 100_000,
            max_age_secs: 0,
        }
    }
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            heartbeat_secs: 15,
            max_pending_bytes: 1 << 20,
            random_ids: false,
        }
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
                format!(
                    "http://{host}:{}{}",
                    self.listen.port(),
                    herald_server::MERCURE_PATH
                )
            }
        };
        url::Url::parse(&text).with_context(|| format!("invalid public_url {text:?}"))
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.hub_url()?;
        if self.hub.max_pending_bytes < 4096 {
            anyhow::bail!("hub.max_pending_bytes must be at least 4096");
        }
        Ok(())
    }
}
