//! `https`: rustls with an extra trusted root, and a certificate that is
//! not trusted.
//!
//! The server is a self-signed `127.0.0.1` made per test by `rcgen`, behind
//! `tokio-rustls` with the ring provider named explicitly (a workspace
//! build may compile rustls with a second provider, and then there is no
//! process default).

use std::sync::Arc;

use herald_client::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::{expect_message, expect_open, expect_reconnecting, source};

/// Starts an https event stream server; returns its URL and the PEM of
/// its self-signed certificate.
async fn tls_server() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                                Connection: close\r\n\r\ndata: secure\n\n";
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.flush().await;
                // Hold until the client goes away.
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (url, pem)
}

#[tokio::test]
async fn https_with_a_trusted_root() {
    let (url, pem) = tls_server().await;
    let mut stream = source(&url)
        .root_certificate_pem(&pem)
        .build()
        .unwrap()
        .stream();
    let open = expect_open(&mut stream).await;
    assert_eq!(open.url().scheme(), "https");
    expect_message(&mut stream, "secure", "").await;
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_is_a_network_error() {
    let (url, _) = tls_server().await;
    let mut stream = source(&url).build().unwrap().stream();
    let reconnect = expect_reconnecting(&mut stream).await;
    assert_eq!(reconnect.cause.unwrap().kind(), &ErrorKind::Connect);
    stream.close();

    // Opting out of verification connects (local development only).
    let mut stream = source(&url)
        .danger_accept_invalid_certificates(true)
        .build()
        .unwrap()
        .stream();
    expect_open(&mut stream).await;
    expect_message(&mut stream, "secure", "").await;
}

#[test]
fn a_certificate_that_does_not_parse_is_reported_by_build() {
    let error = source("https://127.0.0.1/")
        .root_certificate_pem(
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        )
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Client);
}
