//! The command line of `herald bench`: every option, its default and its
//! bounds, in one `clap::Args` struct.

use serde::{Deserialize, Serialize};

use crate::payload::PayloadKind;
use crate::target::HttpUrl;

/// The longest run `--duration` may ask for, in seconds.
pub const MAX_DURATION_SECS: f64 = 600.0;
/// The highest `--max-connections` accepted.
pub const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

/// How the publisher turns an event into an HTTP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PublishFormat {
    /// Mercure: `POST` form fields `topic` and `data`, with
    /// `Authorization: Bearer TOKEN`.
    Mercure,
    /// nginx + nchan: `POST /pub?id=CHANNEL`, the event as the raw body.
    Nchan,
    /// The tutorial express hub: the event as the raw body of a `POST` to
    /// `--publish-url` (the same request as `raw`).
    Express,
    /// Any hub that takes the event as the raw body of a `POST` to
    /// `--publish-url`.
    Raw,
}

/// The most subscribe URLs (hub nodes) one run spreads over.
pub const MAX_URLS: usize = 1024;

/// Options of a benchmark run.
///
/// Subscriber `n` (0-based) subscribes to topic `n mod --topics`; `{i}` in
/// the URL, `--topic` and `--publish-url` stands for that topic's index.
/// With several URLs (the nodes of one hub) subscriber `n` uses URL
/// `(n mod T + n div T) mod K`: every node gets an equal share and every
/// topic.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct BenchArgs {
    /// Subscribe URL template, e.g.
    /// `http://127.0.0.1:8080/.well-known/mercure?match=/t/{i}`; `{i}` is
    /// replaced by the subscriber's topic index. Give several (the nodes of
    /// one hub) to spread the subscribers over them; the publisher uses the
    /// first one's host unless --publish-url says otherwise.
    #[arg(value_name = "URL", required = true, num_args = 1..)]
    pub urls: Vec<String>,
    /// Number of subscriptions to open.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub subscribers: usize,
    /// Number of topics; subscriber n gets topic n mod T and the publisher
    /// goes round the topics in turn (each keeps its own sequence).
    #[arg(long, short = 't', default_value_t = 1)]
    pub topics: usize,
    /// Topic name template published to (Mercure `topic` field, nchan
    /// channel; `{topic}` in --publish-url). Default: the value of the
    /// subscribe URL's `match`, `topic` or `id` query parameter.
    #[arg(long, value_name = "TEMPLATE")]
    pub topic: Option<String>,
    /// Publish URL template (`{i}`: topic index, `{topic}`: the
    /// percent-encoded topic name). Default: `/.well-known/mercure` on the
    /// subscribe URL's host for mercure, `/pub?id={topic}` for nchan;
    /// required for express and raw.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// How an event is published.
    #[arg(long, value_enum, default_value_t = PublishFormat::Mercure)]
    pub publish_format: PublishFormat,
    /// Bearer token for publishing (mercure).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Events per second to publish, over all topics (0: no publisher, an
    /// idle run).
    #[arg(long, short = 'r', default_value_t = 0.0)]
    pub rate: f64,
    /// Publish as fast as the hub answers (with --pipeline requests in
    /// flight on each publishing connection) instead of at --rate.
    #[arg(long)]
    pub max_rate: bool,
    /// Size of each event's data in bytes (the sequence number and send
    /// time, padded; `--payload padded` only).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// What each event's data looks like: the stamp padded to --size, or a
    /// trade on a JSON market-data feed (~160 bytes, 9 keys whose values
    /// change from event to event), which is what compression is measured
    /// on.
    #[arg(long, value_enum, default_value_t = PayloadKind::Padded)]
    pub payload: PayloadKind,
    /// Ask for compressed streams (`Accept-Encoding: gzip`): a subscription
    /// whose answer lacks `Content-Encoding: gzip` fails, and each stream
    /// is inflated before it is parsed. The report gives the bytes on the
    /// wire beside the inflated ones.
    #[arg(long)]
    pub gzip: bool,
    /// Concurrent publishing connections (keep-alive). A topic is always
    /// published on the same connection, so per-topic order holds; more
    /// connections than topics are not used.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Requests in flight per publishing connection with --max-rate
    /// (HTTP/1.1 pipelining, answered in order). At a fixed --rate requests
    /// are written on schedule whatever the answers, with up to 1024 in
    /// flight.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Measurement time in seconds (after --warmup).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of publishing before measuring (deliveries then are checked
    /// for gaps but not timed).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Spread subscribers over source addresses 127.0.0.1..127.0.0.K (each
    /// socket is bound before connecting), so ephemeral ports do not run out.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_ips: u8,
    /// Child processes holding the subscribers (0: as many as the open-files
    /// limit requires; 1: all in this process).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// The hub's pid: its RSS (VmRSS) is read before and after connecting to
    /// report KiB per subscriber. Repeat it for a hub of several processes
    /// (nginx workers): their RSS is summed, and each is reported. With
    /// several URLs, give one per URL in the same order (each node's RSS
    /// is then divided by that node's subscribers).
    #[arg(long, value_name = "PID")]
    pub hub_pid: Vec<u32>,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// After warmup, drop every subscriber at once and reconnect them with
    /// `Last-Event-ID` while publishing goes on; report accepts per second,
    /// time until all caught up, and gaps.
    #[arg(long)]
    pub reconnect_storm: bool,
    /// Allow targets outside the loopback range.
    #[arg(long)]
    pub allow_remote: bool,
    /// Refuse more subscribers than this.
    #[arg(long, default_value_t = 100_000)]
    pub max_connections: usize,
    /// Connection attempts in flight at once (per process).
    #[arg(long, default_value_t = 512)]
    pub connect_concurrency: usize,
    /// Seconds to wait for all subscriptions to be established.
    #[arg(long, default_value_t = 60.0)]
    pub connect_timeout: f64,
    /// Read buffer per subscriber connection, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Seconds to wait after connecting before reading the hub's RSS.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// After the measurement window (and the drain), keep every
    /// subscription open this many seconds with nothing published, then
    /// read the hub's RSS again: what quiet streams give back (a gzip
    /// stream frees its compressor at its first chunk, e.g. a heartbeat,
    /// after 5 s of quiet).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub idle_after: f64,
    /// Executable started for worker processes (default: this one). The
    /// test suite points it at the `herald-bench` binary.
    #[arg(long, hide = true, value_name = "PATH")]
    pub worker_exe: Option<std::path::PathBuf>,
}

impl BenchArgs {
    /// Checks the bounds: the connection cap, the maximum duration, sane
    /// sizes.
    ///
    /// # Errors
    ///
    /// A message naming the option that is out of bounds.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        self.validate_urls()?;
        if self.max_connections > MAX_CONNECTIONS_CEILING {
            bail!("--max-connections is at most {MAX_CONNECTIONS_CEILING}");
        }
        if self.subscribers > self.max_connections {
            bail!(
                "--subscribers {} exceeds --max-connections {}",
                self.subscribers,
                self.max_connections
            );
        }
        if self.topics == 0 || self.topics > self.max_connections.max(1) {
            bail!("--topics must be between 1 and --max-connections");
        }
        for (name, value) in [
            ("--duration", self.duration),
            ("--warmup", self.warmup),
            ("--connect-timeout", self.connect_timeout),
            ("--settle", self.settle),
            ("--idle-after", self.idle_after),
        ] {
            if !(0.0..=MAX_DURATION_SECS).contains(&value) {
                bail!("{name} must be between 0 and {MAX_DURATION_SECS} seconds");
            }
        }
        if !(self.rate >= 0.0 && self.rate <= 10_000_000.0) {
            bail!("--rate must be between 0 and 10000000 events per second");
        }
        if self.publishers == 0 || self.publishers > 1024 {
            bail!("--publishers must be between 1 and 1024");
        }
        if self.pipeline == 0 || self.pipeline > 1024 {
            bail!("--pipeline must be between 1 and 1024");
        }
        if self.size > 1 << 20 {
            bail!("--size is at most 1 MiB");
        }
        if !(512..=1 << 20).contains(&self.read_buffer) {
            bail!("--read-buffer must be between 512 bytes and 1 MiB");
        }
        if self.connect_concurrency == 0 {
            bail!("--connect-concurrency must be at least 1");
        }
        if self.reconnect_storm && !self.publishes() {
            bail!("--reconnect-storm needs a publisher (--rate R or --max-rate)");
        }
        Ok(())
    }

    /// Checks the subscribe URLs: at least one, each an `http://` URL, all
    /// naming the same topic when the topic comes from them, and
    /// `--hub-pid` given once per URL when there are several.
    fn validate_urls(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.urls.is_empty() || self.urls.len() > MAX_URLS {
            bail!("give between 1 and {MAX_URLS} subscribe URLs");
        }
        let parsed = self
            .urls
            .iter()
            .map(|url| HttpUrl::parse(url))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if self.topic.is_none() {
            let first = topic_template(&parsed[0]);
            if let Some(other) = parsed[1..].iter().find(|url| topic_template(url) != first) {
                bail!(
                    "the subscribe URLs name different topics ({:?} and {:?}): the publisher \
                     would miss some; give --topic or make them alike",
                    first.unwrap_or_default(),
                    topic_template(other).unwrap_or_default()
                );
            }
        }
        if self.urls.len() > 1 && !self.hub_pid.is_empty() && self.hub_pid.len() != self.urls.len()
        {
            bail!(
                "{} subscribe URLs but {} --hub-pid: give one --hub-pid per URL, in the same \
                 order, or none",
                self.urls.len(),
                self.hub_pid.len()
            );
        }
        Ok(())
    }

    /// Whether the run publishes at all.
    pub fn publishes(&self) -> bool {
        self.max_rate || self.rate > 0.0
    }
}

/// The topic a subscribe URL names: its `match`, `topic` or `id` query
/// parameter, the first present (`None` without one).
pub(crate) fn topic_template(url: &HttpUrl) -> Option<String> {
    ["match", "topic", "id"]
        .iter()
        .find_map(|name| url.query_param(name))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    /// Parses and validates; the error message on refusal.
    fn check(args: &[&str]) -> Result<BenchArgs, String> {
        let args = parse(args).map_err(|e| e.to_string())?;
        args.validate().map_err(|e| e.to_string())?;
        Ok(args)
    }

    const A: &str = "http://127.0.0.1:8081/.well-known/mercure?match=/t/{i}";
    const B: &str = "http://127.0.0.1:8082/.well-known/mercure?match=/t/{i}";
    const C: &str = "http://127.0.0.1:8083/.well-known/mercure?match=/t/{i}";

    #[test]
    fn one_or_several_urls() {
        assert_eq!(check(&[A]).unwrap().urls, [A]);
        let args = check(&[A, B, C, "-n", "30"]).unwrap();
        assert_eq!(args.urls, [A, B, C]);
        assert_eq!(args.subscribers, 30);
        // Options may come between them.
        assert_eq!(check(&[A, "-n", "30", B]).unwrap().urls, [A, B]);
        assert!(parse(&[]).is_err(), "a URL is required");
    }

    #[test]
    fn hub_pids_pair_with_urls() {
        // One URL: any number of pids (a hub of several processes).
        assert!(check(&[A, "--hub-pid", "1", "--hub-pid", "2"]).is_ok());
        // Several URLs: none, or one each.
        assert!(check(&[A, B]).is_ok());
        assert!(check(&[A, B, "--hub-pid", "1", "--hub-pid", "2"]).is_ok());
        let error = check(&[A, B, C, "--hub-pid", "1", "--hub-pid", "2"]).unwrap_err();
        assert!(error.contains("one --hub-pid per URL"), "{error}");
    }

    #[test]
    fn every_url_is_checked() {
        let error = check(&[A, "https://127.0.0.1:1/?match=/t/{i}"]).unwrap_err();
        assert!(error.contains("only http://"), "{error}");
        // The topic comes from the URLs: they must agree...
        let other = "http://127.0.0.1:8082/.well-known/mercure?match=/u/{i}";
        let error = check(&[A, other]).unwrap_err();
        assert!(error.contains("different topics"), "{error}");
        // ...unless --topic names it.
        assert!(check(&[A, other, "--topic", "/t/{i}"]).is_ok());
    }

    #[test]
    fn bounds() {
        for (args, says) in [
            (
                &[A, "--max-connections", "2000000"][..],
                "--max-connections",
            ),
            (&[A, "-n", "101000"], "exceeds --max-connections"),
            (&[A, "--duration", "601"], "--duration"),
            (&[A, "--topics", "0"], "--topics"),
            (&[A, "--publishers", "0"], "--publishers"),
            (&[A, "--reconnect-storm"], "needs a publisher"),
        ] {
            let error = check(args).unwrap_err();
            assert!(error.contains(says), "{args:?}: {error}");
        }
        assert!(check(&[A, "-n", "100000", "--source-ips", "32"]).is_ok());
    }
}
