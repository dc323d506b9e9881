//! Active subscriptions (draft-08 §"Active Subscriptions") over real HTTP:
//! each MUST of the section, one test each: the events (topic, document,
//! `mercure` type, private, on start and on end, also an abrupt one), the
//! subscriptions API (paths, authorization, JSON, the `Link` cursor, 404s)
//! and the snapshot-then-stream chaining.

use std::time::Duration;

use herald_proto::MessageEvent;
use serde_json::{json, Value};

use crate::{read_events, start_with_hub, token, TestHub};

const NAMESPACE: &str = "/.well-known/mercure/subscriptions";

async fn hub() -> TestHub {
    start_with_hub(|hub| hub.subscriptions = true, |_| {}).await
}

/// A token granting `subscribe` on topics matching a URL pattern.
fn pattern_token(hub: &TestHub, pattern: &str) -> String {
    token(
        &hub.url,
        json!({"authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [{"match": pattern, "match_type": "urlpattern"}],
        }]}),
    )
}

/// A token granting `subscribe` on one exact topic.
fn exact_token(hub: &TestHub, topic: &str) -> String {
    token(
        &hub.url,
        json!({"authorization_details": crate::details(&[], &[topic])}),
    )
}

/// Subscribes to every subscription event, granted them.
async fn watch(hub: &TestHub, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = hub
        .subscribe_request(&format!("match_urlpattern={NAMESPACE}/*"))
        .bearer_auth(pattern_token(hub, &format!("{NAMESPACE}/*")));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads the next `n` events of a stream, keeping the stream.
async fn next_events(body: &mut EventReader, n: usize) -> Vec<MessageEvent> {
    body.next(n).await
}

/// An event stream read a few events at a time.
struct EventReader {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: herald_proto::Decoder,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        use futures_util::StreamExt;
        EventReader {
            body: response.bytes_stream().boxed(),
            decoder: herald_proto::Decoder::new(),
        }
    }

    async fn next(&mut self, n: usize) -> Vec<MessageEvent> {
        use futures_util::StreamExt;
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while events.len() < n {
            if let Some(event) = self.decoder.next_event() {
                events.push(event);
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.decoder.feed(&chunk).unwrap(),
                other => panic!("{} of {n} events, then {other:?}", events.len()),
            }
        }
        events
    }

    /// Whether an event arrives within `wait`.
    async fn quiet_for(&mut self, wait: Duration) -> bool {
        use futures_util::StreamExt;
        if self.decoder.next_event().is_some() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(chunk))) => {
                    self.decoder.feed(&chunk).unwrap();
                    if self.decoder.next_event().is_some() {
                        return false;
                    }
                }
                Ok(_) => return true,
            }
        }
    }
}

fn document(event: &MessageEvent) -> Value {
    assert_eq!(event.event_type(), "mercure", "the reserved type");
    serde_json::from_str(event.data()).unwrap()
}

/// Subscribes to `query` and returns the subscriber id the start event
/// names, read from the watcher.
async fn subscriber_of(watcher: &mut EventReader) -> Value {
    document(&next_events(watcher, 1).await[0])
}

#[tokio::test]
async fn starting_and_ending_a_subscription_publish_its_documents() {
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    let own = subscriber_of(&mut watcher).await;
    assert_eq!(own["match_type"], "urlpattern");

    let subscriber = hub
        .subscribe_request("match=https://example.com/books/1")
        .send()
        .await
        .unwrap();
    assert_eq!(subscriber.status(), 200);
    let started = next_events(&mut watcher, 1).await.remove(0);
    let doc = document(&started);
    let id = doc["subscriber"].as_str().unwrap().to_owned();
    assert!(id.starts_with("urn:uuid:"), "a hub-made IRI: {id}");
    let topic = format!(
        "{NAMESPACE}/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/{}",
        id.replace(':', "%3A")
    );
    assert_eq!(doc["id"], topic, "the id is the topic");
    assert_eq!(doc["type"], "subscription");
    assert_eq!(doc["match_type"], "exact");
    assert_eq!(doc["match"], "https://example.com/books/1");
    assert_eq!(doc["active"], true);
    assert!(
        doc.get("payload").is_none(),
        "an anonymous subscriber has none"
    );
    assert_ne!(
        own["subscriber"], doc["subscriber"],
        "distinct per connection"
    );

    drop(subscriber);
    let ended = document(&next_events(&mut watcher, 1).await[0]);
    assert_eq!(ended["id"], topic);
    assert_eq!(ended["active"], false);
}

#[tokio::test]
async fn an_abrupt_disconnect_ends_the_subscription_too() {
    use tokio::io::AsyncWriteExt as _;
    if crate::Transport::from_env() == crate::Transport::H2 {
        // A plain socket cannot speak to the TLS port; over HTTP/2 the
        // abrupt end is the test above's dropped stream (RST_STREAM).
        return;
    }
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    subscriber_of(&mut watcher).await;
    let mut socket = hub.connect().await;
    socket
        .write_all(b"GET /.well-known/mercure?match=/gone HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    crate::read_until(&mut socket, "\r\n\r\n").await;
    let started = document(&next_events(&mut watcher, 1).await[0]);
    assert_eq!(started["match"], "/gone");
    // A reset, not a close: the client vanished.
    socket.set_zero_linger().unwrap();
    drop(socket);
    let ended = document(&next_events(&mut watcher, 1).await[0]);
    assert_eq!(ended["id"], started["id"]);
    assert_eq!(ended["active"], false);
}

#[tokio::test]
async fn one_connection_is_one_subscriber_with_its_tokens_payloads() {
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    subscriber_of(&mut watcher).await;
    let token = token(
        &hub.url,
        json!({"authorization_details": [
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": "https://example.com/foo"}],
                "payload": {"custom1": "foo"},
            },
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": "*"}],
                "payload": {"custom3": "default"},
            },
        ]}),
    );
    let _both = hub
        .subscribe_request("match=https://example.com/foo&match_urlpattern=https://example.com/:id")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let docs: Vec<Value> = next_events(&mut watcher, 2)
        .await
        .iter()
        .map(document)
        .collect();
    assert_eq!(docs[0]["subscriber"], docs[1]["subscriber"]);
    assert_eq!(docs[0]["payload"], json!({"custom1": "foo"}));
    assert_eq!(docs[1]["match_type"], "urlpattern");
    assert_eq!(docs[1]["payload"], json!({"custom3": "default"}));
}

#[tokio::test]
async fn subscription_events_are_private() {
    let hub = hub().await;
    // Selecting them is not enough: anonymous, and with a grant elsewhere.
    let anonymous = hub
        .subscribe_request(&format!("match_urlpattern={NAMESPACE}/*"))
        .send()
        .await
        .unwrap();
    let elsewhere = hub
        .subscribe_request(&format!("match_urlpattern={NAMESPACE}/*"))
        .bearer_auth(exact_token(&hub, "https://example.com/other"))
        .send()
        .await
        .unwrap();
    let mut anonymous = EventReader::new(anonymous);
    let mut elsewhere = EventReader::new(elsewhere);
    let mut watcher = EventReader::new(watch(&hub, None).await);
    // The watcher, live from now, sees its own start, then the next one.
    next_events(&mut watcher, 1).await;
    let _other = hub.subscribe_request("match=/x").send().await.unwrap();
    next_events(&mut watcher, 1).await;
    assert!(anonymous.quiet_for(Duration::from_millis(300)).await);
    assert!(elsewhere.quiet_for(Duration::from_millis(300)).await);
}

/// GET with a token; returns status, Link header and JSON body.
async fn api(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = hub.http.get(format!("{}{path}", hub.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        link,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The `last-event-id` of a `Link` header.
fn cursor(link: &str) -> String {
    let start = link.find("last-event-id=\"").unwrap() + "last-event-id=\"".len();
    link[start..][..link[start..].find('"').unwrap()].to_owned()
}

fn subscribers(collection: &Value) -> Vec<String> {
    let mut ids: Vec<String> = collection["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["subscriber"].as_str().unwrap().to_owned())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn the_api_lists_all_by_matcher_and_one() {
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    let watcher_doc = subscriber_of(&mut watcher).await;
    let _a = hub.subscribe_request("match=/a").send().await.unwrap();
    let _b = hub
        .subscribe_request("match=https://example.com/b")
        .send()
        .await
        .unwrap();
    let a = document(&next_events(&mut watcher, 1).await[0]);
    let b = document(&next_events(&mut watcher, 1).await[0]);
    let everything = pattern_token(&hub, &format!("{NAMESPACE}*"));

    // The events arrived: the table holds them (it is the same log).
    let (status, link, all) = api(&hub, NAMESPACE, Some(&everything)).await;
    assert_eq!(status, 200);
    assert_eq!(all["id"], NAMESPACE, "the URL used to retrieve it");
    assert_eq!(all["type"], "subscriptions");
    let mut expected = vec![
        a["subscriber"].as_str().unwrap().to_owned(),
        b["subscriber"].as_str().unwrap().to_owned(),
        watcher_doc["subscriber"].as_str().unwrap().to_owned(),
    ];
    expected.sort_unstable();
    assert_eq!(subscribers(&all), expected);
    let link = link.expect("a Link header");
    assert!(
        link.starts_with(&format!("<{}>; rel=\"mercure\"", hub.url)),
        "{link}"
    );
    assert!(link.contains("type=\"mercure\""), "{link}");
    assert!(link.contains("content-type=\"application/json\""), "{link}");
    assert_eq!(
        cursor(&link),
        b_event_id(&hub, &b).await,
        "the last dispatched event"
    );

    let by_matcher = format!("{NAMESPACE}/exact/https%3A%2F%2Fexample.com%2Fb");
    let (status, _, collection) = api(&hub, &by_matcher, Some(&everything)).await;
    assert_eq!(status, 200);
    assert_eq!(collection["id"], by_matcher);
    assert_eq!(collection["subscriptions"], json!([b]));

    let one = b["id"].as_str().unwrap();
    let (status, link, single) = api(&hub, one, Some(&everything)).await;
    assert_eq!(status, 200);
    assert_eq!(single, b, "the subscription event's document, unchanged");
    assert!(link.is_some());

    let missing = format!("{by_matcher}/urn%3Auuid%3Anobody");
    assert_eq!(api(&hub, &missing, Some(&everything)).await.0, 404);
    assert_eq!(
        api(&hub, &format!("{NAMESPACE}/exact/x/y/z"), Some(&everything))
            .await
            .0,
        404
    );
    // A matcher with no subscriber is an empty collection.
    let (status, _, empty) = api(
        &hub,
        &format!("{NAMESPACE}/exact/%2Fnone"),
        Some(&everything),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(empty["subscriptions"], json!([]));
}

/// The id of the last event the hub dispatched: `b`'s start event is the
/// newest, so its id, read back through a replay of the namespace.
async fn b_event_id(hub: &TestHub, b: &Value) -> String {
    let response = hub
        .subscribe_request(&format!("match_urlpattern={NAMESPACE}/*"))
        .bearer_auth(pattern_token(hub, &format!("{NAMESPACE}/*")))
        .header("last-event-id", "earliest")
        .send()
        .await
        .unwrap();
    let events = read_events(response, 3).await;
    let last = events.last().unwrap();
    assert_eq!(document(last), *b);
    last.last_event_id().to_owned()
}

#[tokio::test]
async fn the_api_is_authorized_on_the_requested_path() {
    let hub = hub().await;
    let _a = hub.subscribe_request("match=/a").send().await.unwrap();
    let _b = hub.subscribe_request("match=/b").send().await.unwrap();
    let on_a = format!("{NAMESPACE}/exact/%2Fa");
    // No token: 401 with the challenge.
    let response = hub
        .http
        .get(format!("{}{on_a}", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], hub.challenge(None));
    // A grant on /a's collection (exact, byte for byte) reads it, not /b's
    // nor everything; a grant elsewhere reads nothing.
    let only_a = exact_token(&hub, &on_a);
    assert_eq!(api(&hub, &on_a, Some(&only_a)).await.0, 200);
    assert_eq!(
        api(&hub, &format!("{NAMESPACE}/exact/%2Fb"), Some(&only_a))
            .await
            .0,
        403
    );
    assert_eq!(api(&hub, NAMESPACE, Some(&only_a)).await.0, 403);
    let other = exact_token(&hub, "https://example.com/books/1");
    assert_eq!(api(&hub, &on_a, Some(&other)).await.0, 403);
    // A relative URL pattern resolves against the hub's URL.
    let pattern = pattern_token(&hub, &format!("{NAMESPACE}/exact/:m"));
    assert_eq!(api(&hub, &on_a, Some(&pattern)).await.0, 200);
}

#[tokio::test]
async fn off_by_default_and_said_in_the_metadata() {
    let plain = crate::start().await;
    let admin = plain.admin_token();
    assert_eq!(api(&plain, NAMESPACE, Some(&admin)).await.0, 404);
    let metadata = |hub: &TestHub| {
        let url = format!(
            "{}/.well-known/oauth-protected-resource/.well-known/mercure",
            hub.base
        );
        let http = hub.http.clone();
        async move {
            let document: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            document
        }
    };
    assert!(metadata(&plain)
        .await
        .get("mercure_subscriptions")
        .is_none());
    let on = hub().await;
    assert_eq!(metadata(&on).await["mercure_subscriptions"], true);
}

#[tokio::test]
async fn the_link_header_is_exposed_to_other_origins() {
    let hub = start_with_hub(
        |hub| hub.subscriptions = true,
        |server| server.cors_origins = vec!["https://app.example".into()],
    )
    .await;
    let response = hub
        .http
        .get(format!("{}{NAMESPACE}", hub.base))
        .header("origin", "https://app.example")
        .bearer_auth(hub.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("Link"), "{exposed}");
}

/// Fetch the list, subscribe from its cursor while subscribers come and
/// go: the list plus the events after it is exactly who is subscribed at
/// the end, with no event missed and none twice.
#[tokio::test]
async fn a_snapshot_then_the_stream_from_its_cursor_misses_nothing() {
    let hub = hub().await;
    let admin = hub.admin_token();
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(
            hub.subscribe_request(&format!("match=/r{i}"))
                .send()
                .await
                .unwrap(),
        );
    }
    let churn = {
        let http = hub.http.clone();
        let url = hub.url.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            for i in 0..30 {
                let response = http
                    .get(format!("{url}?match=/c{}", i % 4))
                    .send()
                    .await
                    .unwrap();
                held.push(response);
                if i % 2 == 0 {
                    held.remove(0);
                }
            }
            held
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, link, snapshot) = api(&hub, NAMESPACE, Some(&admin)).await;
    assert_eq!(status, 200);
    let from = cursor(&link.unwrap());
    let mut watcher = EventReader::new(watch(&hub, Some(&from)).await);
    let kept = churn.await.unwrap();
    drop(held.drain(..2));

    let mut table: std::collections::BTreeSet<String> = snapshot["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["id"].as_str().unwrap().to_owned())
        .collect();
    // Settle: wait until the API agrees with itself twice in a row.
    let expected = loop {
        let (_, first, now) = api(&hub, NAMESPACE, Some(&admin)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, second, again) = api(&hub, NAMESPACE, Some(&admin)).await;
        if first == second {
            break again;
        }
        let _ = now;
    };
    let expected: std::collections::BTreeSet<String> = expected["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 3 + kept.len() + 1, "held, churned, watcher");
    let mut seen = std::collections::HashSet::new();
    while table != expected {
        let event = next_events(&mut watcher, 1).await.remove(0);
        let doc = document(&event);
        let id = doc["id"].as_str().unwrap().to_owned();
        let active = doc["active"].as_bool().unwrap();
        assert!(seen.insert((id.clone(), active)), "twice: {doc}");
        if active {
            assert!(table.insert(id), "started twice: {doc}");
        } else {
            assert!(table.remove(&id), "ended without a start, a gap: {doc}");
        }
    }
}

/// RFC 6570 as draft-08 asks: the matcher is percent-encoded exactly once,
/// as a whole, so a `%` it holds is itself encoded (`%25`), never kept.
#[tokio::test]
async fn a_percent_in_a_matcher_is_encoded_exactly_once() {
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    subscriber_of(&mut watcher).await;
    // The matcher `/a%20b é` (form-encoded so that it arrives as is).
    let _held = hub
        .subscribe_request("match=%2Fa%2520b+%C3%A9")
        .send()
        .await
        .unwrap();
    let doc = document(&next_events(&mut watcher, 1).await[0]);
    assert_eq!(doc["match"], "/a%20b é");
    let subscriber = doc["subscriber"].as_str().unwrap().replace(':', "%3A");
    let topic = format!("{NAMESPACE}/exact/%2Fa%2520b%20%C3%A9/{subscriber}");
    assert_eq!(doc["id"], topic);
    // The API finds it at that path.
    let (status, _, single) = api(&hub, &topic, Some(&hub.admin_token())).await;
    assert_eq!(status, 200);
    assert_eq!(single, doc);
}

/// draft-08 §Payloads: the payload of the first `subscribe` detail whose
/// topics match the subscription's matcher is in the API's documents too.
#[tokio::test]
async fn the_api_documents_carry_the_tokens_payload() {
    let hub = hub().await;
    let token = token(
        &hub.url,
        json!({"authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [{"match": "/room"}],
            "payload": {"name": "Ada"},
        }]}),
    );
    let _held = hub
        .subscribe_request("match=/room")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let room = format!("{NAMESPACE}/exact/%2Froom");
    let admin = hub.admin_token();
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = api(&hub, &room, Some(&admin)).await.2;
        if listed["subscriptions"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        listed["subscriptions"][0]["payload"],
        json!({"name": "Ada"})
    );
}

/// Every endpoint (all, by matcher, one) carries the cursor on its
/// `rel="mercure"` link, the same cursor as its `ETag`, and asks caches to
/// revalidate.
#[tokio::test]
async fn every_endpoint_carries_the_cursor_and_its_etag() {
    let hub = hub().await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    let doc = subscriber_of(&mut watcher).await;
    let one = doc["id"].as_str().unwrap().to_owned();
    let by_matcher = one[..one.rfind('/').unwrap()].to_owned();
    let admin = hub.admin_token();
    for path in [NAMESPACE, by_matcher.as_str(), one.as_str()] {
        let response = hub
            .http
            .get(format!("{}{path}", hub.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let link = headers["link"].to_str().unwrap();
        let cursor = cursor(link);
        assert!(cursor.starts_with("urn:uuid:"), "{path}: {link}");
        assert_eq!(
            headers["etag"].to_str().unwrap(),
            format!(
                "\"{}\"",
                percent_encoding::utf8_percent_encode(&cursor, percent_encoding::NON_ALPHANUMERIC)
            ),
            "{path}"
        );
        assert_eq!(headers["cache-control"], "must-revalidate", "{path}");
    }
}

/// A cached list is revalidated with its `ETag`: `304` while nothing
/// changed, the new list once a subscription came or went.
#[tokio::test]
async fn if_none_match_is_304_until_the_list_changes() {
    let hub = hub().await;
    let _a = hub.subscribe_request("match=/a").send().await.unwrap();
    let admin = hub.admin_token();
    let get = |etag: Option<String>| {
        let mut request = hub
            .http
            .get(format!("{}{NAMESPACE}", hub.base))
            .bearer_auth(&admin);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    // Until the start event is dispatched the list may still be empty.
    let mut first = get(None).await.unwrap();
    for _ in 0..100 {
        let body: Value = serde_json::from_str(&first.text().await.unwrap()).unwrap();
        if body["subscriptions"].as_array().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        first = get(None).await.unwrap();
    }
    let first = get(None).await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = get(Some(etag.clone())).await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.headers().get("link").is_some(), "the cursor still");
    assert!(again.text().await.unwrap().is_empty());
    let _b = hub.subscribe_request("match=/b").send().await.unwrap();
    let mut changed = get(Some(etag.clone())).await.unwrap();
    for _ in 0..100 {
        if changed.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        changed = get(Some(etag.clone())).await.unwrap();
    }
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}

/// A page on another origin reads the API with `fetch()` and an
/// `Authorization` header: the browser's preflight must succeed first.
#[tokio::test]
async fn a_cross_origin_preflight_for_the_api_succeeds() {
    let hub = start_with_hub(
        |hub| hub.subscriptions = true,
        |server| server.cors_origins = vec!["https://app.example".into()],
    )
    .await;
    for path in [NAMESPACE.to_owned(), format!("{NAMESPACE}/exact/%2Fa")] {
        let response = hub
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", hub.base))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("Authorization"), "{allowed}");
    }
}

/// A subscription made with a legacy `topic=` selector (legacy mode) is
/// reported with the match type `topic`, which draft-08 does not name.
#[tokio::test]
async fn a_legacy_selector_is_reported_with_match_type_topic() {
    let hub = start_with_hub(|hub| hub.subscriptions = true, crate::legacy_mode).await;
    let mut watcher = EventReader::new(watch(&hub, None).await);
    subscriber_of(&mut watcher).await;
    let _held = hub
        .subscribe_request("topic=https://example.com/books/{id}")
        .send()
        .await
        .unwrap();
    let doc = document(&next_events(&mut watcher, 1).await[0]);
    assert_eq!(doc["match_type"], "topic");
    assert_eq!(doc["match"], "https://example.com/books/{id}");
    assert!(
        doc["id"].as_str().unwrap().starts_with(&format!(
            "{NAMESPACE}/topic/https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D/"
        )),
        "{doc}"
    );
}

/// The API's cursor names a hub event, often a node's lease (private, on
/// `/.well-known/mercure/nodes/…`): a watcher granted only the
/// subscriptions namespace still resumes right after it, not from the
/// earliest event with a gap report (which would overlap the snapshot).
#[tokio::test]
async fn a_cursor_naming_a_lease_record_resumes_without_a_gap() {
    let hub = start_with_hub(
        |hub| {
            hub.subscriptions = true;
            hub.subscription_lease = Duration::from_millis(300);
        },
        |_| {},
    )
    .await;
    let _held = hub.subscribe_request("match=/a").send().await.unwrap();
    // Leases are renewed every 100 ms: the last record is now one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let namespace = pattern_token(&hub, &format!("{NAMESPACE}{{/*}}?"));
    let (status, link, _) = api(&hub, NAMESPACE, Some(&namespace)).await;
    assert_eq!(status, 200);
    let from = cursor(&link.unwrap());
    let response = hub
        .subscribe_request(&format!("match_urlpattern={NAMESPACE}/*"))
        .bearer_auth(&namespace)
        .header("last-event-id", &from)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["mercure-last-event-id"],
        from.as_str(),
        "resumed after the cursor, not from the earliest event"
    );
}
