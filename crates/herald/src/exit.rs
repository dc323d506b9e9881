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
            eprintln!("herald: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: ` (as `{:#}` does), except a
/// cause whose text already ends the line: some errors (a Redis client's,
/// for one) print their source in their own `Display` and return it from
/// `source()` as well, which `{:#}` would print twice.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
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

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug)]
    struct Echoing(std::io::Error);

    impl std::fmt::Display for Echoing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot reach redis: {}", self.0)
        }
    }

    impl std::error::Error for Echoing {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        let err = anyhow::Error::new(Echoing(std::io::Error::other("refused")))
            .context("cannot use the Redis at redis://x/");
        assert_eq!(
            one_line(&err),
            "cannot use the Redis at redis://x/: cannot reach redis: refused"
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&err), "outer: inner");
    }
}
