//! The disk store through `herald serve`: acknowledged publishes survive
//! `kill -9`, ids keep resuming across restarts, retention reports gaps.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use herald_proto::{Decoder, MessageEvent};

use crate::{herald, listening_on};

/// A `herald serve` child on a data directory the test keeps across
/// restarts.
struct Serve {
    child: Mutex<Child>,
    url: String,
    token: String,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = herald()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald serve");
        let base = listening_on(&mut child);
        let token = std::fs::read_to_string(dir.join("publisher.token"))
            .unwrap()
            .trim()
            .to_owned();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        Serve {
            child: Mutex::new(child),
            url: format!("{base}/.well-known/mercure"),
            token,
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    fn kill9(&self) {
        let mut child = self.child.lock().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    async fn publish(&self, client: &reqwest::Client, topic: &str, data: &str) -> Option<String> {
        let response = client
            .post(&self.url)
            .bearer_auth(&self.token)
            .form(&[("topic", topic), ("data", data)])
            .send()
            .await
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.text().await.ok()
    }

    /// Subscribes with `last_event_id` and reads until an event whose data
    /// is `until` (or 20 s pass). Returns the response's
    /// `Mercure-Last-Event-ID` and the events before the marker.
    async fn replay(
        &self,
        topic: &str,
        last_event_id: &str,
        until: &str,
    ) -> (String, Vec<MessageEvent>) {
        // A topic with a `*` is a URL pattern, any other an exact topic.
        let kind = if topic.contains('*') {
            "match_urlpattern"
        } else {
            "match"
        };
        let response = reqwest::Client::new()
            .get(format!("{}?{kind}={topic}", self.url))
            .header("last-event-id", last_event_id)
            .send()
            .await
            .unwrap();
        let header = response.headers()["mercure-last-event-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut body = response.bytes_stream();
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let chunk = tokio::time::timeout_at(deadline, body.next())
                .await
                .expect("the marker arrives")
                .expect("the stream stays open")
                .unwrap();
            decoder.feed(&chunk).unwrap();
            while let Some(event) = decoder.next_event() {
                if event.data() == until {
                    return (header, events);
                }
                events.push(event);
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Steady concurrent publishing, `kill -9` at a random moment, restart,
/// several times: every publish that was answered 200 is replayed from
/// `earliest`, once, in the order it was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_publish() {
    let dir = temp_dir("crash");
    let acked: Arc<Mutex<Vec<(usize, usize, String)>>> = Arc::default();
    let mut seed: u64 = 0x5EED_1234;
    for round in 0..4 {
        let serve = Arc::new(Serve::start(&dir, &[]));
        let mut publishers = Vec::new();
        for task in 0..16 {
            let serve = Arc::clone(&serve);
            let acked = Arc::clone(&acked);
            publishers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for seq in 0.. {
                    let data = format!("{round}-{task}-{seq}");
                    match serve.publish(&client, "/load", &data).await {
                        Some(id) => acked.lock().unwrap().push((round, task, id)),
                        None => return,
                    }
                }
            }));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(300 + seed % 600)).await;
        serve.kill9();
        for publisher in publishers {
            publisher.await.unwrap();
        }
    }
    let serve = Serve::start(&dir, &[]);
    let client = reqwest::Client::new();
    serve.publish(&client, "/load", "marker").await.unwrap();
    let (header, events) = serve.replay("/load", "earliest", "marker").await;
    assert_eq!(header, "earliest");

    let position: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.last_event_id(), i))
        .collect();
    assert_eq!(position.len(), events.len(), "an event was replayed twice");
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 100,
        "the load was real: {} acknowledged",
        acked.len()
    );
    let mut last_per_task: HashMap<(usize, usize), usize> = HashMap::new();
    for (round, task, id) in acked.iter() {
        let at = *position
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged publish {id} (round {round}) was lost"));
        if let Some(before) = last_per_task.insert((*round, *task), at) {
            assert!(
                before < at,
                "publisher {task} of round {round}: out of order"
            );
        }
    }
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `Last-Event-ID` from before a restart resumes exactly after it.
#[tokio::test]
async fn last_event_id_from_before_a_restart_resumes_exactly() {
    let dir = temp_dir("restart");
    let client = reqwest::Client::new();
    let serve = Serve::start(&dir, &[]);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            serve
                .publish(&client, "/r", &format!("e{i}"))
                .await
                .unwrap(),
        );
    }
    serve.kill9();

    let serve = Serve::start(&dir, &[]);
    let newer = serve.publish(&client, "/r", "after restart").await.unwrap();
    serve.publish(&client, "/r", "marker").await.unwrap();
    let (header, events) = serve.replay("/r", &ids[1], "marker").await;
    assert_eq!(header, ids[1]);
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.data(), e.last_event_id()))
        .collect();
    assert_eq!(
        got,
        [
            ("e2", ids[2].as_str()),
            ("e3", ids[3].as_str()),
            ("e4", ids[4].as_str()),
            ("after restart", newer.as_str()),
        ]
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Count retention trims the oldest; resuming from a trimmed id gets the
/// gap report, `Mercure-Last-Event-ID: earliest`, and what is retained.
#[tokio::test]
async fn a_trimmed_cursor_is_reported_and_the_retained_rest_replayed() {
    let dir = temp_dir("retention");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("herald.toml");
    std::fs::write(&config, "[store]\nmax_events = 3\n").unwrap();
    let client = reqwest::Client::new();
    let serve = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            serve
                .publish(&client, "/t", &format!("e{i}"))
                .await
                .unwrap(),
        );
    }
    // Retention runs in the background, once a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    serve.publish(&client, "/t", "marker").await.unwrap();
    let (header, events) = serve.replay("/t", &ids[0], "marker").await;
    assert_eq!(header, "earliest");
    assert_eq!(events[0].event_type(), "mercure");
    assert!(events[0].data().contains(&ids[0]), "{}", events[0].data());
    let replayed: Vec<&str> = events[1..].iter().map(|e| e.data()).collect();
    assert!(replayed.len() <= 3, "count retention held: {replayed:?}");
    assert_eq!(replayed.last(), Some(&"e7"));
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Age retention drops what is older than the limit.
#[tokio::test]
async fn age_retention_drops_old_events() {
    let dir = temp_dir("age");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("herald.toml");
    std::fs::write(&config, "[store]\nmax_age_secs = 1\n").unwrap();
    let client = reqwest::Client::new();
    let serve = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    for i in 0..3 {
        serve
            .publish(&client, "/a", &format!("old{i}"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    serve.publish(&client, "/a", "new").await.unwrap();
    serve.publish(&client, "/a", "marker").await.unwrap();
    let (_, events) = serve.replay("/a", "earliest", "marker").await;
    let data: Vec<&str> = events.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["new"]);
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per-topic retention on disk: a finished chat leaves the history once
/// its rule's time has run out, other topics stay; the deadline is stored
/// with each update, so it holds across a `kill -9` and a restart without
/// the rule, and a resume from the expired id is told of a gap.
#[tokio::test]
async fn a_topic_rule_expires_its_updates_even_across_a_restart() {
    let dir = temp_dir("topic-retention");
    let client = reqwest::Client::new();
    let serve = Serve::start(&dir, &["--topic-retention", "/chat/*=1s"]);
    let token = serve.publish(&client, "/chat/1", "token").await.unwrap();
    serve.publish(&client, "/books/1", "kept").await.unwrap();
    serve.publish(&client, "/chat/1", "[DONE]").await.unwrap();
    serve.publish(&client, "/books/1", "marker").await.unwrap();
    let (_, events) = serve.replay("/*", "earliest", "marker").await;
    let data: Vec<&str> = events.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["token", "kept", "[DONE]"], "nothing expired yet");
    serve.kill9();
    drop(serve);

    let serve = Serve::start(&dir, &[]);
    // Retention runs once a second; the deadline passed a second after
    // the publishes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    serve.publish(&client, "/books/1", "marker2").await.unwrap();
    let (_, events) = serve.replay("/*", "earliest", "marker2").await;
    let data: Vec<&str> = events.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["kept", "marker"], "the chat left, the books stayed");
    let (header, events) = serve.replay("/*", &token, "marker2").await;
    assert_eq!(header, "earliest", "an expired id is unknown");
    assert_eq!(events[0].event_type(), "mercure", "the gap report");
    let data: Vec<&str> = events[1..].iter().map(|e| e.data()).collect();
    assert_eq!(data, ["kept", "marker"]);
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM: subscribers are told to come back soon (a short `retry:`), their
/// streams end, the hub exits 0, and nothing acknowledged is lost.
#[tokio::test]
async fn sigterm_tells_subscribers_to_reconnect_and_exits_cleanly() {
    let dir = temp_dir("sigterm");
    let client = reqwest::Client::new();
    let serve = Serve::start(&dir, &[]);
    let id = serve.publish(&client, "/s", "kept").await.unwrap();
    let response = client
        .get(format!("{}?match=/s", serve.url))
        .send()
        .await
        .unwrap();
    let pid = serve.child.lock().unwrap().id();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("the stream ended")
        .unwrap();
    let mut decoder = Decoder::new();
    decoder.feed(&body).unwrap();
    let retries: Vec<Duration> = std::iter::from_fn(|| decoder.next_frame())
        .filter_map(|frame| match frame {
            herald_proto::Frame::Retry(retry) => Some(retry),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries.last(),
        Some(&Duration::from_millis(500)),
        "a short retry came last"
    );
    let exit = tokio::task::spawn_blocking(move || {
        let mut child = serve.child.lock().unwrap();
        let status = child.wait().unwrap();
        drop(child);
        drop(serve);
        status
    })
    .await
    .unwrap();
    assert!(exit.success(), "herald serve exited with {exit:?}");

    let serve = Serve::start(&dir, &[]);
    serve.publish(&client, "/s", "marker").await.unwrap();
    let (_, events) = serve.replay("/s", "earliest", "marker").await;
    assert_eq!(
        events.iter().map(|e| e.last_event_id()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}
