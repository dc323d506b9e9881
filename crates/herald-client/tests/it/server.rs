//! A scripted HTTP/1.1 server on `127.0.0.1:0` that writes exact bytes.
//!
//! A real HTTP server library would choose the framing, flush when it
//! likes, and refuse malformed headers; the scenarios need the opposite:
//! exact status lines and headers (or none), bodies cut at chosen bytes,
//! clean closes and TCP resets. So each connection is handed to a script
//! with the parsed request, and the script writes raw bytes. One request
//! per connection (every response says `Connection: close`), so counting
//! requests counts (re)connections too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for something that should happen promptly. Long,
/// so that a loaded machine never fails a correct client; only a broken
/// client ever waits this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One request, as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// 0 for the first request the server received, then 1, 2…
    pub index: usize,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    /// The value of the only header called `name`; panics if repeated.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice());
        let value = values.next();
        assert!(values.next().is_none(), "header {name} repeated");
        value
    }

    /// The header's value as text, for readable assertions.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .map(|v| std::str::from_utf8(v).expect("UTF-8 header"))
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Request>>,
    disconnects: AtomicUsize,
}

/// A running server; it stops when the test's runtime does.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    /// Starts a server that runs `script` for every connection.
    pub async fn start<F, Fut>(script: F) -> Server
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let script = Arc::new(script);
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                stream.set_nodelay(true).expect("nodelay");
                let state = Arc::clone(&shared);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let Some(mut request) = read_request(&mut stream).await else {
                        return;
                    };
                    {
                        let mut requests = state.requests.lock().unwrap();
                        request.index = requests.len();
                        requests.push(request.clone());
                    }
                    script(Conn {
                        stream,
                        request,
                        state,
                    })
                    .await;
                });
            }
        });
        Server { addr, state }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// How many held connections the client has closed.
    pub fn disconnects(&self) -> usize {
        self.state.disconnects.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        eventually(|| self.request_count() >= n).await;
    }
}

/// Polls `condition` until it holds; panics after [`PATIENCE`].
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = &buf[..head_end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = String::from_utf8(lines.next()?.to_vec()).ok()?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon]).into_owned();
            let value = line[colon + 1..].trim_ascii().to_vec();
            Some((name, value))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        index: 0,
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    })
}

/// One accepted connection and its request, handed to the script.
pub struct Conn {
    stream: TcpStream,
    pub request: Request,
    state: Arc<State>,
}

impl Conn {
    /// Writes bytes and flushes them to the socket. Errors are ignored: a
    /// client that went away is the test's business, not the server's.
    pub async fn write(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.stream.write_all(bytes.as_ref()).await;
        let _ = self.stream.flush().await;
    }

    /// Writes each part as its own TCP segment, with a pause between, so
    /// the client most likely reads them as separate chunks.
    pub async fn write_parts(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.write(part).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }

    /// Writes each part as its own HTTP/1.1 chunk (the response must say
    /// `Transfer-Encoding: chunked`), then the last chunk.
    pub async fn write_chunked(&mut self, parts: &[&[u8]]) {
        for part in parts {
            let mut chunk = format!("{:x}\r\n", part.len()).into_bytes();
            chunk.extend_from_slice(part);
            chunk.extend_from_slice(b"\r\n");
            self.write(chunk).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.write(b"0\r\n\r\n").await;
    }

    /// Keeps the connection open until the client closes it (or the test
    /// ends), then counts the disconnect.
    pub async fn hold(mut self) {
        let mut sink = [0u8; 1024];
        loop {
            match self.stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.state.disconnects.fetch_add(1, Ordering::SeqCst);
    }

    /// Aborts the connection with a TCP reset instead of a clean close.
    pub fn reset(self) {
        self.stream.set_zero_linger().expect("SO_LINGER");
        drop(self.stream);
    }

    /// Closes the connection cleanly (FIN), ending a close-delimited body.
    pub fn close(self) {
        drop(self.stream);
    }
}

/// A response head with `Connection: close`, an optional `Content-Type`,
/// and extra header lines (each without CRLF).
pub fn head(status: &str, content_type: Option<&str>, extra: &[&str]) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// The usual event-stream head: `200 OK`, `text/event-stream`, and a body
/// that runs until the connection closes.
pub fn sse_head() -> String {
    head(
        "200 OK",
        Some("text/event-stream"),
        &["Cache-Control: no-cache"],
    )
}
