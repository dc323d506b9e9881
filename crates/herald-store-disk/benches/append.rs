//! Append throughput (criterion): durable appends/s with 1, 16 and 256
//! concurrent publishers, fsync on, beside `Durability::Deferred` and the
//! in-memory store in the same run.
//!
//! ```text
//! cargo bench -p herald-store-disk --bench append
//! ```
//!
//! Each iteration is one append; `iter_custom` splits the iterations over
//! the publishers (tasks, one append in flight each) and times the whole, so
//! the reported throughput is the aggregate. Latency percentiles come from
//! the `append_load` example, which appends the same records (`workload`),
//! here with time-ordered ids (see `append_load --ids random` for random
//! ones).

mod workload;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald_store::{MemoryStore, Store};
use herald_store_disk::{DiskOptions, DiskStore, Durability};
use workload::Ids;

/// `iters` appends spread over `publishers` concurrent tasks; the time for
/// all of them.
async fn appends<S: Store + Clone>(store: &S, publishers: usize, iters: u64) -> Duration {
    let began = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|publisher| {
            let store = store.clone();
            // The first `iters % publishers` tasks take one extra.
            let share = iters / publishers as u64
                + u64::from((publisher as u64) < iters % publishers as u64);
            tokio::spawn(async move {
                for i in 0..share {
                    store
                        .append(workload::record(Ids::Ordered, publisher, i))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher");
    }
    began.elapsed()
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("append");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for publishers in [1, 16, 256] {
        let memory = MemoryStore::new();
        group.bench_with_input(
            BenchmarkId::new("memory", publishers),
            &publishers,
            |b, &publishers| {
                b.iter_custom(|iters| runtime.block_on(appends(&memory, publishers, iters)))
            },
        );
        for durability in [Durability::Deferred, Durability::Fsync] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = DiskStore::open(
                dir.path(),
                DiskOptions {
                    durability,
                    ..DiskOptions::default()
                },
            )
            .expect("open");
            group.bench_with_input(
                BenchmarkId::new(format!("disk-{durability}"), publishers),
                &publishers,
                |b, &publishers| {
                    b.iter_custom(|iters| runtime.block_on(appends(&store, publishers, iters)))
                },
            );
            runtime.block_on(store.close()).expect("close");
        }
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
