//! A real nginx in front of `herald serve` nodes, as docs/cluster.md tells
//! an operator to put one: Debian's `nginx` binary, run on a loopback port
//! with a configuration, logs, pid file and temp paths all in a directory
//! of its own (nothing of the system's nginx is read or written), killed by
//! its PID when dropped, even if the test panicked.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The configuration, with `@DIR@`, `@PORT@`, `@SERVERS@` and
/// `@READ_TIMEOUT@` (`24h` unless a test wants it short) filled in.
///
/// docs/cluster.md shows the same proxy settings; keep the two in step.
/// Why each one is there:
/// - `proxy_buffering off`, `proxy_cache off`: an event reaches the client
///   when the node writes it, not when a buffer fills (herald also sends
///   `X-Accel-Buffering: no`, which nginx honours, but say it once here).
/// - `proxy_read_timeout 24h`: an idle stream is not cut after nginx's
///   default 60 s (heartbeats, when on, also keep it alive).
/// - `proxy_http_version 1.1` with `Connection ""`: keep-alive connections
///   to the nodes (`keepalive` in the upstream), so publishes do not open a
///   connection each.
/// - `max_fails=1 fail_timeout=5s` and `proxy_next_upstream error timeout
///   http_502 http_503`: a request to a dead node goes to the next one, and
///   the dead node is left alone for 5 s. nginx does not pass a POST on
///   once it has sent it (it is not idempotent), so a publisher must retry
///   one that failed on its own.
/// - `worker_connections`: each stream holds two connections in nginx (the
///   client's and the node's); 300 subscribers and the publishers need
///   more than the default 512 (then `worker_rlimit_nofile` for the fds).
/// - `master_process off`: one process to kill by its PID (tests only).
const CONFIG: &str = r#"
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;

    upstream herald {
@SERVERS@
        keepalive 32;
    }

    server {
        listen 127.0.0.1:@PORT@;

        location / {
            proxy_pass http://herald;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout @READ_TIMEOUT@;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
"#;

/// A running nginx proxying to some herald nodes.
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    /// Its configuration, logs and temp files, removed on drop.
    dir: PathBuf,
}

impl Nginx {
    /// A free loopback port for [`Nginx::start`]: known before the nodes
    /// start, so that their public URL can name it. It is released here and
    /// bound by nginx later (a tiny race, acceptable on a test machine).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port()
    }

    /// Starts nginx on `127.0.0.1:port`, proxying to `upstreams`
    /// (`127.0.0.1:PORT` each), and waits until the port answers.
    ///
    /// # Panics
    ///
    /// If nginx is not installed, exits at start or does not listen in
    /// 10 s.
    pub fn start(port: u16, upstreams: &[String]) -> Nginx {
        Nginx::start_with_read_timeout(port, upstreams, "24h")
    }

    /// [`Nginx::start`] with another `proxy_read_timeout` (nginx syntax:
    /// `3s`, `24h`).
    ///
    /// # Panics
    ///
    /// As [`Nginx::start`].
    pub fn start_with_read_timeout(port: u16, upstreams: &[String], read_timeout: &str) -> Nginx {
        let binary = nginx_binary();
        let dir = std::env::temp_dir().join(format!("herald-nginx-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for nginx");
        let servers: String = upstreams
            .iter()
            .map(|upstream| format!("        server {upstream} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        let config = CONFIG
            .replace("@DIR@", dir.to_str().expect("a UTF-8 temp dir"))
            .replace("@PORT@", &port.to_string())
            .replace("@SERVERS@", &servers)
            .replace("@READ_TIMEOUT@", read_timeout);
        let config_file = dir.join("nginx.conf");
        std::fs::write(&config_file, config).expect("write nginx.conf");
        let stderr = File::create(dir.join("stderr.log")).expect("create stderr.log");
        let child = Command::new(&binary)
            // `-e`: the log for what comes before the configuration is
            // read, else nginx tries /var/log/nginx/error.log first.
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", binary.display()));
        let mut nginx = Nginx {
            child: Some(child),
            port,
            dir,
        };
        nginx.wait_ready();
        nginx
    }

    /// `http://127.0.0.1:PORT/.well-known/mercure` through this nginx.
    pub fn url(&self) -> String {
        Nginx::url_on(self.port)
    }

    /// The Mercure endpoint of an nginx on `port`.
    pub fn url_on(port: u16) -> String {
        format!("http://127.0.0.1:{port}/.well-known/mercure")
    }

    /// What nginx wrote to its error log (and stderr) so far.
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("stderr.log") + &read("error.log")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited at start ({status}):\n{}", self.logs());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen in 10 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failed test shows what nginx thought of the nodes.
        if std::thread::panicking() {
            eprintln!("nginx's logs:\n{}", self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nginx` on `PATH`, else Debian's `/usr/sbin/nginx` (not on a non-root
/// user's `PATH`).
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no nginx on PATH nor in /usr/sbin: the failover test runs a real one; \
                 install Debian's nginx package (apt-get install nginx; scripts/test does)"
            )
        })
}
