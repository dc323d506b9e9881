//! Publish throughput and follow latency of the NATS store beside the
//! Redis store, on the same machine and the same workload: each starts its
//! own server (`nats-server -js`, `redis-server` without persistence) on a
//! free loopback port.
//!
//! ```sh
//! cargo bench -p herald-store-nats --bench publish            # about 30 s
//! ```
//!
//! Rows: appends per second and append latency for 1 and 16 concurrent
//! publishers on one handle (one node), and 8 + 8 on two handles (two
//! nodes, which contend for the log); then the delay from an append on
//! one handle to a follower on the other receiving it, at a fixed 500
//! appends per second. Samples are whole runs of `RUN` each; a benchmark,
//! never a test: it measures and prints, it does not fail.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use herald_store::testkit::sample;
use herald_store::{Cursor, NewRecord, Store};

const RUN: Duration = Duration::from_secs(3);
const FOLLOW_RATE: u64 = 500;

fn record(id: String) -> NewRecord {
    let mut record = sample(&id);
    // A typical small update: 128 bytes of data.
    record.frame = format!("id: {id}\ndata: {}\n\n", "x".repeat(128)).into();
    record
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

/// `publishers` tasks per handle append as fast as they are answered for
/// `RUN`; returns appends per second and the latencies.
async fn throughput<S: Store>(
    handles: &[Arc<S>],
    publishers: usize,
    tag: &str,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (h, handle) in handles.iter().enumerate() {
        for p in 0..publishers {
            let handle = Arc::clone(handle);
            let tag = tag.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while started.elapsed() < RUN {
                    let at = Instant::now();
                    handle
                        .append(record(format!("{tag}-{h}-{p}-{n}")))
                        .await
                        .expect("append");
                    latencies.push(at.elapsed());
                    n += 1;
                }
                latencies
            }));
        }
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

/// Appends at `FOLLOW_RATE` through `a` while following through `b`;
/// returns the append→receive delays.
async fn follow_latency<S: Store>(a: Arc<S>, b: Arc<S>, tag: &str) -> Vec<Duration> {
    let head = b.bounds().await.unwrap().head;
    let mut follower = b.follow(head);
    let receiver = tokio::spawn(async move {
        let mut delays = Vec::new();
        let deadline = Instant::now() + RUN + Duration::from_secs(2);
        while let Ok(Some(Ok(record))) =
            tokio::time::timeout_at(deadline.into(), follower.next()).await
        {
            // Both clocks are this machine's.
            let sent: u128 = std::str::from_utf8(&record.frame)
                .ok()
                .and_then(|frame| frame.split("sent=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|micros| micros.parse().ok())
                .unwrap_or(0);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros();
            delays.push(Duration::from_micros((now.saturating_sub(sent)) as u64));
        }
        delays
    });
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / FOLLOW_RATE));
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RUN {
        every.tick().await;
        let sent = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let mut r = record(format!("{tag}-f-{n}"));
        r.frame = format!("id: {tag}-f-{n}\ndata: sent={sent} {}\n\n", "x".repeat(100)).into();
        a.append(r).await.unwrap();
        n += 1;
    }
    let mut delays = receiver.await.unwrap();
    delays.sort();
    let _ = Cursor::ZERO;
    delays
}

fn row(store: &str, what: &str, rate: Option<f64>, latencies: &[Duration]) {
    let rate = rate.map_or("–".to_owned(), |rate| format!("{rate:.0}"));
    println!(
        "| {store} | {what} | {rate} | {:.2} ms | {:.2} ms | {:.2} ms |",
        percentile(latencies, 0.5).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn measure<S: Store>(name: &str, a: S, b: S) {
    let (a, b) = (Arc::new(a), Arc::new(b));
    for (what, handles, publishers) in [
        ("1 publisher, 1 node", vec![Arc::clone(&a)], 1),
        ("16 publishers, 1 node", vec![Arc::clone(&a)], 16),
        (
            "8 + 8 publishers, 2 nodes",
            vec![Arc::clone(&a), Arc::clone(&b)],
            8,
        ),
    ] {
        let tag = format!("{}-{publishers}-{}", name, handles.len());
        let (rate, latencies) = throughput(&handles, publishers, &tag).await;
        row(name, what, Some(rate), &latencies);
    }
    let delays = follow_latency(Arc::clone(&a), Arc::clone(&b), name).await;
    row(
        name,
        "append on node 1 → follower on node 2, 500/s",
        None,
        &delays,
    );
}

#[tokio::main]
async fn main() {
    println!("| store | workload | appends/s | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let nats = herald_store_nats::testkit::NatsServer::start();
    let name = herald_store_nats::testkit::fresh_name();
    measure("NATS", nats.store(&name).await, nats.store(&name).await).await;
    drop(nats);
    let redis = herald_store_redis::testkit::RedisServer::start();
    let prefix = herald_store_redis::testkit::fresh_prefix();
    measure(
        "Redis",
        redis.store(&prefix).await,
        redis.store(&prefix).await,
    )
    .await;
}
