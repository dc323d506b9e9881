//! [`ServerProcess`]: the part every throwaway database server for tests
//! shares (cargo feature `testkit`): a free loopback port and a directory
//! of its own, kept across a kill and a start again, the child process,
//! killed by its PID when dropped (even if the test panicked), and the wait
//! until it answers. `herald_store_redis::testkit::RedisServer` and
//! `herald_store_nats::testkit::NatsServer` are this plus their command
//! line and their readiness check.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(10);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A server process of a test, on a port and in a directory of its own.
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl ServerProcess {
    /// A free loopback port and a fresh directory for the server `name`
    /// (`redis-server`, `nats-server`); nothing runs yet.
    ///
    /// # Panics
    ///
    /// If no port or directory can be had.
    pub fn reserve(name: &'static str) -> Self {
        // Port 0 picks a free port; it is released just before the server
        // binds it (a tiny race, acceptable on a test machine).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "herald-{name}-{}-{port}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("a directory for {name}: {error}"));
        ServerProcess {
            name,
            child: None,
            port,
            dir,
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `command` and waits until `ready(port)` says it answers.
    ///
    /// # Panics
    ///
    /// If the command cannot run (with `install` as the advice), exits, or
    /// does not answer in 10 s.
    pub fn run(&mut self, mut command: Command, install: &str, ready: impl Fn(u16) -> bool) {
        let name = self.name;
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {name} ({error}): these tests need a real one; {install}")
        });
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{name} exited at start: {status}");
            }
            if ready(self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not answer in {READY_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no chance to save anything) and waits for
    /// it to exit. Its port and directory stay, for a start again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
