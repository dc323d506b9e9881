//! The `herald` command: a thin `main` that parses the command line and
//! hands each subcommand to its own module in [`cmd`].

mod cmd;
mod exit;

use clap::Parser;

/// Herald: Server-Sent Events, from hub to terminal.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    exit::report(cmd::run(cli.command))
}
