//! The backend contract suite, unchanged, each check on a fresh log name.

use herald_store_nats::testkit::NatsServer;

#[tokio::test]
async fn nats_store_passes_the_contract() {
    let server = NatsServer::start();
    herald_store::testkit::run_all(|| server.fresh_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_store_passes_the_contract_on_a_multi_thread_runtime() {
    let server = NatsServer::start();
    herald_store::testkit::run_all(|| server.fresh_store()).await;
}

/// Two handles on one log, each from its own `NatsStore::connect` (two
/// nodes' connections), on a fresh name per check.
#[tokio::test]
async fn two_nats_handles_pass_the_two_handle_checks() {
    let server = NatsServer::start();
    herald_store::testkit::run_two_handles(|| async {
        let name = herald_store_nats::testkit::fresh_name();
        (server.store(&name).await, server.store(&name).await)
    })
    .await;
}
