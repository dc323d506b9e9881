//! Append load: events/s and p50/p99 append latency for the disk store
//! (fsync and none) and the in-memory store, with 1, 16 and 256 concurrent
//! publishers, printed as a Markdown table.
//!
//! ```text
//! cargo run --release -p herald-store-disk --example append_load -- \
//!     [--seconds 3] [--dir DIR] [--publishers 1,16,256] [--durability none,fsync]
//!     [--no-memory] [--ids ordered|random] [--cache-mib 64]
//! ```
//!
//! Each configuration gets a fresh store (in a temp dir under `--dir`, by
//! default the system temp dir: put it on the disk you want to measure),
//! half a second of warm-up, then `--seconds` of load; every publisher is a
//! task that appends in a loop, one append in flight at a time, as an HTTP
//! publisher awaiting its `200` does. Latency is measured per append, from
//! the call to its answer. The criterion bench (`benches/append.rs`)
//! measures the same throughput with statistics; this adds the percentiles.

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_store::{Cursor, MemoryStore, Store};
use herald_store_disk::{DiskOptions, DiskStore, Durability};
use workload::{record, Ids};

/// What one run measured.
struct Run {
    appends: u64,
    elapsed: Duration,
    /// Per-append latencies, sorted.
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(at).copied().unwrap_or_default()
    }
}

/// `publishers` tasks append in a loop for `warmup + measure`; only appends
/// that start after the warm-up count.
///
/// The clock is a plain thread sleep, not a Tokio timer: with the in-memory
/// store, `append` never suspends, and publishers that busy every worker
/// would keep the runtime from ever firing a timer. Each publisher yields
/// after each append, as an HTTP handler does on its socket, so that 256
/// publishers share the workers instead of the first two running alone.
fn load<S: Store + Clone>(
    runtime: &tokio::runtime::Runtime,
    ids: Ids,
    store: S,
    publishers: usize,
    warmup: Duration,
    measure: Duration,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + warmup;
    let tasks: Vec<_> = (0..publishers)
        .map(|publisher| {
            let store = store.clone();
            let stop = Arc::clone(&stop);
            runtime.spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    store
                        .append(record(ids, publisher, i))
                        .await
                        .expect("append");
                    if began >= start {
                        latencies.push(began.elapsed());
                    }
                    i += 1;
                    tokio::task::yield_now().await;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(warmup + measure);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(runtime.block_on(task).expect("publisher"));
    }
    latencies.sort_unstable();
    Run {
        appends: latencies.len() as u64,
        elapsed,
        latencies,
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

/// p50 and p99 of `fdatasync` after a 4 KiB write in `dir`: the disk's own
/// floor for one durable commit, printed beside the table because it moves
/// with whatever else the machine is writing.
fn fsync_probe(dir: &std::path::Path) -> (Duration, Duration) {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let mut times = Vec::with_capacity(200);
    for i in 0..200u64 {
        file.seek(SeekFrom::Start((i % 16) * 4096)).expect("seek");
        file.write_all(&[i as u8; 4096]).expect("write");
        let began = Instant::now();
        file.sync_data().expect("fdatasync");
        times.push(began.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    times.sort_unstable();
    (times[100], times[198])
}

/// Median of `samples` runs of `f`, for the read-path overheads.
async fn median_of<F, Fut>(samples: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let began = Instant::now();
        f().await;
        times.push(began.elapsed());
    }
    times.sort_unstable();
    times[samples / 2]
}

fn main() {
    let mut seconds = 3.0;
    let mut dir: Option<PathBuf> = None;
    let mut publishers_list: Vec<usize> = vec![1, 16, 256];
    let mut durabilities = vec![Durability::Deferred, Durability::Fsync];
    let mut with_memory = true;
    let mut ids = Ids::Ordered;
    let mut cache_mib = DiskOptions::default().cache_size >> 20;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds N")
            }
            "--dir" => dir = Some(args.next().expect("--dir DIR").into()),
            "--publishers" => {
                publishers_list = args
                    .next()
                    .expect("--publishers N,N,...")
                    .split(',')
                    .map(|n| n.parse().expect("a number of publishers"))
                    .collect()
            }
            "--no-memory" => with_memory = false,
            "--ids" => {
                ids = match args.next().as_deref() {
                    Some("ordered") => Ids::Ordered,
                    Some("random") => Ids::Random,
                    other => panic!("--ids ordered|random, not {other:?}"),
                }
            }
            "--cache-mib" => {
                cache_mib = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--cache-mib N")
            }
            "--durability" => {
                durabilities = args
                    .next()
                    .expect("--durability none,fsync")
                    .split(',')
                    .map(|d| d.parse().expect("fsync or none"))
                    .collect()
            }
            other => panic!(
                "unknown argument {other:?} \
                 (use --seconds N, --dir DIR, --publishers 1,16,256, --durability none,fsync, \
                 --no-memory, --ids ordered|random, --cache-mib N)"
            ),
        }
    }
    let measure = Duration::from_secs_f64(seconds);
    let warmup = Duration::from_millis(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let temp = |label: &str| {
        match &dir {
            Some(dir) => tempfile::Builder::new().prefix(label).tempdir_in(dir),
            None => tempfile::Builder::new().prefix(label).tempdir(),
        }
        .expect("temp dir")
    };

    let probe_dir = temp("herald-fsync-probe-");
    let probe = |when: &str| {
        let (p50, p99) = fsync_probe(probe_dir.path());
        println!(
            "fsync probe ({when}): 4 KiB write + fdatasync p50 {} µs, p99 {} µs",
            micros(p50),
            micros(p99)
        );
    };
    probe("before");
    println!();
    println!(
        "| store | publishers | appends | events/s | vs memory | p50 µs | p99 µs | records/commit |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &publishers in &publishers_list {
        let memory = with_memory.then(|| {
            load(
                &runtime,
                ids,
                MemoryStore::new(),
                publishers,
                warmup,
                measure,
            )
        });
        let row = |name: &str, run: &Run, per_commit: Option<f64>| {
            println!(
                "| {name} | {publishers} | {} | {:.0} | {} | {} | {} | {} |",
                run.appends,
                run.rate(),
                memory.as_ref().map_or("–".to_owned(), |memory| format!(
                    "{:.3}",
                    run.rate() / memory.rate()
                )),
                micros(run.percentile(0.50)),
                micros(run.percentile(0.99)),
                per_commit.map_or("–".to_owned(), |n| format!("{n:.1}")),
            )
        };
        if let Some(memory) = &memory {
            row("memory", memory, None);
        }
        for &durability in &durabilities {
            let dir = temp("herald-append-load-");
            let options = DiskOptions {
                durability,
                cache_size: cache_mib << 20,
                ..DiskOptions::default()
            };
            let store = DiskStore::open(dir.path(), options).expect("open");
            let run = load(&runtime, ids, store.clone(), publishers, warmup, measure);
            let stats = store.stats();
            let per_commit = stats.appended as f64 / stats.append_commits.max(1) as f64;
            row(&format!("disk, {durability}"), &run, Some(per_commit));
            runtime.block_on(store.close()).expect("close");
        }
    }

    println!();
    probe("after");

    // The read path's cost, behind the choice of `spawn_blocking` for reads.
    let dir = temp("herald-read-cost-");
    let store = DiskStore::open(dir.path(), DiskOptions::default()).expect("open");
    runtime.block_on(async {
        let records = (0..1000).map(|i| record(Ids::Random, 0, i)).collect();
        store.append_batch(records).await.expect("append");
        let read_one = median_of(2001, || async {
            store.read_after(Cursor::new(500), 1).await.expect("read");
        })
        .await;
        let read_batch = median_of(2001, || async {
            store.read_after(Cursor::new(500), 256).await.expect("read");
        })
        .await;
        let hand_off = median_of(2001, || async {
            tokio::task::spawn_blocking(|| ()).await.expect("join");
        })
        .await;
        // The same one-record read done inline, on a bare redb table of the
        // same shape: what reading without the hand-off would cost.
        let raw_dir = temp("herald-raw-read-");
        let raw = redb::Database::create(raw_dir.path().join("raw.redb")).expect("raw db");
        let table: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("events");
        let txn = raw.begin_write().expect("write");
        {
            let mut events = txn.open_table(table).expect("table");
            for cursor in 1..=1000u64 {
                events
                    .insert(cursor, [7u8; 250].as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        let inline = median_of(2001, || async {
            let txn = raw.begin_read().expect("read");
            let events = txn.open_table(table).expect("table");
            let mut range = events.range(501..).expect("range");
            let (_, value) = range.next().expect("a record").expect("read");
            std::hint::black_box(bytes::Bytes::copy_from_slice(value.value()));
        })
        .await;
        println!();
        println!("| read path (hot cache, median) | µs |");
        println!("| --- | ---: |");
        println!(
            "| `read_after(c, 1)` | {:.1} |",
            read_one.as_secs_f64() * 1e6
        );
        println!(
            "| `read_after(c, 256)` | {:.1} |",
            read_batch.as_secs_f64() * 1e6
        );
        println!(
            "| `spawn_blocking` hand-off alone (empty closure) | {:.1} |",
            hand_off.as_secs_f64() * 1e6
        );
        println!(
            "| one-record read inline on a bare redb table | {:.1} |",
            inline.as_secs_f64() * 1e6
        );
    });
}
