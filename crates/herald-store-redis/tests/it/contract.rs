//! The backend contract suite, unchanged, each check on a fresh key prefix.

use herald_store_redis::testkit::RedisServer;

#[tokio::test]
async fn redis_store_passes_the_contract() {
    let server = RedisServer::start();
    herald_store::testkit::run_all(|| server.fresh_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_the_contract_on_a_multi_thread_runtime() {
    let server = RedisServer::start();
    herald_store::testkit::run_all(|| server.fresh_store()).await;
}

/// Two handles on one log, each from its own `RedisStore::connect` (two
/// nodes' connections), on a fresh prefix per check.
#[tokio::test]
async fn two_redis_handles_pass_the_two_handle_checks() {
    let server = RedisServer::start();
    herald_store::testkit::run_two_handles(|| async {
        let prefix = herald_store_redis::testkit::fresh_prefix();
        (server.store(&prefix).await, server.store(&prefix).await)
    })
    .await;
}
