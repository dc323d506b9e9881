//! Crash safety at the library level: a child process appends under
//! concurrent load and is killed with SIGKILL at a random moment, several
//! rounds in a row; after each, every append it acknowledged must be there.
//!
//! The child is this test binary itself, re-executed to run the ignored
//! test [`child_appends_until_killed`] (a separate `[[bin]]` would need its
//! own build; the test binary is already built and its path is known).
//! It prints `ack <cursor> <id>` for each acknowledged append, flushed,
//! after `append` returned and before anything else.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_store::{Cursor, Store};
use herald_store_disk::Durability;

/// The child's data directory; its presence is what makes the child run.
const DIR_ENV: &str = "HERALD_STORE_DISK_CRASH_DIR";
const ROUND_ENV: &str = "HERALD_STORE_DISK_CRASH_ROUND";
const DURABILITY_ENV: &str = "HERALD_STORE_DISK_CRASH_DURABILITY";
const TASKS: usize = 16;

/// The child: appends with 16 concurrent tasks until killed.
#[test]
#[ignore = "the child process of acknowledged_appends_survive_sigkill"]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let round = std::env::var(ROUND_ENV).expect("round");
    let durability: Durability = std::env::var(DURABILITY_ENV)
        .expect("durability")
        .parse()
        .expect("a durability");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = super::open(Path::new(&dir), durability);
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let store = store.clone();
                let round = round.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let id = format!("r{round}-t{task}-{i}");
                        let record = store
                            .append(herald_store::testkit::sample(&id))
                            .await
                            .expect("append");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {} {id}", record.cursor).expect("stdout");
                        out.flush().expect("flush");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("appender");
        }
    });
}

/// One acknowledged append, as the child reported it.
#[derive(Debug)]
struct Ack {
    cursor: Cursor,
    id: String,
}

/// Runs the child once against `dir` and kills it with SIGKILL `delay`
/// after its first acknowledgement; returns what it acknowledged.
fn run_child(dir: &Path, round: usize, durability: Durability, delay: Duration) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash::child_appends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .env(DURABILITY_ENV, durability.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let mut stdout = child.stdout.take().expect("child stdout");
    let (started_tx, started_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut output = Vec::new();
        let mut chunk = [0; 64 * 1024];
        let mut started = Some(started_tx);
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => output.extend_from_slice(&chunk[..n]),
            }
            if started.is_some() && output.windows(4).any(|w| w == b"ack ") {
                let _ = started.take().map(|tx| tx.send(()));
            }
        }
        output
    });
    if started_rx.recv_timeout(Duration::from_secs(30)).is_err() {
        // Never leave the child appending behind a failed test.
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child acknowledged nothing within 30 s");
    }
    std::thread::sleep(delay);
    // `Child::kill` is SIGKILL on Unix: no destructor, no final sync runs.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let output = reader.join().expect("reader thread");

    // Only complete lines count: a line cut by the kill is dropped (it was
    // acknowledged, but leaving it out only makes the check weaker).
    let complete = match output.iter().rposition(|&b| b == b'\n') {
        Some(end) => &output[..end],
        None => &output[..0],
    };
    String::from_utf8_lossy(complete)
        .lines()
        .filter_map(|line| line.strip_prefix("ack "))
        .map(|ack| {
            let (cursor, id) = ack.split_once(' ').expect("ack line");
            Ack {
                cursor: Cursor::new(cursor.parse().expect("cursor")),
                id: id.to_owned(),
            }
        })
        .collect()
}

/// A small xorshift generator: random kill times without a dependency,
/// reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    /// Seeded from `HERALD_STORE_DISK_CRASH_SEED` if set (to replay a
    /// failure with the seed it printed), else from the clock.
    fn from_clock() -> Self {
        if let Some(seed) = std::env::var("HERALD_STORE_DISK_CRASH_SEED")
            .ok()
            .and_then(|seed| seed.parse::<u64>().ok())
        {
            return Rng(seed | 1);
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        Rng(nanos | 1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low + 1)
    }
}

/// Reopens `dir` and returns the whole log as cursor → id, checking it is
/// strictly ordered and free of duplicate ids.
fn reopen_and_read(dir: &Path, durability: Durability) -> BTreeMap<Cursor, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = super::open(dir, durability);
        let log = super::everything(&store).await;
        let mut ids = HashSet::new();
        let mut by_cursor = BTreeMap::new();
        for (i, record) in log.iter().enumerate() {
            if i > 0 {
                assert!(log[i - 1].cursor < record.cursor, "log out of order");
            }
            assert!(ids.insert(record.id.clone()), "duplicate id {}", record.id);
            by_cursor.insert(record.cursor, record.id.to_string());
        }
        store.close().await.expect("close");
        by_cursor
    })
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng::from_clock();
    eprintln!("crash test seed: {}", rng.0);
    let mut acked: Vec<Ack> = Vec::new();
    let mut previous_max = Cursor::ZERO;
    for round in 0..5 {
        let delay = Duration::from_millis(rng.between(200, 800));
        let acks = run_child(dir.path(), round, Durability::Fsync, delay);
        assert!(!acks.is_empty(), "round {round}: nothing acknowledged");
        let log = reopen_and_read(dir.path(), Durability::Fsync);
        let round_min = acks.iter().map(|ack| ack.cursor).min().expect("acks");
        assert!(
            round_min > previous_max,
            "round {round}: cursor {round_min} reused (the log had reached {previous_max})"
        );
        acked.extend(acks);
        for ack in &acked {
            assert_eq!(
                log.get(&ack.cursor),
                Some(&ack.id),
                "round {round}: acknowledged append {ack:?} is missing after SIGKILL"
            );
        }
        previous_max = *log.keys().next_back().expect("non-empty log");
        eprintln!(
            "round {round}: killed after {delay:?}, {} acknowledged in total, {} in the log",
            acked.len(),
            log.len()
        );
    }
}

/// With `Durability::Deferred`, a SIGKILL may lose acknowledged appends, but
/// only the newest ones (what survives is a prefix), the file reopens, and
/// the lost records' cursors are never handed out again.
#[test]
fn unsynced_crash_loses_only_a_suffix_and_reuses_no_cursor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng::from_clock();
    let mut max_acked = Cursor::ZERO;
    for round in 0..2 {
        let delay = Duration::from_millis(rng.between(200, 800));
        let acks = run_child(dir.path(), round, Durability::Deferred, delay);
        assert!(!acks.is_empty(), "round {round}: nothing acknowledged");
        let round_min = acks.iter().map(|ack| ack.cursor).min().expect("acks");
        assert!(
            round_min > max_acked,
            "round {round}: cursor {round_min} handed out again (acknowledged up to {max_acked})"
        );
        let log = reopen_and_read(dir.path(), Durability::Deferred);
        let survived = log
            .keys()
            .copied()
            .filter(|&cursor| cursor >= round_min)
            .max();
        for ack in &acks {
            match survived {
                Some(last) if ack.cursor <= last => assert_eq!(
                    log.get(&ack.cursor),
                    Some(&ack.id),
                    "round {round}: {ack:?} lost although a later record survived"
                ),
                _ => assert!(!log.contains_key(&ack.cursor), "round {round}: {ack:?}"),
            }
        }
        max_acked = acks.iter().map(|ack| ack.cursor).max().expect("acks");
    }
}
