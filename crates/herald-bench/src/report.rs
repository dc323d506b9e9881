//! The result of a run: a `serde` record for `--json`, and a table for
//! people.

use std::fmt;

use serde::Serialize;

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyReport {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Number of samples (deliveries in the measurement window).
    pub samples: u64,
}

/// What the subscribers received, in bytes: on the wire, as the hub
/// encoded it, and as an event stream (the two differ with `--gzip`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BytesReport {
    /// Bytes read after the response heads (the bodies with their HTTP
    /// framing, e.g. chunk sizes), whole run, all subscribers.
    pub wire: u64,
    /// The bodies as the hub encoded them (compressed with `--gzip`).
    pub body: u64,
    /// The event streams: the bodies inflated (equal to `body` without
    /// `--gzip`).
    pub stream: u64,
    /// `wire` per established subscriber.
    pub wire_per_subscriber: f64,
    /// In the measurement window: bytes on the wire per delivery
    /// (heartbeats and framing included).
    pub wire_per_delivery: f64,
    /// In the measurement window: body bytes per delivery.
    pub body_per_delivery: f64,
    /// In the measurement window: event-stream bytes per delivery.
    pub stream_per_delivery: f64,
    /// `stream / body`, whole run: how much gzip saved (1 without it).
    pub compression_ratio: f64,
}

/// The reconnect storm's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StormReport {
    /// Subscriptions re-established.
    pub reconnected: u64,
    /// Reconnections that failed.
    pub failed: u64,
    /// From the drop until the last subscription was re-established, s.
    pub reconnect_secs: f64,
    /// Re-established subscriptions per second.
    pub accepts_per_sec: f64,
    /// Subscribers that received an event sent after their reconnection.
    pub caught_up: u64,
    /// From the drop until the last of them did, s.
    pub caught_up_secs: f64,
}

/// One `--hub-pid`: its resident memory and CPU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HubProcess {
    /// The process.
    pub pid: u32,
    /// VmRSS before connecting, KiB.
    pub rss_before_kib: u64,
    /// VmRSS with every subscription open, KiB (`None` if it could not be
    /// read then).
    pub rss_after_kib: Option<u64>,
    /// CPU used in the measurement window, % of one core.
    pub cpu_percent: Option<f64>,
}

/// One subscribe URL: a node of the hub.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeReport {
    /// The subscribe URL template.
    pub url: String,
    /// Subscriptions established on it.
    pub established: u64,
    /// The `--hub-pid`s counted as this node: all of them with one URL, the
    /// one at the same position with several.
    pub pids: Vec<u32>,
    /// Their RSS before connecting, KiB.
    pub rss_before_kib: Option<u64>,
    /// Their RSS with every subscription open, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / established on this node, KiB.
    pub kib_per_subscriber: Option<f64>,
    /// Their CPU in the measurement window, % of one core.
    pub cpu_percent: Option<f64>,
}

/// One CPU of the machine over the measurement window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MachineCpu {
    /// Its number (`cpuN` in `/proc/stat`).
    pub cpu: usize,
    /// Busy (not idle, iowait or stolen), % of the window.
    pub busy_percent: f64,
    /// Stolen by the hypervisor (a virtual machine waiting for its host),
    /// % of the window: high steal makes latencies noisy.
    pub steal_percent: f64,
}

/// What a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The (first) subscribe URL template; with several, each is in
    /// `nodes`.
    pub target: String,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Topics.
    pub topics: usize,
    /// Processes holding the subscribers.
    pub processes: usize,
    /// Subscriptions established.
    pub established: u64,
    /// Subscriptions that failed.
    pub failed: u64,
    /// Established subscriptions the hub closed before the end.
    pub closed: u64,
    /// Established subscriptions whose stream could not be read (bad
    /// framing, a corrupt gzip stream, an event over the decoder's limits).
    pub corrupt: u64,
    /// Seconds from the first connection attempt until all settled.
    pub connect_secs: f64,
    /// Established subscriptions per second while connecting.
    pub connect_rate: f64,
    /// Events published, whole run.
    pub published: u64,
    /// Publish requests that failed.
    pub publish_errors: u64,
    /// Events published per second in the measurement window.
    pub publish_rate: f64,
    /// Events received, whole run.
    pub deliveries: u64,
    /// Events received in the measurement window.
    pub window_deliveries: u64,
    /// Deliveries per second in the measurement window.
    pub deliveries_per_sec: f64,
    /// Publish→receive latency in the measurement window.
    pub latency_ms: LatencyReport,
    /// Events skipped between two received ones.
    pub gaps: u64,
    /// Events received twice or out of order.
    pub duplicates: u64,
    /// Events published that a subscriber of their topic never received.
    pub missing: u64,
    /// Events whose data was not a bench payload.
    pub foreign: u64,
    /// Bytes received: on the wire, compressed, inflated.
    pub bytes: BytesReport,
    /// Hub RSS before connecting, KiB.
    pub hub_rss_before_kib: Option<u64>,
    /// Hub RSS with every subscription open, KiB.
    pub hub_rss_after_kib: Option<u64>,
    /// (after − before) / established, KiB, over every hub process.
    pub hub_kib_per_subscriber: Option<f64>,
    /// Hub RSS at the end of the measurement window (events flowing), KiB.
    pub hub_rss_end_kib: Option<u64>,
    /// (end of window − before) / established, KiB.
    pub hub_kib_per_subscriber_end: Option<f64>,
    /// Hub RSS after `--idle-after` seconds of quiet, KiB.
    pub hub_rss_idle_after_kib: Option<u64>,
    /// (after the quiet − before) / established, KiB.
    pub hub_kib_per_subscriber_idle_after: Option<f64>,
    /// CPU of every hub process in the measurement window, summed, % of
    /// one core.
    pub hub_cpu_percent: Option<f64>,
    /// Per `--hub-pid`: its RSS before and after (the sums above add them)
    /// and its CPU.
    pub hub_processes: Vec<HubProcess>,
    /// Per subscribe URL: its subscribers, and with `--hub-pid` its memory.
    pub nodes: Vec<NodeReport>,
    /// Each CPU of the machine over the measurement window (everything on
    /// it: hub, load generator, other jobs).
    pub machine_cpus: Vec<MachineCpu>,
    /// CPU seconds of the load generator (all its processes).
    pub loadgen_cpu_secs: f64,
    /// Load generator CPU over the wall time, in % of one core.
    pub loadgen_cpu_percent: f64,
    /// Measurement window, s.
    pub duration_secs: f64,
    /// The whole run, s.
    pub wall_secs: f64,
    /// The reconnect storm, when asked for.
    pub storm: Option<StormReport>,
    /// The first error seen (connection or publish), for diagnosis.
    pub first_error: Option<String>,
}

fn rate(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn human_bytes(value: f64) -> String {
    if value >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", value / (1024.0 * 1024.0))
    } else if value >= 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{value:.0} B")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut row = |name: &str, value: String| writeln!(f, "  {name:<28} {value}");
        row("target", self.target.clone())?;
        row(
            "subscribers",
            format!(
                "{} established, {} failed, {} closed by hub, {} unreadable ({} asked, {} topics, \
                 {} processes)",
                self.established,
                self.failed,
                self.closed,
                self.corrupt,
                self.subscribers,
                self.topics,
                self.processes
            ),
        )?;
        row(
            "connect",
            format!("{:.2} s, {}/s", self.connect_secs, rate(self.connect_rate)),
        )?;
        if self.published > 0 {
            row(
                "published",
                format!(
                    "{} ({}/s in window, {} errors)",
                    self.published,
                    rate(self.publish_rate),
                    self.publish_errors
                ),
            )?;
            row(
                "deliveries",
                format!(
                    "{} total, {}/s in window",
                    self.deliveries,
                    rate(self.deliveries_per_sec)
                ),
            )?;
            let l = &self.latency_ms;
            row(
                "latency ms",
                format!(
                    "p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                    l.p50, l.p99, l.p999, l.max
                ),
            )?;
            row(
                "gaps / duplicates / missing",
                format!("{} / {} / {}", self.gaps, self.duplicates, self.missing),
            )?;
        }
        if self.bytes.wire > 0 {
            let b = &self.bytes;
            let mut line = format!(
                "{} per subscriber on the wire",
                human_bytes(b.wire_per_subscriber)
            );
            if b.stream_per_delivery > 0.0 {
                line += &format!(
                    "; per event {:.1} B on the wire, {:.1} B body, {:.1} B inflated",
                    b.wire_per_delivery, b.body_per_delivery, b.stream_per_delivery
                );
            }
            line += &format!("; compression {:.2}×", b.compression_ratio);
            row("bytes", line)?;
        }
        if let Some(storm) = &self.storm {
            row(
                "storm reconnect",
                format!(
                    "{} in {:.2} s ({}/s), {} failed",
                    storm.reconnected,
                    storm.reconnect_secs,
                    rate(storm.accepts_per_sec),
                    storm.failed
                ),
            )?;
            row(
                "storm caught up",
                format!("{} in {:.2} s", storm.caught_up, storm.caught_up_secs),
            )?;
        }
        if let (Some(before), Some(after)) = (self.hub_rss_before_kib, self.hub_rss_after_kib) {
            row(
                "hub RSS",
                format!(
                    "{before} → {after} KiB, {:.2} KiB per subscriber",
                    self.hub_kib_per_subscriber.unwrap_or(0.0)
                ),
            )?;
        }
        for (name, rss, per) in [
            (
                "hub RSS, end of window",
                self.hub_rss_end_kib,
                self.hub_kib_per_subscriber_end,
            ),
            (
                "hub RSS, after idling",
                self.hub_rss_idle_after_kib,
                self.hub_kib_per_subscriber_idle_after,
            ),
        ] {
            if let Some(rss) = rss {
                row(
                    name,
                    format!("{rss} KiB, {:.2} KiB per subscriber", per.unwrap_or(0.0)),
                )?;
            }
        }
        if let Some(cpu) = self.hub_cpu_percent {
            row("hub CPU", format!("{cpu:.0}% of a core in the window"))?;
        }
        if self.nodes.len() > 1 {
            for (i, node) in self.nodes.iter().enumerate() {
                let mut line = format!("{} established", node.established);
                if let (Some(before), Some(after)) = (node.rss_before_kib, node.rss_after_kib) {
                    line += &format!(
                        ", RSS {before} → {after} KiB, {:.2} KiB per subscriber",
                        node.kib_per_subscriber.unwrap_or(0.0)
                    );
                }
                if let Some(cpu) = node.cpu_percent {
                    line += &format!(", CPU {cpu:.0}%");
                }
                row(&format!("node {}", i + 1), format!("{line} ({})", node.url))?;
            }
        }
        if !self.machine_cpus.is_empty() {
            let cpus: Vec<String> = self
                .machine_cpus
                .iter()
                .map(|c| {
                    format!(
                        "cpu{} {:.0}% busy, {:.0}% stolen",
                        c.cpu, c.busy_percent, c.steal_percent
                    )
                })
                .collect();
            row("machine in window", cpus.join("; "))?;
        }
        row(
            "load generator CPU",
            format!(
                "{:.2} s ({:.0}% of a core)",
                self.loadgen_cpu_secs, self.loadgen_cpu_percent
            ),
        )?;
        row(
            "time",
            format!(
                "{:.1} s measured, {:.1} s in all",
                self.duration_secs, self.wall_secs
            ),
        )?;
        if let Some(error) = &self.first_error {
            row("first error", error.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_serializes() {
        let report = Report {
            target: "http://127.0.0.1:1/".into(),
            published: 10,
            deliveries_per_sec: 1_234_567.0,
            hub_rss_before_kib: Some(1000),
            hub_rss_after_kib: Some(5000),
            hub_kib_per_subscriber: Some(4.0),
            bytes: BytesReport {
                wire: 5000,
                body: 4000,
                stream: 12_000,
                wire_per_subscriber: 2500.0,
                wire_per_delivery: 52.25,
                body_per_delivery: 40.0,
                stream_per_delivery: 190.0,
                compression_ratio: 3.0,
            },
            storm: Some(StormReport::default()),
            nodes: vec![
                NodeReport {
                    url: "http://127.0.0.1:1/".into(),
                    established: 3,
                    rss_before_kib: Some(10),
                    rss_after_kib: Some(16),
                    kib_per_subscriber: Some(2.0),
                    ..NodeReport::default()
                },
                NodeReport {
                    url: "http://127.0.0.1:2/".into(),
                    ..NodeReport::default()
                },
            ],
            machine_cpus: vec![MachineCpu {
                cpu: 1,
                busy_percent: 50.0,
                steal_percent: 7.0,
            }],
            ..Report::default()
        };
        let text = report.to_string();
        assert!(text.contains("cpu1 50% busy, 7% stolen"), "{text}");
        assert!(text.contains("1.23M/s"), "{text}");
        assert!(text.contains("4.00 KiB per subscriber"), "{text}");
        assert!(text.contains("node 1"), "{text}");
        assert!(
            text.contains("3 established, RSS 10 → 16 KiB, 2.00 KiB per subscriber"),
            "{text}"
        );
        assert!(text.contains("node 2"), "{text}");
        assert!(
            text.contains(
                "2.4 KiB per subscriber on the wire; per event 52.2 B on the wire, 40.0 B body, \
                 190.0 B inflated; compression 3.00×"
            ),
            "{text}"
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""hub_kib_per_subscriber":4.0"#), "{json}");
        assert!(json.contains(r#""kib_per_subscriber":2.0"#), "{json}");
    }
}
