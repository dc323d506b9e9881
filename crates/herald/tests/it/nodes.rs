//! Several `herald serve` nodes of one hub, as the cluster tests start
//! them: one log on one [`Backend`] (a Redis key prefix or a NATS
//! JetStream stream), one public URL, one signing key (each node's data
//! directory holds a copy of the same `hub.key`, as docs/cluster.md tells an
//! operator to do), and any token valid on all.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;

use crate::backend::Backend;
use crate::{herald, listening_on};

/// One node: a `herald serve` child process.
pub struct Node {
    child: Mutex<Option<Child>>,
    /// `http://127.0.0.1:PORT` of this node.
    pub base: String,
    /// This node's Mercure endpoint, `BASE/.well-known/mercure`.
    pub url: String,
}

impl Node {
    /// SIGKILL (no chance to close anything), and waits for the exit.
    pub fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The nodes of one hub on one log.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The token every node's publisher token is: publish and read any
    /// topic, audience the public URL.
    pub token: String,
    /// The public URL all nodes share (the token audience, the base of
    /// relative topics).
    pub public_url: String,
    root: PathBuf,
    /// The hub's log: a Redis key prefix or a JetStream stream name.
    log: String,
    /// `--store …` and the flags that point a node at the hub's log.
    store: Vec<String>,
    extra: Vec<String>,
}

impl Cluster {
    /// Starts `count` nodes on a new log of `backend`, with the public URL
    /// `public_url` and any `extra` flags of `herald serve`.
    pub fn start(backend: &Backend, count: usize, public_url: &str, extra: &[&str]) -> Cluster {
        let log = backend.fresh_log();
        let root =
            std::env::temp_dir().join(format!("herald-cluster-{}-{log}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            token: String::new(),
            public_url: public_url.to_owned(),
            root,
            store: backend.serve_args(&log),
            log,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        for _ in 0..count {
            cluster.add_node();
        }
        cluster
    }

    /// Starts one more node and returns its index.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let data = self.root.join(format!("node-{index}"));
        std::fs::create_dir_all(&data).unwrap();
        // One key for the whole hub (at least 32 characters).
        std::fs::write(data.join("hub.key"), format!("{:0<48}", self.log)).unwrap();
        let mut child = herald()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&self.store)
            .args(["--public-url", &self.public_url])
            .args(["--max-connections-per-ip", "0"])
            .arg("--data")
            .arg(&data)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald serve");
        let base = listening_on(&mut child);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        self.token = std::fs::read_to_string(data.join("publisher.token"))
            .unwrap()
            .trim()
            .to_owned();
        self.nodes.push(Node {
            child: Mutex::new(Some(child)),
            url: format!("{base}/.well-known/mercure"),
            base,
        });
        index
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
