//! End-to-end tests of the `herald` binary, run as a user runs it.

mod backend;
mod bench;
mod cluster;
mod decode;
mod deploy;
mod durability;
mod edge;
mod failover;
mod gzip;
mod nginx;
mod nodes;
mod publish;
mod streams;
mod tail;
mod tls;
mod token;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

/// The `herald` binary built for this test run.
pub fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

/// The `http://ADDR` (or `https://`) of a `herald serve` log line that says where it
/// listens.
pub fn listening_address(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("listening on ")?;
    rest.split_whitespace()
        .next()
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
}

/// Where a `herald serve` child (spawned with a piped stderr) listens:
/// `http://ADDR`, read from its `herald: listening on` line. Its stderr
/// keeps being drained after that, so the hub never blocks on a full pipe.
pub fn listening_on(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = listening_address(&line) {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("herald serve did not say where it listens")
}
