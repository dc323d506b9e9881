//! `herald relay`: subscribe to any Server-Sent Events endpoint and
//! republish its events into a topic of the hub, through one streaming
//! publish.
//!
//! The upstream is read with `herald-client` (the browser's parsing rules,
//! bounded buffers, `Last-Event-ID` on reconnection with `--follow`), so
//! whatever an AI API, a CI server or another hub sends is taken apart
//! exactly as a browser would, and nothing it sends can make the relay
//! hold more than one event of [`MAX_UPSTREAM_EVENT`] bytes and a bounded
//! queue. Each event keeps its type and data (and, with `--keep-ids`, its
//! id) and goes to the hub as one line of a streaming publish
//! ([`stream_publish`]), so the hub's subscribers
//! get the stream with the hub's ordering, history and resume, however
//! often they reconnect; the upstream is read once.
//!
//! The relay stops after republishing the end marker (`event: end` or
//! `data: [DONE]` by default; see [`EndMarker`]), so
//! the marker is in the topic's history too, or when the upstream ends.

use std::io::{self, Read as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use herald_client::{EventSource, SseItem};
use tokio::sync::mpsc;

use super::end_marker::{EndMarker, UntilArg};
use super::publish::{HubArgs, IdPrinter, Publisher};
use super::stream_publish::{self, ndjson_line};
use super::tail::{describe_client_error, parse_header};
use super::token::parse_duration;

/// The largest upstream event (and line) relayed: the hub's default limit
/// on one event (`max_body_bytes`, 2 MiB). A larger one stops the relay.
const MAX_UPSTREAM_EVENT: usize = 2 << 20;
/// The largest request body (`--body`, `--json`).
const MAX_REQUEST_BODY: u64 = 10 << 20;
/// Upstream events read ahead of the hub.
const QUEUE: usize = 256;

/// Republish the events of any Server-Sent Events stream into a topic.
///
/// Subscribes to UPSTREAM_URL (with -H headers, and for POST-style APIs a
/// request body: --body FILE or --json FILE, "-" for standard input) and
/// publishes every event it sends into TOPIC on the hub, in order, with
/// its type and data, through one streaming publish. Subscribers of TOPIC
/// get the stream from the hub, with its history: one that reloads or
/// loses its connection resumes with Last-Event-ID and misses nothing.
///
/// It stops after republishing the end marker (`event: end` or
/// `data: [DONE]`, or those given with --until), or when the upstream
/// ends the stream; with --follow it reconnects to the upstream instead,
/// sending Last-Event-ID, as a browser would. The ids the hub gives are
/// printed, one per line (-q: their count at the end).
///
/// Examples:
///
///   herald relay https://example.com/events news
///   herald relay https://api.openai.com/v1/chat/completions chat/42 \
///     -H "Authorization: Bearer $OPENAI_API_KEY" --json request.json
///   herald relay http://ci.local/jobs/7/log jobs/7 --until event:finished
///
/// Exit status: 0 when the stream ended (by its end marker, or by the
/// upstream closing it) and every event was published; 1 when the
/// upstream failed (a status other than 200, not text/event-stream, a
/// broken connection without --follow) or the hub refused an event or
/// could not be reached; events received before the failure are
/// published first; 2 for an invalid command line.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The upstream stream's URL (any Server-Sent Events endpoint).
    #[arg(value_name = "UPSTREAM_URL")]
    upstream: String,
    /// The topic to publish into.
    #[arg(value_name = "TOPIC")]
    topic: String,
    /// A request header for the upstream, e.g. -H 'Authorization: Bearer
    /// …'; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The upstream request's method [default: GET, or POST with --body
    /// or --json].
    #[arg(long, short = 'X', value_name = "METHOD")]
    method: Option<String>,
    /// The upstream request's body, read from FILE ("-": standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "json")]
    body: Option<PathBuf>,
    /// The upstream request's body, JSON, from FILE ("-": standard input);
    /// sends Content-Type: application/json.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Publish each event under the id the upstream gave it (when it gave
    /// one) instead of an id from the hub. Ids must be unique in the hub's
    /// history: a repeated one stops the relay (409).
    #[arg(long)]
    keep_ids: bool,
    /// The end markers (rustdoc would read the help's brackets as a link).
    #[arg(
        long,
        value_name = "MARKER",
        help = "The end marker: `event:TYPE` (any data), `data:TEXT` (the whole data, any type), \
                or `none`; repeatable [default: event:end and data:[DONE]]"
    )]
    until: Vec<UntilArg>,
    /// When the upstream ends or breaks the stream, reconnect to it (with
    /// Last-Event-ID, after its retry: time) instead of stopping.
    #[arg(long)]
    follow: bool,
    /// With --follow, give up after N consecutive failed reconnections
    /// [default: never].
    #[arg(long, value_name = "N", requires = "follow")]
    max_retries: Option<u32>,
    /// Drop the upstream connection after this long without a byte from it
    /// (with --follow: and reconnect) [default: wait forever].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    read_timeout: Option<Duration>,
    /// Publish the events as private updates.
    #[arg(long)]
    private: bool,
    /// Do not print the ids; print their count at the end.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    hub: HubArgs,
}

/// What the upstream reader sends the publisher.
type Item = anyhow::Result<Bytes>;

/// How the upstream ended.
enum Ending {
    /// By an end marker (which was relayed).
    Marker(EndMarker),
    /// The upstream closed the stream.
    Closed,
    /// The publisher stopped reading (it failed, and says why).
    Abandoned,
}

/// Runs `herald relay` until the stream ends.
pub fn run(args: Args) -> anyhow::Result<()> {
    // One upstream, one request to the hub: one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(relay(args))
}

async fn relay(args: Args) -> anyhow::Result<()> {
    let publisher = Publisher::new(&args.hub, None)?;
    let markers = EndMarker::from_args(&args.until);
    let source = upstream(&args)?;
    let upstream_url = source.url().to_string();
    let (items, mut queue) = mpsc::channel::<Item>(QUEUE);
    let reader = tokio::spawn(read_upstream(
        source,
        items,
        markers,
        args.keep_ids,
        upstream_url.clone(),
    ));

    let url = stream_publish::stream_url(
        &publisher.hub.url,
        std::slice::from_ref(&args.topic),
        args.private,
    );
    let mut printer = IdPrinter::new(args.quiet);
    let session = stream_publish::Session::new(&publisher, url, args.hub.timeout);
    let result = session.run(&mut queue, |item| item, &mut printer).await;
    // A publisher that failed stops reading the upstream.
    drop(queue);
    let count = printer.finish()?;
    result?;
    let ending = reader.await.unwrap_or(Ending::Abandoned);
    match ending {
        Ending::Marker(marker) => eprintln!(
            "herald: relayed {count} events into {}, ended by `{marker}`",
            args.topic
        ),
        Ending::Closed => eprintln!(
            "herald: relayed {count} events into {}; {upstream_url} ended the stream",
            args.topic
        ),
        Ending::Abandoned => {}
    }
    Ok(())
}

/// The upstream event source the arguments describe.
fn upstream(args: &Args) -> anyhow::Result<EventSource> {
    let mut builder = EventSource::builder(args.upstream.as_str())
        .reconnect(args.follow)
        .max_retries(args.max_retries)
        .read_timeout(args.read_timeout)
        .limits(herald_client::Limits {
            max_line: MAX_UPSTREAM_EVENT,
            max_event: MAX_UPSTREAM_EVENT,
        })
        .danger_accept_invalid_certificates(args.hub.insecure);
    if let Some(path) = &args.hub.cacert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        builder = builder.root_certificate_pem(pem);
    }
    let body = match (&args.body, &args.json) {
        (Some(path), _) => Some(read_body(path)?),
        (None, Some(path)) => {
            let body = read_body(path)?;
            serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                .with_context(|| format!("--json {}: not JSON", path.display()))?;
            builder = builder.header("Content-Type", "application/json");
            Some(body)
        }
        (None, None) => None,
    };
    let method = match (&args.method, &body) {
        (Some(method), _) => herald_client::http::Method::from_bytes(method.as_bytes())
            .map_err(|_| anyhow::anyhow!("invalid method {method:?}"))?,
        (None, Some(_)) => herald_client::http::Method::POST,
        (None, None) => herald_client::http::Method::GET,
    };
    builder = builder.method(method);
    if let Some(body) = body {
        builder = builder.body(body);
    }
    // After the defaults, so -H 'Content-Type: …' wins.
    for (name, value) in &args.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .build()
        .with_context(|| format!("upstream {}", args.upstream))
}

/// A request body, at most [`MAX_REQUEST_BODY`] bytes.
fn read_body(path: &std::path::Path) -> anyhow::Result<Bytes> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        io::stdin()
            .take(MAX_REQUEST_BODY + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_REQUEST_BODY + 1).read_to_end(&mut bytes))
    };
    read.with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_REQUEST_BODY {
        anyhow::bail!("{} is over {MAX_REQUEST_BODY} bytes", path.display());
    }
    Ok(Bytes::from(bytes))
}

/// Reads the upstream and queues its events as NDJSON lines, until the end
/// marker (queued too), the upstream's end, or its failure (queued as the
/// last item, after the events before it).
async fn read_upstream(
    source: EventSource,
    items: mpsc::Sender<Item>,
    markers: Vec<EndMarker>,
    keep_ids: bool,
    upstream_url: String,
) -> Ending {
    let mut stream = source.stream();
    // An upstream event names its own id only when the id changed: ids
    // persist from event to event in SSE, and the hub refuses a repeat.
    let mut previous_id = String::new();
    let mut retry = None;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(SseItem::Event(event)) => event,
            Ok(SseItem::Retry(every)) => {
                retry = Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
                continue;
            }
            Ok(SseItem::Reconnecting(reconnect)) => {
                let why = match &reconnect.cause {
                    None => "the upstream ended the stream".to_owned(),
                    Some(cause) => {
                        format!("upstream {upstream_url}: {}", describe_client_error(cause))
                    }
                };
                eprintln!(
                    "herald: {why}; reconnecting in {:.1}s",
                    reconnect.delay.as_secs_f64()
                );
                continue;
            }
            Ok(_) => continue,
            Err(err) => {
                let message = match err.kind() {
                    herald_client::ErrorKind::Status(_)
                    | herald_client::ErrorKind::NoContent
                    | herald_client::ErrorKind::ContentType(_) => err.to_string(),
                    _ => describe_client_error(&err),
                };
                let _ = items
                    .send(Err(anyhow::anyhow!("upstream {upstream_url}: {message}")))
                    .await;
                return Ending::Abandoned;
            }
        };
        let id = event.last_event_id();
        let own_id = keep_ids && !id.is_empty() && id != previous_id;
        let event_type = (event.event_type() != "message").then_some(event.event_type());
        let line = ndjson_line(event.data(), event_type, own_id.then_some(id), retry.take());
        previous_id.clear();
        previous_id.push_str(id);
        let marker = markers
            .iter()
            .find(|marker| marker.matches(&event))
            .cloned();
        if items.send(Ok(line)).await.is_err() {
            return Ending::Abandoned;
        }
        if let Some(marker) = marker {
            return Ending::Marker(marker);
        }
    }
    Ending::Closed
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("relay").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn the_command_line() {
        let args = parse(&["http://x/", "t", "--until", "event:done", "--until", "none"]).unwrap();
        assert_eq!(args.until.len(), 2);
        assert!(parse(&["http://x/"]).is_err());
        assert!(parse(&["http://x/", "t", "--body", "a", "--json", "b"]).is_err());
        assert!(parse(&["http://x/", "t", "--max-retries", "3"]).is_err());
        assert!(parse(&["http://x/", "t", "--until", "id:1"]).is_err());
    }
}
