//! The progress line on stderr: one line rewritten in place, only when
//! stderr is a terminal (never in logs or pipes).

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use crate::stats::Counters;

/// Draws the progress line.
pub struct Progress {
    enabled: bool,
    started: Instant,
    last_deliveries: u64,
    last_at: Instant,
}

impl Progress {
    /// A progress line, drawn if stderr is a terminal.
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: now,
            last_deliveries: 0,
            last_at: now,
        }
    }

    /// Redraws the line for `phase` with the latest counters.
    pub fn update(&mut self, phase: &str, target: usize, counters: &Counters) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        let per_sec = counters.deliveries.saturating_sub(self.last_deliveries) as f64 / dt;
        self.last_deliveries = counters.deliveries;
        self.last_at = now;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:>6.1}s {phase:<10} connected {}/{target} failed {} | delivered {} ({:.0}/s) gaps {}",
            self.started.elapsed().as_secs_f64(),
            counters.established,
            counters.failed,
            counters.deliveries,
            per_sec,
            counters.gaps,
        );
        let _ = err.flush();
    }

    /// Clears the line.
    pub fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}
