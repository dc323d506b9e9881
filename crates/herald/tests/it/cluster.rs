//! Several `herald serve` nodes, one hub, on either cluster store (each
//! scenario runs on Redis and on NATS JetStream, see [`crate::backend`]). A
//! publish on any node reaches subscribers on every node, a client resumes
//! on any node with an id another node gave it, an outage of the store
//! costs publishes a 503 (never a 200 for an update that is not stored)
//! while subscribers keep their streams, and each node lists every node's
//! subscribers.

use std::time::Duration;

use futures_util::StreamExt;
use herald_proto::{Decoder, MessageEvent};
use herald_store_redis::testkit::{Persistence, RedisServer};

use crate::backend::{on_both_engines, Backend, Engine};
use crate::nodes::Cluster;

/// Any public URL: clients talk to the nodes directly here.
const PUBLIC_URL: &str = "http://hub.test/.well-known/mercure";

/// An open subscription, read event by event.
struct Subscription {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
}

impl Subscription {
    async fn open(node_url: &str, topic: &str, last_event_id: Option<&str>) -> Subscription {
        let mut request = reqwest::Client::new().get(format!("{node_url}?match={topic}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Subscription {
            body: response.bytes_stream().boxed(),
            decoder: Decoder::new(),
        }
    }

    /// The next `n` events, within 20 s.
    async fn events(&mut self, n: usize) -> Vec<MessageEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        while events.len() < n {
            while let Some(event) = self.decoder.next_event() {
                events.push(event);
            }
            if events.len() >= n {
                break;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} events in 20 s", events.len()))
                .expect("the stream stays open")
                .unwrap();
            self.decoder.feed(&chunk).unwrap();
        }
        events
    }
}

async fn publish(node_url: &str, token: &str, topic: &str, data: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(node_url)
        .bearer_auth(token)
        .form(&[("topic", topic), ("data", data)])
        .send()
        .await
        .unwrap()
}

async fn publish_ok(node_url: &str, token: &str, topic: &str, data: &str) -> String {
    let response = publish(node_url, token, topic, data).await;
    assert_eq!(response.status(), 200, "publish {data:?}");
    response.text().await.unwrap()
}

/// Publishes `data` on `/t` once the node's store answers again (a 503
/// is retried, for up to 20 s); returns its id.
async fn publish_once_back(node_url: &str, token: &str, data: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = publish(node_url, token, "/t", data).await;
        match response.status().as_u16() {
            200 => return response.text().await.unwrap(),
            503 => {}
            other => panic!("publish {data:?}: {other}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store is still unavailable after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /healthz` on a node: its status.
async fn health(base: &str) -> u16 {
    reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until `check` holds, up to 20 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_engines!(a_publish_on_one_node_reaches_every_node_and_ids_resume_anywhere);
async fn a_publish_on_one_node_reaches_every_node_and_ids_resume_anywhere(engine: Engine) {
    let backend = Backend::start(engine);
    let cluster = Cluster::start(&backend, 3, PUBLIC_URL, &[]);
    let [a, b, c] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut on_b = Subscription::open(&b.url, "/news", None).await;
    let mut on_c = Subscription::open(&c.url, "/news", None).await;

    let mut ids = Vec::new();
    for (node, data) in [(a, "one"), (b, "two"), (c, "three")] {
        ids.push(publish_ok(&node.url, &cluster.token, "/news", data).await);
    }
    for subscription in [&mut on_b, &mut on_c] {
        let got = subscription.events(3).await;
        let got: Vec<(&str, &str)> = got.iter().map(|e| (e.last_event_id(), e.data())).collect();
        assert_eq!(
            got,
            [
                (ids[0].as_str(), "one"),
                (ids[1].as_str(), "two"),
                (ids[2].as_str(), "three")
            ],
            "every node delivers every update, in one order"
        );
    }

    // An id from node b resumes on node a: the history is the cluster's.
    let mut resumed = Subscription::open(&a.url, "/news", Some(&ids[0])).await;
    let got = resumed.events(2).await;
    assert_eq!(
        got.iter().map(MessageEvent::data).collect::<Vec<_>>(),
        ["two", "three"]
    );
    assert_eq!(health(&a.base).await, 200);
}

on_both_engines!(an_outage_of_the_store_is_503_then_everything_goes_on_without_a_gap);
async fn an_outage_of_the_store_is_503_then_everything_goes_on_without_a_gap(engine: Engine) {
    let mut backend = Backend::start_durable(engine);
    let cluster = Cluster::start(&backend, 2, PUBLIC_URL, &[]);
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut on_b = Subscription::open(&b.url, "/t", None).await;
    let before = publish_ok(&a.url, &cluster.token, "/t", "before").await;
    assert_eq!(on_b.events(1).await[0].data(), "before");

    backend.kill();
    let refused = publish(&a.url, &cluster.token, "/t", "during").await;
    assert_eq!(
        refused.status(),
        503,
        "never a 200 for an update not stored"
    );
    assert_eq!(refused.headers()["retry-after"], "5");
    eventually("node a unhealthy", async || health(&a.base).await == 503).await;
    // A resume needs the history: refused too, while a live-only
    // subscription needs nothing from Redis and opens.
    let resume = reqwest::Client::new()
        .get(format!("{}?match=/t", b.url))
        .header("last-event-id", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 503);
    assert_eq!(resume.headers()["retry-after"], "5");
    drop(Subscription::open(&b.url, "/t", None).await);

    backend.start_again();
    eventually("node a healthy again", async || {
        health(&a.base).await == 200
    })
    .await;
    let after = publish_once_back(&a.url, &cluster.token, "after").await;
    // The subscriber kept its stream: the next event is the next update,
    // no gap report, nothing twice.
    let next = on_b.events(1).await;
    assert_eq!(
        (
            next[0].event_type(),
            next[0].data(),
            next[0].last_event_id()
        ),
        ("message", "after", after.as_str())
    );
    // And the history survived the restart (Redis's AOF, JetStream's
    // store): resuming from the id published before the outage replays
    // what came after, no gap.
    let mut resumed = Subscription::open(&b.url, "/t", Some(&before)).await;
    let replayed = resumed.events(1).await;
    assert_eq!(
        (replayed[0].event_type(), replayed[0].data()),
        ("message", "after")
    );
}

/// Redis only: a Redis without persistence comes back from a restart
/// empty, a log that went back, which herald must report. A NATS
/// JetStream store keeps its log in a directory across a restart (the
/// testkit's server cannot lose it), so there is no such NATS scenario.
#[tokio::test]
async fn a_redis_that_restarted_empty_is_reported_as_a_gap() {
    let mut backend = Backend::Redis(RedisServer::start_with(Persistence::None));
    let cluster = Cluster::start(&backend, 2, PUBLIC_URL, &[]);
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut on_b = Subscription::open(&b.url, "/t", None).await;
    let before = publish_ok(&a.url, &cluster.token, "/t", "before").await;
    assert_eq!(on_b.events(1).await[0].data(), "before");

    backend.restart();
    eventually("node a healthy again", async || {
        health(&a.base).await == 200
    })
    .await;
    let after = publish_once_back(&b.url, &cluster.token, "after").await;
    // The live subscriber missed nothing: it goes on.
    let next = on_b.events(1).await;
    assert_eq!(
        (next[0].data(), next[0].last_event_id()),
        ("after", after.as_str())
    );
    // A client resuming from before the loss is told, in-band.
    let mut resumed = Subscription::open(&a.url, "/t", Some(&before)).await;
    let got = resumed.events(2).await;
    assert_eq!(got[0].event_type(), herald_hub::HUB_EVENT_TYPE);
    assert_eq!(got[1].data(), "after");
}

/// Publishes `p-{n}` with the explicit id `p-{n}` until stored: a 503
/// (the store down) or a lost connection is retried, and a 409 on a retry
/// means the first try was stored after all. Returns the id.
async fn publish_until_stored(node_url: &str, token: &str, n: usize) -> String {
    let id = format!("p-{n}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sent = reqwest::Client::new()
            .post(node_url)
            .bearer_auth(token)
            .form(&[("topic", "/t"), ("data", id.as_str()), ("id", id.as_str())])
            .send()
            .await;
        match sent.map(|response| response.status().as_u16()) {
            Ok(200 | 409) => return id,
            Ok(503) | Err(_) => {}
            Ok(other) => panic!("publish {id}: {other}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} not stored in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_engines!(the_store_killed_mid_run_loses_no_acknowledged_publish);
async fn the_store_killed_mid_run_loses_no_acknowledged_publish(engine: Engine) {
    let mut backend = Backend::start_durable(engine);
    let cluster = Cluster::start(&backend, 2, PUBLIC_URL, &[]);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut live = Subscription::open(&b.url, "/t", None).await;

    let publisher = {
        let (url, token) = (a.url.clone(), cluster.token.clone());
        tokio::spawn(async move {
            let mut stored = Vec::new();
            for n in 0..60 {
                stored.push(publish_until_stored(&url, &token, n).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stored
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    backend.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    backend.start_again();
    let stored = publisher.await.unwrap();

    // The subscriber that stayed connected through the outage received
    // every update once, in order, and no gap report.
    let received = live.events(stored.len()).await;
    let received: Vec<&str> = received.iter().map(MessageEvent::data).collect();
    assert_eq!(received, stored);
    // The log holds each once, in the same order.
    let mut replay = Subscription::open(&a.url, "/t", Some(herald_hub::EARLIEST)).await;
    let logged = replay.events(stored.len()).await;
    let logged: Vec<&str> = logged.iter().map(MessageEvent::last_event_id).collect();
    assert_eq!(logged, stored);
}

on_both_engines!(every_node_lists_every_subscriber_and_a_killed_nodes_subscriptions_end);
/// Active subscriptions across nodes (issue 16): each node's API lists
/// every node's subscribers, and the subscriptions of a node killed with
/// SIGKILL end within the lease (and a third), their end events published
/// once.
async fn every_node_lists_every_subscriber_and_a_killed_nodes_subscriptions_end(engine: Engine) {
    let backend = Backend::start(engine);
    let cluster = Cluster::start(
        &backend,
        2,
        PUBLIC_URL,
        &["--subscriptions", "--subscription-lease", "2s"],
    );
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let _on_a = Subscription::open(&a.url, "/room", None).await;
    let _on_b = Subscription::open(&b.url, "/room", None).await;
    let room = |node: &crate::nodes::Node| format!("{}/subscriptions/exact/%2Froom", node.url);
    let list = async |url: String| {
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&cluster.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let link = response.headers()["link"].to_str().unwrap().to_owned();
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let docs = body["subscriptions"].as_array().unwrap().clone();
        (link, docs)
    };
    for node in [a, b] {
        eventually("each node lists both nodes' subscribers", async || {
            list(room(node)).await.1.len() == 2
        })
        .await;
    }
    let (link, docs) = list(room(a)).await;
    let nodes: std::collections::BTreeSet<&str> = docs
        .iter()
        .map(|doc| doc["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2, "held by two nodes: {docs:?}");

    // Follow the changes on A from the list's cursor, then kill B.
    let start = link.find("last-event-id=\"").unwrap() + "last-event-id=\"".len();
    let cursor = &link[start..][..link[start..].find('"').unwrap()];
    let response = reqwest::Client::new()
        .get(format!(
            "{}?match_urlpattern=/.well-known/mercure/subscriptions/*",
            a.url
        ))
        .header("last-event-id", cursor)
        .bearer_auth(&cluster.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut changes = Subscription {
        body: response.bytes_stream().boxed(),
        decoder: Decoder::new(),
    };
    // The watcher's own start comes first.
    let own: serde_json::Value = serde_json::from_str(changes.events(1).await[0].data()).unwrap();
    assert_eq!(own["active"], true);
    b.kill9();
    let killed = std::time::Instant::now();
    let ended: serde_json::Value = serde_json::from_str(changes.events(1).await[0].data()).unwrap();
    let took = killed.elapsed();
    assert_eq!(ended["active"], false, "{ended}");
    assert_eq!(ended["match"], "/room");
    assert_ne!(
        ended["node"], own["node"],
        "B's subscription ended: {ended}"
    );
    assert!(
        took <= Duration::from_millis(2_000 + 667 + 1_500),
        "within the lease and a third (and slack): {took:?}"
    );
    let (_, left) = list(room(a)).await;
    assert_eq!(left.len(), 1, "A's subscriber remains: {left:?}");
}
