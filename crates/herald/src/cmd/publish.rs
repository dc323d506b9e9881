//! `herald publish`: publishes one event, or one event per line of
//! standard input (`--lines`).
//!
//! # Why `--lines` sends one request at a time
//!
//! The hub orders events by the order in which it accepts their publish
//! requests, and a log must arrive in the order it was written. Requests
//! in flight at the same time, on several connections or multiplexed on
//! one HTTP/2 connection, are handled concurrently by the hub, so their
//! order would be a race; hyper (the server and the client) does not
//! pipeline HTTP/1.1 requests; and the protocol has no batch form. So
//! lines are published strictly in sequence, each request sent as soon as
//! the previous one is answered, on one kept-alive connection with
//! `TCP_NODELAY`, with the form fields shared by all events encoded once.
//! What overlaps is everything else: a reader thread takes lines from
//! standard input into a bounded queue while a request is in flight (so a
//! burst of input never waits for the network, and the network never
//! waits for a read), and ids are written to standard output in batches,
//! flushed whenever the queue runs dry. Throughput is then one round trip
//! per event; see docs/cli.md for measured figures.

use std::io::{self, BufRead, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::token::parse_duration;
use crate::local_hub::{self, HubLocation};
use crate::local_key::{publisher_token_path, LOCAL_DATA_DIR};

/// Lines read ahead of the publisher: enough to absorb a burst while one
/// request is in flight, few enough to bound memory when the hub is slower
/// than the input.
const LINE_QUEUE: usize = 1024;

/// Publish an event to a hub, and print its id.
///
/// The event goes to TOPIC (and to each --topic alternate); its data is
/// DATA, or the contents of --file, or standard input. A final line break
/// of a file or of standard input is not part of the data (as with
/// `$(cat FILE)`).
///
/// With --lines, every line of standard input becomes one event, published
/// as soon as it arrives and in order, and each id is printed on its own
/// line: `tail -f app.log | herald publish logs/app --lines`. A progress
/// line is shown when standard error is a terminal and the ids are not
/// (or with --quiet).
///
/// The hub is --hub, else the HERALD_HUB variable, else the one whose URL
/// `herald serve` recorded in its data directory (herald-data/hub.url, or
/// DIR/hub.url with --data DIR), else http://127.0.0.1:8080. The token
/// comes from --token, else the HERALD_TOKEN variable, else the publisher
/// token the local hub wrote (herald-data/publisher.token, or
/// DIR/publisher.token with --data DIR).
///
/// Examples:
///
///   herald publish https://example.com/books/1 '{"title": "Dune"}'
///   herald publish chat/general --type message --file message.json
///   date | herald publish clock --private
///   tail -f app.log | herald publish logs/app --lines
///
/// Exit status: 0 when every event was published; 1 when one was refused
/// (the reason is printed, e.g. "401 Unauthorized: …") or the hub could not
/// be reached; 2 for an invalid command line.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The event's topic (its canonical topic, when there are alternates).
    #[arg(value_name = "TOPIC")]
    topic: String,
    /// The event's data [default: --file, or standard input].
    #[arg(value_name = "DATA")]
    data: Option<String>,
    /// An alternate topic: subscribers of any of the topics get the event
    /// (repeatable).
    #[arg(long = "topic", value_name = "TOPIC")]
    alternates: Vec<String>,
    /// Read the data from FILE ("-" for standard input).
    #[arg(long, short = 'f', value_name = "FILE", conflicts_with = "data")]
    file: Option<PathBuf>,
    /// Publish every line of standard input as one event, as it arrives.
    #[arg(long, conflicts_with_all = ["data", "file", "id"])]
    lines: bool,
    /// The event type (the SSE `event:` field) [default: message].
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// The event id (must be unique) [default: the hub generates one].
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The reconnection time subscribers should use, in milliseconds.
    #[arg(long, value_name = "MS")]
    retry: Option<u64>,
    /// Deliver only to subscribers whose token grants one of the topics.
    #[arg(long)]
    private: bool,
    /// The hub to publish to [default: the URL the local hub recorded in
    /// its data directory (--data), else
    /// http://127.0.0.1:8080/.well-known/mercure].
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    hub: Option<String>,
    /// The access token (it must grant `publish` on every topic).
    #[arg(
        long,
        env = "HERALD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// The local hub's data directory, where it records its URL and its
    /// publisher token [default: herald-data].
    #[arg(long = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Give up on a request after this long (10s, 1m…).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Do not print the ids.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Trust this PEM certificate too (a development hub's self-signed one).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Accept any TLS certificate. Only for a hub on your own machine.
    #[arg(long, short = 'k')]
    insecure: bool,
}

/// Runs `herald publish`: one event, or one per line with `--lines`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // One request at a time (see the module docs): one thread suffices.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let publisher = Publisher::new(&args)?;
        if args.lines {
            return publish_lines(&publisher, args.quiet).await;
        }
        let data = read_data(&args)?;
        let id = publisher.publish(&data).await?;
        if !args.quiet {
            println!("{id}");
        }
        Ok(())
    })
}

/// A connection to the hub and what every event of this run shares.
struct Publisher {
    client: reqwest::Client,
    hub: HubLocation,
    token: Option<String>,
    /// Where the token came from, for error messages.
    token_source: String,
    /// The encoded form fields other than `data`.
    fields: String,
}

impl Publisher {
    fn new(args: &Args) -> anyhow::Result<Publisher> {
        let hub = local_hub::locate(args.hub.as_deref(), args.data_dir.as_deref())?;
        // An empty HERALD_TOKEN counts as unset: shells make it easy to
        // export one by mistake.
        let given = args
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let (token, token_source) = match given {
            Some(token) => (Some(token.to_owned()), "--token or HERALD_TOKEN".to_owned()),
            None => {
                let dir = args
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(LOCAL_DATA_DIR));
                let path = publisher_token_path(&dir);
                (
                    read_token_file(&path, args.data_dir.is_some())?,
                    path.display().to_string(),
                )
            }
        };

        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("topic", &args.topic);
        for topic in &args.alternates {
            form.append_pair("topic", topic);
        }
        if let Some(event_type) = &args.event_type {
            form.append_pair("type", event_type);
        }
        if let Some(id) = &args.id {
            form.append_pair("id", id);
        }
        if let Some(retry) = args.retry {
            form.append_pair("retry", &retry.to_string());
        }
        if args.private {
            form.append_pair("private", "on");
        }

        let mut client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(args.timeout)
            // Small requests one after another: Nagle's delay would cost
            // each of them a round trip.
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(args.insecure);
        if let Some(path) = &args.cacert {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            client = client.add_root_certificate(
                reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("invalid certificate in {}", path.display()))?,
            );
        }
        Ok(Publisher {
            client: client.build().context("cannot set up the HTTP client")?,
            hub,
            token,
            token_source,
            fields: form.finish(),
        })
    }

    /// The request body for an event with `data`.
    fn form(&self, data: &str) -> String {
        // The form starts at 0 and already holds the topic, so `data` is
        // appended after a `&`.
        url::form_urlencoded::Serializer::for_suffix(self.fields.clone(), 0)
            .append_pair("data", data)
            .finish()
    }

    /// Publishes one event; returns the id the hub gave it.
    async fn publish(&self, data: &str) -> anyhow::Result<String> {
        let body = self.form(data);
        let mut request = self
            .client
            .post(self.hub.url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| self.send_error(&err))?;
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        let id = response.text().await.map_err(|err| self.send_error(&err))?;
        Ok(id.trim_end().to_owned())
    }

    fn send_error(&self, err: &reqwest::Error) -> anyhow::Error {
        let cause = describe_send_error(err);
        if err.is_connect() {
            anyhow::anyhow!(self.hub.unreachable(&cause))
        } else if err.is_timeout() {
            anyhow::anyhow!("the hub at {} did not answer in time", self.hub.url)
        } else {
            anyhow::anyhow!("publishing to {} failed: {cause}", self.hub.url)
        }
    }

    /// "401 Unauthorized: an access token is required (what to do)".
    async fn refusal(&self, response: reqwest::Response) -> anyhow::Error {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        // The hub's reason is one line of text; another server may send a
        // whole page, of which the first line is enough.
        let reason: String = body
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(200)
            .collect();
        let hint = match status.as_u16() {
            401 if self.token.is_none() => Some(format!(
                "no token: give --token, set HERALD_TOKEN, or run where the hub's \
                 {LOCAL_DATA_DIR}/ directory is (or pass --data DIR); \
                 {} does not exist",
                self.token_source
            )),
            401 => Some(format!(
                "the token from {} is expired, signed with a key this hub does not \
                 trust, or minted for another hub URL",
                self.token_source
            )),
            403 => Some(
                "the token must grant `publish` on every topic of the event: \
                 `herald token --publish TOPIC` mints one"
                    .to_owned(),
            ),
            _ => None,
        };
        let mut message = status.to_string();
        if !reason.is_empty() {
            message.push_str(": ");
            message.push_str(&reason);
        }
        if let Some(hint) = hint {
            message.push_str(" (");
            message.push_str(&hint);
            message.push(')');
        }
        anyhow::anyhow!(message)
    }
}

/// The publisher token the local hub wrote, if there is one. A missing file
/// is an error only when its directory was named with `--data`: without
/// it, the hub may allow anonymous publishing, and a refusal explains.
fn read_token_file(path: &Path, named: bool) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(token) => Ok(Some(token.trim().to_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound && !named => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read the token {}", path.display())),
    }
}

/// The data of a single event: DATA, the file, or standard input.
fn read_data(args: &Args) -> anyhow::Result<String> {
    if let Some(data) = &args.data {
        return Ok(data.clone());
    }
    let mut text = String::new();
    match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        file => {
            if file.is_none() && io::stdin().is_terminal() {
                anyhow::bail!(
                    "no data: give it as an argument, with --file FILE, or on standard input"
                );
            }
            io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    strip_line_end(&mut text);
    Ok(text)
}

/// Drops one final `\n` or `\r\n`.
fn strip_line_end(text: &mut String) {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
}

/// `--lines`: one event per line, in order, as lines arrive.
async fn publish_lines(publisher: &Publisher, quiet: bool) -> anyhow::Result<()> {
    let (lines, mut queue) = mpsc::channel(LINE_QUEUE);
    // Reading standard input blocks; a thread of its own keeps it from
    // stalling the runtime, and ends when the input ends or the queue is
    // dropped.
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(io::stdin().lock(), &lines))
        .context("cannot start the reader thread")?;

    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut progress =
        Progress::new(io::stderr().is_terminal() && (quiet || !io::stdout().is_terminal()));
    let mut count = 0u64;
    let result = async {
        while let Some(line) = queue.recv().await {
            let line: String = line.context("cannot read standard input")?;
            count += 1;
            let id = publisher
                .publish(&line)
                .await
                .with_context(|| format!("line {count}"))?;
            if !quiet {
                out.write_all(id.as_bytes())?;
                out.write_all(b"\n")?;
            }
            // Flush when no more input is waiting: a slow trickle of lines
            // shows each id at once, a flood is written in large batches.
            if queue.is_empty() {
                out.flush()?;
            }
            progress.update(count);
        }
        out.flush()?;
        anyhow::Ok(())
    }
    .await;
    progress.finish(count);
    result
}

/// Sends each line of `input`, without its line end, to `lines`.
fn read_lines(mut input: impl BufRead, lines: &mpsc::Sender<io::Result<String>>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let line = match input.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                // Logs are not always valid UTF-8; the hub takes UTF-8 only.
                Ok(String::from_utf8_lossy(&buf).into_owned())
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => Err(err),
        };
        let failed = line.is_err();
        if lines.blocking_send(line).is_err() || failed {
            return;
        }
    }
}

/// "published 12,345 events, 4,210/s" on standard error, redrawn in place.
struct Progress {
    enabled: bool,
    start: Instant,
    /// When the line was last drawn, and the count then: the rate shown is
    /// the recent one, which is what `tail -f` input makes interesting.
    last: (Instant, u64),
}

impl Progress {
    const EVERY: Duration = Duration::from_millis(500);

    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            start: now,
            last: (now, 0),
        }
    }

    fn update(&mut self, count: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last.0);
        if elapsed < Self::EVERY {
            return;
        }
        let rate = (count - self.last.1) as f64 / elapsed.as_secs_f64();
        self.last = (now, count);
        eprint!(
            "\r\x1b[Kpublished {} events, {}/s",
            thousands(count),
            thousands(rate.round() as u64)
        );
    }

    fn finish(&self, count: u64) {
        if !self.enabled {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
        eprintln!(
            "\r\x1b[Kpublished {} events in {secs:.1}s, {}/s",
            thousands(count),
            thousands(rate.round() as u64)
        );
    }
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The innermost cause of an error, in one line: "Connection refused (os
/// error 111)" instead of the layers of an HTTP client's error chain.
pub(super) fn describe_send_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
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
        Cli::try_parse_from(std::iter::once("publish").chain(argv.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn the_form_holds_every_field_once_encoded() {
        let args = parse(&[
            "https://example.com/a b",
            "--topic",
            "alt&1",
            "--type",
            "up",
            "--id",
            "x=1",
            "--retry",
            "500",
            "--private",
            "--token",
            "t",
        ])
        .unwrap();
        let publisher = Publisher::new(&args).unwrap();
        assert_eq!(
            publisher.form("a b\n&c"),
            "topic=https%3A%2F%2Fexample.com%2Fa+b&topic=alt%261&type=up&id=x%3D1&retry=500\
             &private=on&data=a+b%0A%26c"
        );
        assert_eq!(publisher.token.as_deref(), Some("t"));
    }

    #[test]
    fn lines_exclude_data_and_ids() {
        assert!(parse(&["t", "data", "--lines"]).is_err());
        assert!(parse(&["t", "--lines", "--id", "1"]).is_err());
        assert!(parse(&["t", "--lines", "--file", "x"]).is_err());
        assert!(parse(&["t", "data", "--file", "x"]).is_err());
        assert!(parse(&["t", "--lines"]).is_ok());
    }

    #[test]
    fn a_named_data_directory_must_hold_the_token() {
        let missing = Path::new("/nonexistent/herald-data/publisher.token");
        assert_eq!(read_token_file(missing, false).unwrap(), None);
        assert!(read_token_file(missing, true)
            .unwrap_err()
            .to_string()
            .contains("cannot read the token"));
    }

    #[test]
    fn lines_lose_their_line_ends_only() {
        let (tx, mut rx) = mpsc::channel(16);
        read_lines(&b"a\r\nb\n\nc\xff\nlast"[..], &tx);
        drop(tx);
        let mut lines = Vec::new();
        while let Ok(line) = rx.try_recv() {
            lines.push(line.unwrap());
        }
        assert_eq!(lines, ["a", "b", "", "c\u{fffd}", "last"]);

        let mut text = "x\r\n\r\n".to_owned();
        strip_line_end(&mut text);
        assert_eq!(text, "x\r\n");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
