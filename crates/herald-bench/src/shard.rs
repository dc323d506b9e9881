//! Worker processes: how subscribers are sharded when one process cannot
//! hold them all (each process is capped by its open-files limit).
//!
//! The parent re-executes `std::env::current_exe()` with the single
//! argument [`WORKER_SUBCOMMAND`]; the binary routes that to
//! [`worker_main`]. Parent and worker talk in JSON lines: commands on the
//! worker's stdin ([`ToWorker`]), counters and the final tally on its
//! stdout ([`FromWorker`]); the worker's stderr is the parent's. A worker
//! whose stdin closes (its parent died) exits, so none outlives a run.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::procfs;
use crate::stats::{Counters, FinalStats};
use crate::subscriber::{SubscriberConfig, SubscriberSet};

/// The argument that starts a worker: a binary must call [`worker_main`]
/// when it is its first argument (a hidden subcommand of that name).
pub const WORKER_SUBCOMMAND: &str = "bench-worker";

/// A command from the parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub(crate) enum ToWorker {
    /// Open these subscriptions.
    Start {
        /// The shard.
        config: SubscriberConfig,
    },
    /// Open or close the measurement window.
    Measure {
        /// Open.
        on: bool,
    },
    /// Drop and reconnect every subscription.
    Storm,
    /// Close everything and report; events per topic published.
    Finish {
        /// Events published per topic.
        published: Vec<u64>,
    },
}

/// A report from a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub(crate) enum FromWorker {
    /// Counters so far.
    Progress {
        /// The counters.
        counters: Counters,
    },
    /// The end of the run.
    Final {
        /// The tally.
        stats: FinalStats,
        /// The first connection error.
        first_error: Option<String>,
    },
}

/// Runs a worker: reads commands on stdin, reports on stdout, returns when
/// told to finish or when stdin closes.
///
/// Call it from a binary's hidden [`WORKER_SUBCOMMAND`] subcommand, outside
/// any async runtime (it starts its own single-threaded one).
///
/// # Errors
///
/// A malformed command, or stdout closing.
pub fn worker_main() -> anyhow::Result<()> {
    crate::engine::block_on_local(worker())
}

fn send(message: &FromWorker) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, message)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

async fn worker() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut set: Option<SubscriberSet> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                match serde_json::from_str::<ToWorker>(&line).context("bad worker command")? {
                    ToWorker::Start { config } => {
                        crate::limits::raise_nofile();
                        set = Some(SubscriberSet::start(config));
                    }
                    ToWorker::Measure { on } => {
                        if let Some(set) = &set {
                            set.set_measuring(on);
                        }
                    }
                    ToWorker::Storm => {
                        if let Some(set) = &set {
                            set.storm();
                        }
                    }
                    ToWorker::Finish { published } => {
                        let Some(set) = set.take() else { bail!("finish before start") };
                        let first_error = set.first_error();
                        let mut stats = set.finish(&published);
                        stats.cpu_secs = procfs::self_cpu_secs();
                        send(&FromWorker::Final { stats, first_error })?;
                        return Ok(());
                    }
                }
            }
            _ = ticker.tick() => {
                if let Some(set) = &set {
                    send(&FromWorker::Progress { counters: set.counters() })?;
                }
            }
        }
    }
}

/// One child process, as the parent sees it.
pub(crate) struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    /// The latest counters it reported.
    pub(crate) counters: Counters,
}

impl Worker {
    /// Starts a worker from `exe` and hands it its shard.
    pub(crate) async fn spawn(exe: &Path, config: SubscriberConfig) -> anyhow::Result<Worker> {
        let mut child = Command::new(exe)
            .arg(WORKER_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start worker {}", exe.display()))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut worker = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            counters: Counters::default(),
        };
        worker.command(&ToWorker::Start { config }).await?;
        Ok(worker)
    }

    /// Sends a command.
    pub(crate) async fn command(&mut self, command: &ToWorker) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .context("worker exited early")?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Reads the reports available now (without waiting), keeping the
    /// latest counters.
    pub(crate) async fn poll(&mut self) -> anyhow::Result<()> {
        loop {
            let next =
                tokio::time::timeout(Duration::from_millis(1), self.stdout.next_line()).await;
            match next {
                Err(_) => return Ok(()),
                Ok(line) => match line? {
                    None => bail!("worker exited early"),
                    Some(line) => {
                        if let FromWorker::Progress { counters } = serde_json::from_str(&line)? {
                            self.counters = counters;
                        }
                    }
                },
            }
        }
    }

    /// Tells the worker to finish and waits for its tally.
    pub(crate) async fn finish(
        mut self,
        published: Vec<u64>,
    ) -> anyhow::Result<(FinalStats, Option<String>)> {
        self.command(&ToWorker::Finish { published }).await?;
        let wait = async {
            while let Some(line) = self.stdout.next_line().await? {
                if let FromWorker::Final { stats, first_error } = serde_json::from_str(&line)? {
                    return Ok((stats, first_error));
                }
            }
            bail!("worker exited without its tally")
        };
        let result = tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .context("worker did not report in 30 s")?;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        result
    }
}
