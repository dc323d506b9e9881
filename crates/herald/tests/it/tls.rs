//! `herald serve --tls-cert --tls-key`: HTTPS with HTTP/2, a certificate
//! swapped on SIGHUP without dropping a stream, and a bad pair refused at
//! start in words.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;

use crate::{herald, listening_on};

/// Writes a fresh self-signed certificate for `localhost` and its key;
/// returns the certificate's PEM.
fn write_pair(dir: &Path) -> String {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).unwrap();
    made.cert.pem()
}

fn client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// `herald serve` over TLS with `dir`'s pair (memory store, data in
/// `dir/data`), plus `extra` flags.
fn serve_tls(dir: &Path, extra: &[&str]) -> std::process::Child {
    herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
        .args(extra)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-it-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn https_with_http2_and_a_certificate_reloaded_on_sighup() {
    let dir = scratch("serve");
    let first = write_pair(&dir);
    let mut child = serve_tls(&dir, &[]);
    let base = listening_on(&mut child);
    assert!(base.starts_with("https://"), "{base}");
    let base = base.replace("127.0.0.1", "localhost");
    let token = std::fs::read_to_string(dir.join("data/publisher.token")).unwrap();
    let url = format!("{base}/.well-known/mercure");

    let http = client(&first);
    let stream = http.get(format!("{url}?match=/t")).send().await.unwrap();
    assert_eq!(stream.version(), reqwest::Version::HTTP_2);

    // A new certificate, then SIGHUP: new connections get it...
    let second = write_pair(&dir);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    let fresh = client(&second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fresh.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and the stream opened before goes on.
    let published = fresh
        .post(&url)
        .bearer_auth(token.trim())
        .form(&[("topic", "/t"), ("data", "after the reload")])
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    let mut body = stream.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("after the reload") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the event arrives")
            .expect("the stream is open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_start() {
    let dir = scratch("mismatch");
    write_pair(&dir);
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    write_pair(&other);
    let output = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(other.join("key.pem"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that trusts `cert_pem` and speaks HTTP/1.1 only, so that its
/// connections are not the HTTP/2 ones a test counts.
fn http1_client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap()
}

/// The value of the first `/metrics` line starting with `prefix`.
async fn metric(http: &reqwest::Client, base: &str, prefix: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// Debian's `h2load` and `curl --http2`, each with 100 streams on one TLS
/// connection: every stream gets every event, and the hub counts two
/// HTTP/2 connections. The hub's SIGTERM ends the streams, which is how
/// both tools finish.
#[tokio::test]
async fn h2load_and_curl_run_a_hundred_streams_on_one_connection_each() {
    let dir = scratch("h2load");
    let cert_pem = write_pair(&dir);
    let mut child = serve_tls(&dir, &["--heartbeat", "0", "--max-connections-per-ip", "0"]);
    let base = listening_on(&mut child).replace("127.0.0.1", "localhost");
    let port = base.rsplit(':').next().unwrap().to_owned();
    let url = format!("{base}/.well-known/mercure");
    let token = std::fs::read_to_string(dir.join("data/publisher.token")).unwrap();
    let subscribe = format!("{url}?match=/hundred");

    let h2load = std::process::Command::new("h2load")
        .args(["-n", "100", "-c", "1", "-m", "100"])
        .arg(&subscribe)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("h2load (Debian's nghttp2-client package)");
    let out = dir.join("curl");
    std::fs::create_dir_all(&out).unwrap();
    let curl = std::process::Command::new("curl")
        .args(["--silent", "--http2", "--parallel", "--parallel-max", "100"])
        .arg("--cacert")
        .arg(dir.join("cert.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg("--output")
        .arg(out.join("stream_#1"))
        .arg(format!("{subscribe}&n=[1-100]"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl");

    let http = http1_client(&cert_pem);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&http, &base, "herald_subscribers ").await < 200 {
        assert!(tokio::time::Instant::now() < deadline, "200 streams open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 1..=3 {
        let published = http
            .post(&url)
            .bearer_auth(token.trim())
            .form(&[("topic", "/hundred"), ("data", &format!("event {n}"))])
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 200);
    }
    let h2_connections = metric(
        &http,
        &base,
        "herald_connections_total{protocol=\"h2\",tls=\"true\"}",
    )
    .await;
    assert_eq!(h2_connections, 2, "one connection for each tool");

    // Every stream has all three before the hub stops.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&http, &base, "herald_delivered_total").await < 600 {
        assert!(tokio::time::Instant::now() < deadline, "600 deliveries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let h2load = tokio::task::spawn_blocking(move || h2load.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut curl = curl;
    let _ = tokio::task::spawn_blocking(move || curl.wait())
        .await
        .unwrap();
    let _ = child.wait();

    // curl: each of its 100 streams received the three events.
    let streams: Vec<String> = (1..=100)
        .map(|n| std::fs::read_to_string(out.join(format!("stream_{n}"))).unwrap())
        .collect();
    for stream in &streams {
        for n in 1..=3 {
            assert_eq!(
                stream.matches(&format!("data: event {n}\n")).count(),
                1,
                "{stream}"
            );
        }
    }
    // h2load: 100 streams done, and exactly 100 times the bytes one of
    // curl's streams received (the same events, the same framing).
    let report = String::from_utf8_lossy(&h2load.stdout);
    assert!(
        report.contains("100 total, 100 started, 100 done, 100 succeeded"),
        "{report}"
    );
    let data = report
        .lines()
        .find(|line| line.starts_with("traffic:"))
        .and_then(|line| line.rsplit_once(" data").map(|(left, _)| left))
        .and_then(|left| left.rsplit_once('(').map(|(_, n)| n.trim_end_matches(')')))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no data bytes in {report}"));
    assert_eq!(data, 100 * streams[0].len(), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
