//! The server's metrics and `GET /metrics`, with `prometheus-client` (the
//! Prometheus project's Rust client): one [`Registry`] per app, written in
//! the Prometheus text format at each scrape. docs/operations.md lists
//! every metric; this module is where each is defined.
//!
//! Two kinds of value end up in one scrape:
//!
//! - What only the HTTP side sees (connections by protocol, event-stream
//!   bytes written, publish latency, the store errors a route answers) is
//!   held here in `prometheus-client`'s own metrics. Handles are taken once
//!   per connection or subscription ([`Metrics::connection_opened`],
//!   [`Metrics::bytes_written`]), so counting a frame is one relaxed atomic
//!   add: no lock, no label lookup, no allocation.
//! - The hub's counters stay lock-free atomics in `herald-hub`, which knows
//!   nothing of Prometheus; [`HubCollector`] reads [`Hub::stats`] when a
//!   scrape asks, which costs nothing between scrapes. Mirroring them into
//!   `prometheus-client` counters as they change was rejected: it would
//!   count everything twice, on the dispatcher's hot path.
//!
//! # Why the Prometheus text format, not OpenMetrics
//!
//! The names are fixed (dashboards and tests use them), and two of them,
//! the counter `herald_connections_total` and the gauge
//! `herald_connections`, would be one metric family, `herald_connections`,
//! twice in OpenMetrics, which names a counter's family without its
//! `_total` and forbids a family name twice. The text format (version
//! 0.0.4, what `/metrics` always served) names each by its sample, so both
//! are valid, and every Prometheus reads it.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use herald_hub::Hub;
use http::Version;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The upper bounds of `herald_publish_duration_seconds`' buckets: 0.1 ms
/// (an in-memory store) to 1 s (a disk syncing under load, a distant
/// Redis), three per decade.
const PUBLISH_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The server's metrics: a cheap `Clone` handle, one per app.
#[derive(Clone)]
pub(crate) struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Registry,
    /// Per [`Protocol`] (its discriminant), then plain (0) or TLS (1):
    /// every label pair made at start, so each shows from the first scrape
    /// and opening a connection looks nothing up.
    connections: [[Connections; 2]; 2],
    bytes_written: Counter,
    publish_duration: Histogram,
    /// `publish_duration` alone, for [`Metrics::counts`] to read its
    /// buckets (`prometheus-client` has no accessor for them).
    publish_duration_only: Registry,
    store_errors: StoreErrors,
}

/// What the HTTP side has counted, read at one moment: the share of the
/// `/ui/stats` document (`routes::ui::stats`) that `Hub::stats` lacks.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpCounts {
    /// `herald_connections`, summed over protocols and TLS.
    pub(crate) connections_open: u64,
    /// `herald_bytes_written_total`.
    pub(crate) bytes_written: u64,
    /// `herald_publish_duration_seconds_count`.
    pub(crate) publishes_timed: u64,
    /// `herald_publish_duration_seconds_sum`.
    pub(crate) publish_seconds: f64,
    /// `herald_publish_duration_seconds_bucket`: `(le, cumulative count)`,
    /// `+Inf` last.
    pub(crate) publish_buckets: Vec<(f64, u64)>,
    /// `herald_store_errors_total` as the routes count it (`append`,
    /// `read`; the hub adds its own).
    pub(crate) store_errors_append: u64,
    pub(crate) store_errors_read: u64,
}

/// One `{protocol, tls}` pair's handles.
struct Connections {
    total: Counter,
    open: Gauge,
}

/// The store failures the routes see (the hub counts those of its own
/// reads: the live follow, replays).
#[derive(Clone, Debug, Default)]
struct StoreErrors {
    append: Counter,
    read: Counter,
}

/// The HTTP version a connection speaks: the `protocol` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1 (or 1.0): hyper's, or the lean path.
    Http1 = 0,
    /// HTTP/2: over TLS by ALPN, or h2c with prior knowledge.
    H2 = 1,
}

impl Protocol {
    const ALL: [Protocol; 2] = [Protocol::Http1, Protocol::H2];

    /// The protocol of a request's version.
    pub(crate) fn of(version: Version) -> Protocol {
        if version == Version::HTTP_2 {
            Protocol::H2
        } else {
            Protocol::Http1
        }
    }

    fn label(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2 => "h2",
        }
    }
}

/// A store operation a route saw fail: the `op` label of
/// `herald_store_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreOp {
    /// Appending a publish.
    Append,
    /// Reading where a subscriber resumes (its `Last-Event-ID`, the log's
    /// bounds).
    Read,
}

/// One connection counted as open in `herald_connections`, until dropped.
#[must_use = "the connection counts as open only while this lives"]
pub(crate) struct OpenConnection {
    open: Gauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.dec();
    }
}

type ConnectionLabels = [(&'static str, &'static str); 2];

impl Metrics {
    /// The metrics of an app serving `hub`.
    pub(crate) fn new(hub: Hub) -> Metrics {
        let mut registry = Registry::with_prefix("herald");
        let total = Family::<ConnectionLabels, Counter>::default();
        let open = Family::<ConnectionLabels, Gauge>::default();
        let connections = Protocol::ALL.map(|protocol| {
            ["false", "true"].map(|tls| {
                let labels = [("protocol", protocol.label()), ("tls", tls)];
                Connections {
                    total: total.get_or_create_owned(&labels),
                    open: open.get_or_create_owned(&labels),
                }
            })
        });
        registry.register(
            "connections",
            "Connections served, counted at their first request, by protocol (http1, h2) and TLS",
            total,
        );
        registry.register(
            "connections",
            "Connections open now that have had a request, by protocol and TLS",
            open,
        );
        let bytes_written = Counter::default();
        registry.register(
            "bytes_written",
            "Event-stream bytes handed to subscribers' connections (before HTTP framing and TLS)",
            bytes_written.clone(),
        );
        let publish_duration = Histogram::new(PUBLISH_BUCKETS);
        registry.register_with_unit(
            "publish_duration",
            "Time from a publish request's arrival to the store's acknowledgment, for publishes the store acknowledged",
            Unit::Seconds,
            publish_duration.clone(),
        );
        let mut publish_duration_only = Registry::default();
        publish_duration_only.register("d", "", publish_duration.clone());
        let store_errors = StoreErrors::default();
        registry.register_collector(Box::new(HubCollector {
            hub,
            store_errors: store_errors.clone(),
        }));
        Metrics {
            shared: Arc::new(Shared {
                registry,
                connections,
                bytes_written,
                publish_duration,
                publish_duration_only,
                store_errors,
            }),
        }
    }

    /// Counts a connection whose protocol is now known (its first request
    /// arrived); it counts as open until the returned guard drops.
    pub(crate) fn connection_opened(&self, protocol: Protocol, tls: bool) -> OpenConnection {
        let pair = &self.shared.connections[protocol as usize][usize::from(tls)];
        pair.total.inc();
        pair.open.inc();
        OpenConnection {
            open: pair.open.clone(),
        }
    }

    /// The `herald_bytes_written_total` handle, for an event stream to add
    /// its frames to.
    pub(crate) fn bytes_written(&self) -> Counter {
        self.shared.bytes_written.clone()
    }

    /// Records a publish the store acknowledged, for a request that
    /// arrived at `arrived`.
    pub(crate) fn publish_acknowledged(&self, arrived: Instant) {
        self.shared
            .publish_duration
            .observe(arrived.elapsed().as_secs_f64());
    }

    /// Counts a store failure a route answered with a 503.
    pub(crate) fn store_failed(&self, op: StoreOp) {
        let errors = &self.shared.store_errors;
        match op {
            StoreOp::Append => errors.append.inc(),
            StoreOp::Read => errors.read.inc(),
        };
    }

    /// The HTTP side's counters now (a few atomic loads, and the publish
    /// histogram written out and read back: about a kilobyte).
    pub(crate) fn counts(&self) -> HttpCounts {
        let shared = &self.shared;
        let connections_open = shared
            .connections
            .iter()
            .flatten()
            .map(|pair| u64::try_from(pair.open.get()).unwrap_or(0))
            .sum();
        let mut text = String::with_capacity(1024);
        let mut counts = HttpCounts {
            connections_open,
            bytes_written: shared.bytes_written.get(),
            store_errors_append: shared.store_errors.append.get(),
            store_errors_read: shared.store_errors.read.get(),
            ..HttpCounts::default()
        };
        // Only a collector can fail, and this registry has none.
        if prometheus_client::encoding::text::encode_registry(
            &mut text,
            &shared.publish_duration_only,
        )
        .is_ok()
        {
            for line in text.lines() {
                let Some((name, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                if name == "d_sum" {
                    counts.publish_seconds = value.parse().unwrap_or(0.0);
                } else if name == "d_count" {
                    counts.publishes_timed = value.parse().unwrap_or(0);
                } else if let Some(le) = name
                    .strip_prefix("d_bucket{le=\"")
                    .and_then(|rest| rest.strip_suffix("\"}"))
                {
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::NAN)
                    };
                    counts
                        .publish_buckets
                        .push((le, value.parse().unwrap_or(0)));
                }
            }
        }
        counts
    }
    /// Every metric, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub(crate) fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.shared.registry)?;
        Ok(out)
    }
}

/// The hub's counters, read from [`Hub::stats`] at each scrape, plus the
/// routes' store errors (one family with the hub's).
#[derive(Debug)]
struct HubCollector {
    hub: Hub,
    store_errors: StoreErrors,
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stats = self.hub.stats();
        let encoder = &mut encoder;
        gauge(
            encoder,
            "subscribers",
            "Subscribers connected now.",
            stats.subscribers,
        )?;
        counter(
            encoder,
            "subscriptions",
            "Subscriptions opened since start.",
            stats.subscriptions_total,
        )?;
        counter(
            encoder,
            "published",
            "Updates published (acknowledged by the store) since start.",
            stats.published,
        )?;
        counter(
            encoder,
            "delivered",
            "Frames queued to subscribers (live fan-out).",
            stats.delivered,
        )?;
        counter(
            encoder,
            "lagged",
            "Subscribers cut off for falling too far behind, when cut off.",
            stats.lagged,
        )?;
        counter(
            encoder,
            "gaps",
            "Resumes from an unknown, trimmed or unreadable id, and replays cut by trimming (reported in-band).",
            stats.gaps,
        )?;
        counter(
            encoder,
            "store_follow_retries",
            "Times the live log was followed again after a store error.",
            stats.follow_retries,
        )?;
        let ended = stats.disconnects;
        counter_family(
            encoder,
            "disconnects",
            "Event streams ended, by reason.",
            "reason",
            &[
                ("client_gone", ended.client_gone),
                ("lagging", ended.lagged),
                ("token_expired", ended.expired),
                ("shutdown", ended.shutdown),
                ("resync", ended.resync),
            ],
        )?;
        counter_family(
            encoder,
            "store_errors",
            "Store operations that failed, by operation (append, read, follow).",
            "op",
            &[
                ("append", self.store_errors.append.get()),
                ("read", self.store_errors.read.get() + stats.replay_errors),
                ("follow", stats.follow_retries),
            ],
        )
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter_family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> Result<(), fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, count) in values {
        let labels = [(label, value)];
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
