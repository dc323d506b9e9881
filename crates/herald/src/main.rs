//! The `herald` command: a thin `main` that parses the command line and
//! hands each subcommand to its own module in [`cmd`].

// The doc comments of this crate are mostly `--help` texts, read in a
// terminal: a URL there is plain text, not a rustdoc link.
#![allow(rustdoc::bare_urls)]

mod cmd;
mod config;
mod exit;
mod token;

use clap::Parser;

/// Herald: Server-Sent Events, from hub to terminal.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    if let Some(result) = cmd::bench_worker() {
        return exit::report(result);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    exit::report(cmd::run(cli.command))
}
