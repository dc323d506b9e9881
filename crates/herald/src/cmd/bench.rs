//! `herald bench`: the load generator (`herald-bench`) as a subcommand.
//!
//! The engine lives in its own crate so that `bench/run` can also build it
//! alone; this module only runs it and prints the report.

use anyhow::Context as _;

/// Measure an SSE hub: N subscribers, publishes at a rate R (or as fast as
/// the hub answers); reports connections, deliveries/s, publish→receive
/// latency percentiles, gaps and duplicates, and the hub's memory per
/// subscriber (given its pid).
///
/// Example, against a local `herald serve` (token in herald-data/publisher.token):
///
///   herald bench 'http://127.0.0.1:8080/.well-known/mercure?match=/t/{i}' \
///     --subscribers 1000 --topics 1 --rate 100 --duration 10 --token "$(cat herald-data/publisher.token)"
///
/// Targets must be on loopback unless --allow-remote is given; every run is
/// bounded in time and in connections. See bench/README.md for the
/// side-by-side scenarios.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    bench: herald_bench::BenchArgs,
}

/// Runs the benchmark and prints its report (one JSON line with `--json`).
pub fn run(args: Args) -> anyhow::Result<()> {
    let json = args.bench.json;
    // The generator is built for one thread per process (workers add more).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(herald_bench::run(args.bench))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

/// The hidden worker mode `herald bench --processes P` starts its shards in.
pub fn worker() -> anyhow::Result<()> {
    herald_bench::worker_main()
}
