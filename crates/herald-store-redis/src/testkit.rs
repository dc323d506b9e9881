//! [`RedisServer`]: a throwaway `redis-server` for tests (cargo feature
//! `testkit`), here and in the crates that test a cluster of hubs.
//!
//! It runs Debian's (or any) `redis-server` binary from `PATH` on a free
//! loopback port, and is killed by its PID when dropped, even if the test
//! panicked. [`Persistence::Aof`] keeps an append-only file that is fsynced
//! on every write, in a directory of its own, so a test can SIGKILL the
//! server, start it again, and expect every acknowledged append back.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::RedisStore;

/// What the server keeps across a restart.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing (`--save '' --appendonly no`): a restart comes back empty.
    None,
    /// An AOF fsynced on every write (`--appendonly yes --appendfsync
    /// always`): a restart, even after SIGKILL, loses nothing acknowledged.
    Aof,
}

/// A `redis-server` on a free loopback port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    persistence: Persistence,
    /// The server's working directory (its AOF), removed on drop.
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server without persistence and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` cannot be run or does not answer in 10 s.
    pub fn start() -> Self {
        RedisServer::start_with(Persistence::None)
    }

    /// Starts a server with `persistence` and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` cannot be run or does not answer in 10 s.
    pub fn start_with(persistence: Persistence) -> Self {
        // Port 0 picks a free port; it is released just before Redis binds
        // it (a tiny race, acceptable on a test machine).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "herald-redis-{}-{port}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer {
            child: None,
            port,
            persistence,
            dir,
        };
        server.start_again();
        server
    }

    /// Kills the server (SIGKILL: no chance to save anything) and waits
    /// for it to exit. Its port stays reserved for [`start_again`].
    ///
    /// [`start_again`]: RedisServer::start_again
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (a no-op if
    /// it runs), and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` cannot be run or does not answer in 10 s.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::Aof => command.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        let child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot start redis-server ({error}): these tests need a real Redis; \
                 install Debian's redis-server package (apt-get install redis-server)"
            )
        });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills the server and starts it again: what a crash and a supervisor
    /// do.
    ///
    /// # Panics
    ///
    /// As [`start_again`](RedisServer::start_again).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
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

    /// A blocking connection, for a test to look at or tamper with the keys.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("connect to the test redis")
    }

    /// A new store on a prefix no other store of this process uses.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub async fn fresh_store(&self) -> RedisStore {
        self.store(&fresh_prefix()).await
    }

    /// A store on `prefix`.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub async fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::connect(&self.url(), prefix)
            .await
            .expect("connect to the test redis")
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A key prefix unique in this process.
pub fn fresh_prefix() -> String {
    format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
