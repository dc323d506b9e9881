//! Subscribes to a Herald stream with `reqwest-eventsource` and prints one
//! JSON line per event: `{"type", "data", "id"}`.
//!
//! Usage: `HERALD_TOKEN=… herald-interop-rust-client URL`: the token is
//! sent as a bearer token. reqwest-eventsource reconnects
//! by itself after a cut or an end of stream, sending `Last-Event-ID` and
//! honouring `retry:`; this program only prints what it dispatches, and
//! notes each error on stderr.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest_eventsource::{Event, EventSource};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: herald-interop-rust-client URL");
    let token = std::env::var("HERALD_TOKEN").expect("HERALD_TOKEN");
    // A read timeout (reset by every heartbeat), never a total timeout.
    let client = reqwest::Client::builder()
        .read_timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let request = client.get(url).bearer_auth(token);
    let mut source = EventSource::new(request).expect("a GET request can be cloned");
    let mut out = std::io::stdout().lock();
    while let Some(item) = source.next().await {
        match item {
            Ok(Event::Open) => eprintln!("open"),
            Ok(Event::Message(m)) => {
                let line = serde_json::json!({"type": m.event, "data": m.data, "id": m.id});
                writeln!(out, "{line}").expect("stdout");
                out.flush().expect("stdout");
            }
            // Transport errors and the end of a stream are retried by the
            // library (it keeps the last id); a bad status or content type
            // closes the source, and the loop ends.
            Err(e) => eprintln!("error: {e}"),
        }
    }
    eprintln!("closed");
    std::process::exit(1);
}
