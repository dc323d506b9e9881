//! `herald serve --compression gzip` as curl sees it: `--compressed` asks
//! for gzip and inflates what comes, and the first `retry:`, every
//! heartbeat and every event come through at once.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{herald, listening_on};

/// Children ended, and the scratch directory removed, however the test
/// ends (a failed assertion included).
struct Cleanup {
    children: Vec<std::process::Child>,
    dir: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn curl_compressed_gets_retry_heartbeats_and_events_at_once() {
    let dir = std::env::temp_dir().join(format!("herald-it-gzip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup {
        children: Vec::new(),
        dir: dir.clone(),
    };
    let mut child = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
        .args(["--heartbeat", "1", "--compression", "gzip"])
        .arg("--data")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = listening_on(&mut child);
    cleanup.children.push(child);
    let url = format!("{base}/.well-known/mercure");
    let token = std::fs::read_to_string(dir.join("data/publisher.token")).unwrap();
    let headers = dir.join("headers");

    let mut curl = std::process::Command::new("curl")
        .args(["--silent", "--no-buffer", "--compressed"])
        .arg("--dump-header")
        .arg(&headers)
        .arg(format!("{url}?match=/gz"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl");
    let (tx, lines) = mpsc::channel();
    let stdout = curl.stdout.take().unwrap();
    cleanup.children.push(curl);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    // The next line that says something (blank lines end frames).
    let next_line = |what: &str| loop {
        let (at, line) = lines
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{what} within 5 s"));
        if !line.is_empty() {
            return (at, line);
        }
    };

    let (_, first) = next_line("the retry hint");
    assert_eq!(first, "retry: 3000");
    let written = std::fs::read_to_string(&headers).unwrap();
    assert!(
        written
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{written}"
    );
    // A heartbeat (a comment line) after a second of quiet.
    let (_, heartbeat) = next_line("a heartbeat");
    assert!(heartbeat.starts_with(':'), "{heartbeat:?}");

    let http = reqwest::Client::new();
    for n in 1..=3 {
        let sent = Instant::now();
        let published = http
            .post(&url)
            .bearer_auth(token.trim())
            .form(&[("topic", "/gz"), ("data", &format!("{{\"n\":{n}}}"))])
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 200);
        let wanted = format!("data: {{\"n\":{n}}}");
        let at = loop {
            let (at, line) = next_line("the event");
            if line == wanted {
                break at;
            }
        };
        // At once: well before the next heartbeat could push it out.
        assert!(
            at.duration_since(sent) < Duration::from_millis(900),
            "{:?}",
            at.duration_since(sent)
        );
    }
}
