//! Fuzzes the accept loop with raw bytes: a hub is served on a loopback
//! port once, each input is written to a new connection (then its write
//! side closed), and the answer read. A panic in any connection task
//! aborts the process (libFuzzer's panic hook); a hub that stops answering
//! `/healthz` is a finding too.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald_hub::{Hub, HubConfig};
use herald_server::ServerConfig;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

struct Served {
    runtime: Runtime,
    addr: SocketAddr,
    /// libFuzzer's `main` is C, so Rust's runtime did not set SIGPIPE to be
    /// ignored as it does for `herald serve`: a vectored write to a socket
    /// the client closed would kill the process. Catching the signal (and
    /// doing nothing) restores what the binary does.
    _sigpipe: tokio::signal::unix::Signal,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        // The connection cap follows the open-files limit, as in `herald
        // serve`: take the hard limit.
        herald_bench::raise_nofile();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (addr, _sigpipe) = runtime.block_on(async {
            let sigpipe =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let url = format!("http://{addr}/.well-known/mercure")
                .parse()
                .unwrap();
            let hub = Hub::start(
                Arc::new(herald_store::MemoryStore::new()),
                HubConfig::new(url),
            )
            .await
            .unwrap();
            let mut config = ServerConfig::default();
            config.allow_anonymous_publish = true;
            config.auth.legacy = false;
            config.head_timeout_secs = 1;
            config.body_timeout_secs = 1;
            config.max_connections_per_ip = 0;
            let app = herald_server::HubApp::new(hub, config).unwrap();
            tokio::spawn(async move { herald_server::serve(listener, app).await.unwrap() });
            (addr, sigpipe)
        });
        Served {
            runtime,
            addr,
            _sigpipe,
        }
    })
}

async fn exchange(addr: SocketAddr, input: &[u8], wait: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(input).await?;
    stream.shutdown().await?;
    let mut answer = Vec::new();
    // A subscription streams until its end: read what comes in `wait`.
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    Ok(answer)
}

fuzz_target!(|input: &[u8]| {
    let served = served();
    served.runtime.block_on(async {
        let _ = exchange(served.addr, input, Duration::from_millis(200)).await;
        static RUNS: AtomicU64 = AtomicU64::new(0);
        if RUNS.fetch_add(1, Ordering::Relaxed) % 256 == 0 {
            // The hub may be at its connection cap for a moment (refusing
            // is by design); it must come back.
            let health = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
            let mut answer = Vec::new();
            for _ in 0..50 {
                answer = exchange(served.addr, health, Duration::from_secs(5))
                    .await
                    .expect("the hub accepts connections");
                if answer.starts_with(b"HTTP/1.1 200") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!(
                "the hub stopped answering: {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
    });
});
