//! `herald-bench`: the load generator on its own, for `bench/run` and for
//! hubs other than Herald. `herald bench` is the same engine.

use std::process::ExitCode;

use clap::Parser;
use herald_bench::BenchArgs;

/// Load generator for Server-Sent Events hubs.
#[derive(Parser, Debug)]
#[command(name = "herald-bench", version, about)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(herald_bench::WORKER_SUBCOMMAND) {
        return match herald_bench::worker_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("herald-bench worker: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    let json = cli.bench.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("herald-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(herald_bench::run(cli.bench)) {
        Ok(report) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(error) => {
                        eprintln!("herald-bench: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("herald-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
