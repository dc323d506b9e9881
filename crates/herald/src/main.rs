//! The `herald` command: a thin `main` that parses the command line and
//! hands each subcommand to its own module in [`cmd`].

// The doc comments of this crate are mostly `--help` texts, read in a
// terminal: a URL there is plain text, not a rustdoc link.
#![allow(rustdoc::bare_urls)]

/// mimalloc rather than glibc's malloc: a reconnect storm frees and makes
/// tens of thousands of connections' state at once, where glibc's
/// consolidation showed in the profile; measured 1.15–1.28× the storm's
/// accepts and 7% less CPU per delivery in a fan-out, memory per idle
/// subscriber within noise (docs/performance.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod config;
mod exit;
mod local_hub;
mod local_key;
mod logging;

use clap::Parser;

/// Herald: Server-Sent Events, from hub to terminal.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    /// How diagnostics on standard error are written (`RUST_LOG` sets
    /// their level).
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    if let Some(result) = cmd::bench_worker() {
        return exit::report(result);
    }
    let cli = Cli::parse();
    let default_level = match cli.command {
        cmd::Command::Serve(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log_format, default_level);
    exit::report(cmd::run(cli.command))
}
