//! `/ui`: the tester and dashboard pages, their assets, and the statistics
//! stream behind the dashboard (admin grant only).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::{details, read_events, start, start_with, token, TestHub};

async fn get(hub: &TestHub, path: &str) -> reqwest::Response {
    hub.http
        .get(format!("{}{path}", hub.base))
        .send()
        .await
        .unwrap()
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_pages_are_html_with_a_strict_policy_and_revalidated() {
    let hub = start().await;
    for (path, connect) in [
        ("/ui", "connect-src *"),
        ("/ui/", "connect-src *"),
        ("/ui/dashboard", "connect-src 'self'"),
    ] {
        let response = get(&hub, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "x-frame-options"), "DENY");
        let csp = header(&response, "content-security-policy").to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            connect,
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let etag = header(&response, "etag").to_owned();
        let body = response.text().await.unwrap();
        assert!(body.starts_with("<!doctype html>"), "{path}");
        // No inline script or style for the policy to block.
        assert!(!body.contains("<style"), "{path}");
        assert!(!body.contains(" style="), "{path}");
        for script in body.split("<script").skip(1) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains("src=\""), "{path}: an inline script: {tag}");
        }

        // Every script and style sheet the page names is served.
        for attribute in ["src=\"", "href=\""] {
            for piece in body.split(attribute).skip(1) {
                let target = &piece[..piece.find('"').unwrap()];
                if !target.starts_with("/ui/assets/") && target != "/herald.js" {
                    continue;
                }
                let asset = get(&hub, target).await;
                assert_eq!(asset.status(), 200, "{path} names {target}");
            }
        }

        let again = hub
            .http
            .get(format!("{}{path}", hub.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.headers().contains_key("content-security-policy"));
    }
}

#[tokio::test]
async fn assets_are_cacheable_with_their_types_and_nothing_else_is_served() {
    let hub = start().await;
    for (path, content_type, needle) in [
        (
            "/ui/assets/tester.js",
            "text/javascript; charset=utf-8",
            "/herald.js",
        ),
        (
            "/ui/assets/dashboard.js",
            "text/javascript; charset=utf-8",
            "/ui/stats",
        ),
        ("/ui/assets/ui.css", "text/css; charset=utf-8", "{"),
        (
            "/ui/assets/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
            "uPlot",
        ),
        (
            "/ui/assets/vendor/uPlot.min.css",
            "text/css; charset=utf-8",
            ".uplot",
        ),
        (
            "/ui/assets/vendor/uPlot.LICENSE",
            "text/plain; charset=utf-8",
            "MIT",
        ),
    ] {
        let response = get(&hub, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let etag = header(&response, "etag").to_owned();
        assert!(response.text().await.unwrap().contains(needle), "{path}");
        let again = hub
            .http
            .get(format!("{}{path}", hub.base))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    for path in [
        "/ui/assets/nope.js",
        "/ui/assets/tester.html",
        "/ui/assets/../../Cargo.toml",
        "/ui/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/ui/assets/vendor/",
        "/ui/nope",
    ] {
        let response = get(&hub, path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

fn stats_request(hub: &TestHub, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = hub.http.get(format!("{}/ui/stats", hub.base));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn admin_only(hub: &TestHub, subscribe: &str) -> String {
    token(
        &hub.url,
        json!({ "authorization_details": details(&[], &[subscribe]) }),
    )
}

#[tokio::test]
async fn the_stats_stream_needs_the_admin_grant() {
    let hub = start().await;

    let response = stats_request(&hub, None).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "www-authenticate"), hub.challenge(None));

    let response = stats_request(&hub, Some("not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        hub.challenge(Some("invalid_token"))
    );

    // Valid tokens without the grant: another topic, publish-only (even on
    // everything), the admin topic's last segment alone, and a token for
    // another hub's admin topic.
    let publisher = token(
        &hub.url,
        json!({ "authorization_details": details(&["*"], &[]) }),
    );
    for refused in [
        admin_only(&hub, "https://example.com/books/1"),
        publisher,
        admin_only(&hub, "admin"),
        admin_only(&hub, "https://other.example/.well-known/mercure/admin"),
    ] {
        let response = stats_request(&hub, Some(&refused)).send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(
            header(&response, "www-authenticate"),
            hub.challenge(Some("insufficient_scope"))
        );
    }

    // The grant, in both spellings, and through `*`.
    for granted in [
        admin_only(&hub, "/.well-known/mercure/admin"),
        admin_only(&hub, &format!("{}/admin", hub.url)),
        hub.admin_token(),
    ] {
        let response = stats_request(&hub, Some(&granted)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let events = read_events(response, 1).await;
        assert_eq!(events[0].event_type(), "stats");
    }

    // And as the token cookie (what a page can send without script).
    let cookie = format!(
        "__Secure-mercure_access_token={}",
        admin_only(&hub, "/.well-known/mercure/admin")
    );
    let response = hub
        .http
        .get(format!("{}/ui/stats", hub.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_stats_stream_sends_a_json_document_every_second() {
    let hub = start().await;
    let response = stats_request(&hub, Some(&admin_only(&hub, "/.well-known/mercure/admin")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let publisher = hub.clone_publish_after(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let events = read_events(response, 3).await;
    publisher.await.unwrap();
    assert_eq!(events.len(), 3);
    // One at once, then one a second.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    let docs: Vec<Value> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event_type(), "stats");
            assert_eq!(e.last_event_id(), "", "statistics are not resumable");
            serde_json::from_str(e.data()).unwrap()
        })
        .collect();
    let first = &docs[0];
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let time = first["time"].as_u64().unwrap();
    assert!(time <= now_ms && time + 10_000 > now_ms, "{first}");
    assert_eq!(first["hub"], hub.url.as_str());
    // The viewer's own stream is a subscriber.
    assert_eq!(first["subscribers"], 1, "{first}");
    for field in [
        "connections",
        "subscriptions_total",
        "published_total",
        "delivered_total",
        "bytes_written_total",
        "gaps_total",
        "lagged_total",
    ] {
        assert!(first[field].is_u64(), "{field} in {first}");
    }
    for reason in [
        "client_gone",
        "lagging",
        "token_expired",
        "shutdown",
        "resync",
    ] {
        assert!(first["disconnects_total"][reason].is_u64(), "{reason}");
    }
    let buckets = first["publish_duration_seconds"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), 14, "13 bounds and +Inf: {first}");
    assert_eq!(buckets[0][0], 0.0001);
    assert!(buckets[13][0].is_null());

    // The store as the hub last read it: empty, kept without limit.
    let store = &first["store"];
    assert_eq!(store["head"], 0, "{first}");
    assert_eq!(store["oldest"], Value::Null, "{first}");
    assert_eq!(store["events"], 0, "{first}");
    let as_of = store["as_of"].as_u64().unwrap();
    assert!(as_of <= time && as_of + 2_000 >= time, "{first}");
    assert_eq!(
        store["retention"],
        json!({"max_events": null, "max_age_secs": null})
    );

    // The publish in between shows in the later documents.
    let last = &docs[2];
    assert_eq!(last["store"]["head"], 1, "{last}");
    assert_eq!(last["store"]["oldest"], 1, "{last}");
    assert_eq!(last["store"]["events"], 1, "{last}");
    assert_eq!(last["published_total"], 1, "{last}");
    assert_eq!(last["publish_duration_seconds"]["count"], 1, "{last}");
    assert_eq!(
        last["publish_duration_seconds"]["buckets"][13][1], 1,
        "{last}"
    );
    assert!(
        last["bytes_written_total"].as_u64() > first["bytes_written_total"].as_u64(),
        "the stream's own bytes count"
    );
}

impl TestHub {
    /// Publishes one update after `delay`, in the background.
    fn clone_publish_after(&self, delay: Duration) -> tokio::task::JoinHandle<()> {
        let http = self.http.clone();
        let url = self.url.clone();
        let token = self.admin_token();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let response = http
                .post(url)
                .bearer_auth(token)
                .form(&[("topic", "https://example.com/a"), ("data", "x")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        })
    }
}

/// A hub whose retention keeps `max_events` and an hour, served on
/// loopback; returns its base (`http://127.0.0.1:PORT`) and URL. (The
/// shared `start` keeps everything: retention is the hub's config.)
async fn start_keeping(max_events: u64) -> (String, String) {
    use herald_server::auth::{IssuerConfig, KeyConfig};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/.well-known/mercure");
    let mut hub_config = herald_hub::HubConfig::new(url.parse().unwrap());
    hub_config.heartbeat = None;
    hub_config.retention = herald_store::Retention {
        max_events: Some(max_events),
        max_age: Some(Duration::from_secs(3600)),
    };
    hub_config.retention_interval = Duration::from_millis(100);
    let store = std::sync::Arc::new(herald_store::MemoryStore::new());
    let hub = herald_hub::Hub::start(store, hub_config).await.unwrap();
    let mut config = herald_server::ServerConfig::default();
    config.auth.resource = url.clone();
    config.auth.issuers.push(IssuerConfig {
        issuer: crate::ISSUER.into(),
        keys: vec![KeyConfig::secret("HS256", crate::SECRET)],
        legacy: false,
    });
    let app = herald_server::HubApp::new(hub, config).unwrap();
    tokio::spawn(async move { herald_server::serve(listener, app).await.unwrap() });
    (base, url)
}

/// The `store` object follows publishes and the retention the hub
/// applies, and says what that retention is.
#[tokio::test]
async fn the_stats_document_shows_the_store_and_its_retention() {
    let (base, url) = start_keeping(3).await;
    let http = crate::raw_client();
    let admin = token(
        &url,
        json!({ "authorization_details": details(&["*"], &["*"]) }),
    );
    for i in 0..10 {
        let response = http
            .post(&url)
            .bearer_auth(&admin)
            .form(&[("topic", "https://example.com/a"), ("data", &i.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Past one retention run (every 100 ms here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = http
        .get(format!("{base}/ui/stats"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response, 2).await;
    let doc: Value = serde_json::from_str(events[1].data()).unwrap();
    assert_eq!(
        doc["store"]["retention"],
        json!({"max_events": 3, "max_age_secs": 3600}),
        "{doc}"
    );
    assert_eq!(doc["store"]["head"], 10, "{doc}");
    assert_eq!(doc["store"]["oldest"], 8, "{doc}");
    assert_eq!(doc["store"]["events"], 3, "{doc}");
}

#[tokio::test]
async fn stats_streams_count_against_the_subscription_caps() {
    let hub = start_with(|config| config.max_subscriptions = 1).await;
    let admin = admin_only(&hub, "/.well-known/mercure/admin");
    let first = stats_request(&hub, Some(&admin)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = stats_request(&hub, Some(&admin)).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(header(&second, "retry-after"), "5");
    // A plain subscription is refused too: one slot for both kinds.
    let plain = hub.subscribe_request("match=a").send().await.unwrap();
    assert_eq!(plain.status(), 429);
    drop(first);
    // The slot comes back once the viewer is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = stats_request(&hub, Some(&admin)).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_stats_stream_ends_when_the_token_expires() {
    let hub = start().await;
    let now = crate::unix_time();
    let short = token(
        &hub.url,
        json!({
            "authorization_details": details(&[], &["/.well-known/mercure/admin"]),
            "exp": now + 2,
        }),
    );
    let response = stats_request(&hub, Some(&short)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    // Far more events than fit before exp: the stream ends first.
    let events = read_events(response, 100).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!((1..=4).contains(&events.len()), "{}", events.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = hub.hub.stats();
        if stats.disconnects.expired == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_index_page_links_the_ui() {
    let hub = start().await;
    let body = get(&hub, "/").await.text().await.unwrap();
    assert!(body.contains("href=\"/ui\""), "{body}");
    assert!(body.contains("href=\"/ui/dashboard\""), "{body}");
    assert!(!body.contains("coming soon"), "{body}");
}
