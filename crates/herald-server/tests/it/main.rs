//! The hub over real HTTP on 127.0.0.1:0: every protocol rule, one test
//! each, checked the way a client sees it.

mod access;
mod assets;
mod edge;
mod gzip;
mod http2;
mod hub_rules;
mod lean;
mod load;
mod metadata;
mod metrics;
mod pipeline;
mod publish;
mod publish_stream;
mod subscribe;
mod subscriptions;
mod tls;
mod ui;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use herald_hub::{Hub, HubConfig};
use herald_proto::{Decoder, Frame, MessageEvent};
use herald_server::auth::{IssuerConfig, KeyConfig};
use herald_server::ServerConfig;
use serde_json::json;

/// The secret of the test issuer.
pub const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
/// The test issuer.
pub const ISSUER: &str = "https://issuer.test";

/// A hub served on a free loopback port.
pub struct TestHub {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The hub URL (also the token audience).
    pub url: String,
    /// The hub itself.
    pub hub: Hub,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// With TLS from the transport: the certificate files, kept for the
    /// hub's lifetime.
    _certs: Option<TestCerts>,
}

/// How the protocol suites (`access`, `hub_rules`, `publish`, `subscribe`, `gzip`)
/// reach the hub, from `HERALD_TEST_TRANSPORT`; `scripts/test` runs them
/// under each, so every rule holds on every path a client can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `lean` (the default): HTTP/1.1, a subscription on a fresh
    /// connection on the lean path.
    Lean,
    /// `hyper`: HTTP/1.1 with the lean path off (`lean_subscribe = false`),
    /// as a subscription on a reused connection is served.
    Hyper,
    /// `h2c`: HTTP/2 with prior knowledge, on the plain port.
    H2c,
    /// `h2`: HTTP/2 over TLS, chosen by ALPN, as browsers do.
    H2,
}

impl Transport {
    /// The transport `HERALD_TEST_TRANSPORT` names (default `lean`).
    pub fn from_env() -> Transport {
        match std::env::var("HERALD_TEST_TRANSPORT").as_deref() {
            Err(_) | Ok("" | "lean") => Transport::Lean,
            Ok("hyper") => Transport::Hyper,
            Ok("h2c") => Transport::H2c,
            Ok("h2") => Transport::H2,
            Ok(other) => panic!("HERALD_TEST_TRANSPORT={other}: lean, hyper, h2c or h2"),
        }
    }
}

/// A self-signed certificate for `localhost` and its key, as PEM files in a
/// directory of their own (removed on drop).
pub struct TestCerts {
    /// Where the files are.
    pub dir: std::path::PathBuf,
    /// The certificate, as PEM.
    pub cert_pem: String,
}

impl TestCerts {
    /// A fresh pair in a fresh directory.
    pub fn new(name: &str) -> TestCerts {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herald-tls-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut certs = TestCerts {
            dir,
            cert_pem: String::new(),
        };
        certs.renew();
        certs
    }

    /// Writes a new certificate and key over the files.
    pub fn renew(&mut self) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        self.cert_pem = made.cert.pem();
        std::fs::write(self.cert(), &self.cert_pem).unwrap();
        std::fs::write(self.key(), made.key_pair.serialize_pem()).unwrap();
    }

    /// The certificate file.
    pub fn cert(&self) -> std::path::PathBuf {
        self.dir.join("cert.pem")
    }

    /// The key file.
    pub fn key(&self) -> std::path::PathBuf {
        self.dir.join("key.pem")
    }

    /// The pair, loaded.
    pub fn tls(&self) -> herald_server::Tls {
        herald_server::Tls::load(self.cert(), self.key()).unwrap()
    }

    /// A client that trusts the current certificate only.
    pub fn client(&self, http1_only: bool) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap();
        let builder = reqwest::Client::builder()
            .no_gzip()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .resolve("localhost", ([127, 0, 0, 1], 0).into());
        let builder = if http1_only {
            builder.http1_only()
        } else {
            builder
        };
        builder.build().unwrap()
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client that hands over the body as it came on the wire (it would
/// otherwise ask for gzip and inflate it unseen).
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

/// Starts a hub with the default config plus the test issuer.
pub async fn start() -> TestHub {
    start_with(|_| {}).await
}

/// Starts a hub, letting the test adjust the config, served and reached
/// the way [`Transport::from_env`] says.
pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestHub {
    start_with_hub(|_| {}, configure).await
}

/// Starts a hub, letting the test adjust the hub's config and the
/// server's, served and reached the way [`Transport::from_env`] says.
pub async fn start_with_hub(
    configure_hub: impl FnOnce(&mut HubConfig),
    configure: impl FnOnce(&mut ServerConfig),
) -> TestHub {
    match Transport::from_env() {
        Transport::Lean => launch(configure_hub, configure, None, raw_client(), None).await,
        Transport::Hyper => {
            let configure = |config: &mut ServerConfig| {
                config.lean_subscribe = false;
                configure(config);
            };
            launch(configure_hub, configure, None, raw_client(), None).await
        }
        Transport::H2c => {
            let http = reqwest::Client::builder()
                .no_gzip()
                .http2_prior_knowledge()
                .build()
                .unwrap();
            launch(configure_hub, configure, None, http, None).await
        }
        Transport::H2 => {
            let certs = TestCerts::new("suite");
            let (tls, http) = (certs.tls(), certs.client(false));
            launch(configure_hub, configure, Some(tls), http, Some(certs)).await
        }
    }
}

/// Starts a hub over TLS (`https://localhost:PORT`), with `http` trusting
/// its certificate.
pub async fn start_tls(
    tls: herald_server::Tls,
    http: reqwest::Client,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestHub {
    launch(|_| {}, configure, Some(tls), http, None).await
}

async fn launch(
    configure_hub: impl FnOnce(&mut HubConfig),
    configure: impl FnOnce(&mut ServerConfig),
    tls: Option<herald_server::Tls>,
    http: reqwest::Client,
    certs: Option<TestCerts>,
) -> TestHub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let url = format!("{base}/.well-known/mercure");
    let mut hub_config = HubConfig::new(url.parse().unwrap());
    hub_config.heartbeat = None;
    configure_hub(&mut hub_config);
    let hub = Hub::start(Arc::new(herald_store::MemoryStore::new()), hub_config)
        .await
        .unwrap();
    let mut config = ServerConfig::default();
    config.auth.resource = url.clone();
    config.auth.issuers.push(IssuerConfig {
        issuer: ISSUER.into(),
        keys: vec![KeyConfig::secret("HS256", SECRET)],
        legacy: false,
    });
    configure(&mut config);
    config.shutdown_retry_ms = 100;
    let app = herald_server::HubApp::new(hub.clone(), config).unwrap();
    let serve = match tls {
        Some(tls) => herald_server::serve(listener, app).with_tls(tls),
        None => herald_server::serve(listener, app),
    };
    tokio::spawn(async move { serve.await.unwrap() });
    TestHub {
        base,
        url,
        hub,
        http,
        _certs: certs,
    }
}

/// Legacy mode: the legacy query parameters, and the test issuer's tokens
/// accepted in the legacy form too.
pub fn legacy_mode(config: &mut ServerConfig) {
    config.auth.legacy = true;
    for issuer in &mut config.auth.issuers {
        issuer.legacy = true;
    }
}

/// The `authorization_details` of a token.
pub fn details(publish: &[&str], subscribe: &[&str]) -> serde_json::Value {
    let detail = |action: &str, topics: &[&str]| {
        json!({
            "type": "https://mercure.rocks/authorization-detail",
            "actions": [action],
            "topics": topics.iter().map(|t| json!({"match": t})).collect::<Vec<_>>(),
        })
    };
    // A detail must list at least one topic (an empty one makes the whole
    // token invalid), so an empty side is left out.
    let mut all = Vec::new();
    if !publish.is_empty() {
        all.push(detail("publish", publish));
    }
    if !subscribe.is_empty() {
        all.push(detail("subscribe", subscribe));
    }
    serde_json::Value::Array(all)
}

/// Seconds since the Unix epoch, now: what `exp` and `iat` count.
pub fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims as the test issuer (HS256, `typ: at+jwt`), filling in the
/// required claims that the test did not set.
pub fn token(audience: &str, mut claims: serde_json::Value) -> String {
    let now = unix_time();
    let defaults = json!({
        "iss": ISSUER, "aud": audience, "sub": "tester", "client_id": "tests",
        "iat": now, "exp": now + 600, "jti": format!("jti-{now}"),
    });
    for (key, value) in defaults.as_object().unwrap() {
        if claims.get(key).is_none() {
            claims[key] = value.clone();
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

impl TestHub {
    /// A token that may publish and read everything.
    pub fn admin_token(&self) -> String {
        token(
            &self.url,
            json!({ "authorization_details": details(&["*"], &["*"]) }),
        )
    }

    /// Publishes form fields with the admin token; returns the response.
    pub async fn publish(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.publish_as(Some(&self.admin_token()), fields).await
    }

    /// Publishes form fields with the given token (or none).
    pub async fn publish_as(
        &self,
        token: Option<&str>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Publishes and returns the id, asserting success.
    pub async fn publish_ok(&self, fields: &[(&str, &str)]) -> String {
        let response = self.publish(fields).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.text().await.unwrap()
    }

    /// A raw TCP connection to the hub.
    pub async fn connect(&self) -> tokio::net::TcpStream {
        let authority = self.base.split_once("://").map_or(&*self.base, |(_, a)| a);
        tokio::net::TcpStream::connect(authority.replace("localhost", "127.0.0.1"))
            .await
            .unwrap()
    }

    /// The `WWW-Authenticate` challenge the hub answers with: `error`
    /// (none for a missing token) and the metadata document's URL.
    pub fn challenge(&self, error: Option<&str>) -> String {
        let metadata = format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/.well-known/mercure\"",
            self.base
        );
        match error {
            Some(error) => format!("Bearer error=\"{error}\", {metadata}"),
            None => format!("Bearer {metadata}"),
        }
    }

    /// GET on the subscribe endpoint with a raw query string.
    pub fn subscribe_request(&self, query: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}?{query}", self.url))
    }
}

/// Reads a raw socket until `needle` shows up, the peer closes, or 10 s
/// pass; returns what was read.
pub async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("in time")
            .unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads an event stream's frames until `n` events came (or 10 s passed).
pub async fn read_events(response: reqwest::Response, n: usize) -> Vec<MessageEvent> {
    let mut frames = read_frames(response, n, |f| matches!(f, Frame::Event(_))).await;
    frames
        .drain(..)
        .filter_map(|f| match f {
            Frame::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Reads frames until `n` of them satisfy `counted` (or 10 s passed).
pub async fn read_frames(
    response: reqwest::Response,
    n: usize,
    counted: impl Fn(&Frame) -> bool,
) -> Vec<Frame> {
    let mut body = response.bytes_stream();
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while frames.iter().filter(|f| counted(f)).count() < n {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            _ => break,
        };
        decoder.feed(&chunk).unwrap();
        frames.extend(std::iter::from_fn(|| decoder.next_frame()));
    }
    frames
}
