//! The hub over TLS: HTTP/2 by ALPN for browsers (every stream on one
//! connection), HTTP/1.1 on the lean path, a certificate reload that keeps
//! open streams, clear errors for unusable files, and clients that do not
//! speak TLS properly closed without harm.

use std::time::Duration;

use herald_server::{Tls, TlsError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{read_events, start_tls, TestCerts, TestHub};

async fn hub_over_tls(certs: &TestCerts, http1_only: bool) -> TestHub {
    start_tls(certs.tls(), certs.client(http1_only), |config| {
        config.head_timeout_secs = 1;
    })
    .await
}

#[tokio::test]
async fn browsers_get_http2_and_twenty_streams_share_one_connection() {
    let certs = TestCerts::new("h2");
    let hub = hub_over_tls(&certs, false).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let response = hub.subscribe_request("match=/t").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        streams.push(response);
    }
    let id = hub.publish_ok(&[("topic", "/t"), ("data", "to all")]).await;
    for response in streams {
        let events = read_events(response, 1).await;
        assert_eq!(events.len(), 1, "every stream receives the event");
        assert_eq!(
            (events[0].data(), events[0].last_event_id()),
            ("to all", id.as_str())
        );
    }
}

#[tokio::test]
async fn http1_over_tls_subscribes_and_resumes() {
    let certs = TestCerts::new("h1");
    let hub = hub_over_tls(&certs, true).await;
    let live = hub.subscribe_request("match=/t").send().await.unwrap();
    assert_eq!(live.version(), reqwest::Version::HTTP_11);
    let first = hub.publish_ok(&[("topic", "/t"), ("data", "one")]).await;
    hub.publish_ok(&[("topic", "/t"), ("data", "two")]).await;
    let events = read_events(live, 2).await;
    assert_eq!(
        events.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let resumed = hub
        .subscribe_request("match=/t")
        .header("last-event-id", &first)
        .send()
        .await
        .unwrap();
    let events = read_events(resumed, 1).await;
    assert_eq!(events[0].data(), "two");
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_keeps_open_streams() {
    let mut certs = TestCerts::new("reload");
    let tls = certs.tls();
    let hub = start_tls(tls.clone(), certs.client(false), |_| {}).await;
    let open = hub.subscribe_request("match=/t").send().await.unwrap();
    assert_eq!(open.status(), 200);

    certs.renew();
    tls.reload().unwrap();
    // A client that trusts only the new certificate gets in...
    let fresh = certs.client(false);
    let health = fresh
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // ...and the stream opened before the reload goes on.
    hub.publish_ok(&[("topic", "/t"), ("data", "after reload")])
        .await;
    let events = read_events(open, 1).await;
    assert_eq!(events[0].data(), "after reload");
}

#[tokio::test]
async fn unusable_files_are_clear_errors() {
    let certs = TestCerts::new("errors");
    let missing = certs.dir.join("missing.pem");
    let err = Tls::load(&missing, certs.key()).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // The key where the certificate should be, and the other way round.
    let err = Tls::load(certs.key(), certs.key()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate(_)), "{err:?}");
    let err = Tls::load(certs.cert(), certs.cert()).unwrap_err();
    assert!(matches!(err, TlsError::NoKey(_)), "{err:?}");

    // A key that belongs to another certificate.
    let other = TestCerts::new("errors-other");
    let err = Tls::load(certs.cert(), other.key()).unwrap_err();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the private key in {} does not belong to the certificate in {}",
            other.key().display(),
            certs.cert().display()
        )
    );

    // A reload that fails keeps the pair in use.
    let tls = certs.tls();
    std::fs::write(certs.cert(), "not a certificate").unwrap();
    assert!(tls.reload().is_err());
}

#[tokio::test]
async fn clients_that_do_not_finish_a_handshake_are_closed() {
    let certs = TestCerts::new("bad-clients");
    let hub = hub_over_tls(&certs, false).await;

    // Silent after connecting: closed once the 1 s head timeout passes.
    let mut silent = hub.connect().await;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed within the head timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Plain HTTP on the TLS port: no HTTP answer, and the connection ends.
    let mut plain = hub.connect().await;
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut seen))
        .await
        .expect("closed at once");
    assert!(!seen.starts_with(b"HTTP/"), "{seen:?}");

    // Others are unaffected.
    let health = hub
        .http
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
