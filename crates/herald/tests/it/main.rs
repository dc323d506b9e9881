//! End-to-end tests of the `herald` binary, run as a user runs it.

mod bench;
mod decode;
mod durability;
mod edge;
mod publish;
mod tail;
mod token;

use std::process::Command;

/// The `herald` binary built for this test run.
pub fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}
