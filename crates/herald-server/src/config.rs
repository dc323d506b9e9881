//! The HTTP front's settings: one typed struct, documented field by field,
//! defaults in one place. `docs/configuration.md` is the table of them.

use serde::Deserialize;

use crate::auth::AuthConfig;

/// How the Mercure endpoint behaves. Every field has a default, so an empty
/// `[server]` section (or none) is a working local hub.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Let subscribers without a token receive public updates.
    pub allow_anonymous: bool,
    /// Let anyone publish without a token. Only for trusted networks: any
    /// client that reaches the hub can then publish.
    pub allow_anonymous_publish: bool,
    /// Origins allowed to use the hub from a browser (CORS), e.g.
    /// `https://app.example.com`. Listed origins may send credentials
    /// (cookies); `*` allows every origin but never with credentials.
    pub cors_origins: Vec<String>,
    /// The reconnection time, in milliseconds, sent first on every stream.
    pub retry_ms: u64,
    /// The reconnection time sent to every subscriber at shutdown, so they
    /// come back quickly (to this node after a restart, or another one).
    pub shutdown_retry_ms: u64,
    /// Largest publish request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Most topic matchers in one subscribe request (more: 400).
    pub max_matchers: usize,
    /// Longest topic matcher, in bytes (longer: 400).
    pub max_matcher_len: usize,
    /// Most concurrent subscriptions from one IP address (more: 429); 0 is
    /// unlimited.
    pub max_connections_per_ip: usize,
    /// Most concurrent subscriptions in total (more: 429); 0 is unlimited.
    pub max_connections: usize,
    /// Authorization: trusted issuers and their keys, accepted algorithms,
    /// legacy token support.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            allow_anonymous: true,
            allow_anonymous_publish: false,
            cors_origins: Vec::new(),
            retry_ms: 3_000,
            shutdown_retry_ms: 500,
            max_body_bytes: 2 << 20,
            max_matchers: 128,
            max_matcher_len: 2_048,
            max_connections_per_ip: 0,
            max_connections: 0,
            auth: AuthConfig::default(),
        }
    }
}
