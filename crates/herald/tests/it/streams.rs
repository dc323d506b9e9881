//! Resumable streams (issue 15): `herald relay` of a fake LLM endpoint
//! into a topic, read by a subscriber that leaves and resumes, also across
//! a `kill -9` of the hub; `publish --lines` as one streaming publish;
//! `publish --base64` and `tail --decode-base64`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::herald;
use crate::tail::{output_within, unused_port, Hub};

/// The streaming publish's bound on events sent and not acknowledged: at
/// most this many can arrive twice when the hub dies mid-stream.
const MAX_UNACKNOWLEDGED: usize = 1024;

/// A token of the fake model's answer.
fn token(i: usize) -> String {
    format!("tok{i} ")
}

/// The OpenAI-style chunk carrying token `i`.
fn chunk(i: usize) -> String {
    format!(
        "{{\"choices\":[{{\"delta\":{{\"content\":{}}}}}]}}",
        serde_json::to_string(&token(i)).unwrap()
    )
}

/// The token a chunk carries, if it is one.
fn token_of(data: &str) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let content = value["choices"][0]["delta"]["content"].as_str()?;
    content.strip_prefix("tok")?.trim_end().parse().ok()
}

/// A fake LLM endpoint: answers one `POST` (whose JSON body it checks)
/// with `tokens` OpenAI-style chunks, a random pause of up to `pause_ms`
/// before each, then `data: [DONE]`, and closes.
struct FakeLlm {
    url: String,
    served: mpsc::Receiver<Result<(), String>>,
}

impl FakeLlm {
    fn start(tokens: usize, pause_ms: u64) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/v1/chat/completions",
            listener.local_addr().unwrap()
        );
        let (tx, served) = mpsc::channel();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1;
        eprintln!("fake LLM: {tokens} tokens, pauses up to {pause_ms} ms, seed {seed}");
        std::thread::spawn(move || {
            let result = (|| {
                let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
                serve_llm(stream, tokens, pause_ms, seed)
            })();
            let _ = tx.send(result);
        });
        FakeLlm { url, served }
    }

    fn finished(&self) {
        let result = self
            .served
            .recv_timeout(Duration::from_secs(60))
            .expect("the fake LLM was never done");
        result.expect("the fake LLM failed");
    }
}

fn serve_llm(stream: TcpStream, tokens: usize, pause_ms: u64, seed: u64) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| "bad length".to_owned())?;
            }
        }
        head.push(line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    if !head[0].starts_with("POST /v1/chat/completions ") {
        return Err(format!("unexpected request {:?}", head[0]));
    }
    let request: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("body is not JSON: {e}"))?;
    if request["stream"] != true
        || !head
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: bearer sk-test\r\n"))
    {
        return Err(format!("unexpected request {head:?} {request}"));
    }
    let mut out = stream;
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
          Connection: close\r\n\r\n",
    )
    .map_err(|e| e.to_string())?;
    let mut state = seed;
    for i in 0..tokens {
        // xorshift64: random enough for pauses, and reproducible by seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(state % (pause_ms + 1)));
        out.write_all(format!("data: {}\n\n", chunk(i)).as_bytes())
            .map_err(|e| e.to_string())?;
    }
    out.write_all(b"data: [DONE]\n\n")
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `herald relay FAKE TOPIC` with the fake model's request and key.
fn relay(llm: &FakeLlm, topic: &str, hub_args: &[&str], dir: &Path) -> Child {
    let request = dir.join("request.json");
    std::fs::write(
        &request,
        r#"{"model": "fake", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .unwrap();
    herald()
        .args([
            "relay",
            &llm.url,
            topic,
            "-H",
            "Authorization: Bearer sk-test",
            "--json",
        ])
        .arg(&request)
        .args(hub_args)
        .env_remove("HERALD_TOKEN")
        .env_remove("HERALD_HUB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The events of `herald tail --json` output: (data, id).
fn events(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                value["data"].as_str().unwrap().to_owned(),
                value["last_event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_relayed_token_stream_resumes_exactly_once_with_its_end_marker() {
    const TOKENS: usize = 200;
    let hub = Hub::start();
    let topic = "chat/1";
    let llm = FakeLlm::start(TOKENS, 12);
    // The subscriber joins before the stream, reads part of it and leaves.
    let first = hub
        .tail()
        .args(["--topic", topic, "--json", "--last-event-id", "earliest"])
        .args(["--max-events", "60", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let relay = relay(
        &llm,
        topic,
        &["--hub", &hub.url, "--data", hub.dir.to_str().unwrap()],
        &hub.dir,
    );
    let first = output_within(first, Duration::from_secs(60));
    assert!(first.status.success(), "{first:?}");
    let mut got = events(&first.stdout);
    assert_eq!(got.len(), 60);
    // Mid-stream: the relay has not finished.
    let (_, last_id) = got.last().unwrap().clone();
    std::thread::sleep(Duration::from_millis(200));

    // It comes back with the last id it saw, as a reloaded page would.
    let second = hub
        .tail()
        .args(["--topic", topic, "--json", "--last-event-id", &last_id])
        .args(["--until-end", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let relayed = output_within(relay, Duration::from_secs(60));
    assert!(relayed.status.success(), "{relayed:?}");
    llm.finished();
    let second = output_within(second, Duration::from_secs(60));
    assert!(second.status.success(), "{second:?}");
    got.extend(events(&second.stdout));

    let data: Vec<&str> = got.iter().map(|(data, _)| data.as_str()).collect();
    let expected: Vec<String> = (0..TOKENS)
        .map(chunk)
        .chain(["[DONE]".to_owned()])
        .collect();
    assert_eq!(
        data, expected,
        "every token exactly once, in order, then the end marker"
    );
    // The ids are the hub's, as the relay printed them.
    let ids: Vec<&str> = std::str::from_utf8(&relayed.stdout)
        .unwrap()
        .lines()
        .collect();
    let seen: Vec<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, seen);
    let stderr = String::from_utf8_lossy(&relayed.stderr);
    assert!(stderr.contains("ended by `data: [DONE]`"), "{stderr}");
}

/// A `herald serve` with the disk store on a fixed port and directory, so
/// that it can be killed and started again in its place.
struct DiskHub {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl DiskHub {
    fn start(port: u16, dir: &Path) -> DiskHub {
        // A port just freed by a killed process may take a moment to bind.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = herald()
                .args([
                    "serve",
                    "--store",
                    "disk",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--data",
                ])
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on ") {
                        let _ = tx.send(());
                    }
                }
            });
            if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
                return DiskHub {
                    child,
                    port,
                    dir: dir.to_owned(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "herald serve could not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/mercure", self.port)
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DiskHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "herald-it-streams-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a child's stdout lines into a channel as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn a_hub_killed_mid_stream_loses_nothing_acknowledged() {
    const TOKENS: usize = 300;
    let dir = temp_dir("kill");
    let port = unused_port();
    let mut hub = DiskHub::start(port, &dir);
    let url = hub.url();
    let topic = "chat/2";
    let llm = FakeLlm::start(TOKENS, 15);
    let mut relay = relay(
        &llm,
        topic,
        &[
            "--hub",
            &url,
            "--data",
            dir.to_str().unwrap(),
            "--timeout",
            "60s",
        ],
        &dir,
    );
    let acked = lines_of(&mut relay);
    // The subscriber, reading from the start, rides through the restart
    // (it reconnects with Last-Event-ID).
    let subscriber = herald()
        .args([
            "tail",
            "--hub",
            &url,
            "--topic",
            topic,
            "--json",
            "--last-event-id",
            "earliest",
        ])
        .args(["--until-end", "--timeout", "90"])
        .env_remove("HERALD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Some tokens acknowledged, then the crash.
    let mut ids = Vec::new();
    while ids.len() < 80 {
        ids.push(
            acked
                .recv_timeout(Duration::from_secs(30))
                .expect("the relay stalled"),
        );
    }
    hub.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let _hub = DiskHub::start(port, &hub.dir);

    let relayed = output_within(relay, Duration::from_secs(90));
    llm.finished();
    while let Ok(id) = acked.recv_timeout(Duration::from_secs(5)) {
        ids.push(id);
    }
    assert!(relayed.status.success(), "{relayed:?}");
    let got = output_within(subscriber, Duration::from_secs(90));
    assert!(got.status.success(), "{got:?}");
    let got = events(&got.stdout);

    // Everything acknowledged is there.
    let seen: std::collections::HashSet<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
    for id in &ids {
        assert!(seen.contains(id.as_str()), "acknowledged {id} is missing");
    }
    // Every token, in order; the events sent again after the crash (not
    // acknowledged before it) may repeat, at most the unacknowledged bound.
    let mut next = 0;
    let mut repeats = 0;
    for (data, _) in &got[..got.len() - 1] {
        let token = token_of(data).unwrap_or_else(|| panic!("not a token: {data}"));
        if token == next {
            next += 1;
        } else {
            assert!(token < next, "token {token} came before token {next}");
            repeats += 1;
        }
    }
    assert_eq!(next, TOKENS, "tokens missing");
    assert!(repeats <= MAX_UNACKNOWLEDGED, "{repeats} repeats");
    assert_eq!(got.last().unwrap().0, "[DONE]");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ten_thousand_lines_arrive_complete_and_in_order() {
    const LINES: usize = 10_000;
    let hub = Hub::start();
    let mut publisher = herald()
        .args(["publish", "--hub", &hub.url, "--data"])
        .arg(&hub.dir)
        .args(["logs/ci", "--lines"])
        .env_remove("HERALD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..LINES {
            writeln!(stdin, "step {i}: {}", "x".repeat(i % 50)).unwrap();
        }
    });
    let started = Instant::now();
    // Read the ids while the lines are written: a pipe holds only so many.
    let published = output_within(publisher, Duration::from_secs(120));
    writer.join().unwrap();
    assert!(published.status.success(), "{published:?}");
    eprintln!("{LINES} lines in {:?} (debug build)", started.elapsed());
    let ids: Vec<String> = String::from_utf8(published.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), LINES);

    let tail = hub
        .tail()
        .args([
            "--topic",
            "logs/ci",
            "--json",
            "--last-event-id",
            "earliest",
        ])
        .args(["--max-events", &LINES.to_string(), "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tailed = output_within(tail, Duration::from_secs(60));
    assert!(tailed.status.success(), "{tailed:?}");
    let got = events(&tailed.stdout);
    assert_eq!(got.len(), LINES);
    for (i, ((data, id), printed)) in got.iter().zip(&ids).enumerate() {
        assert_eq!(data, &format!("step {i}: {}", "x".repeat(i % 50)));
        assert_eq!(id, printed, "line {i}");
    }
}

#[test]
fn base64_round_trips_bytes_exactly_and_refuses_large_payloads() {
    let hub = Hub::start();
    // Every byte value, invalid UTF-8 sequences among them, and a payload
    // whose length is not a multiple of 3 (padding).
    let mut payload: Vec<u8> = (0..=255u8).collect();
    payload.extend_from_slice(b"\xff\xfe\x00\xc3\x28\xed\xa0\x80 end\n\r");
    payload.extend((0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    assert_ne!(payload.len() % 3, 0);
    let file = hub.dir.join("payload.bin");
    std::fs::write(&file, &payload).unwrap();

    hub.publish("files/1", "", &[]);
    let out = herald()
        .args(["publish", "--hub", &hub.url, "--data"])
        .arg(&hub.dir)
        .args(["files/2", "--type", "thumbnail", "--base64"])
        .arg(&file)
        .env_remove("HERALD_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // From standard input too.
    let mut child = herald()
        .args(["publish", "--hub", &hub.url, "--data"])
        .arg(&hub.dir)
        .args(["files/2", "--base64"])
        .env_remove("HERALD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\x00\x01\x02")
        .unwrap();
    assert!(output_within(child, Duration::from_secs(20))
        .status
        .success());
    // The end marker ends it and is not written.
    hub.publish("files/2", "", &["--type", "end"]);

    let tail = hub
        .tail()
        .args(["--topic", "files/2", "--last-event-id", "earliest"])
        .args(["--decode-base64", "--until-end", "--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tailed = output_within(tail, Duration::from_secs(20));
    assert!(tailed.status.success(), "{tailed:?}");
    let mut expected = payload.clone();
    expected.extend_from_slice(b"\x00\x01\x02");
    assert!(tailed.stdout == expected, "the bytes differ");

    // Over the limit: refused before anything is sent, saying why.
    std::fs::write(&file, vec![7u8; 64 * 1024 + 1]).unwrap();
    let out = herald()
        .args(["publish", "--hub", &hub.url, "--data"])
        .arg(&hub.dir)
        .args(["files/3", "--base64"])
        .arg(&file)
        .env_remove("HERALD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more than 65,536 bytes"), "{stderr}");
    assert!(stderr.contains("publish their URL"), "{stderr}");

    // Data that is not base64 stops the decoding tail with exit 1.
    let tail = hub
        .tail()
        .args([
            "--topic",
            "files/1",
            "--last-event-id",
            "earliest",
            "--decode-base64",
        ])
        .args(["--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hub.publish("files/1", "not base64!", &[]);
    let tailed = output_within(tail, Duration::from_secs(20));
    assert_eq!(tailed.status.code(), Some(1), "{tailed:?}");
    assert!(String::from_utf8_lossy(&tailed.stderr).contains("not standard base64"));
}

#[test]
fn a_failing_upstream_is_named_and_exits_1() {
    let hub = Hub::start();
    let relay = |upstream: String| {
        herald()
            .args(["relay", &upstream, "t", "--hub", &hub.url])
            .arg("--data")
            .arg(&hub.dir)
            .env_remove("HERALD_TOKEN")
            .output()
            .unwrap()
    };
    let port = unused_port();
    let out = relay(format!("http://127.0.0.1:{port}/events"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("herald: upstream http://127.0.0.1:"),
        "{stderr}"
    );

    // A plain HTTP server answering 404.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let out = relay(format!("http://{addr}/events"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("404 Not Found"), "{stderr}");
}
