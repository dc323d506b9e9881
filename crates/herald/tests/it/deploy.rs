//! One `herald serve` behind nginx with the settings docs/deploy.md gives:
//! events go through at once (nothing buffered), heartbeats keep a quiet
//! stream open past nginx's `proxy_read_timeout`, and `Last-Event-ID`
//! resumes through it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use herald_proto::Decoder;

use crate::nginx::Nginx;
use crate::{herald, listening_on};

#[tokio::test]
async fn behind_nginx_events_pass_at_once_heartbeats_keep_streams_and_resume_works() {
    let dir = std::env::temp_dir().join(format!("herald-it-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Nginx::free_port();
    let public = Nginx::url_on(port);
    let mut child = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
        .args(["--heartbeat", "1", "--max-connections-per-ip", "0"])
        .args(["--public-url", &public])
        .arg("--data")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let node = listening_on(&mut child);
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    let token = std::fs::read_to_string(dir.join("publisher.token")).unwrap();
    // A read timeout shorter than the quiet spell below: only heartbeats
    // keep the stream open through it.
    let nginx = Nginx::start_with_read_timeout(
        port,
        &[node.trim_start_matches("http://").to_owned()],
        "3s",
    );
    let http = reqwest::Client::new();
    let publish = |data: &'static str| {
        http.post(nginx.url())
            .bearer_auth(token.trim())
            .form(&[("topic", "/d"), ("data", data)])
            .send()
    };

    let response = http
        .get(format!("{}?match=/d", nginx.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut decoder = Decoder::new();
    let mut next_event = async || loop {
        if let Some(event) = decoder.next_event() {
            return event;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("something within 10 s")
            .expect("the stream stays open through nginx")
            .unwrap();
        decoder.feed(&chunk).unwrap();
    };

    let sent = Instant::now();
    let first = publish("first").await.unwrap().text().await.unwrap();
    let event = next_event().await;
    assert_eq!(event.data(), "first");
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "an event crosses nginx at once, not when a buffer fills: {:?}",
        sent.elapsed()
    );

    // Quiet for longer than proxy_read_timeout: heartbeats hold it open.
    tokio::time::sleep(Duration::from_secs(5)).await;
    publish("after the quiet").await.unwrap();
    assert_eq!(next_event().await.data(), "after the quiet");

    // Resume through nginx from the first id.
    let resumed = http
        .get(format!("{}?match=/d", nginx.url()))
        .header("last-event-id", &first)
        .send()
        .await
        .unwrap();
    let mut body = resumed.bytes_stream();
    let mut decoder = Decoder::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let replayed = loop {
        if let Some(event) = decoder.next_event() {
            break event;
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the replay within 10 s")
            .unwrap()
            .unwrap();
        decoder.feed(&chunk).unwrap();
    };
    assert_eq!(replayed.data(), "after the quiet");

    drop(nginx);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
