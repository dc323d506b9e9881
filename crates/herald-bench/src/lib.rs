//! A load generator for Server-Sent Events hubs: the engine of `herald bench`.
//!
//! It opens N subscriptions (raw TCP and a hand-written HTTP/1.1 `GET`, spread
//! over source addresses 127.0.0.1–127.0.0.K, over the nodes of a hub when
//! given several URLs, and, when one process cannot hold N sockets, over
//! child processes), publishes events at a rate R or as
//! fast as the hub answers, and decodes every stream with
//! [`herald_proto::Decoder`], the project's one SSE parser. Each event's data
//! carries a per-topic sequence number and its send time, so the subscribers
//! measure publish→receive latency (an HDR histogram) and count gaps and
//! duplicates. With `--gzip` the subscribers ask for compressed streams and
//! inflate them first, and the report sets the bytes on the wire beside the
//! inflated ones. The [`Report`] adds connect rate, deliveries per second,
//! the bytes received, the hub's RSS per subscriber and CPU (given its
//! pids; per node too, [`NodeReport`]), the generator's own CPU time, and
//! how busy each CPU of the machine was (and how much the hypervisor stole)
//! while measuring.
//!
//! It speaks to Herald (the Mercure protocol) and to the peers we compare
//! against: nginx + nchan, and "raw" hubs that take the event as the body of
//! a `POST` (the naive axum hub, the tutorial express hub).
//!
//! ```no_run
//! use clap::Parser;
//! use herald_bench::BenchArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     bench: BenchArgs,
//! }
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let cli = Cli::parse_from([
//!     "bench",
//!     "http://127.0.0.1:8080/.well-known/mercure?match=/t/{i}",
//!     "--subscribers", "1000",
//!     "--rate", "100",
//! ]);
//! let report = herald_bench::run(cli.bench).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # Wiring it into a binary
//!
//! A binary exposes two entry points:
//!
//! - a subcommand whose arguments are [`BenchArgs`] (flattened), which calls
//!   [`run`] and prints the [`Report`] (`Display` for people, one
//!   `serde_json` line when [`BenchArgs::json`] is set);
//! - a hidden subcommand named [`WORKER_SUBCOMMAND`], taking no arguments,
//!   which calls [`worker_main`]. With `--processes P > 1` the generator
//!   re-executes `std::env::current_exe()` with that one argument to start
//!   each worker, so the name must be the binary's first argument.
//!
//! # Limits
//!
//! Targets must be loopback addresses unless `--allow-remote` is given; a run
//! lasts at most [`MAX_DURATION_SECS`] seconds; the connection count is capped
//! by `--max-connections`. The generator raises its open-files limit to the
//! hard limit and refuses an N that the processes cannot hold.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
mod engine;
mod fleet;
mod gzip;
mod http1;
mod limits;
mod payload;
mod procfs;
mod progress;
mod publisher;
mod report;
mod shard;
mod stats;
mod subscriber;
mod target;

pub use args::{BenchArgs, PublishFormat, MAX_DURATION_SECS, MAX_URLS};
pub use limits::raise_nofile;
pub use payload::PayloadKind;
pub use report::{BytesReport, HubProcess, MachineCpu, NodeReport, Report, StormReport};
pub use shard::{worker_main, WORKER_SUBCOMMAND};

/// Runs a benchmark to completion and returns its report.
///
/// The work runs on a dedicated thread with its own single-threaded Tokio
/// runtime (subscriber tasks are `!Send` and share counters without atomics),
/// so the caller may await this from any runtime.
///
/// # Errors
///
/// Invalid arguments, a non-loopback target without `--allow-remote`, a
/// target that cannot be resolved, more subscribers than the processes can
/// hold, or a worker process that fails.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("herald-bench".into())
        .spawn(move || {
            let result = engine::block_on_local(engine::run(args));
            let _ = tx.send(result);
        })?;
    rx.await
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
}
