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
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::NatsStore;

/// A `nats-server` with JetStream on a free loopback port.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// The JetStream store directory, removed on drop.
    dir: PathBuf,
}

impl NatsServer {
    /// Starts a server and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `nats-server` cannot be run or does not answer in 10 s.
    pub fn start() -> Self {
        // Port 0 picks a free port; it is released just before NATS binds
        // it (a tiny race, acceptable on a test machine).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "herald-nats-{}-{port}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for nats-server");
        let mut server = NatsServer {
            child: None,
            port,
            dir,
        };
        server.start_again();
        server
    }

    /// Kills the server (SIGKILL: no chance to flush anything) and waits
    /// for it to exit. Its port and store directory stay for
    /// [`start_again`](NatsServer::start_again).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store directory (a
    /// no-op if it runs), and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `nats-server` cannot be run or does not answer in 10 s.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
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
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start nats-server ({error}): these tests need a real NATS with \
                     JetStream; install Debian's nats-server package (apt-get install nats-server)"
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
    /// As [`start_again`](NatsServer::start_again).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Waits until the server sends its `INFO` greeting, which it does once
    /// JetStream is enabled and clients are accepted.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nats-server exited at start: {status}");
            }
            if let Ok(mut socket) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
                let mut greeting = [0u8; 4];
                if socket.read_exact(&mut greeting).is_ok() && &greeting == b"INFO" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not answer in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
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

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
