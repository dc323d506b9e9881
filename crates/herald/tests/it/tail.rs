//! `herald tail` against a real `herald serve`, and against small servers
//! that answer exactly what a case needs. Also the `Hub` helper that the
//! publish and token tests share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{herald, listening_on};

/// A `herald serve` child on a free port with a data directory of its own;
/// killed, and its directory removed, on drop (also when a test panics).
pub struct Hub {
    child: Child,
    /// The hub's URL, `http://127.0.0.1:PORT/.well-known/mercure`.
    pub url: String,
    /// Its data directory (`hub.key`, `publisher.token`).
    pub dir: PathBuf,
    /// The publisher token it printed.
    pub token: String,
}

impl Hub {
    pub fn start() -> Hub {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herald-it-hub-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = herald()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald serve");
        let base = listening_on(&mut child);
        let mut hub = Hub {
            child,
            url: String::new(),
            dir,
            token: String::new(),
        };
        hub.url = format!("{base}/.well-known/mercure");
        // The token is the first line of stdout; keep draining the pipe
        // after it, so a later write by the hub never meets a closed pipe.
        let stdout = hub.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let token = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("herald serve printed no token");
        hub.token = token.trim().to_owned();
        assert!(!hub.token.is_empty(), "herald serve printed no token");
        hub
    }

    /// `herald publish TOPIC DATA EXTRA…` with the hub's publisher token;
    /// returns the id it printed.
    pub fn publish(&self, topic: &str, data: &str, extra: &[&str]) -> String {
        let out = herald()
            .args(["publish", "--hub", &self.url, "--data"])
            .arg(&self.dir)
            .args([topic, data])
            .args(extra)
            .env_remove("HERALD_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "publish failed: {out:?}");
        let id = String::from_utf8(out.stdout).unwrap();
        assert_eq!(id.lines().count(), 1, "{id:?}");
        id.trim_end().to_owned()
    }

    /// `herald tail --hub HUB ARGS…`.
    pub fn tail(&self) -> Command {
        let mut command = herald();
        command
            .args(["tail", "--hub", &self.url])
            .env_remove("HERALD_TOKEN")
            .env_remove("NO_COLOR");
        command
    }

    /// `herald COMMAND --data DIR` with no hub URL anywhere (no `--hub`, no
    /// `HERALD_HUB`, no token in the environment), run from a directory
    /// with no `herald-data/` in it: the hub can only be found through
    /// what it recorded in its data directory.
    pub fn by_data_dir(&self, command: &str) -> Command {
        let elsewhere = self.dir.with_extension("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let mut child = herald();
        child
            .args([command, "--data"])
            .arg(&self.dir)
            .current_dir(elsewhere)
            .env_remove("HERALD_HUB")
            .env_remove("HERALD_TOKEN")
            .env_remove("NO_COLOR");
        child
    }

    /// Sends `signal` (`-TERM`: a clean stop, `-KILL`: a crash) and waits
    /// for the hub to exit; returns whether it exited successfully.
    pub fn stop(&mut self, signal: &str) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success(), "kill {signal} {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "herald serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.dir.with_extension("elsewhere"));
    }
}

/// Waits for a child with a deadline, killing it if it runs over, so a
/// broken test fails instead of hanging the suite.
pub fn output_within(child: Child, limit: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // The child is owned by the waiting thread: kill it by pid.
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("process {id} still running after {limit:?}");
        }
    }
}

/// A local port nothing listens on (it was free a moment ago), so that
/// connecting to it is refused.
pub fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The JSON line `herald tail --json` prints for an event.
pub fn json_line(event_type: &str, data: &str, id: &str) -> String {
    let string = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "{{\"type\": {}, \"data\": {}, \"last_event_id\": {}}}\n",
        string(event_type),
        string(data),
        string(id)
    )
}

#[test]
fn json_prints_the_published_sequence_exactly() {
    let hub = Hub::start();
    let topic = "https://example.com/books/1";
    let first = hub.publish(topic, "hello", &[]);
    let multi = hub.publish(topic, "line 1\nline 2\n\nline 4", &["--type", "update"]);
    // On another topic: must not show.
    hub.publish("https://example.com/books/2", "elsewhere", &[]);
    let custom = hub.publish(
        topic,
        "{\"title\": \"Dune\", \"note\": \"é \\\\ \\\"q\\\"\"}",
        &["--id", "book-1-v2", "--retry", "5000"],
    );
    assert_eq!(custom, "book-1-v2");
    let alternate = hub.publish(
        "https://example.com/authors/9",
        "via an alternate topic",
        &["--topic", topic],
    );

    let child = hub
        .tail()
        .args(["--topic", topic, "--json", "--last-event-id", "earliest"])
        .args(["--max-events", "4", "--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        [
            json_line("message", "hello", &first),
            json_line("update", "line 1\nline 2\n\nline 4", &multi),
            json_line(
                "message",
                "{\"title\": \"Dune\", \"note\": \"é \\\\ \\\"q\\\"\"}",
                "book-1-v2"
            ),
            json_line("message", "via an alternate topic", &alternate),
        ]
        .concat()
    );
}

#[test]
fn pretty_output_shows_type_id_and_data_without_colors_in_a_pipe() {
    let hub = Hub::start();
    let id = hub.publish("news", "one\ntwo", &["--type", "story"]);
    let out = hub
        .tail()
        .args(["--topic", "news", "--last-event-id", "earliest", "-n", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("story #{id}\n  one\n  two\n")
    );
    // Connection news goes to standard error.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("herald: connected to "), "{stderr}");
}

#[test]
fn max_events_exits_zero_on_live_events() {
    let hub = Hub::start();
    let child = hub
        .tail()
        .args([
            "--topic",
            "live",
            "--json",
            "--max-events",
            "2",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The subscription starts live: publish until it has seen two events.
    let waiter = std::thread::spawn(move || output_within(child, Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !waiter.is_finished() && Instant::now() < deadline {
        hub.publish("live", "tick", &[]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains("\"data\": \"tick\"")));
}

#[test]
fn the_hub_is_found_through_its_data_directory() {
    let hub = Hub::start();
    // The hub listens on a port the OS picked: nothing but the record in
    // its data directory says which.
    assert_eq!(
        std::fs::read_to_string(hub.dir.join("hub.url")).unwrap(),
        format!("{}\n", hub.url)
    );
    let id = hub.publish("found", "by its data directory", &[]);
    let child = hub
        .by_data_dir("tail")
        .args(["--topic", "found", "--json", "--last-event-id", "earliest"])
        .args(["-n", "1", "--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        json_line("message", "by its data directory", &id)
    );
}

#[test]
fn the_record_lives_as_long_as_the_hub() {
    let mut hub = Hub::start();
    let record = hub.dir.join("hub.url");
    assert!(record.exists());
    assert!(hub.stop("-TERM"), "herald serve did not stop cleanly");
    assert!(!record.exists(), "a clean stop left {record:?} behind");
    // And then the data directory no longer leads to a hub.
    let out = hub
        .by_data_dir("tail")
        .args(["--topic", "t", "--no-reconnect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("herald: no hub is running with the data directory "),
        "{stderr}"
    );
}

#[test]
fn a_crashed_hubs_record_is_named_when_nothing_answers() {
    let mut hub = Hub::start();
    hub.stop("-KILL");
    // A crash cannot clean up: the record stays, and is now stale.
    let record = hub.dir.join("hub.url");
    assert!(record.exists());
    let stale = format!(
        "herald: the hub recorded in {} does not answer at {}: ",
        record.display(),
        hub.url
    );

    let out = hub
        .by_data_dir("tail")
        .args(["--topic", "t", "--no-reconnect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with(&stale), "{stderr}");
    assert!(stderr.contains("herald serve --data "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // Reconnecting, tail keeps waiting for the hub to come back, and says
    // once why it is not there.
    let out = hub
        .by_data_dir("tail")
        .args(["--topic", "t", "--timeout", "4s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches(&stale).count(), 1, "{stderr}");
}

/// A server that answers each connection with `response`, then closes it,
/// or holds it open silently.
fn serve(response: &'static str, hold_open: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the request head before answering.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = stream.write_all(response.as_bytes());
            if hold_open {
                std::thread::sleep(Duration::from_secs(30));
            }
        }
    });
    format!("http://{addr}/events")
}

fn tail_of(url: &str, extra: &[&str]) -> Output {
    let child = herald()
        .arg("tail")
        .arg(url)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_within(child, Duration::from_secs(30))
}

#[test]
fn a_404_fails_with_the_status() {
    let url = serve(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        false,
    );
    let out = tail_of(&url, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().lines().last(),
        Some("herald: 404 Not Found")
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_page_that_is_not_an_event_stream_fails() {
    let url = serve(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>",
        false,
    );
    let out = tail_of(&url, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().lines().last(),
        Some("herald: expected text/event-stream, got text/html")
    );
}

#[test]
fn no_reconnect_ends_cleanly_when_the_server_ends_the_stream() {
    let url = serve(
        concat!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
            ": hello\n\nid: 1\ndata: a\n\ndata: b\n\ndata: cut off",
        ),
        false,
    );
    let out = tail_of(&url, &["--no-reconnect", "--json", "--show-comments"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        json_line("message", "a", "1") + &json_line("message", "b", "1")
    );
    // With --json, comments go to standard error.
    assert!(String::from_utf8(out.stderr).unwrap().contains(": hello"));
}

#[test]
fn a_timeout_exits_3() {
    let url = serve(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 60000\n\n",
        true,
    );
    let started = Instant::now();
    let out = tail_of(&url, &["--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("herald: timed out after 500ms"));
}

#[test]
fn an_unreachable_server_without_reconnection_fails_with_the_cause() {
    let url = format!("http://127.0.0.1:{}/events", unused_port());
    let out = tail_of(&url, &["--no-reconnect"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("could not connect"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_command_lines_exit_2() {
    let out = herald()
        .args(["tail", "http://x/", "--topic", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = herald().args(["tail"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
