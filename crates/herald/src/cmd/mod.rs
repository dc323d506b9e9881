//! One module per subcommand, each owning its clap `Args` and its `run`,
//! and the pieces two of them share (`end_marker`, `stream_publish`).

mod bench;
mod decode;
mod end_marker;
mod publish;
mod relay;
mod serve;
mod stream_publish;
mod tail;
mod token;

pub(crate) use token::parse_duration;

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    Serve(serve::Args),
    Decode(decode::Args),
    Tail(tail::Args),
    Publish(publish::Args),
    Relay(relay::Args),
    Token(token::Args),
    Bench(bench::Args),
}

/// Runs a subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Token(args) => token::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// When the process is a `herald bench` worker (started by the generator
/// itself, never by a person), runs it and returns its result.
pub fn bench_worker() -> Option<anyhow::Result<()>> {
    (std::env::args_os().nth(1).as_deref() == Some(herald_bench::WORKER_SUBCOMMAND.as_ref()))
        .then(bench::worker)
}
