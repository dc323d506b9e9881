//! The HTTP front's settings: one typed struct, documented field by field,
//! defaults in one place. `docs/configuration.md` is the table of them.

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;

/// How the Mercure endpoint behaves. Every field has a default, so an empty
/// `[server]` section (or none) is a working local hub.
// `Serialize` lets a test hold `docs/configuration.md` to these types.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    /// Most bytes of URL patterns (`match_urlpattern`) in one subscribe
    /// request (more: 400). A pattern's compiled form costs the hub memory
    /// for as long as the subscription lives, about 0.4 KiB per byte of a
    /// pattern dense with groups (`docs/security.md`).
    pub max_pattern_bytes: usize,
    /// Most open connections from one client address (more: answered 429
    /// and closed); 0 is unlimited. Behind a reverse proxy every connection
    /// comes from the proxy's address: set 0 there and cap at the proxy.
    pub max_connections_per_ip: usize,
    /// Most open connections in total (more: answered 503 and closed); 0
    /// (the default) is the process's open-files limit less a reserve, so
    /// the hub always has descriptors left to answer.
    pub max_connections: usize,
    /// Milliseconds the hub stops accepting once `max_connections` are
    /// open (the kernel's backlog holds new connections, without a
    /// descriptor each), for old connections to close; past it, new
    /// connections are answered 503 until one does. A reconnect storm
    /// brings the new connections before the hub has seen the old ones
    /// close, and an `EventSource` answered 503 does not retry. 0: answer
    /// at once.
    pub max_connections_wait_ms: u64,
    /// Most concurrent subscriptions from one client address (more: 429);
    /// 0 is unlimited. An HTTP/2 connection can carry many.
    pub max_subscriptions_per_ip: usize,
    /// Most concurrent subscriptions in total (more: 429); 0 is unlimited.
    pub max_subscriptions: usize,
    /// Seconds a client may take to send a whole request head, counted
    /// from when the connection opens or its previous request finished: so
    /// also how long an idle keep-alive connection stays open.
    pub head_timeout_secs: u64,
    /// Seconds a client may take to send a whole publish body (more: 408);
    /// for a streaming publish, the most time between two chunks of it.
    pub body_timeout_secs: u64,
    /// Most events a second one streaming publish may carry; past it the
    /// hub reads the body more slowly (0: unlimited).
    pub max_stream_events_per_sec: u32,
    /// Most concurrent streams (requests, subscriptions) on one HTTP/2
    /// connection: what one browser's tabs share.
    pub http2_max_streams: u32,
    /// Serve a subscription that opens an HTTP/1.1 connection on the lean
    /// path (written straight to the socket: about 2 KiB per idle
    /// subscriber instead of hyper's 20), and a connection's publishes
    /// concurrently (its pipelined publishes committed together);
    /// `false` has hyper serve every request.
    pub lean_subscribe: bool,
    /// Compress event streams for clients that accept it: `none` (the
    /// default) or `gzip`, negotiated by `Accept-Encoding` and flushed
    /// after every event. Costs CPU per subscriber per event and about
    /// 12 KiB per busy compressed stream; see `docs/security.md` before
    /// mixing private updates with updates others can publish.
    pub compression: Compression,
    /// Origins allowed to publish with the token cookie, besides the hub's
    /// own (CSRF protection: a cookie-authenticated publish must carry an
    /// `Origin`, or else a `Referer`, from one of them; others get 403).
    /// `*` allows any origin, which turns that protection off.
    pub publish_origins: Vec<String>,
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
            max_pattern_bytes: 2_048,
            max_connections_per_ip: 1024,
            max_connections: 0,
            max_connections_wait_ms: 3_000,
            max_subscriptions_per_ip: 0,
            max_subscriptions: 0,
            head_timeout_secs: 10,
            body_timeout_secs: 30,
            max_stream_events_per_sec: 10_000,
            http2_max_streams: 100,
            lean_subscribe: true,
            compression: Compression::None,
            publish_origins: Vec::new(),
            auth: AuthConfig::default(),
        }
    }
}

/// How event streams are compressed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// Never.
    #[default]
    None,
    /// gzip, for clients whose `Accept-Encoding` takes it.
    Gzip,
}

impl ServerConfig {
    /// Whether the legacy protocol is spoken (`auth.legacy`): the `topic`
    /// and `lastEventID` query parameters, legacy tokens and cookie.
    pub fn legacy(&self) -> bool {
        self.auth.legacy
    }

    /// The request head deadline.
    pub(crate) fn head_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.head_timeout_secs)
    }

    /// The publish body deadline.
    pub(crate) fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.body_timeout_secs)
    }

    /// Checks what the types alone cannot.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.http2_max_streams == 0 {
            return Err("http2_max_streams must be at least 1".into());
        }
        if self.head_timeout_secs == 0 {
            return Err("head_timeout_secs must be at least 1".into());
        }
        if self.body_timeout_secs == 0 {
            return Err("body_timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}
