//! `herald publish`: publishes one event, one event per line of standard
//! input (`--lines`), or a small binary payload base64-encoded
//! (`--base64`).
//!
//! # `--lines` is one streaming publish
//!
//! The hub orders events by the order in which it accepts them, and a log
//! must arrive in the order it was written. One request per line, one
//! after another, kept that order at the price of a round trip per line;
//! requests in flight at once would have raced. So `--lines` sends every
//! line as one NDJSON event of one streaming publish
//! ([`stream_publish`]), which the hub stores in
//! body order, batch after batch, and whose answer streams back the ids.
//! A reader thread takes lines from standard input into a bounded queue,
//! so a burst of input never waits for the network; ids are written as
//! they come back and flushed whenever no more of the answer is buffered.
//! If the connection breaks mid-way, the lines not acknowledged are sent
//! again on a new request (see `stream_publish` for what that can repeat).
//!
//! # `--base64`
//!
//! SSE carries text. A small binary payload (a thumbnail, a protobuf
//! message) goes as standard base64 with padding (RFC 4648 section 4) in
//! one `data:` line, with the user's `--type`; `herald tail
//! --decode-base64` turns it back into bytes. Payloads over
//! [`MAX_BINARY_BYTES`] are refused before anything is sent: every
//! subscriber receives the text, a third larger than the bytes, again on
//! every replay, so large blobs belong in object storage with their URL
//! published instead.

use std::io::{self, BufRead, IsTerminal as _, Read as _, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::stream_publish;
use super::token::parse_duration;
use crate::local_hub::{self, HubLocation};
use crate::local_key::{publisher_token_path, LOCAL_DATA_DIR};

/// Lines read ahead of the publisher: enough to absorb a burst while the
/// hub stores a batch, few enough to bound memory when the hub is slower
/// than the input.
const LINE_QUEUE: usize = 1024;
/// The largest payload `--base64` publishes, in bytes (its text is 4/3 as
/// long).
pub const MAX_BINARY_BYTES: usize = 64 * 1024;

/// Publish an event to a hub, and print its id.
///
/// The event goes to TOPIC (and to each --topic alternate); its data is
/// DATA, or the contents of --file, or standard input. A final line break
/// of a file or of standard input is not part of the data (as with
/// `$(cat FILE)`).
///
/// With --lines, every line of standard input becomes one event, published
/// as soon as it arrives and in order through one streaming publish, and
/// each id is printed on its own line as the hub stores it:
/// `tail -f app.log | herald publish logs/app --lines`. If the connection
/// breaks, the lines not yet acknowledged (at most 1,024) are sent again, so
/// none is lost and those may arrive twice. A progress
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
///   herald publish files/1 --type thumbnail --base64 thumb.png
///
/// With --base64, the payload (at most 64 KiB) is published as standard
/// base64 with padding; `herald tail --decode-base64` writes it back.
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
    /// Publish every line of standard input as one event, as it arrives
    /// (one streaming publish).
    #[arg(long, conflicts_with_all = ["data", "file", "id"])]
    lines: bool,
    /// Publish a binary payload (FILE, or standard input without FILE or
    /// with "-") as standard base64 with padding; at most 64 KiB.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "-",
        conflicts_with_all = ["data", "file", "lines"]
    )]
    base64: Option<PathBuf>,
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
    #[command(flatten)]
    hub: HubArgs,
    /// Do not print the ids.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// How to reach the hub and be allowed to publish: shared by `herald
/// publish` and `herald relay`.
#[derive(clap::Args, Debug)]
pub struct HubArgs {
    /// The hub to publish to [default: the URL the local hub recorded in
    /// its data directory (--data), else
    /// http://127.0.0.1:8080/.well-known/mercure].
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    pub hub: Option<String>,
    /// The access token (it must grant `publish` on every topic).
    #[arg(
        long,
        env = "HERALD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// The local hub's data directory, where it records its URL and its
    /// publisher token [default: herald-data].
    #[arg(long = "data", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Give up on a request after this long (10s, 1m…); for a stream of
    /// events, after this long with none acknowledged.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Trust this PEM certificate too (a development hub's self-signed one).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Accept any TLS certificate. Only for a hub on your own machine.
    #[arg(long, short = 'k')]
    pub insecure: bool,
}

/// Runs `herald publish`: one event, one per line with `--lines`, or a
/// base64 payload.
pub fn run(args: Args) -> anyhow::Result<()> {
    // One request at a time: one thread suffices.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        if args.lines {
            // A stream has no overall deadline: --timeout bounds the wait
            // for each acknowledgement instead.
            let publisher = Publisher::new(&args.hub, None)?;
            return publish_lines(&publisher, &args).await;
        }
        let publisher = Publisher::new(&args.hub, Some(args.hub.timeout))?;
        let fields = form_fields(&args);
        let data = match &args.base64 {
            Some(path) => read_base64(path)?,
            None => read_data(&args)?,
        };
        let id = publisher.publish(&fields, &data).await?;
        if !args.quiet {
            println!("{id}");
        }
        Ok(())
    })
}

/// The encoded form fields of a single publish, other than `data`.
fn form_fields(args: &Args) -> String {
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
    form.finish()
}

/// A client for the hub and the token to publish with.
pub struct Publisher {
    pub(super) client: reqwest::Client,
    pub(super) hub: HubLocation,
    pub(super) token: Option<String>,
    /// Where the token came from, for error messages.
    token_source: String,
}

impl Publisher {
    /// The hub and token `args` name; `request_timeout` bounds each whole
    /// request (none for a streaming publish, which may last hours).
    pub fn new(args: &HubArgs, request_timeout: Option<Duration>) -> anyhow::Result<Publisher> {
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

        let mut client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Small requests or small lines of a body: Nagle's delay would
            // cost each a round trip.
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(args.insecure);
        if let Some(timeout) = request_timeout {
            client = client.timeout(timeout);
        }
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
        })
    }

    /// Publishes one event (`fields` from [`form_fields`]); returns the id
    /// the hub gave it.
    async fn publish(&self, fields: &str, data: &str) -> anyhow::Result<String> {
        let body = form(fields, data);
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

    pub(super) fn send_error(&self, err: &reqwest::Error) -> anyhow::Error {
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
    pub(super) async fn refusal(&self, response: reqwest::Response) -> anyhow::Error {
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

/// The request body for an event with `data`: `fields` (which hold the
/// topic, so `data` is appended after a `&`) and `data`.
fn form(fields: &str, data: &str) -> String {
    url::form_urlencoded::Serializer::for_suffix(fields.to_owned(), 0)
        .append_pair("data", data)
        .finish()
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

/// A payload read whole, up to [`MAX_BINARY_BYTES`], as base64 text.
fn read_base64(path: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    let limit = MAX_BINARY_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let source = if path.as_os_str() == "-" {
        if io::stdin().is_terminal() {
            anyhow::bail!("no payload: give --base64 FILE, or pipe it to standard input");
        }
        io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        "standard input".to_owned()
    } else {
        std::fs::File::open(path)
            .and_then(|file| file.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", path.display()))?;
        path.display().to_string()
    };
    if bytes.len() > MAX_BINARY_BYTES {
        anyhow::bail!(
            "{source} holds more than {} bytes, the most --base64 publishes: SSE is text, and \
             every subscriber would receive a third more, again on every replay; store large \
             files elsewhere (object storage, a web server) and publish their URL",
            thousands(MAX_BINARY_BYTES as u64)
        );
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(&bytes))
}

/// `--lines`: one event per line, in order, as lines arrive, through one
/// streaming publish.
async fn publish_lines(publisher: &Publisher, args: &Args) -> anyhow::Result<()> {
    let (lines, mut queue) = mpsc::channel(LINE_QUEUE);
    // Reading standard input blocks; a thread of its own keeps it from
    // stalling the runtime, and ends when the input ends or the queue is
    // dropped.
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(io::stdin().lock(), &lines))
        .context("cannot start the reader thread")?;

    let mut topics = vec![args.topic.clone()];
    topics.extend(args.alternates.iter().cloned());
    let url = stream_publish::stream_url(&publisher.hub.url, &topics, args.private);
    let event_type = args.event_type.as_deref();
    let retry = args.retry;
    let encode = |line: io::Result<String>| {
        let line = line.context("cannot read standard input")?;
        Ok(stream_publish::ndjson_line(&line, event_type, None, retry))
    };
    let mut printer = IdPrinter::new(args.quiet);
    let session = stream_publish::Session::new(publisher, url, args.hub.timeout);
    let result = session.run(&mut queue, encode, &mut printer).await;
    printer.finish()?;
    result.map(drop)
}

/// Prints the ids of a stream of events as they are acknowledged (or,
/// with `--quiet`, their count at the end), with a progress line on a
/// terminal.
pub(super) struct IdPrinter<W: Write = io::BufWriter<io::StdoutLock<'static>>> {
    out: W,
    quiet: bool,
    progress: Progress,
}

impl IdPrinter {
    /// Printing to standard output.
    pub(super) fn new(quiet: bool) -> Self {
        IdPrinter {
            out: io::BufWriter::new(io::stdout().lock()),
            quiet,
            progress: Progress::new(
                io::stderr().is_terminal() && (quiet || !io::stdout().is_terminal()),
            ),
        }
    }
}

impl<W: Write> IdPrinter<W> {
    /// Flushes the ids (prints the count with `--quiet`); returns the count.
    pub(super) fn finish(mut self) -> io::Result<u64> {
        let count = self.progress.count;
        if self.quiet {
            writeln!(self.out, "{count}")?;
        }
        self.out.flush()?;
        self.progress.finish(count);
        Ok(count)
    }
}

impl<W: Write> stream_publish::Acks for IdPrinter<W> {
    fn acked(&mut self, line: u64, id: &str) -> anyhow::Result<()> {
        if !self.quiet {
            self.out.write_all(id.as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        self.progress.update(line);
        Ok(())
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        // A slow trickle of lines shows each id at once, a flood is
        // written in large batches.
        self.out.flush()?;
        Ok(())
    }
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
    /// Events so far.
    count: u64,
}

impl Progress {
    const EVERY: Duration = Duration::from_millis(500);

    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            start: now,
            last: (now, 0),
            count: 0,
        }
    }

    fn update(&mut self, count: u64) {
        self.count = count;
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
        let publisher = Publisher::new(&args.hub, None).unwrap();
        assert_eq!(
            form(&form_fields(&args), "a b\n&c"),
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
    fn base64_excludes_the_other_data_sources() {
        assert!(parse(&["t", "data", "--base64", "f"]).is_err());
        assert!(parse(&["t", "--base64", "f", "--lines"]).is_err());
        assert!(parse(&["t", "--base64", "f", "--file", "g"]).is_err());
        let stdin = parse(&["t", "--base64"]).unwrap();
        assert_eq!(stdin.base64.as_deref(), Some(Path::new("-")));
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
