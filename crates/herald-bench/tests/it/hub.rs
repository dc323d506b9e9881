//! A tiny SSE hub for the tests: raw TCP, `GET /sub?topic=X` streams (chunked
//! or until close), `POST /pub?topic=X` fans the body out as `data:` with a
//! numeric id; `Last-Event-ID` replays the topic's history after that id.
//! Several listeners may share one state, as the nodes of one hub. A hub
//! started with `gzip` compresses the streams of clients whose
//! `Accept-Encoding` names it, flushing after every event, as Herald does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Default)]
struct Topic {
    history: Vec<Vec<u8>>,
    subscribers: Vec<mpsc::UnboundedSender<Vec<u8>>>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
}

pub struct Hub {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hub {
    pub async fn start(chunked: bool) -> Hub {
        Hub::start_on(Arc::default(), chunked, false).await
    }

    /// A chunked hub that compresses the streams of clients asking for it.
    pub async fn start_gzip() -> Hub {
        Hub::start_on(Arc::default(), true, true).await
    }

    /// `k` listeners over one state: the nodes of one hub (a publish on any
    /// reaches the subscribers of all).
    pub async fn start_nodes(k: usize, chunked: bool) -> Vec<Hub> {
        let state = Arc::<Mutex<State>>::default();
        let mut nodes = Vec::new();
        for _ in 0..k {
            nodes.push(Hub::start_on(Arc::clone(&state), chunked, false).await);
        }
        nodes
    }

    async fn start_on(state: Arc<Mutex<State>>, chunked: bool, gzip: bool) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, Arc::clone(&state), chunked, gzip));
            }
        });
        Hub { addr, task }
    }

    pub fn subscribe_url(&self, topic: &str) -> String {
        format!("http://{}/sub?topic={topic}", self.addr)
    }

    pub fn publish_url(&self) -> String {
        format!("http://{}/pub?topic={{topic}}", self.addr)
    }
}

fn frame(id: usize, data: &[u8]) -> Vec<u8> {
    let mut event = format!("id: {id}\ndata: ").into_bytes();
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    event
}

/// One piece of a stream's body: compressed and flushed when `gzip` holds
/// a compressor (the gzip header first), then chunk-framed when `chunked`.
fn piece(bytes: &[u8], gzip: &mut Option<(Compress, bool)>, chunked: bool) -> Vec<u8> {
    let mut body = Vec::new();
    match gzip {
        Some((compress, started)) => {
            if !*started {
                body.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
                *started = true;
            }
            body.reserve(bytes.len() + 64);
            compress
                .compress_vec(bytes, &mut body, FlushCompress::Sync)
                .unwrap();
        }
        None => body.extend_from_slice(bytes),
    }
    if !chunked {
        return body;
    }
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\r\n");
    out
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, chunked: bool, gzip: bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Parse one request (head + Content-Length body) from `buf`.
        let (method, path, last_id, accepts_gzip, head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = request.parse(&buf) {
                let header = |name: &str| {
                    request
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let body_len = header("content-length").map_or(0, |v| v.parse().unwrap());
                let last_id = header("last-event-id").map(|v| v.parse::<usize>().unwrap());
                let accepts_gzip = header("accept-encoding").is_some_and(|v| v.contains("gzip"));
                break (
                    request.method.unwrap().to_owned(),
                    request.path.unwrap().to_owned(),
                    last_id,
                    accepts_gzip,
                    len,
                    body_len,
                );
            }
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        while buf.len() < head_len + body_len {
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_len..head_len + body_len].to_vec();
        buf.drain(..head_len + body_len);
        let topic = path.split_once("topic=").map_or("", |(_, t)| t).to_owned();
        if method == "POST" {
            {
                let mut state = state.lock().unwrap();
                let entry = state.topics.entry(topic).or_default();
                entry.history.push(body);
                let id = entry.history.len();
                let bytes = frame(id, entry.history.last().unwrap());
                entry.subscribers.retain(|s| s.send(bytes.clone()).is_ok());
            }
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(reply).await.is_err() {
                return;
            }
            continue;
        }
        // A subscription: replay after Last-Event-ID, then live.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let replay: Vec<Vec<u8>> = {
            let mut state = state.lock().unwrap();
            let entry = state.topics.entry(topic).or_default();
            entry.subscribers.push(tx);
            let from = last_id.unwrap_or(entry.history.len());
            (from..entry.history.len())
                .map(|i| frame(i + 1, &entry.history[i]))
                .collect()
        };
        let mut gzip =
            (gzip && accepts_gzip).then(|| (Compress::new(Compression::fast(), false), false));
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n".to_vec();
        out.extend_from_slice(if chunked {
            b"Transfer-Encoding: chunked\r\n"
        } else {
            b"Connection: close\r\n"
        });
        if gzip.is_some() {
            out.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend(piece(b": hello\n\n", &mut gzip, chunked));
        for event in replay {
            out.extend(piece(&event, &mut gzip, chunked));
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
        while let Some(bytes) = rx.recv().await {
            if stream
                .write_all(&piece(&bytes, &mut gzip, chunked))
                .await
                .is_err()
            {
                return;
            }
        }
        return;
    }
}
