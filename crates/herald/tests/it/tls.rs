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
    let mut child = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
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
        .unwrap();
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
