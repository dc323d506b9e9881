//! The subscribers of one process: one task per connection, a small read
//! buffer each, counters shared without atomics (the process runs one
//! single-threaded runtime).
//!
//! A subscriber connects to its node (one of the run's subscribe URLs,
//! [`target::node_of`]; bound to its source address first), sends a
//! hand-written `GET`, parses the response head, then feeds the body
//! through [`BodyDecoder`] (and, with `--gzip`, [`GzipDecoder`]) into
//! [`herald_proto::Decoder::feed_with`], which lends each event out of the
//! decoder's buffers as it completes: a delivery allocates nothing (the
//! owned API, `feed` and `next_event`, builds a `String` per event). Each
//! event's payload gives its topic, sequence number and send time: the
//! subscriber keeps the next sequence number it expects, counts gaps and
//! duplicates, and records the latency while the measurement window is
//! open. A read takes one clock reading for all the events it completed:
//! they arrived together, and a clock call per event would cost more than
//! decoding.
//!
//! Every read is counted three ways ([`Received`]): the bytes on the wire
//! after the head, the body without its HTTP framing, and the event stream
//! after inflating; the report divides them by subscribers and deliveries.

use std::cell::{Cell, RefCell, RefMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use herald_proto::{Decoder, EventRef, FrameRef};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::gzip::GzipDecoder;
use crate::http1::{self, BodyDecoder};
use crate::payload;
use crate::stats::{Counters, FinalStats, Latency};
use crate::target;

/// One subscribe URL, resolved: a node of the hub.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscribeTarget {
    /// The node's address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// Path and query template (`{i}`: topic index).
    pub path_template: String,
}

/// What a process needs to run its share of the subscribers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriberConfig {
    /// The hub's nodes (one or more); subscriber n uses
    /// [`target::node_of`]`(n, topics, targets.len())`.
    pub targets: Vec<SubscribeTarget>,
    /// Number of topics (subscriber n gets topic n mod topics).
    pub topics: usize,
    /// Global index of this process's first subscriber.
    pub first: usize,
    /// Number of subscribers in this process.
    pub count: usize,
    /// Spread over 127.0.0.1..=127.0.0.K (1: no explicit bind).
    pub source_ips: u8,
    /// Read buffer per connection.
    pub read_buffer: usize,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
    /// Give up on one connection attempt after this many seconds.
    pub connect_timeout_secs: f64,
    /// Ask for gzip streams and inflate them.
    pub gzip: bool,
}

/// Not yet established (or failed): excluded from the missing count.
const NEVER: u64 = u64::MAX;

struct Shared {
    config: SubscriberConfig,
    counters: RefCell<Counters>,
    latency: RefCell<Latency>,
    measuring: Cell<bool>,
    storm: Notify,
    permits: Semaphore,
    /// Per subscriber: the next sequence number it expects ([`NEVER`] before
    /// it is established).
    expected: Box<[Cell<u64>]>,
    first_error: RefCell<Option<String>>,
}

impl Shared {
    fn note_error(&self, error: &impl std::fmt::Display) {
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(error.to_string());
        }
    }
}

/// The running subscribers of this process.
pub struct SubscriberSet {
    shared: Rc<Shared>,
    tasks: JoinSet<()>,
}

impl SubscriberSet {
    /// Starts connecting every subscriber. Must run inside a `LocalSet`.
    pub fn start(config: SubscriberConfig) -> SubscriberSet {
        let shared = Rc::new(Shared {
            permits: Semaphore::new(config.connect_concurrency),
            expected: (0..config.count).map(|_| Cell::new(NEVER)).collect(),
            counters: RefCell::default(),
            latency: RefCell::default(),
            measuring: Cell::new(false),
            storm: Notify::new(),
            first_error: RefCell::default(),
            config,
        });
        let mut tasks = JoinSet::new();
        for local in 0..shared.config.count {
            tasks.spawn_local(subscriber(Rc::clone(&shared), local));
        }
        SubscriberSet { shared, tasks }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        *self.shared.counters.borrow()
    }

    /// Opens or closes the measurement window.
    pub fn set_measuring(&self, on: bool) {
        self.shared.measuring.set(on);
    }

    /// Drops every connection at once; each reconnects with its last event
    /// id.
    pub fn storm(&self) {
        self.shared.storm.notify_waiters();
    }

    /// The first connection error seen, if any.
    pub fn first_error(&self) -> Option<String> {
        self.shared.first_error.borrow().clone()
    }

    /// Closes every connection and totals the run. `published[k]` is how
    /// many events topic k received, so what a subscriber never got counts
    /// as missing.
    pub fn finish(mut self, published: &[u64]) -> FinalStats {
        self.tasks.abort_all();
        let config = &self.shared.config;
        let mut missing = 0;
        let mut established_per_target = vec![0; config.targets.len()];
        for (local, expected) in self.shared.expected.iter().enumerate() {
            let expected = expected.get();
            if expected == NEVER {
                continue;
            }
            let topic = (config.first + local) % config.topics;
            let sent = published.get(topic).copied().unwrap_or(0);
            missing += sent.saturating_sub(expected);
            let node = target::node_of(config.first + local, config.topics, config.targets.len());
            established_per_target[node] += 1;
        }
        FinalStats {
            counters: self.counters(),
            missing,
            established_per_target,
            latency: self.shared.latency.borrow().to_pairs(),
            cpu_secs: 0.0,
        }
    }
}

/// Source address for subscriber `index` when spreading over `k` addresses.
fn source_ip(index: usize, k: u8, target: SocketAddr) -> Option<IpAddr> {
    if k <= 1 || !target.is_ipv4() || !target.ip().is_loopback() {
        return None;
    }
    let host = 1 + (index % usize::from(k)) as u8;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
}

/// A live subscription: its stream and the bytes read past the head.
struct Connection {
    stream: TcpStream,
    body: BodyDecoder,
    /// The body's gzip decoder, with `--gzip`.
    gzip: Option<GzipDecoder>,
    leftover: std::ops::Range<usize>,
}

/// Checks the response's `Content-Encoding` against what was asked for.
fn check_coding(asked_gzip: bool, head: &http1::ResponseHead) -> std::io::Result<()> {
    let problem = if head.other_coding {
        "the hub answered with a Content-Encoding other than gzip"
    } else if asked_gzip && !head.gzip {
        "asked for gzip (--gzip), the hub answered without Content-Encoding: gzip"
    } else if !asked_gzip && head.gzip {
        "the hub answered gzip, which was not asked for"
    } else {
        return Ok(());
    };
    Err(std::io::Error::other(problem))
}

async fn connect(
    shared: &Shared,
    node: &SubscribeTarget,
    index: usize,
    path: &str,
    last_event_id: Option<&str>,
    buf: &mut [u8],
) -> std::io::Result<Connection> {
    let config = &shared.config;
    let _permit = shared.permits.acquire().await;
    let attempt = async {
        let socket = if node.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source_ip(index, config.source_ips, node.addr) {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let mut stream = socket.connect(node.addr).await?;
        stream.set_nodelay(true)?;
        let mut request = Vec::with_capacity(128 + path.len());
        http1::write_get(&mut request, &node.host, path, last_event_id, config.gzip);
        stream.write_all(&request).await?;
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                return Err(std::io::Error::other(http1::HttpError::HeadTooLarge(
                    buf.len(),
                )));
            }
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if let Some(head) = http1::parse_head(&buf[..filled]).map_err(std::io::Error::other)? {
                if head.status != 200 {
                    return Err(std::io::Error::other(format!(
                        "subscribe answered {}",
                        head.status
                    )));
                }
                check_coding(config.gzip, &head)?;
                return Ok(Connection {
                    stream,
                    body: BodyDecoder::new(head.framing),
                    gzip: head.gzip.then(GzipDecoder::new),
                    leftover: head.len..filled,
                });
            }
        }
    };
    let limit = Duration::from_secs_f64(config.connect_timeout_secs.max(0.001));
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// What one read brought, in bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Received {
    /// As read from the socket.
    wire: usize,
    /// The body, without its HTTP framing.
    body: usize,
    /// The event stream: the body inflated with gzip.
    stream: usize,
}

/// Why a subscriber stopped reading its stream.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Framing(#[from] http1::HttpError),
    #[error(transparent)]
    Gzip(#[from] crate::gzip::GzipError),
    #[error("an event exceeds the SSE decoder's limits")]
    TooLarge,
}

/// Feeds one read's bytes through the body's framing, its gzip decoder and
/// the SSE decoder, handing each event to `on_event` as it completes; what
/// they came to in bytes.
fn feed(
    body: &mut BodyDecoder,
    gzip: &mut Option<GzipDecoder>,
    input: &[u8],
    decoder: &mut Decoder,
    mut on_event: impl FnMut(EventRef<'_>),
) -> (Received, Result<(), StreamError>) {
    let mut received = Received {
        wire: input.len(),
        ..Received::default()
    };
    let mut failure = None;
    let framed = body.decode(input, |body| {
        received.body += body.len();
        if failure.is_some() {
            return;
        }
        let mut events = |stream: &[u8]| {
            received.stream += stream.len();
            if failure.is_some() {
                return;
            }
            let fed = decoder.feed_with(stream, |frame| {
                if let FrameRef::Event(event) = frame {
                    on_event(event);
                }
            });
            if fed.is_err() {
                failure = Some(StreamError::TooLarge);
            }
        };
        match gzip {
            Some(gzip) => {
                if let Err(error) = gzip.feed(body, &mut events) {
                    failure = Some(error.into());
                }
            }
            None => events(body),
        }
    });
    let result = match (framed, failure) {
        (Err(error), _) => Err(error.into()),
        (Ok(_), Some(failure)) => Err(failure),
        (Ok(_), None) => Ok(()),
    };
    (received, result)
}

/// Per-subscriber delivery state.
struct Tracker {
    local: usize,
    topic: u64,
    /// After a storm reconnection: established at this time (Unix nanos),
    /// caught up at the first event sent after it.
    pending_catch_up: Option<u64>,
}

impl Tracker {
    /// Feeds one read (see [`feed`]), checks and counts the events it
    /// completes as the decoder lends them, and counts its bytes.
    fn read(
        &mut self,
        shared: &Shared,
        (body, gzip): (&mut BodyDecoder, &mut Option<GzipDecoder>),
        input: &[u8],
        decoder: &mut Decoder,
    ) -> Result<(), StreamError> {
        let measuring = shared.measuring.get();
        let mut read = Read {
            slot: &shared.expected[self.local],
            tracker: self,
            latency: measuring.then(|| shared.latency.borrow_mut()),
            now: 0,
            batch: Counters::default(),
        };
        let (received, result) = feed(body, gzip, input, decoder, |event| read.event(event));
        let mut batch = read.batch;
        batch.wire_bytes = received.wire as u64;
        batch.body_bytes = received.body as u64;
        batch.stream_bytes = received.stream as u64;
        if measuring {
            batch.window_wire_bytes = batch.wire_bytes;
            batch.window_body_bytes = batch.body_bytes;
            batch.window_stream_bytes = batch.stream_bytes;
        }
        if batch != Counters::default() {
            shared.counters.borrow_mut().add(&batch);
        }
        result
    }
}

/// The events of one read, counted as they are decoded.
struct Read<'a> {
    tracker: &'a mut Tracker,
    /// The next sequence number this subscriber expects.
    slot: &'a Cell<u64>,
    /// The latency histogram, while the measurement window is open.
    latency: Option<RefMut<'a, Latency>>,
    /// The clock when the read's first event was handled (0: none yet).
    now: u64,
    batch: Counters,
}

impl Read<'_> {
    fn event(&mut self, event: EventRef<'_>) {
        let Some(stamp) = payload::decode(event.data().as_bytes()) else {
            self.batch.foreign += 1;
            return;
        };
        if self.now == 0 {
            self.now = payload::now_nanos();
        }
        let now = self.now;
        let batch = &mut self.batch;
        batch.deliveries += 1;
        if stamp.topic == self.tracker.topic {
            let expected = self.slot.get();
            if stamp.seq >= expected {
                batch.gaps += stamp.seq - expected;
                self.slot.set(stamp.seq + 1);
            } else {
                batch.duplicates += 1;
            }
        }
        if let Some(latency) = self.latency.as_mut() {
            batch.window_deliveries += 1;
            latency.record(now.saturating_sub(stamp.sent_nanos) / 1000);
        }
        if self
            .tracker
            .pending_catch_up
            .is_some_and(|since| stamp.sent_nanos >= since)
        {
            self.tracker.pending_catch_up = None;
            batch.caught_up += 1;
            batch.last_caught_up_nanos = now;
        }
    }
}

async fn subscriber(shared: Rc<Shared>, local: usize) {
    let config = &shared.config;
    let index = config.first + local;
    let topic = index % config.topics;
    let node = &config.targets[target::node_of(index, config.topics, config.targets.len())];
    let path = target::expand(&node.path_template, topic, "");
    let mut buf = vec![0u8; config.read_buffer];
    let mut storm = pin!(shared.storm.notified());
    let mut decoder = Decoder::new();
    let mut tracker = Tracker {
        local,
        topic: topic as u64,
        pending_catch_up: None,
    };

    let mut conn = match connect(&shared, node, index, &path, None, &mut buf).await {
        Ok(conn) => conn,
        Err(error) => {
            shared.note_error(&error);
            let mut counters = shared.counters.borrow_mut();
            counters.failed += 1;
            counters.last_connect_nanos = payload::now_nanos();
            return;
        }
    };
    {
        shared.expected[local].set(0);
        let mut counters = shared.counters.borrow_mut();
        counters.established += 1;
        counters.last_connect_nanos = payload::now_nanos();
    }
    let mut stormed = false;
    loop {
        let range = std::mem::replace(&mut conn.leftover, 0..0);
        if !range.is_empty() {
            let stream = (&mut conn.body, &mut conn.gzip);
            if let Err(error) = tracker.read(&shared, stream, &buf[range], &mut decoder) {
                shared.note_error(&error);
                shared.counters.borrow_mut().corrupt += 1;
                return;
            }
            let gzip_ended = conn.gzip.as_ref().is_some_and(GzipDecoder::is_done);
            if conn.body.is_done() || gzip_ended {
                shared.counters.borrow_mut().closed += 1;
                return;
            }
        }
        let read = tokio::select! {
            biased;
            () = &mut storm, if !stormed => None,
            read = conn.stream.read(&mut buf) => Some(read),
        };
        match read {
            Some(Ok(n)) if n > 0 => conn.leftover = 0..n,
            Some(_) => {
                shared.counters.borrow_mut().closed += 1;
                return;
            }
            None => {
                // The storm: drop the connection and come back at once with
                // the last event id, as an EventSource would.
                stormed = true;
                drop(conn);
                decoder.finish();
                let last_id = decoder.last_event_id().to_owned();
                match connect(&shared, node, index, &path, Some(&last_id), &mut buf).await {
                    Ok(new) => {
                        conn = new;
                        let now = payload::now_nanos();
                        tracker.pending_catch_up = Some(now);
                        let mut counters = shared.counters.borrow_mut();
                        counters.reconnected += 1;
                        counters.last_reconnect_nanos = now;
                    }
                    Err(error) => {
                        shared.note_error(&error);
                        shared.counters.borrow_mut().reconnect_failed += 1;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(measuring: bool) -> Shared {
        Shared {
            config: SubscriberConfig {
                targets: Vec::new(),
                topics: 1,
                first: 0,
                count: 1,
                source_ips: 1,
                read_buffer: 4096,
                connect_concurrency: 1,
                connect_timeout_secs: 1.0,
                gzip: false,
            },
            counters: RefCell::default(),
            latency: RefCell::default(),
            measuring: Cell::new(measuring),
            storm: Notify::new(),
            permits: Semaphore::new(1),
            expected: vec![Cell::new(0)].into_boxed_slice(),
            first_error: RefCell::default(),
        }
    }

    fn stamped(seq: u64, topic: u64, sent_nanos: u64) -> Vec<u8> {
        let mut data = Vec::new();
        let stamp = payload::Stamp {
            seq,
            topic,
            sent_nanos,
        };
        payload::encode(payload::PayloadKind::Json, stamp, 0, &mut data);
        let mut event = format!("id: {topic}-{seq}\ndata: ").into_bytes();
        event.extend_from_slice(&data);
        event.extend_from_slice(b"\n\n");
        event
    }

    /// Every check of a delivery, on events lent by `feed_with` from a
    /// chunked body cut at every point: sequence gaps and duplicates,
    /// foreign events, other topics, latency in the window, and the
    /// catch-up after a storm.
    #[test]
    fn reads_check_every_delivery_at_any_cut() {
        let now = payload::now_nanos();
        let mut stream = Vec::new();
        for (seq, topic) in [(0, 0), (1, 0), (3, 0), (3, 0), (9, 1), (4, 0)] {
            stream.extend(stamped(seq, topic, now - 5_000_000));
        }
        stream.extend_from_slice(b": heartbeat\ndata: not a bench payload\n\n");
        stream.extend(stamped(5, 0, now + 1_000_000_000));
        let mut body = format!("{:x}\r\n", stream.len()).into_bytes();
        body.extend_from_slice(&stream);
        body.extend_from_slice(b"\r\n");
        for cut in 0..=body.len() {
            let shared = shared(true);
            let mut tracker = Tracker {
                local: 0,
                topic: 0,
                pending_catch_up: Some(now),
            };
            let mut framing = BodyDecoder::new(http1::Framing::Chunked);
            let mut decoder = Decoder::new();
            for piece in [&body[..cut], &body[cut..]] {
                let stream = (&mut framing, &mut None);
                tracker.read(&shared, stream, piece, &mut decoder).unwrap();
            }
            let counters = shared.counters.borrow();
            assert_eq!(counters.deliveries, 7, "cut at {cut}");
            assert_eq!(counters.window_deliveries, 7);
            assert_eq!(counters.gaps, 1, "seq 2 never came");
            assert_eq!(counters.duplicates, 1, "seq 3 twice");
            assert_eq!(counters.foreign, 1);
            assert_eq!(counters.caught_up, 1, "at the event sent after `now`");
            assert_eq!(counters.wire_bytes, body.len() as u64);
            assert_eq!(counters.stream_bytes, stream.len() as u64);
            assert_eq!(shared.expected[0].get(), 6);
            assert_eq!(shared.latency.borrow().len(), 7);
            assert_eq!(tracker.pending_catch_up, None);
        }
    }

    #[test]
    fn source_ips_spread_over_loopback_only() {
        let local: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(source_ip(0, 1, local), None);
        assert_eq!(source_ip(0, 4, local), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(source_ip(5, 4, local), Some("127.0.0.2".parse().unwrap()));
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(source_ip(5, 4, v6), None);
    }
}
