//! The backend contract suite, unchanged, on fresh stores in temp dirs.

use std::sync::Mutex;

use herald_store_disk::{DiskOptions, DiskStore, Durability};
use tempfile::TempDir;

/// Makes fresh stores, each in its own temp dir, and keeps the dirs until
/// the suite ends (a dir deleted under an open store would still work on
/// Linux, but would not be the setup a server has).
struct Fresh {
    options: DiskOptions,
    dirs: Mutex<Vec<TempDir>>,
}

impl Fresh {
    fn new(options: DiskOptions) -> Self {
        Fresh {
            options,
            dirs: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> DiskStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = DiskStore::open(dir.path(), self.options.clone()).expect("open");
        self.dirs.lock().unwrap().push(dir);
        store
    }
}

async fn run_all(options: DiskOptions) {
    let fresh = Fresh::new(options);
    herald_store::testkit::run_all(|| {
        let store = fresh.open();
        async move { store }
    })
    .await;
}

#[tokio::test]
async fn fsync_store_passes_the_contract() {
    run_all(DiskOptions::default()).await;
}

#[tokio::test]
async fn unsynced_store_passes_the_contract() {
    run_all(DiskOptions {
        durability: Durability::Deferred,
        ..DiskOptions::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_store_passes_the_contract_on_a_multi_thread_runtime() {
    run_all(DiskOptions::default()).await;
}

/// Tiny batches and trim steps: every trim in the suite spans several
/// transactions, and group commits split at the limits.
#[tokio::test]
async fn store_with_tiny_batches_passes_the_contract() {
    run_all(DiskOptions {
        durability: Durability::Deferred,
        max_batch_records: 3,
        max_batch_bytes: 200,
        trim_batch: 2,
        ..DiskOptions::default()
    })
    .await;
}

#[tokio::test]
async fn two_handles_on_one_disk_store_pass_the_contract() {
    // One process opens a redb file once: its handles share the writer.
    let fresh = Fresh::new(DiskOptions::default());
    herald_store::testkit::run_two_handles(|| {
        let store = fresh.open();
        async move { (store.clone(), store) }
    })
    .await;
}
