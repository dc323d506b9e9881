//! The backend contract suite, run on `MemoryStore` exactly as other backend
//! crates run it on theirs.

use herald_store::MemoryStore;

#[tokio::test]
async fn memory_store_passes_the_contract() {
    herald_store::testkit::run_all(|| async { MemoryStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_contract_on_a_multi_thread_runtime() {
    herald_store::testkit::run_all(|| async { MemoryStore::new() }).await;
}

/// A store with generous retention on append must still pass: the contract
/// checks never hold more than a few thousand records.
#[tokio::test]
async fn memory_store_with_lax_retention_passes_the_contract() {
    let retention = herald_store::Retention {
        max_events: Some(100_000),
        max_age: None,
    };
    herald_store::testkit::run_all(|| async { MemoryStore::with_retention(retention.clone()) })
        .await;
}

#[tokio::test]
async fn two_handles_on_one_memory_store_pass_the_contract() {
    herald_store::testkit::run_two_handles(|| async {
        let store = MemoryStore::new();
        (store.clone(), store)
    })
    .await;
}
