//! The run, phase by phase: resolve and check the targets, connect every
//! subscriber, read the hub's memory, publish through warmup and the
//! measurement window (with the reconnect storm inside it when asked),
//! read the hub's memory again, drain, stay connected and quiet for
//! `--idle-after` seconds (and read it once more), and total up.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::task::LocalSet;

use crate::args::{topic_template, BenchArgs, PublishFormat};
use crate::fleet::{Fleet, Tally};
use crate::payload::now_nanos;
use crate::progress::Progress;
use crate::publisher::{PublishStats, Publisher, PublisherConfig};
use crate::report::{
    BytesReport, HubProcess, LatencyReport, MachineCpu, NodeReport, Report, StormReport,
};
use crate::stats::Counters;
use crate::subscriber::{SubscribeTarget, SubscriberConfig};
use crate::target::{self, HttpUrl};
use crate::{limits, procfs};

/// Runs `future` on a new single-threaded runtime inside a `LocalSet`.
pub fn block_on_local<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread Tokio runtime builds");
    LocalSet::new().block_on(&runtime, future)
}

/// Where the publisher sends what.
///
/// `sub` is the first subscribe URL: its topic and host are the defaults
/// (every node of a hub delivers every update, so one is enough).
fn publisher_config(args: &BenchArgs, sub: &HttpUrl) -> anyhow::Result<(HttpUrl, PublisherConfig)> {
    let topic_template = match &args.topic {
        Some(topic) => topic.clone(),
        None => topic_template(sub)
            .context("no topic: give --topic, or a match=, topic= or id= parameter in the URL")?,
    };
    let origin = format!("http://{}", sub.authority());
    let publish_url = match (&args.publish_url, args.publish_format) {
        (Some(url), _) => url.clone(),
        (None, PublishFormat::Mercure) => format!("{origin}/.well-known/mercure"),
        (None, PublishFormat::Nchan) => format!("{origin}/pub?id={{topic}}"),
        (None, format) => bail!("--publish-format {format:?} needs --publish-url"),
    };
    let url = HttpUrl::parse(&publish_url)?;
    let mut paths = Vec::with_capacity(args.topics);
    let mut names = Vec::with_capacity(args.topics);
    for k in 0..args.topics {
        let name = target::expand(&topic_template, k, "");
        let mut encoded = Vec::new();
        target::percent_encode(&name, &mut encoded);
        let encoded = String::from_utf8(encoded).unwrap_or_default();
        paths.push(target::expand(&url.path, k, &encoded));
        names.push(name);
    }
    let config = PublisherConfig {
        addr: "0.0.0.0:0".parse()?,
        host: url.authority(),
        format: args.publish_format,
        token: args.token.clone(),
        paths,
        names,
        payload: args.payload,
        size: args.size,
        rate: args.rate,
        max_rate: args.max_rate,
        connections: args.publishers,
        pipeline: args.pipeline,
    };
    Ok((url, config))
}

/// Sleeps `secs`, redrawing the progress line.
async fn wait(
    secs: f64,
    phase: &str,
    fleet: &mut Fleet,
    progress: &mut Progress,
    target: usize,
) -> anyhow::Result<Counters> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let counters = fleet.counters().await?;
        progress.update(phase, target, &counters);
        let now = Instant::now();
        if now >= end {
            return Ok(counters);
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(250))).await;
    }
}

fn secs_between(from_nanos: u64, to_nanos: u64) -> f64 {
    to_nanos.saturating_sub(from_nanos) as f64 / 1e9
}

/// The whole run, one phase after the other.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    args.validate()?;
    let started = Instant::now();
    let targets = Targets::resolve(&args).await?;
    let processes = processes_for(args.subscribers, args.processes)?;
    let rss_before = hub_rss(&args.hub_pid);
    if let Some(i) = rss_before.iter().position(Option::is_none) {
        bail!("cannot read the RSS of --hub-pid {}", args.hub_pid[i]);
    }
    let mut progress = Progress::new();
    let (mut fleet, connect_secs) = connect(&args, &targets, processes, &mut progress).await?;
    let rss_after = if args.hub_pid.is_empty() {
        Vec::new()
    } else {
        let n = args.subscribers;
        wait(args.settle, "settling", &mut fleet, &mut progress, n).await?;
        hub_rss(&args.hub_pid)
    };
    let window = match targets.publishing {
        Some(config) => measure(&args, config, &mut fleet, &mut progress).await?,
        None => idle(&args, &mut fleet, &mut progress).await?,
    };
    let rss_idle_after = if args.idle_after > 0.0 && !args.hub_pid.is_empty() {
        let n = args.subscribers;
        wait(args.idle_after, "idle after", &mut fleet, &mut progress, n).await?;
        hub_rss(&args.hub_pid)
    } else {
        Vec::new()
    };
    progress.clear();
    let tally = fleet.finish(&window.publish_stats.per_topic).await?;
    Ok(report(
        &args,
        Setup {
            started,
            processes,
            connect_secs,
            rss_before,
            rss_after,
            rss_idle_after,
        },
        window,
        tally,
    ))
}

/// Where the subscribers connect (every subscribe URL) and, when the run
/// publishes, where the publisher sends what; all resolved and checked for
/// loopback.
struct Targets {
    nodes: Vec<SubscribeTarget>,
    publishing: Option<PublisherConfig>,
}

impl Targets {
    async fn resolve(args: &BenchArgs) -> anyhow::Result<Targets> {
        let mut nodes = Vec::with_capacity(args.urls.len());
        let mut first = None;
        for url in &args.urls {
            let sub_url = HttpUrl::parse(url)?;
            nodes.push(SubscribeTarget {
                addr: sub_url.resolve(args.allow_remote).await?,
                host: sub_url.authority(),
                path_template: sub_url.path.clone(),
            });
            first.get_or_insert(sub_url);
        }
        let first = first.context("no subscribe URL")?;
        let publishing = if args.publishes() {
            let (url, mut config) = publisher_config(args, &first)?;
            config.addr = url.resolve(args.allow_remote).await?;
            Some(config)
        } else {
            None
        };
        Ok(Targets { nodes, publishing })
    }
}

/// How many processes hold `n` subscribers: `asked`, or as few as the
/// open-files limit allows when 0. Refuses a count they cannot hold.
fn processes_for(n: usize, asked: usize) -> anyhow::Result<usize> {
    let nofile = limits::raise_nofile();
    let per_process = limits::sockets_per_process(nofile);
    let processes = match asked {
        0 if n <= per_process => 1,
        0 => n.div_ceil(per_process),
        p => p,
    };
    if n.div_ceil(processes) > per_process {
        bail!(
            "{n} subscribers over {processes} process(es) exceed the {per_process} sockets one \
             process may hold (open-files limit {nofile}): use --processes {} or more",
            n.div_ceil(per_process)
        );
    }
    Ok(processes)
}

/// The RSS of each hub process, in KiB (`None` where it cannot be read).
fn hub_rss(pids: &[u32]) -> Vec<Option<u64>> {
    pids.iter().map(|&pid| procfs::rss_kib(pid)).collect()
}

/// The sum of some processes' readings: `None` without any, or when one
/// could not be read.
fn summed<T: std::iter::Sum>(readings: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    let mut readings = readings.into_iter().peekable();
    readings.peek()?;
    readings.sum()
}

/// The indexes of the `--hub-pid`s that belong to node `node` of `nodes`:
/// with one node all of them (a hub of several processes), with several
/// the one at the same position (validation makes the counts match).
fn pids_of_node(node: usize, nodes: usize, pids: usize) -> std::ops::Range<usize> {
    if nodes == 1 {
        0..pids
    } else if pids == nodes {
        node..node + 1
    } else {
        0..0
    }
}

/// Growth per subscriber, KiB: `None` without both readings or with no
/// subscriber.
fn per_subscriber(before: Option<u64>, after: Option<u64>, subscribers: u64) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if subscribers > 0 => {
            Some((after as f64 - before as f64) / subscribers as f64)
        }
        _ => None,
    }
}

/// Starts the subscribers and waits until every subscription settled, or
/// the timeout (each attempt has the same timeout, so this only guards
/// against a stall). Returns the fleet and how long connecting took.
async fn connect(
    args: &BenchArgs,
    targets: &Targets,
    processes: usize,
    progress: &mut Progress,
) -> anyhow::Result<(Fleet, f64)> {
    let n = args.subscribers;
    let connect_start = now_nanos();
    let config = SubscriberConfig {
        targets: targets.nodes.clone(),
        topics: args.topics,
        first: 0,
        count: n,
        source_ips: args.source_ips,
        read_buffer: args.read_buffer,
        gzip: args.gzip,
        connect_concurrency: args.connect_concurrency,
        connect_timeout_secs: args.connect_timeout,
    };
    let mut fleet = Fleet::start(config, processes, args.worker_exe.clone()).await?;
    let connect_deadline = Instant::now() + Duration::from_secs_f64(args.connect_timeout + 10.0);
    let counters = loop {
        let counters = fleet.counters().await?;
        progress.update("connecting", n, &counters);
        if counters.settled() as usize >= n || Instant::now() >= connect_deadline {
            break counters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let connect_secs = secs_between(connect_start, counters.last_connect_nanos);
    Ok((fleet, connect_secs))
}

/// What happened in the measurement window.
#[derive(Default)]
struct Window {
    /// Its length.
    elapsed: Duration,
    /// Updates sent within it.
    published: u64,
    /// The publisher's totals (empty for an idle run).
    publish_stats: PublishStats,
    /// When the reconnect storm began, if there was one.
    storm_start: Option<u64>,
    /// Per `--hub-pid`, CPU seconds used within it.
    hub_cpu_secs: Vec<Option<f64>>,
    /// Each CPU of the machine within it.
    machine_cpus: Vec<MachineCpu>,
    /// Per `--hub-pid`, RSS at its end, KiB.
    rss_end: Vec<Option<u64>>,
}

/// CPU readings at the start of a window: the hub processes' CPU seconds
/// and the machine's CPU times. `end` gives what was used since.
struct CpuWatch {
    hub: Vec<Option<f64>>,
    machine: Vec<procfs::CpuTimes>,
}

impl CpuWatch {
    fn start(pids: &[u32]) -> CpuWatch {
        CpuWatch {
            hub: pids.iter().map(|&pid| procfs::cpu_secs(pid)).collect(),
            machine: procfs::cpu_times(),
        }
    }

    /// Per pid, CPU seconds since the start; per CPU, its busy and stolen
    /// share.
    fn end(self, pids: &[u32]) -> (Vec<Option<f64>>, Vec<MachineCpu>) {
        let hub = pids
            .iter()
            .zip(self.hub)
            .map(|(&pid, start)| Some(procfs::cpu_secs(pid)? - start?))
            .collect();
        let machine = procfs::cpu_times()
            .iter()
            .zip(&self.machine)
            .enumerate()
            .map(|(cpu, (end, start))| {
                let total = end.total.saturating_sub(start.total).max(1) as f64;
                let share = |e: u64, s: u64| 100.0 * e.saturating_sub(s) as f64 / total;
                MachineCpu {
                    cpu,
                    busy_percent: share(end.busy, start.busy),
                    steal_percent: share(end.steal, start.steal),
                }
            })
            .collect();
        (hub, machine)
    }
}

/// Publishes through warmup and the measurement window (with the reconnect
/// storm inside it when asked), then drains.
async fn measure(
    args: &BenchArgs,
    config: PublisherConfig,
    fleet: &mut Fleet,
    progress: &mut Progress,
) -> anyhow::Result<Window> {
    let n = args.subscribers;
    let publisher = Publisher::start(config);
    wait(args.warmup, "warmup", fleet, progress, n).await?;
    fleet.set_measuring(true).await?;
    let window_start = Instant::now();
    let cpu_watch = CpuWatch::start(&args.hub_pid);
    let sent_before = publisher.sent();
    let mut storm_start = None;
    if args.reconnect_storm {
        storm_start = Some(now_nanos());
        fleet.storm().await?;
    }
    wait(args.duration, "measuring", fleet, progress, n).await?;
    fleet.set_measuring(false).await?;
    let elapsed = window_start.elapsed();
    let (hub_cpu_secs, machine_cpus) = cpu_watch.end(&args.hub_pid);
    let rss_end = hub_rss(&args.hub_pid);
    let published = publisher.sent() - sent_before;
    let publish_stats = publisher.stop().await;
    drain(fleet).await?;
    Ok(Window {
        elapsed,
        published,
        publish_stats,
        storm_start,
        hub_cpu_secs,
        machine_cpus,
        rss_end,
    })
}

/// Waits until deliveries stop growing for 300 ms (at most 3 s).
async fn drain(fleet: &mut Fleet) -> anyhow::Result<()> {
    let drain_end = Instant::now() + Duration::from_secs(3);
    let mut last = fleet.counters().await?.deliveries;
    let mut still_since = Instant::now();
    while Instant::now() < drain_end && still_since.elapsed() < Duration::from_millis(300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = fleet.counters().await?.deliveries;
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    Ok(())
}

/// A run without a publisher: the subscribers sit idle for the duration.
async fn idle(
    args: &BenchArgs,
    fleet: &mut Fleet,
    progress: &mut Progress,
) -> anyhow::Result<Window> {
    let idle_start = Instant::now();
    let cpu_watch = CpuWatch::start(&args.hub_pid);
    wait(args.duration, "idle", fleet, progress, args.subscribers).await?;
    let (hub_cpu_secs, machine_cpus) = cpu_watch.end(&args.hub_pid);
    Ok(Window {
        elapsed: idle_start.elapsed(),
        hub_cpu_secs,
        machine_cpus,
        rss_end: hub_rss(&args.hub_pid),
        ..Window::default()
    })
}

/// What the phases before the window measured.
struct Setup {
    started: Instant,
    processes: usize,
    connect_secs: f64,
    /// Per `--hub-pid`, before connecting.
    rss_before: Vec<Option<u64>>,
    /// Per `--hub-pid`, with every subscription open (empty without pids).
    rss_after: Vec<Option<u64>>,
    /// Per `--hub-pid`, after `--idle-after` (empty without it).
    rss_idle_after: Vec<Option<u64>>,
}

/// The bytes received, totalled and divided by subscribers and deliveries.
fn bytes_report(c: &Counters) -> BytesReport {
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    BytesReport {
        wire: c.wire_bytes,
        body: c.body_bytes,
        stream: c.stream_bytes,
        wire_per_subscriber: ratio(c.wire_bytes, c.established),
        wire_per_delivery: ratio(c.window_wire_bytes, c.window_deliveries),
        body_per_delivery: ratio(c.window_body_bytes, c.window_deliveries),
        stream_per_delivery: ratio(c.window_stream_bytes, c.window_deliveries),
        compression_ratio: ratio(c.stream_bytes, c.body_bytes),
    }
}

/// Totals everything up.
fn report(args: &BenchArgs, setup: Setup, window: Window, tally: Tally) -> Report {
    let Setup {
        started,
        processes,
        connect_secs,
        rss_before,
        rss_after,
        rss_idle_after,
    } = setup;
    let window_secs = window.elapsed.as_secs_f64().max(1e-9);
    let rss_after_of = |i: usize| rss_after.get(i).copied().flatten();
    let cpu_percent_of = |i: usize| {
        let secs = window.hub_cpu_secs.get(i).copied().flatten()?;
        Some(100.0 * secs / window_secs)
    };
    let hub_processes = args
        .hub_pid
        .iter()
        .enumerate()
        .map(|(i, &pid)| HubProcess {
            pid,
            rss_before_kib: rss_before[i].unwrap_or(0),
            rss_after_kib: rss_after_of(i),
            cpu_percent: cpu_percent_of(i),
        })
        .collect();
    let nodes = args
        .urls
        .iter()
        .enumerate()
        .map(|(node, url)| {
            let pids = pids_of_node(node, args.urls.len(), args.hub_pid.len());
            let established = tally
                .stats
                .established_per_target
                .get(node)
                .copied()
                .unwrap_or(0);
            let before = summed(pids.clone().map(|i| rss_before[i]));
            let after = summed(pids.clone().map(rss_after_of));
            NodeReport {
                url: url.clone(),
                established,
                pids: args.hub_pid[pids.clone()].to_vec(),
                rss_before_kib: before,
                rss_after_kib: after,
                kib_per_subscriber: per_subscriber(before, after, established),
                cpu_percent: summed(pids.map(cpu_percent_of)),
            }
        })
        .collect();
    let hub_rss_before_kib = summed(rss_before.iter().copied());
    let hub_rss_after_kib = summed(rss_after.iter().copied());
    let hub_rss_end_kib = summed(window.rss_end.iter().copied());
    let hub_rss_idle_after_kib = summed(rss_idle_after.iter().copied());
    let hub_cpu_percent = summed((0..args.hub_pid.len()).map(cpu_percent_of));
    let publish_stats = window.publish_stats;
    let c = tally.stats.counters;
    let wall_secs = started.elapsed().as_secs_f64();
    let loadgen_cpu_secs = procfs::self_cpu_secs() + tally.stats.cpu_secs;
    let storm = window.storm_start.map(|start| {
        let reconnect_secs = secs_between(start, c.last_reconnect_nanos);
        StormReport {
            reconnected: c.reconnected,
            failed: c.reconnect_failed,
            reconnect_secs,
            accepts_per_sec: c.reconnected as f64 / reconnect_secs.max(1e-9),
            caught_up: c.caught_up,
            caught_up_secs: secs_between(start, c.last_caught_up_nanos),
        }
    });
    Report {
        target: args.urls[0].clone(),
        subscribers: args.subscribers,
        topics: args.topics,
        processes,
        established: c.established,
        failed: c.failed,
        closed: c.closed,
        corrupt: c.corrupt,
        connect_secs,
        connect_rate: c.established as f64 / connect_secs.max(1e-9),
        published: publish_stats.per_topic.iter().sum(),
        publish_errors: publish_stats.errors,
        publish_rate: window.published as f64 / window_secs,
        deliveries: c.deliveries,
        window_deliveries: c.window_deliveries,
        deliveries_per_sec: c.window_deliveries as f64 / window_secs,
        latency_ms: LatencyReport {
            p50: tally.latency.quantile_ms(0.50),
            p99: tally.latency.quantile_ms(0.99),
            p999: tally.latency.quantile_ms(0.999),
            max: tally.latency.max_ms(),
            samples: tally.latency.len(),
        },
        gaps: c.gaps,
        duplicates: c.duplicates,
        missing: tally.stats.missing,
        foreign: c.foreign,
        bytes: bytes_report(&c),
        hub_rss_before_kib,
        hub_rss_after_kib,
        hub_kib_per_subscriber: per_subscriber(
            hub_rss_before_kib,
            hub_rss_after_kib,
            c.established,
        ),
        hub_rss_end_kib,
        hub_kib_per_subscriber_end: per_subscriber(
            hub_rss_before_kib,
            hub_rss_end_kib,
            c.established,
        ),
        hub_rss_idle_after_kib,
        hub_kib_per_subscriber_idle_after: per_subscriber(
            hub_rss_before_kib,
            hub_rss_idle_after_kib,
            c.established,
        ),
        hub_cpu_percent,
        hub_processes,
        nodes,
        machine_cpus: window.machine_cpus,
        loadgen_cpu_secs,
        loadgen_cpu_percent: 100.0 * loadgen_cpu_secs / wall_secs.max(1e-9),
        duration_secs: window.elapsed.as_secs_f64(),
        wall_secs,
        storm,
        first_error: tally.first_error.or(publish_stats.first_error),
    }
}
