//! Exit codes, mapped in one place.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the command failed (the reason is printed on stderr) |
//! | 2 | bad command line (printed by clap) |
//! | 3 | a `--timeout` ran out (`herald tail`) |

use std::process::ExitCode;
use std::time::Duration;

/// A command's overall `--timeout` ran out: exit code 3, so scripts can
/// tell "nothing came in time" from a failure.
#[derive(Debug)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timed out after {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// Prints a failure as one line on stderr and turns it into the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.is::<TimedOut>() => {
            eprintln!("herald: {err}");
            ExitCode::from(3)
        }
        Err(err) => {
            eprintln!("herald: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `herald decode | head` closes our stdout early: that is the reader's
/// choice, not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
