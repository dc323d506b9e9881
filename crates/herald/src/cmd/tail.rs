//! `herald tail`: the `curl -N` a person debugging a stream wants.
//!
//! It subscribes with `herald-client` (so it parses exactly as a browser
//! does, reconnects with `Last-Event-ID`, and honours `retry:`), and prints
//! each event as it arrives: readable and colored for a person, or one
//! exact JSON object per line (`--json`, the same form as `herald decode`)
//! for a program. Events go to standard output; connection news
//! (connected, reconnecting) goes to standard error, so a pipe carries
//! events only.

use std::io::{self, IsTerminal as _, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::TimedOut;
use anyhow::Context as _;
use futures_util::StreamExt as _;
use herald_client::{ErrorKind, EventSource, MessageEvent, SseItem};

use super::decode::write_json_line;
use super::end_marker::{EndMarker, UntilArg};
use super::publish::describe_send_error;
use super::token::parse_duration;
use crate::local_hub::{self, HubLocation, HubSource};

/// Print the events of a Server-Sent Events stream as they arrive.
///
/// Connects to URL (any text/event-stream endpoint), or to the hub's
/// subscription for the given --topic matchers, and prints every event:
/// its type, its id and its data, colored on a terminal; or with --json
/// exactly one object per event per line:
///
///   {"type": "message", "data": "hello", "last_event_id": "urn:uuid:…"}
///
/// When the connection drops, it reconnects after the server's retry time,
/// sending Last-Event-ID so the server resumes where the stream broke off.
/// Events go to standard output, connection news to standard error.
///
/// The hub is --hub, else the HERALD_HUB variable, else the one whose URL
/// `herald serve` recorded in its data directory (herald-data/hub.url, or
/// DIR/hub.url with --data DIR), else http://127.0.0.1:8080.
///
/// Examples:
///
///   herald tail --topic https://example.com/books/1
///   herald tail --topic '*' --last-event-id earliest --json | jq .data
///   herald tail https://example.com/events -H 'Cookie: session=…'
///   herald tail --topic jobs/42 --max-events 1 --timeout 30s
///   herald tail --topic chat/42 --last-event-id earliest --until-end
///   herald tail --topic files/1 --decode-base64 -n 1 > file.bin
///
/// Exit status:
///
///   0  --max-events events were printed, the end marker came with
///      --until-end, or the server ended the stream and --no-reconnect
///      was given
///   1  the stream failed: an HTTP status other than 200 ("404 Not Found"),
///      a Content-Type other than text/event-stream, a 204 (the server's
///      "stop"), too many failed reconnections (--max-retries), or with
///      --no-reconnect a broken connection
///   2  invalid command line
///   3  --timeout ran out first
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
#[command(group(
    clap::ArgGroup::new("source").required(true).multiple(true).args(["url", "topic", "pattern"])
))]
pub struct Args {
    /// The stream's URL (any Server-Sent Events endpoint).
    #[arg(value_name = "URL", conflicts_with_all = ["topic", "pattern"])]
    url: Option<String>,
    /// Subscribe to TOPIC on the hub (`match=TOPIC`); repeatable; `*` for
    /// every topic.
    #[arg(long, short = 't', value_name = "TOPIC")]
    topic: Vec<String>,
    /// Subscribe to topics matching a URL pattern on the hub
    /// (`match_urlpattern=PATTERN`), e.g. https://example.com/books/:id;
    /// repeatable.
    #[arg(long, value_name = "PATTERN")]
    pattern: Vec<String>,
    /// The hub that --topic and --pattern subscribe to [default: the URL
    /// the local hub recorded in its data directory (--data), else
    /// http://127.0.0.1:8080/.well-known/mercure].
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    hub: Option<String>,
    /// The local hub's data directory, where it records its URL
    /// [default: herald-data].
    #[arg(long = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Send a request header, e.g. -H 'Cookie: a=b'; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Send `Authorization: Bearer TOKEN` (needed for private updates).
    /// Without it, the HERALD_TOKEN variable is used, but only for the
    /// hub's own origin (--hub), so a token meant for the hub never leaks
    /// to another server.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Resume after this event id (sent as Last-Event-ID); `earliest`
    /// replays all the history a Herald or Mercure hub keeps.
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// Do not reconnect: stop when the connection ends (exit 0 if the
    /// server ended it, 1 if it broke).
    #[arg(long)]
    no_reconnect: bool,
    /// Give up after N consecutive failed reconnections [default: never].
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,
    /// Exit 0 after printing N events.
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,
    /// Exit 3 if still running after this long (30s, 5m, 1.5h…; a bare
    /// number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Also print comment lines, such as the hub's heartbeats (on standard
    /// error with --json, so the JSON stays one object per event).
    #[arg(long)]
    show_comments: bool,
    /// Print one JSON object per event per line.
    #[arg(long)]
    json: bool,
    /// Exit 0 after the stream's end marker (printed): `event: end` or
    /// `data: [DONE]`, or those given with --until. A stream resumed after
    /// its end gets the rest, then the marker.
    #[arg(long)]
    until_end: bool,
    /// The end marker for --until-end: `event:TYPE` (any data) or
    /// `data:TEXT` (the whole data, any type); repeatable; implies
    /// --until-end.
    #[arg(long, value_name = "MARKER")]
    until: Vec<UntilArg>,
    /// Write each event's data decoded from base64 (as `herald publish
    /// --base64` sends it), the raw bytes one after the other, nothing
    /// else; an event that is not base64 stops with exit 1 (an end marker
    /// with --until-end is not written).
    #[arg(long, conflicts_with_all = ["json", "show_comments"])]
    decode_base64: bool,
    /// When to color the output.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Trust this PEM certificate too (a development hub's self-signed one).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Accept any TLS certificate. Only for a hub on your own machine.
    #[arg(long, short = 'k')]
    insecure: bool,
}

/// When to use colors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    fn enabled(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            // https://no-color.org: set and not empty disables colors.
            ColorChoice::Auto => {
                terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                    && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
            }
        }
    }
}

/// Runs `herald tail` to the end of the stream, `--max-events` or `--timeout`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // One connection, one task: a single-threaded runtime is all it needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let limit = args.timeout;
    let result = runtime.block_on(async move {
        match limit {
            Some(limit) => tokio::time::timeout(limit, tail(args))
                .await
                .unwrap_or_else(|_| Err(TimedOut(limit).into())),
            None => tail(args).await,
        }
    });
    // What was printed is complete either way: every event is flushed as
    // it is written. `exit` maps `TimedOut` to its own exit code.
    drop(runtime);
    result
}

async fn tail(args: Args) -> anyhow::Result<()> {
    let (url, hub) = target(&args)?;
    // A stale record (a hub that crashed) shows as a refused connection;
    // until the first connection succeeds, such a failure is explained.
    let mut unanswered_record = recorded_hub_of(hub.as_ref(), &url);
    let mut builder = EventSource::builder(url.as_str())
        .reconnect(!args.no_reconnect)
        .max_retries(args.max_retries)
        .danger_accept_invalid_certificates(args.insecure);
    for (name, value) in &args.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(token) = token(&args, &url, hub.as_ref()) {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id.as_str());
    }
    if let Some(path) = &args.cacert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        builder = builder.root_certificate_pem(pem);
    }
    let source = builder.build()?;

    let markers = if args.until_end || !args.until.is_empty() {
        EndMarker::from_args(&args.until)
    } else {
        Vec::new()
    };
    let mut printer = Printer {
        out: io::stdout().lock(),
        json: args.json,
        decode_base64: args.decode_base64,
        show_comments: args.show_comments,
        colors: Palette::new(args.color.enabled(io::stdout().is_terminal())),
        status_colors: Palette::new(args.color.enabled(io::stderr().is_terminal())),
        line: String::new(),
    };
    let mut stream = source.stream();
    let mut count = 0u64;
    while let Some(item) = stream.next().await {
        match item {
            Ok(SseItem::Event(event)) => {
                if EndMarker::any(&markers, &event) {
                    if !args.decode_base64 {
                        printer.event(&event)?;
                    }
                    return Ok(());
                }
                printer.event(&event)?;
                count += 1;
                if args.max_events == Some(count) {
                    return Ok(());
                }
            }
            Ok(SseItem::Comment(comment)) => printer.comment(&comment)?,
            Ok(SseItem::Open(open)) => {
                unanswered_record = None;
                printer.status(&format!("connected to {}", open.url()));
            }
            Ok(SseItem::Reconnecting(reconnect)) => {
                let why = match &reconnect.cause {
                    None => "the server ended the stream".to_owned(),
                    // Said once: the reconnections that follow are news
                    // of their own.
                    Some(cause) => match unanswered_record.take() {
                        Some(hub) if is_unanswered(cause) => {
                            hub.unreachable(&describe_send_error(cause))
                        }
                        _ => describe_client_error(cause),
                    },
                };
                printer.status(&format!(
                    "{why}; reconnecting in {:.1}s",
                    reconnect.delay.as_secs_f64()
                ));
            }
            // `retry:` changes show in the reconnection delays.
            Ok(_) => {}
            Err(err) => {
                return Err(anyhow::anyhow!(
                    "{}",
                    match err.kind() {
                        // "404 Not Found", "expected text/event-stream, got
                        // text/html": the message alone says it all.
                        ErrorKind::Status(_) | ErrorKind::NoContent | ErrorKind::ContentType(_) =>
                            err.to_string(),
                        _ => match unanswered_record {
                            Some(hub) if is_unanswered(&err) =>
                                hub.unreachable(&describe_send_error(&err)),
                            _ => format!("{url}: {}", describe_client_error(&err)),
                        },
                    }
                ));
            }
        }
    }
    // Only a stream without reconnection ends: the server ended it.
    Ok(())
}

/// The URL to subscribe to, and the hub (`--hub`, or the recorded one):
/// URL as given, or the hub's subscription URL for the matchers.
fn target(args: &Args) -> anyhow::Result<(url::Url, Option<HubLocation>)> {
    let hub = local_hub::locate(args.hub.as_deref(), args.data_dir.as_deref());
    if let Some(url) = &args.url {
        let url = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        // A stream of its own needs the hub only to decide whether
        // HERALD_TOKEN may go with it: without a hub, it does not.
        return Ok((url, hub.ok()));
    }
    let hub = hub?;
    let mut url = hub.url.clone();
    {
        let mut query = url.query_pairs_mut();
        for topic in &args.topic {
            query.append_pair("match", topic);
        }
        for pattern in &args.pattern {
            query.append_pair("match_urlpattern", pattern);
        }
    }
    Ok((url, Some(hub)))
}

/// The hub, when its URL was read from a data directory and the stream is
/// on its origin: then a refused connection may mean a stale record.
fn recorded_hub_of<'a>(hub: Option<&'a HubLocation>, url: &url::Url) -> Option<&'a HubLocation> {
    hub.filter(|hub| {
        matches!(hub.source, HubSource::Recorded { .. }) && hub.url.origin() == url.origin()
    })
}

/// A failure that means nothing answers at the address.
fn is_unanswered(err: &herald_client::Error) -> bool {
    matches!(err.kind(), ErrorKind::Connect | ErrorKind::ConnectTimeout)
}

/// `--token`, else `HERALD_TOKEN` when the stream is on the hub's origin.
fn token(args: &Args, url: &url::Url, hub: Option<&HubLocation>) -> Option<String> {
    if let Some(token) = &args.token {
        return Some(token.clone());
    }
    let from_env = std::env::var("HERALD_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())?;
    (hub?.url.origin() == url.origin()).then_some(from_env)
}

/// One line, with the innermost cause: "could not connect: Connection
/// refused (os error 111)" rather than the whole chain of HTTP layers.
pub(super) fn describe_client_error(err: &herald_client::Error) -> String {
    match std::error::Error::source(err) {
        Some(_) => format!("{err}: {}", describe_send_error(err)),
        None => err.to_string(),
    }
}

/// `-H 'Name: value'`.
pub(super) fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("expected 'Name: value', got {text:?}"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("invalid header name {name:?}"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Writes events to standard output, flushing each one so a pipe gets it
/// at once.
struct Printer<W: Write> {
    out: W,
    json: bool,
    /// Write the data's bytes, decoded from base64.
    decode_base64: bool,
    show_comments: bool,
    /// For standard output.
    colors: Palette,
    /// For standard error.
    status_colors: Palette,
    /// Reused for every event.
    line: String,
}

impl<W: Write> Printer<W> {
    fn event(&mut self, event: &MessageEvent) -> anyhow::Result<()> {
        if self.decode_base64 {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(event.data())
                .map_err(|err| {
                    anyhow::anyhow!(
                        "--decode-base64: the data of event {:?} (type {}) is not standard base64: {err}",
                        event.last_event_id(),
                        event.event_type()
                    )
                })?;
            self.out.write_all(&bytes)?;
            self.out.flush()?;
            return Ok(());
        }
        self.line.clear();
        if self.json {
            write_json_line(event, &mut self.line);
        } else {
            format_event(event, self.colors, &mut self.line);
        }
        self.out.write_all(self.line.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    fn comment(&mut self, comment: &str) -> io::Result<()> {
        if !self.show_comments {
            return Ok(());
        }
        if self.json {
            let line = format!(": {comment}");
            eprintln!("{}", self.status_colors.dim(&line));
            return Ok(());
        }
        let line = format!(": {comment}");
        writeln!(self.out, "{}", self.colors.dim(&line))?;
        self.out.flush()
    }

    fn status(&self, message: &str) {
        let line = format!("herald: {message}");
        eprintln!("{}", self.status_colors.dim(&line));
    }
}

/// The readable form: the type and id on the first line, the data after
/// them when it is one line, else below, indented.
///
/// ```text
/// message #urn:uuid:4f1…  hello
/// update #42
///   line one
///   line two
/// ```
fn format_event(event: &MessageEvent, colors: Palette, out: &mut String) {
    out.push_str(&colors.kind(event.event_type()));
    if !event.last_event_id().is_empty() {
        out.push(' ');
        out.push_str(&colors.dim(&format!("#{}", event.last_event_id())));
    }
    let data = event.data();
    if data.contains('\n') {
        for line in data.split('\n') {
            out.push_str("\n  ");
            out.push_str(line);
        }
    } else if !data.is_empty() {
        out.push_str("  ");
        out.push_str(data);
    }
    out.push('\n');
}

/// ANSI styles, or none. Three styles do not justify a crate.
#[derive(Clone, Copy)]
struct Palette {
    enabled: bool,
}

impl Palette {
    fn new(enabled: bool) -> Palette {
        Palette { enabled }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold cyan: an event type.
    fn kind(self, text: &str) -> String {
        self.paint("1;36", text)
    }

    /// Dim: ids, comments, connection news.
    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
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

    fn args(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("tail").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    fn events(stream: &str) -> Vec<MessageEvent> {
        let mut decoder = herald_proto::Decoder::new();
        decoder.feed(stream.as_bytes()).unwrap();
        std::iter::from_fn(|| decoder.next_event()).collect()
    }

    #[test]
    fn topics_build_the_hubs_subscription_url() {
        let args = args(&[
            "--hub",
            "http://127.0.0.1:9/.well-known/mercure",
            "--topic",
            "https://example.com/a b",
            "-t",
            "*",
            "--pattern",
            "/books/:id",
        ]);
        assert_eq!(
            target(&args).unwrap().0.as_str(),
            "http://127.0.0.1:9/.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fa+b&match=*\
             &match_urlpattern=%2Fbooks%2F%3Aid"
        );
    }

    #[test]
    fn a_url_and_topics_are_exclusive_and_one_is_needed() {
        let parse = |argv: &[&str]| {
            Cli::try_parse_from(std::iter::once("tail").chain(argv.iter().copied())).map(|_| ())
        };
        assert!(parse(&["http://x/", "--topic", "a"]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&["--max-events", "0", "http://x/"]).is_err());
        assert!(parse(&["http://x/", "-H", "no colon"]).is_err());
    }

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_header("Cookie:  a=b: c "),
            Ok(("Cookie".into(), "a=b: c".into()))
        );
        assert!(parse_header(": x").is_err());
        assert!(parse_header("Bad Name: x").is_err());
    }

    #[test]
    fn the_readable_form() {
        let plain = Palette::new(false);
        let mut out = String::new();
        for event in events("id: 7\ndata: hello\n\nevent: up\ndata: a\ndata: b\n\n") {
            format_event(&event, plain, &mut out);
        }
        assert_eq!(out, "message #7  hello\nup #7\n  a\n  b\n");

        let mut colored = String::new();
        format_event(&events("data: x\n\n")[0], Palette::new(true), &mut colored);
        assert_eq!(colored, "\x1b[1;36mmessage\x1b[0m  x\n");
    }

    #[test]
    fn json_lines_and_comments() {
        let mut printer = Printer {
            out: Vec::new(),
            json: true,
            decode_base64: false,
            show_comments: false,
            colors: Palette::new(false),
            status_colors: Palette::new(false),
            line: String::new(),
        };
        for event in events("id: 1\nevent: t\ndata: a\ndata: \"q\"\n\n") {
            printer.event(&event).unwrap();
        }
        printer.comment("heartbeat").unwrap();
        assert_eq!(
            String::from_utf8(printer.out).unwrap(),
            "{\"type\": \"t\", \"data\": \"a\\n\\\"q\\\"\", \"last_event_id\": \"1\"}\n"
        );

        let mut printer = Printer {
            out: Vec::new(),
            json: false,
            decode_base64: false,
            show_comments: true,
            colors: Palette::new(false),
            status_colors: Palette::new(false),
            line: String::new(),
        };
        printer.comment("heartbeat").unwrap();
        assert_eq!(String::from_utf8(printer.out).unwrap(), ": heartbeat\n");
    }

    #[test]
    fn the_environment_token_stays_on_the_hubs_origin() {
        let hub = "http://127.0.0.1:9/.well-known/mercure";
        let on_hub = args(&["--hub", hub, "--topic", "a"]);
        let elsewhere = args(&["--hub", hub, "http://evil.example/events"]);
        let explicit = args(&["--token", "t", "http://evil.example/events"]);
        // The only test of this binary that reads HERALD_TOKEN, so setting
        // it races with nothing.
        std::env::set_var("HERALD_TOKEN", "secret");
        let token_for = |args: &Args| {
            let (url, hub) = target(args).unwrap();
            token(args, &url, hub.as_ref())
        };
        assert_eq!(token_for(&on_hub).as_deref(), Some("secret"));
        assert_eq!(token_for(&elsewhere), None);
        assert_eq!(token_for(&explicit).as_deref(), Some("t"));
        std::env::remove_var("HERALD_TOKEN");
    }
}
