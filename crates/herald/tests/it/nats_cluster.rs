//! `herald serve --store nats`: the cluster tests of `cluster.rs` and
//! `failover.rs`, on NATS JetStream instead of Redis. A publish on any
//! node reaches every node, an id resumes anywhere, a NATS outage costs
//! publishes a 503 (never a 200 for an update that is not stored) while
//! subscribers keep their streams, a NATS SIGKILLed mid-run loses no
//! acknowledged publish, and a node SIGKILLed mid-run costs its
//! subscribers a reconnect and nothing else.
//!
//! The failover here needs no nginx: subscribers and publishers move to
//! the next node themselves when theirs dies (what a client with a list of
//! endpoints does); what it checks of the store is the same.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use herald_proto::{Decoder, MessageEvent};
use herald_store_nats::testkit::{fresh_name, NatsServer};
use tokio::time::Instant;

use crate::{herald, listening_on};

/// Any public URL: clients talk to the nodes directly here.
const PUBLIC_URL: &str = "http://hub.test/.well-known/mercure";

/// One `herald serve --store nats` node.
struct Node {
    child: Mutex<Option<Child>>,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// `BASE/.well-known/mercure`.
    url: String,
}

impl Node {
    /// SIGKILL, and waits for the exit.
    fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The nodes of one hub on one NATS log: one signing key, one public URL.
struct Cluster {
    nodes: Vec<Node>,
    /// Publish and read any topic, on every node.
    token: String,
    root: PathBuf,
}

impl Cluster {
    fn start(nats_url: &str, count: usize) -> Cluster {
        let stream = fresh_name();
        let root = std::env::temp_dir().join(format!(
            "herald-nats-cluster-{}-{stream}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let mut nodes = Vec::new();
        let mut token = String::new();
        for index in 0..count {
            let data = root.join(format!("node-{index}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("hub.key"), format!("{stream:0<48}")).unwrap();
            let mut child = herald()
                .args(["serve", "--listen", "127.0.0.1:0", "--store", "nats"])
                .args(["--nats-url", nats_url, "--nats-stream", &stream])
                .args(["--public-url", PUBLIC_URL])
                .args(["--max-connections-per-ip", "0"])
                .arg("--data")
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn herald serve");
            let base = listening_on(&mut child);
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
            token = std::fs::read_to_string(data.join("publisher.token"))
                .unwrap()
                .trim()
                .to_owned();
            nodes.push(Node {
                child: Mutex::new(Some(child)),
                url: format!("{base}/.well-known/mercure"),
                base,
            });
        }
        Cluster { nodes, token, root }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One open event stream.
struct EventStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
}

impl EventStream {
    /// Subscribes to `topic` on `url`, resuming after `cursor` if any;
    /// `None` if that failed.
    async fn open(
        client: &reqwest::Client,
        url: &str,
        topic: &str,
        cursor: Option<&str>,
    ) -> Option<EventStream> {
        let mut request = client.get(format!("{url}?match={topic}"));
        if let Some(id) = cursor {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.ok()?;
        (response.status() == 200).then(|| EventStream {
            body: response.bytes_stream().boxed(),
            decoder: Decoder::new(),
        })
    }

    /// The next event; `None` when the stream ended or broke, or at the
    /// deadline.
    async fn next(&mut self, deadline: Instant) -> Option<MessageEvent> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.decoder.feed(&chunk).expect("events within limits");
        }
    }

    /// The next `n` events, within 20 s.
    async fn events(&mut self, n: usize) -> Vec<MessageEvent> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        while events.len() < n {
            let event = self.next(deadline).await;
            events.push(event.unwrap_or_else(|| panic!("{} of {n} events", events.len())));
        }
        events
    }
}

async fn publish(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    topic: &str,
    id: Option<&str>,
    data: &str,
) -> reqwest::Result<reqwest::Response> {
    let mut form = vec![("topic", topic), ("data", data)];
    if let Some(id) = id {
        form.push(("id", id));
    }
    client.post(url).bearer_auth(token).form(&form).send().await
}

async fn publish_ok(url: &str, token: &str, topic: &str, data: &str) -> String {
    let client = reqwest::Client::new();
    let response = publish(&client, url, token, topic, None, data)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "publish {data:?}");
    response.text().await.unwrap()
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `id` (data = id) on `topic` until it is stored, trying the
/// nodes in turn from `first`: a 503, 5xx or no answer is retried, and a
/// 409 on a retry means an earlier attempt stored it. Returns how many
/// attempts it took, and whether a 409 acknowledged it.
async fn publish_until_stored(
    client: &reqwest::Client,
    urls: &[String],
    first: usize,
    token: &str,
    topic: &str,
    id: &str,
    deadline: Instant,
) -> (usize, bool) {
    for attempt in 0.. {
        let url = &urls[(first + attempt) % urls.len()];
        match publish(client, url, token, topic, Some(id), id).await {
            Ok(response) if response.status() == 200 => {
                // A body cut by the node's death is no answer: retry.
                if let Ok(body) = response.text().await {
                    assert_eq!(body, id);
                    return (attempt, false);
                }
            }
            Ok(response) if response.status() == 409 && attempt > 0 => return (attempt, true),
            Ok(response) if response.status().is_server_error() => {}
            Ok(response) => panic!("publish {id}: {}", response.status()),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "{id} not stored by the deadline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn nats_a_publish_on_one_node_reaches_every_node_and_ids_resume_anywhere() {
    let nats = NatsServer::start();
    let cluster = Cluster::start(&nats.url(), 3);
    let [a, b, c] = &cluster.nodes[..] else {
        unreachable!()
    };
    let client = reqwest::Client::new();
    let mut on_b = EventStream::open(&client, &b.url, "/news", None)
        .await
        .unwrap();
    let mut on_c = EventStream::open(&client, &c.url, "/news", None)
        .await
        .unwrap();
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
    let mut resumed = EventStream::open(&client, &a.url, "/news", Some(&ids[0]))
        .await
        .unwrap();
    let got = resumed.events(2).await;
    assert_eq!(
        got.iter().map(MessageEvent::data).collect::<Vec<_>>(),
        ["two", "three"]
    );
    assert_eq!(health(&a.base).await, 200);
}

#[tokio::test]
async fn nats_an_outage_is_503_then_everything_goes_on_without_a_gap() {
    let mut nats = NatsServer::start();
    let cluster = Cluster::start(&nats.url(), 2);
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let client = reqwest::Client::new();
    let mut on_b = EventStream::open(&client, &b.url, "/t", None)
        .await
        .unwrap();
    let before = publish_ok(&a.url, &cluster.token, "/t", "before").await;
    assert_eq!(on_b.events(1).await[0].data(), "before");

    nats.kill();
    eventually("node a unhealthy", async || health(&a.base).await == 503).await;
    let refused = publish(&client, &a.url, &cluster.token, "/t", None, "during")
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        503,
        "never a 200 for an update not stored"
    );

    nats.start_again();
    eventually("node a healthy again", async || {
        health(&a.base).await == 200
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let urls = [a.url.clone()];
    publish_until_stored(&client, &urls, 0, &cluster.token, "/t", "after", deadline).await;
    // The subscriber kept its stream: the next event is the next update,
    // no gap report, nothing twice.
    let next = on_b.events(1).await;
    assert_eq!((next[0].event_type(), next[0].data()), ("message", "after"));
    // The history survived the restart: a resume from before the outage
    // replays what came after, no gap.
    let mut resumed = EventStream::open(&client, &b.url, "/t", Some(&before))
        .await
        .unwrap();
    let replayed = resumed.events(1).await;
    assert_eq!(
        (replayed[0].event_type(), replayed[0].data()),
        ("message", "after")
    );
}

#[tokio::test]
async fn nats_killed_mid_run_loses_no_acknowledged_publish() {
    let mut nats = NatsServer::start();
    let cluster = Cluster::start(&nats.url(), 2);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut live = EventStream::open(&reqwest::Client::new(), &b.url, "/t", None)
        .await
        .unwrap();
    let publisher = {
        let (client, urls, token) = (client.clone(), vec![a.url.clone()], cluster.token.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(40);
            let mut stored = Vec::new();
            for n in 0..60 {
                let id = format!("p-{n}");
                publish_until_stored(&client, &urls, 0, &token, "/t", &id, deadline).await;
                stored.push(id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stored
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.start_again();
    let stored = publisher.await.unwrap();

    // The subscriber that stayed connected received every update once, in
    // order, and no gap report.
    let received = live.events(stored.len()).await;
    let received: Vec<&str> = received.iter().map(MessageEvent::data).collect();
    assert_eq!(received, stored);
    let mut replay = EventStream::open(&client, &a.url, "/t", Some(herald_hub::EARLIEST))
        .await
        .unwrap();
    let logged = replay.events(stored.len()).await;
    let logged: Vec<&str> = logged.iter().map(MessageEvent::last_event_id).collect();
    assert_eq!(logged, stored);
}

const NODES: usize = 3;
const SUBSCRIBERS: usize = 120;
const TOPICS: usize = 4;
const PUBLISHERS: usize = 8;
const PUBLISHES: usize = 60;
const PUBLISH_EVERY: Duration = Duration::from_millis(40);
const KILL_AFTER: Duration = Duration::from_millis(1000);

fn topic(k: usize) -> String {
    format!("/feed/{k}")
}

fn end_id(k: usize) -> String {
    format!("end-{k}")
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    ids: Vec<String>,
    reconnects: usize,
    gap: bool,
    finished: bool,
}

/// A subscriber of topic `k`, first on node `first`, that moves to the
/// next node when its stream ends and resumes from the last id it has,
/// until it has its topic's end marker.
async fn subscriber(
    urls: Vec<String>,
    first: usize,
    k: usize,
    connected: Arc<AtomicUsize>,
    deadline: Instant,
) -> Seen {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut seen = Seen::default();
    let mut opened = false;
    let mut node = first;
    while Instant::now() < deadline {
        let cursor = match seen.ids.last() {
            Some(last) => Some(last.clone()),
            None if opened => Some(herald_hub::EARLIEST.to_owned()),
            None => None,
        };
        let Some(mut stream) = EventStream::open(
            &client,
            &urls[node % urls.len()],
            &topic(k),
            cursor.as_deref(),
        )
        .await
        else {
            node += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if opened {
            seen.reconnects += 1;
        } else {
            opened = true;
            connected.fetch_add(1, Ordering::SeqCst);
        }
        while let Some(event) = stream.next(deadline).await {
            if event.event_type() == herald_hub::HUB_EVENT_TYPE {
                seen.gap = true;
                return seen;
            }
            let id = event.last_event_id().to_owned();
            assert_eq!(event.data(), id);
            let finished = id == end_id(k);
            seen.ids.push(id);
            if finished {
                seen.finished = true;
                return seen;
            }
        }
        node += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_node_killed_mid_run_costs_its_subscribers_a_reconnect_and_nothing_else() {
    let started = std::time::Instant::now();
    let nats = NatsServer::start();
    let cluster = Cluster::start(&nats.url(), NODES);
    let urls: Vec<String> = cluster.nodes.iter().map(|node| node.url.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);

    let connected = Arc::new(AtomicUsize::new(0));
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            tokio::spawn(subscriber(
                urls.clone(),
                i % NODES,
                i % TOPICS,
                Arc::clone(&connected),
                deadline,
            ))
        })
        .collect();
    eventually("every subscriber connected", async || {
        connected.load(Ordering::SeqCst) == SUBSCRIBERS
    })
    .await;

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (client, urls, token) = (client.clone(), urls.clone(), cluster.token.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PUBLISH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let (mut acked, mut retries, mut conflicts) = (Vec::new(), 0, 0);
                for seq in 0..PUBLISHES {
                    every.tick().await;
                    let id = format!("p{p}-{seq}");
                    let (attempts, conflict) = publish_until_stored(
                        &client,
                        &urls,
                        p % NODES,
                        &token,
                        &topic(p % TOPICS),
                        &id,
                        deadline,
                    )
                    .await;
                    retries += attempts;
                    conflicts += usize::from(conflict);
                    acked.push(id);
                }
                (acked, retries, conflicts)
            })
        })
        .collect();

    tokio::time::sleep(KILL_AFTER).await;
    cluster.nodes[0].kill9();

    let mut acked: Vec<HashSet<String>> = vec![HashSet::new(); TOPICS];
    let (mut retries, mut conflicts) = (0, 0);
    for (p, publisher) in publishers.into_iter().enumerate() {
        let (ids, r, c) = publisher.await.unwrap();
        assert_eq!(ids.len(), PUBLISHES);
        acked[p % TOPICS].extend(ids);
        retries += r;
        conflicts += c;
    }
    for (k, acked) in acked.iter_mut().enumerate() {
        publish_until_stored(
            &client,
            &urls,
            1,
            &cluster.token,
            &topic(k),
            &end_id(k),
            deadline,
        )
        .await;
        acked.insert(end_id(k));
    }

    let mut seen = Vec::new();
    for subscriber in subscribers {
        seen.push(subscriber.await.unwrap());
    }
    let mut logs = Vec::new();
    for k in 0..TOPICS {
        let mut stream =
            EventStream::open(&client, &urls[1], &topic(k), Some(herald_hub::EARLIEST))
                .await
                .expect("a subscribe from earliest");
        let mut log: Vec<String> = Vec::new();
        while log.last() != Some(&end_id(k)) {
            let event = stream.next(deadline).await.expect("the whole log");
            assert_ne!(event.event_type(), herald_hub::HUB_EVENT_TYPE);
            log.push(event.last_event_id().to_owned());
        }
        logs.push(log);
    }

    for (k, log) in logs.iter().enumerate() {
        let unique: HashSet<String> = log.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            log.len(),
            "the log of {} has no duplicate",
            topic(k)
        );
        assert_eq!(
            unique,
            acked[k],
            "the log of {} is every acknowledged publish",
            topic(k)
        );
    }
    for (i, seen) in seen.iter().enumerate() {
        assert!(!seen.gap, "subscriber {i} resumed with a gap");
        let log = &logs[i % TOPICS];
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &seen.ids {
            *counts.entry(id).or_default() += 1;
        }
        let lost = log
            .iter()
            .filter(|id| !counts.contains_key(id.as_str()))
            .count();
        let duplicated = counts.values().filter(|&&n| n > 1).count();
        assert!(
            seen.finished && seen.ids == *log,
            "subscriber {i} (after {} reconnects): {} of {} events, {lost} lost, {duplicated} \
             duplicated",
            seen.reconnects,
            seen.ids.len(),
            log.len()
        );
    }
    let reconnected = seen.iter().filter(|seen| seen.reconnects > 0).count();
    assert!(
        reconnected >= SUBSCRIBERS / NODES,
        "only {reconnected} subscribers reconnected: the killed node had {}",
        SUBSCRIBERS / NODES
    );
    eprintln!(
        "nats failover: {} publishes acknowledged ({retries} retried attempts, {conflicts} \
         answered 409 after an unanswered attempt), {reconnected} subscribers reconnected, \
         0 lost, 0 duplicated, {:.1?} in all",
        logs.iter().map(Vec::len).sum::<usize>(),
        started.elapsed(),
    );
}
