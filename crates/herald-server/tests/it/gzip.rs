//! gzip on event streams (`compression = "gzip"`), on every transport:
//! negotiated by `Accept-Encoding`, each event on the wire as soon as it
//! is published, and the whole stream one valid gzip member that inflates
//! to exactly the uncompressed stream.

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use herald_server::Compression;
use serde_json::json;

use crate::{details, start_with, token, TestHub};

async fn gzip_hub() -> TestHub {
    start_with(|config| config.compression = Compression::Gzip).await
}

/// A body read as it arrives: the bytes on the wire, and (for a gzip
/// body) what they inflate to so far.
struct Body<S> {
    chunks: S,
    wire: Vec<u8>,
    inflater: Option<flate2::Decompress>,
    text: Vec<u8>,
}

impl<S: Stream<Item = reqwest::Result<Bytes>> + Unpin> Body<S> {
    fn new(chunks: S, gzip: bool) -> Self {
        Body {
            chunks,
            wire: Vec::new(),
            // The gzip header is for the decoder to check: `true` zlib
            // framing would be wrong, so parse it as raw deflate after the
            // ten header bytes (see `take`).
            inflater: gzip.then(|| flate2::Decompress::new(false)),
            text: Vec::new(),
        }
    }

    /// Reads until the (inflated) text contains `needle`; panics after 5 s.
    async fn until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&self.text).contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.chunks.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{needle:?} not there in 5 s; so far: {:?}",
                        String::from_utf8_lossy(&self.text)
                    )
                })
                .expect("the stream is open")
                .expect("no transport error");
            self.take(&chunk);
        }
    }

    /// Reads to the end of the body (10 s at most).
    async fn read_to_end(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Some(chunk) = tokio::time::timeout_at(deadline, self.chunks.next())
            .await
            .expect("the hub ends the stream")
        {
            self.take(&chunk.expect("no transport error"));
        }
    }

    fn take(&mut self, chunk: &[u8]) {
        let from = self.wire.len();
        self.wire.extend_from_slice(chunk);
        let Some(inflater) = &mut self.inflater else {
            self.text.extend_from_slice(chunk);
            return;
        };
        // Everything past the gzip header is DEFLATE, then the trailer.
        let mut input = &self.wire[from.max(10)..];
        if self.wire.len() <= 10 {
            return;
        }
        loop {
            let mut out = [0u8; 4096];
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, &mut out, flate2::FlushDecompress::Sync)
                .expect("valid DEFLATE");
            let used = (inflater.total_in() - before_in) as usize;
            let made = (inflater.total_out() - before_out) as usize;
            self.text.extend_from_slice(&out[..made]);
            input = &input[used..];
            if status == flate2::Status::StreamEnd || (used == 0 && made == 0) {
                return;
            }
        }
    }
}

#[tokio::test]
async fn each_event_arrives_at_once_and_the_stream_inflates_to_the_plain_one() {
    let hub = gzip_hub().await;
    let now = crate::unix_time();
    // The hub ends both streams when the token expires: the gzip one with
    // its trailer.
    let token = token(
        &hub.url,
        json!({ "exp": now + 3, "authorization_details": details(&[], &["*"]) }),
    );
    let subscribe = |gzip: bool| {
        let request = hub.subscribe_request("match=/feed").bearer_auth(&token);
        let request = if gzip {
            request.header("accept-encoding", "gzip, deflate, br, zstd")
        } else {
            request
        };
        request.send()
    };
    let (plain, packed) = (
        subscribe(false).await.unwrap(),
        subscribe(true).await.unwrap(),
    );
    assert_eq!(plain.status(), 200);
    assert_eq!(packed.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(packed.headers()["content-encoding"], "gzip");
    for response in [&plain, &packed] {
        assert_eq!(response.headers()["vary"], "accept-encoding");
    }
    let mut plain = Body::new(plain.bytes_stream(), false);
    let mut packed = Body::new(packed.bytes_stream(), true);
    // The first retry: is not held back in the compressor.
    packed.until("retry:").await;
    plain.until("retry:").await;
    for n in 0..8 {
        let data = json!({
            "type": "price", "symbol": "ACME", "price": 100 + n, "currency": "EUR",
            "exchange": "XPAR", "n": n,
        })
        .to_string();
        hub.publish_ok(&[("topic", "/feed"), ("data", &data)]).await;
        // Heartbeats are off here: had the compressor kept the event back,
        // nothing would push it out.
        let needle = format!("\"n\":{n},");
        packed.until(&needle).await;
        plain.until(&needle).await;
    }
    packed.read_to_end().await;
    plain.read_to_end().await;
    // A complete gzip member: the decoder checks the CRC and the size.
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&packed.wire[..])
        .read_to_end(&mut inflated)
        .expect("a whole gzip stream, trailer included");
    assert_eq!(
        String::from_utf8_lossy(&inflated),
        String::from_utf8_lossy(&plain.wire)
    );
    assert!(
        packed.wire.len() < plain.wire.len() * 3 / 4,
        "{} bytes compressed, {} plain",
        packed.wire.len(),
        plain.wire.len()
    );
}

#[tokio::test]
async fn only_a_client_that_accepts_gzip_gets_it() {
    let hub = gzip_hub().await;
    for (accept, gzip) in [
        (None, false),
        (Some("identity"), false),
        (Some("gzip;q=0, br"), false),
        (Some("br;q=1, gzip;q=0.5"), true),
        (Some("*"), true),
    ] {
        let mut request = hub.subscribe_request("match=/any");
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-encoding").is_some(),
            gzip,
            "{accept:?}"
        );
        assert_eq!(response.headers()["vary"], "accept-encoding");
    }
}

#[tokio::test]
async fn without_the_setting_nothing_is_compressed() {
    let hub = start_with(|_| {}).await;
    let response = hub
        .subscribe_request("match=/any")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    assert!(response.headers().get("vary").is_none());
    let mut body = Body::new(response.bytes_stream(), false);
    body.until("retry:").await;
}
