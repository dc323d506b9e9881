//! One module per subcommand, each owning its clap `Args` and its `run`.

mod decode;
mod publish;
mod serve;
mod tail;
mod token;

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    Serve(serve::Args),
    Decode(decode::Args),
    Tail(tail::Args),
    Publish(publish::Args),
    Token(token::Args),
}

/// Runs a subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Token(args) => token::run(args),
    }
}
