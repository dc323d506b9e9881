//! [`NatsServer`]: a throwaway `nats-server -js` for tests (cargo feature
//! `testkit`), here and in the crates that test a cluster of hubs.
//!
//! It runs Debian's (or any) `nats-server` binary from `PATH` (or
//! `/usr/sbin`, where Debian puts it) with JetStream on a free loopback port
//! and a store directory of its own, and is killed by its PID when dropped,
//! even if the test panicked. The store directory survives
//! [`kill`](NatsServer::kill) and [`start_again`](NatsServer::start_again),
//! so a test can SIGKILL the server, start it again, and expect every
//! acknowledged append back.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_store::test_server::ServerProcess;

use crate::NatsStore;

/// A `nats-server` with JetStream on a free loopback port.
pub struct NatsServer {
    /// The process, its port, and its JetStream store directory.
    process: ServerProcess,
}

impl NatsServer {
    /// Starts a server and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `nats-server` cannot be run or does not answer in 10 s.
    pub fn start() -> Self {
        let mut server = NatsServer {
            process: ServerProcess::reserve("nats-server"),
        };
        server.start_again();
        server
    }

    /// Kills the server (SIGKILL: no chance to flush anything) and waits
    /// for it to exit. Its port and store directory stay for
    /// [`start_again`](NatsServer::start_again).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port and store directory (a
    /// no-op if it runs), and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `nats-server` cannot be run or does not answer in 10 s.
    pub fn start_again(&mut self) {
        if self.process.is_running() {
            return;
        }
        let binary = if Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            "nats-server"
        } else {
            "/usr/sbin/nats-server"
        };
        let mut command = Command::new(binary);
        command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.process.port().to_string(),
            ])
            .arg("-sd")
            .arg(self.process.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.process.run(
            command,
            "install Debian's nats-server package (apt-get install nats-server)",
            greets,
        );
    }

    /// Kills the server and starts it again: what a crash and a supervisor
    /// do.
    ///
    /// # Panics
    ///
    /// As [`start_again`](NatsServer::start_again).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port())
    }

    /// A new store on a name no other store of this process uses.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub async fn fresh_store(&self) -> NatsStore {
        self.store(&fresh_name()).await
    }

    /// A store on the log `name`.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub async fn store(&self, name: &str) -> NatsStore {
        NatsStore::connect(&self.url(), name)
            .await
            .expect("connect to the test nats-server")
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A log name unique in this process.
pub fn fresh_name() -> String {
    format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Whether a NATS server answers on `port`: it sends its `INFO` greeting
/// once JetStream is enabled and clients are accepted.
fn greets(port: u16) -> bool {
    let Ok(mut socket) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
    let mut greeting = [0u8; 4];
    socket.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}

/// The subject a record with id `id` is stored on in the log `name`, for
/// tests that forge or tamper with the stream's contents.
///
/// # Panics
///
/// If `name` is not a valid log name.
pub fn record_subject(name: &str, id: &str) -> String {
    crate::names::Names::new(name)
        .expect("a valid log name")
        .subject_of(id)
}

/// The payload a record is stored as, stamped `published_at`, for tests
/// that forge the stream's contents (a writer that died halfway through a
/// batch, say).
pub fn record_payload(record: &herald_store::NewRecord, published_at: SystemTime) -> Bytes {
    crate::envelope::encode(record, crate::envelope::micros_of(published_at))
}

/// The header that marks a record as part of a batch, and its value for a
/// batch occupying `first ..= last`.
pub fn batch_header(first: u64, last: u64) -> (&'static str, String) {
    (
        crate::envelope::BATCH_HEADER,
        crate::envelope::batch_value(first, last),
    )
}
