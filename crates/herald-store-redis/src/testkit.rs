//! [`RedisServer`]: a throwaway `redis-server` for tests (cargo feature
//! `testkit`), here and in the crates that test a cluster of hubs.
//!
//! It runs Debian's (or any) `redis-server` binary from `PATH` on a free
//! loopback port, and is killed by its PID when dropped, even if the test
//! panicked. [`Persistence::Aof`] keeps an append-only file that is fsynced
//! on every write, in a directory of its own, so a test can SIGKILL the
//! server, start it again, and expect every acknowledged append back.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use herald_store::test_server::ServerProcess;

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
    /// The process, its port, and its working directory (its AOF).
    process: ServerProcess,
    persistence: Persistence,
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
        let mut server = RedisServer {
            process: ServerProcess::reserve("redis-server"),
            persistence,
        };
        server.start_again();
        server
    }

    /// Kills the server (SIGKILL: no chance to save anything) and waits
    /// for it to exit. Its port stays reserved for [`start_again`].
    ///
    /// [`start_again`]: RedisServer::start_again
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port and directory (a no-op if
    /// it runs), and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` cannot be run or does not answer in 10 s.
    pub fn start_again(&mut self) {
        if self.process.is_running() {
            return;
        }
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &self.process.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.process.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::Aof => command.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        self.process.run(
            command,
            "install Debian's redis-server package (apt-get install redis-server)",
            pongs,
        );
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

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.process.port())
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

/// Whether a Redis server answers `PING` on `port`.
fn pongs(port: u16) -> bool {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|client| client.get_connection())
        .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
        .is_ok()
}
