//! The publisher: keep-alive HTTP/1.1 connections that `POST` stamped
//! events at a fixed rate, or as fast as the hub answers.
//!
//! Topic k is always published on connection k mod C, and HTTP/1.1 answers
//! pipelined requests in order, so each topic's sequence reaches the hub in
//! order and a subscriber's gap is the hub's doing. Each connection has a
//! writer (this task) and a reader task, with a window of requests in
//! flight between them: at a fixed rate the writer sends on schedule
//! (open loop: a hub that answers slowly still gets the rate, up to
//! [`RATE_WINDOW`] unanswered requests), and with `max_rate` it keeps
//! `pipeline` requests in flight. The send time is taken just before the
//! request is written; the achieved rate shows in the report.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::args::PublishFormat;
use crate::http1::{self, BodyDecoder, Framing};
use crate::payload::{self, PayloadKind, Stamp};
use crate::target;

/// Unanswered requests a connection may have at a fixed rate before it
/// waits: far above what a healthy hub needs, low enough to stay bounded.
pub const RATE_WINDOW: usize = 1024;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// The hub's publish address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request format.
    pub format: PublishFormat,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Per topic: the request path.
    pub paths: Vec<String>,
    /// Per topic: the topic name (Mercure form field).
    pub names: Vec<String>,
    /// What the payload looks like.
    pub payload: PayloadKind,
    /// Payload size in bytes (padded payloads).
    pub size: usize,
    /// Events per second over all topics (ignored with `max_rate`).
    pub rate: f64,
    /// Publish as fast as answered.
    pub max_rate: bool,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection with `max_rate`.
    pub pipeline: usize,
}

/// What the publisher did.
#[derive(Clone, Debug, Default)]
pub struct PublishStats {
    /// Events sent (sequence numbers used), per topic.
    pub per_topic: Vec<u64>,
    /// Requests answered 2xx.
    pub acked: u64,
    /// Requests answered otherwise, or lost with their connection.
    pub errors: u64,
    /// The first error seen.
    pub first_error: Option<String>,
}

struct Shared {
    config: PublisherConfig,
    stop: Cell<bool>,
    stats: RefCell<PublishStats>,
}

/// Running publishing connections.
pub struct Publisher {
    shared: Rc<Shared>,
    tasks: JoinSet<()>,
}

impl Publisher {
    /// Starts publishing. Must run inside a `LocalSet`.
    pub fn start(config: PublisherConfig) -> Publisher {
        let topics = config.paths.len();
        let connections = config.connections.clamp(1, topics.max(1));
        let shared = Rc::new(Shared {
            stats: RefCell::new(PublishStats {
                per_topic: vec![0; topics],
                ..PublishStats::default()
            }),
            stop: Cell::new(false),
            config,
        });
        let mut tasks = JoinSet::new();
        for c in 0..connections {
            let mine: Vec<usize> = (c..topics).step_by(connections).collect();
            tasks.spawn_local(connection(Rc::clone(&shared), mine, topics));
        }
        Publisher { shared, tasks }
    }

    /// Events sent so far, all topics.
    pub fn sent(&self) -> u64 {
        self.shared.stats.borrow().per_topic.iter().sum()
    }

    /// Stops sending and waits (a bounded time) for the requests in flight
    /// to be answered.
    pub async fn stop(mut self) -> PublishStats {
        self.shared.stop.set(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        self.shared.stats.borrow().clone()
    }
}

/// The reading half of a keep-alive connection and its response buffer.
struct Link {
    stream: OwnedReadHalf,
    buf: Vec<u8>,
    /// Unparsed bytes: `buf[start..end]`.
    start: usize,
    end: usize,
}

impl Link {
    fn new(stream: OwnedReadHalf) -> Link {
        Link {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                return Err(std::io::Error::other("response head too large"));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// Reads one response; returns its status and whether the server will
    /// close the connection.
    async fn response(&mut self) -> std::io::Result<(u16, bool)> {
        let head = loop {
            if let Some(head) =
                http1::parse_head(&self.buf[self.start..self.end]).map_err(std::io::Error::other)?
            {
                break head;
            }
            self.fill().await?;
        };
        self.start += head.len;
        if head.framing == Framing::UntilClose {
            return Ok((head.status, true));
        }
        let mut body = BodyDecoder::new(head.framing);
        loop {
            let progress = body
                .decode(&self.buf[self.start..self.end], |_| {})
                .map_err(std::io::Error::other)?;
            self.start += progress.consumed;
            if progress.done {
                return Ok((head.status, head.close));
            }
            self.fill().await?;
        }
    }
}

/// Appends the request publishing `stamp` to `out`.
fn write_request(config: &PublisherConfig, stamp: Stamp, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let topic = usize::try_from(stamp.topic).unwrap_or(0);
    scratch.clear();
    payload::encode(config.payload, stamp, config.size, scratch);
    let path = &config.paths[topic];
    match config.format {
        PublishFormat::Mercure => {
            let mut body = Vec::with_capacity(scratch.len() * 2 + 64);
            body.extend_from_slice(b"topic=");
            target::percent_encode(&config.names[topic], &mut body);
            body.extend_from_slice(b"&data=");
            target::percent_encode(std::str::from_utf8(scratch).unwrap_or_default(), &mut body);
            http1::write_post(
                out,
                &config.host,
                path,
                "application/x-www-form-urlencoded",
                config.token.as_deref(),
                &body,
            );
        }
        PublishFormat::Nchan | PublishFormat::Express | PublishFormat::Raw => {
            http1::write_post(
                out,
                &config.host,
                path,
                "text/plain",
                config.token.as_deref(),
                scratch,
            );
        }
    }
}

async fn open(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The window between a connection's writer and its reader.
#[derive(Default)]
struct Window {
    in_flight: Cell<usize>,
    /// The reader stopped (the connection failed or is closing).
    dead: Cell<bool>,
    /// Signalled at each answer and when the reader stops.
    changed: Notify,
}

/// Reads answers in order until the connection fails or closes.
async fn read_answers(shared: Rc<Shared>, mut link: Link, window: Rc<Window>) {
    loop {
        let answer = link.response().await;
        match answer {
            Ok((status, close)) => {
                window
                    .in_flight
                    .set(window.in_flight.get().saturating_sub(1));
                if (200..300).contains(&status) {
                    shared.stats.borrow_mut().acked += 1;
                } else {
                    record_error(&shared, &format!("publish answered {status}"), 1);
                }
                window.changed.notify_one();
                if close {
                    break;
                }
            }
            Err(error) => {
                if window.in_flight.get() > 0 {
                    record_error(&shared, &error.to_string(), 0);
                }
                break;
            }
        }
    }
    // Requests still unanswered are lost with the connection.
    let lost = window.in_flight.replace(0) as u64;
    if lost > 0 {
        shared.stats.borrow_mut().errors += lost;
    }
    window.dead.set(true);
    window.changed.notify_one();
}

async fn connection(shared: Rc<Shared>, topics: Vec<usize>, all_topics: usize) {
    let config = &shared.config;
    if topics.is_empty() {
        return;
    }
    let per_second = config.rate * topics.len() as f64 / all_topics as f64;
    let interval =
        (!config.max_rate && per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second));
    let limit = if config.max_rate {
        config.pipeline
    } else {
        RATE_WINDOW.max(config.pipeline)
    };
    let start = Instant::now();
    let mut scheduled: u64 = 0;
    let mut turn = 0;
    let mut request = Vec::with_capacity(16 * (config.size * 3 + 256));
    let mut scratch = Vec::with_capacity(config.size + 64);
    'connections: while !shared.stop.get() {
        let stream = match open(config.addr).await {
            Ok(stream) => stream,
            Err(error) => {
                record_error(&shared, &error.to_string(), 1);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (read, mut write) = stream.into_split();
        let window = Rc::new(Window::default());
        let reader = tokio::task::spawn_local(read_answers(
            Rc::clone(&shared),
            Link::new(read),
            Rc::clone(&window),
        ));
        while !shared.stop.get() {
            // How many requests to write now.
            let due = match interval {
                Some(interval) => {
                    let next = start + interval.mul_f64(scheduled as f64);
                    tokio::time::sleep_until(next.into()).await;
                    let elapsed = start.elapsed().as_secs_f64();
                    ((elapsed / interval.as_secs_f64()) as u64 + 1).saturating_sub(scheduled)
                }
                None => limit as u64,
            };
            while window.in_flight.get() >= limit && !window.dead.get() {
                window.changed.notified().await;
            }
            if window.dead.get() {
                break;
            }
            let count = (due as usize)
                .clamp(1, limit - window.in_flight.get())
                .min(64);
            request.clear();
            let now = payload::now_nanos();
            for _ in 0..count {
                let topic = topics[turn % topics.len()];
                turn += 1;
                let seq = {
                    let mut stats = shared.stats.borrow_mut();
                    let seq = stats.per_topic[topic];
                    stats.per_topic[topic] += 1;
                    seq
                };
                let stamp = Stamp {
                    seq,
                    topic: topic as u64,
                    sent_nanos: now,
                };
                write_request(config, stamp, &mut request, &mut scratch);
            }
            scheduled += count as u64;
            window.in_flight.set(window.in_flight.get() + count);
            if let Err(error) = write.write_all(&request).await {
                record_error(&shared, &error.to_string(), 0);
                break;
            }
        }
        // Stopping (or the connection failed): give the answers in flight
        // a bounded time, then close.
        let drain = async {
            while window.in_flight.get() > 0 && !window.dead.get() {
                window.changed.notified().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
        reader.abort();
        let _ = reader.await;
        let lost = window.in_flight.replace(0) as u64;
        if lost > 0 {
            let message = format!("{lost} publish requests unanswered 3 s after the end");
            record_error(&shared, &message, lost);
        }
        if shared.stop.get() {
            break 'connections;
        }
    }
}

/// Counts `failed` requests and keeps the first error message.
fn record_error(shared: &Shared, message: &str, failed: u64) {
    let mut stats = shared.stats.borrow_mut();
    stats.errors += failed;
    if stats.first_error.is_none() {
        stats.first_error = Some(message.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mercure_request_is_a_form() {
        let config = PublisherConfig {
            addr: "127.0.0.1:1".parse().unwrap(),
            host: "h".into(),
            format: PublishFormat::Mercure,
            token: Some("T".into()),
            paths: vec!["/.well-known/mercure".into()],
            names: vec!["/t/0".into()],
            payload: PayloadKind::Padded,
            size: 0,
            rate: 1.0,
            max_rate: false,
            connections: 1,
            pipeline: 1,
        };
        let stamp = Stamp {
            seq: 1,
            topic: 0,
            sent_nanos: 2,
        };
        let mut out = Vec::new();
        write_request(&config, stamp, &mut out, &mut Vec::new());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /.well-known/mercure HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("Authorization: Bearer T\r\n"), "{text}");
        assert!(
            text.ends_with(
                "\r\n\r\ntopic=/t/0&data=%7B%22seq%22%3A1%2C%22k%22%3A0%2C%22t%22%3A2%7D"
            ),
            "{text}"
        );
    }
}
