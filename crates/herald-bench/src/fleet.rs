//! The fleet: all subscribers of a run, held in this process or sharded over
//! worker processes, behind one interface for the engine.

use std::path::PathBuf;

use crate::shard::{ToWorker, Worker};
use crate::stats::{Counters, FinalStats, Latency};
use crate::subscriber::{SubscriberConfig, SubscriberSet};

/// Every subscriber of the run.
pub enum Fleet {
    /// All in this process.
    Local(SubscriberSet),
    /// Sharded over child processes.
    Workers(Vec<Worker>),
}

/// The fleet's totals at the end.
pub struct Tally {
    /// Summed counters and missing events; CPU of the workers only.
    pub stats: FinalStats,
    /// Merged latencies.
    pub latency: Latency,
    /// The first connection error any process saw.
    pub first_error: Option<String>,
}

impl Fleet {
    /// Starts `config.count` subscribers over `processes` processes (1: in
    /// this one), workers started from `exe`.
    pub async fn start(
        config: SubscriberConfig,
        processes: usize,
        exe: Option<PathBuf>,
    ) -> anyhow::Result<Fleet> {
        if processes <= 1 {
            return Ok(Fleet::Local(SubscriberSet::start(config)));
        }
        let exe = match exe {
            Some(exe) => exe,
            None => std::env::current_exe()?,
        };
        let mut workers = Vec::with_capacity(processes);
        let per = config.count.div_ceil(processes);
        for p in 0..processes {
            let first = p * per;
            let count = per.min(config.count.saturating_sub(first));
            if count == 0 {
                break;
            }
            let shard = SubscriberConfig {
                first: config.first + first,
                count,
                ..config.clone()
            };
            workers.push(Worker::spawn(&exe, shard).await?);
        }
        Ok(Fleet::Workers(workers))
    }

    /// The counters so far, summed.
    pub async fn counters(&mut self) -> anyhow::Result<Counters> {
        match self {
            Fleet::Local(set) => Ok(set.counters()),
            Fleet::Workers(workers) => {
                let mut total = Counters::default();
                for worker in workers.iter_mut() {
                    worker.poll().await?;
                    total.add(&worker.counters);
                }
                Ok(total)
            }
        }
    }

    /// Opens or closes the measurement window.
    pub async fn set_measuring(&mut self, on: bool) -> anyhow::Result<()> {
        match self {
            Fleet::Local(set) => set.set_measuring(on),
            Fleet::Workers(workers) => {
                for worker in workers {
                    worker.command(&ToWorker::Measure { on }).await?;
                }
            }
        }
        Ok(())
    }

    /// Drops and reconnects every subscription.
    pub async fn storm(&mut self) -> anyhow::Result<()> {
        match self {
            Fleet::Local(set) => set.storm(),
            Fleet::Workers(workers) => {
                for worker in workers {
                    worker.command(&ToWorker::Storm).await?;
                }
            }
        }
        Ok(())
    }

    /// Closes everything and totals the run.
    pub async fn finish(self, published: &[u64]) -> anyhow::Result<Tally> {
        let mut tally = Tally {
            stats: FinalStats::default(),
            latency: Latency::default(),
            first_error: None,
        };
        let mut absorb = |stats: FinalStats, first_error: Option<String>| {
            tally.stats.counters.add(&stats.counters);
            tally.stats.missing += stats.missing;
            let per_target = &mut tally.stats.established_per_target;
            if per_target.len() < stats.established_per_target.len() {
                per_target.resize(stats.established_per_target.len(), 0);
            }
            for (total, n) in per_target.iter_mut().zip(&stats.established_per_target) {
                *total += n;
            }
            tally.stats.cpu_secs += stats.cpu_secs;
            tally.latency.add_pairs(&stats.latency);
            if tally.first_error.is_none() {
                tally.first_error = first_error;
            }
        };
        match self {
            Fleet::Local(set) => {
                let first_error = set.first_error();
                absorb(set.finish(published), first_error);
            }
            Fleet::Workers(workers) => {
                for worker in workers {
                    let (stats, first_error) = worker.finish(published.to_vec()).await?;
                    absorb(stats, first_error);
                }
            }
        }
        Ok(tally)
    }
}
