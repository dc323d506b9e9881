//! `GET /metrics` as Prometheus scrapes it: every count checked after the
//! thing it counts happened over real connections. Each test picks its own
//! transport (the counts depend on it), whatever `HERALD_TEST_TRANSPORT`
//! says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use herald_hub::{Hub, HubConfig, HubStats};
use herald_proto::Decoder;
use herald_server::ServerConfig;
use herald_store::{Bounds, Cursor, MemoryStore, NewRecord, Record, Retention, Store, StoreError};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::{details, launch, start_tls, token, TestCerts, TestHub};

/// A hub on plain HTTP/1.1 with the lean path, as `herald serve` runs.
async fn plain() -> TestHub {
    launch(|_| {}, |_| {}, None, reqwest::Client::new(), None).await
}

/// The scrape, as text; asserts the content type Prometheus expects.
pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of one sample (`name` with its labels, as written), or a
/// panic showing the whole scrape.
pub(crate) fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            (sample == name).then(|| value.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in:\n{metrics}"))
}

/// Waits (up to 10 s) until the hub's counters satisfy `done`.
async fn until(hub: &Hub, done: impl Fn(&HubStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&hub.stats()) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", hub.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const DISCONNECTS: [&str; 5] = [
    "client_gone",
    "lagging",
    "token_expired",
    "shutdown",
    "resync",
];

/// Asserts the `herald_disconnects_total` of each reason: `reason` once,
/// every other none.
fn assert_one_disconnect(metrics: &str, reason: &str) {
    for each in DISCONNECTS {
        let name = format!("herald_disconnects_total{{reason=\"{each}\"}}");
        let expected = if each == reason { 1.0 } else { 0.0 };
        assert_eq!(sample(metrics, &name), expected, "{name}");
    }
}

#[tokio::test]
async fn a_subscribe_a_publish_and_a_disconnect_are_counted() {
    let hub = plain().await;
    let response = hub.subscribe_request("match=/m").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    hub.publish_ok(&[("topic", "/m"), ("data", "hello")]).await;
    let (mut received, mut decoder) = (0, Decoder::new());
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the event arrives")
            .unwrap()
            .unwrap();
        received += chunk.len();
        decoder.feed(&chunk).unwrap();
        if decoder.next_event().is_some() {
            break;
        }
    }
    drop(body);
    until(&hub.hub, |stats| stats.disconnects.client_gone == 1).await;

    let metrics = scrape(&hub.http, &hub.base).await;
    assert_eq!(sample(&metrics, "herald_subscribers"), 0.0);
    assert_eq!(sample(&metrics, "herald_subscriptions_total"), 1.0);
    assert_eq!(sample(&metrics, "herald_published_total"), 1.0);
    assert_eq!(sample(&metrics, "herald_delivered_total"), 1.0);
    assert_eq!(sample(&metrics, "herald_gaps_total"), 0.0);
    assert_eq!(sample(&metrics, "herald_lagged_total"), 0.0);
    assert_one_disconnect(&metrics, "client_gone");
    // Every byte of the stream (the `retry:` hint, the event) the
    // subscriber read, and nothing more: no heartbeat in the tests.
    assert_eq!(
        sample(&metrics, "herald_bytes_written_total"),
        received as f64
    );
    assert_eq!(
        sample(&metrics, "herald_publish_duration_seconds_count"),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "herald_publish_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        1.0
    );
    // The subscription's connection (the lean path), the publisher's (the
    // lean path's pipeline)
    // and maybe more from the client's pool; all HTTP/1.1 in plain text.
    let http1 = "{protocol=\"http1\",tls=\"false\"}";
    assert!(sample(&metrics, &format!("herald_connections_total{http1}")) >= 2.0);
    assert!(sample(&metrics, &format!("herald_connections{http1}")) >= 1.0);
    for other in [
        "{protocol=\"h2\",tls=\"false\"}",
        "{protocol=\"http1\",tls=\"true\"}",
        "{protocol=\"h2\",tls=\"true\"}",
    ] {
        assert_eq!(
            sample(&metrics, &format!("herald_connections_total{other}")),
            0.0
        );
    }
    for op in ["append", "read", "follow"] {
        let name = format!("herald_store_errors_total{{op=\"{op}\"}}");
        assert_eq!(sample(&metrics, &name), 0.0, "{name}");
    }
    assert_eq!(sample(&metrics, "herald_store_follow_retries_total"), 0.0);
}

#[tokio::test]
async fn an_h2c_connection_is_counted_as_h2_without_tls() {
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let hub = launch(|_| {}, |_| {}, None, http, None).await;
    let health = hub
        .http
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // On the same connection: counted once, and open now.
    let metrics = scrape(&hub.http, &hub.base).await;
    let h2c = "{protocol=\"h2\",tls=\"false\"}";
    assert_eq!(
        sample(&metrics, &format!("herald_connections_total{h2c}")),
        1.0
    );
    assert_eq!(sample(&metrics, &format!("herald_connections{h2c}")), 1.0);
    let http1 = "{protocol=\"http1\",tls=\"false\"}";
    assert_eq!(
        sample(&metrics, &format!("herald_connections_total{http1}")),
        0.0
    );
}

#[tokio::test]
async fn tls_connections_are_counted_by_the_protocol_alpn_chose() {
    let certs = TestCerts::new("metrics");
    let hub = start_tls(certs.tls(), certs.client(false), |_| {}).await;
    let http1 = certs.client(true);
    let health = http1
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = scrape(&hub.http, &hub.base).await;
    for labels in [
        "{protocol=\"http1\",tls=\"true\"}",
        "{protocol=\"h2\",tls=\"true\"}",
    ] {
        assert_eq!(
            sample(&metrics, &format!("herald_connections_total{labels}")),
            1.0,
            "{labels}"
        );
        assert_eq!(
            sample(&metrics, &format!("herald_connections{labels}")),
            1.0,
            "{labels}"
        );
    }
    drop(http1);
    // The HTTP/1.1 client's connection closed: open no more, still counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let open = "herald_connections{protocol=\"http1\",tls=\"true\"}";
    while sample(&scrape(&hub.http, &hub.base).await, open) != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "{open} stays 1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A subscriber that stops reading is cut off: `lagging`, once, however
/// its connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_counted_as_lagging() {
    let hub = plain().await;
    let port: u16 = hub.base.rsplit(':').next().unwrap().parse().unwrap();
    // A tiny receive buffer, a request, then silence.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stalled = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    stalled
        .write_all(b"GET /.well-known/mercure?match=/lag HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    until(&hub.hub, |stats| stats.subscribers == 1).await;
    // 4 MiB: past the 1 MiB queue bound and what the kernel buffers.
    let big = "x".repeat(64 * 1024);
    let token = hub.admin_token();
    for _ in 0..64 {
        if hub.hub.stats().lagged > 0 {
            break;
        }
        let response = hub
            .publish_as(Some(&token), &[("topic", "/lag"), ("data", &big)])
            .await;
        assert_eq!(response.status(), 200);
    }
    until(&hub.hub, |stats| stats.disconnects.lagged == 1).await;

    let metrics = scrape(&hub.http, &hub.base).await;
    assert_one_disconnect(&metrics, "lagging");
    assert_eq!(sample(&metrics, "herald_lagged_total"), 1.0);
    assert_eq!(sample(&metrics, "herald_subscribers"), 0.0);
    drop(stalled);
}

#[tokio::test]
async fn a_stream_ended_at_token_expiry_is_counted_as_token_expired() {
    let hub = plain().await;
    let now = crate::unix_time();
    let short = token(
        &hub.url,
        json!({"exp": now + 2, "authorization_details": details(&[], &["*"])}),
    );
    let response = hub
        .subscribe_request("match=/e")
        .bearer_auth(short)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(Duration::from_secs(8), response.bytes())
        .await
        .expect("the stream ends at the token's exp")
        .unwrap();
    until(&hub.hub, |stats| stats.disconnects.expired == 1).await;
    let metrics = scrape(&hub.http, &hub.base).await;
    assert_one_disconnect(&metrics, "token_expired");
}

/// A memory store whose appends and id lookups fail while `failing` is set.
struct Failing {
    inner: MemoryStore,
    failing: AtomicBool,
}

impl Failing {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other("down")));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for Failing {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        self.check()?;
        self.inner.append(record).await
    }

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        self.check()?;
        self.inner.append_batch(records).await
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.read_after(after, limit).await
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        self.check()?;
        self.inner.resolve(id).await
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.check()?;
        self.inner.resolve_record(id).await
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        self.inner.bounds().await
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        self.inner.follow(after)
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        self.inner.trim(retention).await
    }
}

#[tokio::test]
async fn store_failures_are_counted_by_operation() {
    let store = Arc::new(Failing {
        inner: MemoryStore::new(),
        failing: AtomicBool::new(true),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/.well-known/mercure");
    let mut hub_config = HubConfig::new(url.parse().unwrap());
    hub_config.heartbeat = None;
    let hub = Hub::start(store.clone(), hub_config).await.unwrap();
    let config = ServerConfig {
        allow_anonymous_publish: true,
        ..ServerConfig::default()
    };
    let app = herald_server::HubApp::new(hub, config).unwrap();
    tokio::spawn(async move { herald_server::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    let publish = http
        .post(&url)
        .form(&[("topic", "/s"), ("data", "lost")])
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 503);
    let resume = http
        .get(format!("{url}?match=/s"))
        .header("last-event-id", "some-id")
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 503);
    store.failing.store(false, Ordering::SeqCst);
    let publish = http
        .post(&url)
        .form(&[("topic", "/s"), ("data", "kept")])
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 200);

    let metrics = scrape(&http, &base).await;
    assert_eq!(
        sample(&metrics, "herald_store_errors_total{op=\"append\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "herald_store_errors_total{op=\"read\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "herald_store_errors_total{op=\"follow\"}"),
        0.0
    );
    assert_eq!(sample(&metrics, "herald_published_total"), 1.0);
    // Only what the store acknowledged is timed.
    assert_eq!(
        sample(&metrics, "herald_publish_duration_seconds_count"),
        1.0
    );
}
