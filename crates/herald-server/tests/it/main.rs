//! The hub over real HTTP on 127.0.0.1:0: every protocol rule, one test
//! each, checked the way a client sees it.

mod access;
mod edge;
mod http2;
mod hub_rules;
mod lean;
mod load;
mod publish;
mod subscribe;
mod tls;

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
}

/// Starts a hub with the default config plus the test issuer.
pub async fn start() -> TestHub {
    start_with(|_| {}).await
}

/// Starts a hub, letting the test adjust the config.
pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestHub {
    launch(configure, None).await
}

/// Starts a hub over TLS (`https://localhost:PORT`), with `http` trusting
/// its certificate.
pub async fn start_tls(
    tls: herald_server::Tls,
    http: reqwest::Client,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestHub {
    launch(configure, Some((tls, http))).await
}

async fn launch(
    configure: impl FnOnce(&mut ServerConfig),
    tls: Option<(herald_server::Tls, reqwest::Client)>,
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
    let (serve, http) = match tls {
        Some((tls, http)) => (herald_server::serve(listener, app).with_tls(tls), http),
        None => (herald_server::serve(listener, app), reqwest::Client::new()),
    };
    tokio::spawn(async move { serve.await.unwrap() });
    TestHub {
        base,
        url,
        hub,
        http,
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

/// Signs claims as the test issuer (HS256, `typ: at+jwt`), filling in the
/// required claims that the test did not set.
pub fn token(audience: &str, mut claims: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
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
