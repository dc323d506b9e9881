//! One module per subcommand, each owning its clap `Args` and its `run`.

mod decode;

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    Decode(decode::Args),
}

/// Runs a subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Decode(args) => decode::run(args),
    }
}
