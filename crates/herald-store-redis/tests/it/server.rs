//! [`RedisServer`]: a throwaway `redis-server` for one test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use herald_store_redis::RedisStore;

/// A `redis-server` on a free loopback port, without persistence, killed
/// (by its PID) when this is dropped, even if the test panicked.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server and waits until it answers.
    pub fn start() -> Self {
        // Port 0 picks a free port; it is released just before Redis binds
        // it (a tiny race, acceptable on a test machine).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-server ({error}): these tests need a real Redis; \
                     install Debian's redis-server package (apt-get install redis-server)"
                )
            });
        let mut server = RedisServer { child, port };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("redis-server exited at start: {status}");
            }
            let ready = redis::Client::open(self.url())
                .and_then(|client| client.get_connection())
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if ready.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new store on a prefix no other store of this process uses.
    pub async fn fresh_store(&self) -> RedisStore {
        self.store(&fresh_prefix()).await
    }

    /// A store on `prefix`.
    pub async fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::connect(&self.url(), prefix)
            .await
            .expect("connect to the test redis")
    }
}

/// A key prefix unique in this process.
pub fn fresh_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
