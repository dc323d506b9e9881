//! The diagnostics on standard error: `tracing` events, as text for a
//! person or as JSON lines for a log shipper (`--log-format json`).
//!
//! `RUST_LOG` (an `EnvFilter` directive such as `herald_server=debug`)
//! overrides the level, which is `info` for `herald serve` (what an
//! operator wants from a service: listening, shutdown, lagging
//! subscribers, store faults) and `warn` for the one-shot commands, whose
//! output is their result.

use std::io::IsTerminal as _;

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`,
    /// and the spans it happened in.
    Json,
}

/// Installs the global subscriber; `default_level` applies unless
/// `RUST_LOG` says otherwise.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
