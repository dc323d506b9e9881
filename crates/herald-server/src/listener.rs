//! The accept loop behind [`serve`](crate::serve): one task per
//! connection, each with a kill switch, deadlines and a slot, and a
//! graceful drain at shutdown.
//!
//! It exists instead of `axum::serve` for three reasons:
//!
//! - a subscriber that stops reading stalls its connection, hyper then
//!   stops polling the response body, and nothing in the body can end it.
//!   The hub notifies the connection's kill switch when it cuts such a
//!   subscriber off, and this loop drops the connection, which closes the
//!   socket. (An HTTP/2 connection carries several streams; killing it
//!   makes them all reconnect, which they do with `Last-Event-ID`, so
//!   nothing is lost.)
//! - it reads each connection's first request head itself: a subscribe
//!   request takes the lean path (`lean/mod.rs`), a publish the lean
//!   path's pipeline (`lean/publish.rs`, which hands the connection to
//!   hyper at the first other request), everything else goes to hyper.
//! - every connection costs a file descriptor and memory, so each is
//!   bounded: a slot per connection (in total and per client address), one
//!   deadline for a whole request head, an idle timeout between requests.
//!   The total defaults to the open-files limit less a reserve, so the hub
//!   can always accept and answer `503` instead of stalling on `EMFILE`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::BytesMut;
use herald_proto::Encoder;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::error::RETRY_AFTER_SECS;
use crate::lean::publish::{After, Pipeline};
use crate::lean::{self, FirstRequest};
use crate::limits::{self, Full, Slot, Slots};
use crate::metrics::{Metrics, OpenConnection, Protocol};
use crate::rewind::Rewind;
use crate::shared_socket::SharedSocket;
use crate::{HubApp, Tls};
use tower::ServiceExt as _;

/// Put in every request's extensions: closes the request's connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionHandle {
    pub(crate) kill: Arc<Notify>,
}

/// How long open connections may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// The most a connection served by hyper buffers of its input: the
/// largest request head it accepts (browsers' heads, cookies included, stay
/// well under 16 KiB; proxies commonly allow 8 to 64 KiB).
const MAX_REQUEST_BUFFER: usize = 64 * 1024;

/// How long hyper may go on answering a client that closed its side.
const HALF_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long a refused connection is given to read its `503`/`429`.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// What every connection task shares.
#[derive(Clone)]
struct Edge {
    app: Router,
    head_timeout: Duration,
    stop: watch::Receiver<bool>,
    /// With TLS: the handshake every connection starts with.
    tls: Option<TlsAcceptor>,
    /// Most concurrent streams on one HTTP/2 connection.
    http2_max_streams: u32,
    /// Whether HTTP/1.1 subscriptions and publishes take the lean path.
    lean: bool,
    /// Where connections are counted (`herald_connections`).
    metrics: Metrics,
    /// Every connection's task, to drain at shutdown: a lean subscription
    /// moves to a task of its own here (see [`stream_apart`]).
    connections: TaskTracker,
}

/// The accept loop: runs until `shutdown`, then drains.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    app: HubApp,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let HubApp {
        router: app,
        hub,
        config,
        metrics,
    } = app;
    let (stop_tx, stop_rx) = watch::channel(false);
    let total = match config.max_connections {
        0 => limits::automatic_connection_cap().unwrap_or(0),
        n => n,
    };
    let slots = Slots::new(config.max_connections_per_ip, total);
    // Refusals hold a descriptor for a moment too: at most a few at once,
    // from the reserve; past that a refused connection is just closed.
    let refusing = Arc::new(AtomicUsize::new(0));
    let max_refusing = limits::descriptor_reserve(total) / 4;
    let edge = Edge {
        app,
        head_timeout: config.head_timeout(),
        stop: stop_rx,
        tls: tls.as_ref().map(Tls::acceptor),
        http2_max_streams: config.http2_max_streams,
        lean: config.lean_subscribe,
        metrics,
        connections: TaskTracker::new(),
    };
    let connections = edge.connections.clone();
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, max_connections = total, "accepting connections");
    }
    let mut backoff = AcceptBackoff::default();
    let patience = Duration::from_millis(config.max_connections_wait_ms);
    // Since when every connection slot has been taken: new connections
    // wait in the kernel's backlog for one to free, `patience` at most per
    // episode; past it they are accepted and refused until one frees.
    let mut full_since: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        if slots.full() {
            let since = *full_since.get_or_insert_with(|| {
                tracing::info!(
                    max_connections = total,
                    "every connection slot is taken: new connections wait up to {patience:?} for one"
                );
                tokio::time::Instant::now()
            });
            let left = patience.saturating_sub(since.elapsed());
            if !left.is_zero() {
                tokio::select! {
                    _ = slots.room_within(left) => {}
                    _ = &mut shutdown => break,
                }
            }
        } else {
            full_since = None;
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.recovered();
                    accepted
                }
                Err(err) => {
                    backoff.failed(err).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        match slots.acquire(Some(peer.ip())) {
            Ok(slot) => {
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("connection", %peer);
                // Two kinds of task rather than one that branches: a plain
                // connection's future (an idle subscriber's whole state)
                // then holds nothing of TLS, nor a second copy of its
                // arguments.
                if edge.tls.is_none() {
                    connections.spawn(plain(stream, peer, edge.clone(), slot).instrument(span));
                } else {
                    connections.spawn(secure(stream, peer, edge.clone(), slot).instrument(span));
                }
            }
            // A plain-text answer means nothing to a TLS client: just close.
            Err(full) if edge.tls.is_none() && refusing.load(Ordering::Relaxed) < max_refusing => {
                tracing::debug!("refused a connection from {peer}: {full:?}");
                let refusing = Arc::clone(&refusing);
                refusing.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    refuse(stream, full).await;
                    refusing.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(_) => drop(stream),
        }
    }

    // Refuse new work, tell subscribers to come back soon, end their
    // streams, then let open connections finish.
    tracing::info!(
        connections = connections.len(),
        "shutting down: no new connections; subscribers are told to reconnect"
    );
    drop(listener);
    hub.shutdown(Some(Encoder::retry(config.shutdown_retry_ms)));
    let _ = stop_tx.send(true);
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {DRAIN:?}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Accept errors, as axum's `serve` treats them: a connection that failed
/// before it was accepted is skipped; anything else (out of descriptors,
/// out of memory) is waited out with a growing pause, and logged once per
/// episode rather than once per failed attempt.
#[derive(Default)]
struct AcceptBackoff {
    failures: u64,
}

impl AcceptBackoff {
    async fn failed(&mut self, err: std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(
            err.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            return;
        }
        if self.failures == 0 {
            tracing::warn!("accept failed: {err}; retrying with backoff");
        }
        self.failures += 1;
        let exponent = self.failures.min(8) as u32;
        tokio::time::sleep(Duration::from_millis(4 << exponent).min(Duration::from_secs(1))).await;
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::warn!("accepting again after {} failed attempts", self.failures);
            self.failures = 0;
        }
    }
}

/// Answers a connection over a limit and closes it. The request is not
/// read; the write side is shut first and the rest drained briefly, so the
/// client reads the answer rather than a reset.
async fn refuse(mut stream: TcpStream, full: Full) {
    let (status, why) = match full {
        Full::Total => (
            "503 Service Unavailable",
            "the hub is at its connection limit\n",
        ),
        Full::PerAddress => (
            "429 Too Many Requests",
            "too many connections from this address\n",
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{why}",
        why.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// A plain connection: the lean path for a subscribe, hyper for the rest.
async fn plain(mut stream: TcpStream, peer: SocketAddr, edge: Edge, slot: Slot) {
    if !edge.lean {
        let socket = SharedSocket::new(stream);
        return Box::pin(serve_hyper(
            socket.clone(),
            socket,
            peer,
            edge,
            OnceLock::new(),
        ))
        .await;
    }
    // Boxed for the same reason as the hyper branch below: its parse state
    // is needed for a moment, not for the connection's lifetime.
    let first = Box::pin(lean::read_first(&mut stream, edge.head_timeout)).await;
    match first {
        FirstRequest::Gone => {}
        FirstRequest::Subscribe(request) => {
            let open = edge.metrics.connection_opened(Protocol::Http1, false);
            // Shared with the hub, which writes live frames to it.
            let socket = lean::DirectSocket::new(
                stream,
                lean::Framing::of(request.version()),
                edge.metrics.bytes_written(),
            );
            let streaming =
                lean::serve_subscribe(socket, peer, edge.app, request, edge.head_timeout);
            stream_apart(&edge.connections, streaming, (slot, open));
        }
        FirstRequest::Publish(input) => {
            let socket = SharedSocket::new(stream);
            let halves = (socket.clone(), socket.clone());
            let publishing = serve_publishes(halves, |reader, _| reader, input, socket, peer, edge);
            Box::pin(publishing).await
        }
        // Boxed: hyper's connection state is several KiB, and an async
        // fn is as large as its largest branch; every idle subscriber
        // would pay for it.
        FirstRequest::Hyper(prefix) => {
            let socket = SharedSocket::new(stream);
            let io = Rewind::new(prefix, socket.clone());
            Box::pin(serve_hyper(io, socket, peer, edge, OnceLock::new())).await
        }
    }
}

/// Runs a lean subscription's stream in a task of its own, holding `held`
/// (the connection's slot and its count in the metrics) until it ends, in
/// the connection's span; the task that read the request head then ends.
///
/// That task's future is as large as its largest branch (hyper's, the TLS
/// handshake's) and, as rustc lays out async fns, keeps its arguments
/// twice: measured with `-Zprint-type-sizes`, 864 bytes, so each idle
/// subscriber held a 1,152-byte task. The stream alone, boxed, is 504
/// bytes, and the task holding it a few pointers.
fn stream_apart<F, H>(connections: &TaskTracker, streaming: F, held: H)
where
    F: Future<Output = ()> + Send + 'static,
    H: Unpin + Send + 'static,
{
    let holding = Holding {
        future: Box::pin(streaming),
        _held: held,
    };
    connections.spawn(holding.instrument(tracing::Span::current()));
}

/// A boxed future, and what must live exactly as long as it.
struct Holding<F, H> {
    future: std::pin::Pin<Box<F>>,
    _held: H,
}

impl<F: Future, H: Unpin> Future for Holding<F, H> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.get_mut().future.as_mut().poll(cx)
    }
}

/// A TLS connection: the handshake within the head timeout, then HTTP/2
/// if the client chose `h2`, else what a plain connection gets.
async fn secure(stream: TcpStream, peer: SocketAddr, edge: Edge, slot: Slot) {
    let Some(acceptor) = edge.tls.clone() else {
        return;
    };
    let socket = SharedSocket::new(stream);
    let mut tls =
        match tokio::time::timeout(edge.head_timeout, acceptor.accept(socket.clone())).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::debug!("TLS handshake with {peer} failed: {err}");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake with {peer} took too long");
                return;
            }
        };
    if !edge.lean || tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        return serve_hyper(tls, socket, peer, edge, OnceLock::new()).await;
    }
    let first = Box::pin(lean::read_first(&mut tls, edge.head_timeout)).await;
    match first {
        FirstRequest::Gone => {}
        FirstRequest::Subscribe(request) => {
            let open = edge.metrics.connection_opened(Protocol::Http1, true);
            let streaming = lean::serve_subscribe(tls, peer, edge.app, request, edge.head_timeout);
            stream_apart(&edge.connections, streaming, (slot, open));
        }
        FirstRequest::Publish(input) => {
            let halves = tokio::io::split(tls);
            let rejoin = |reader: ReadHalf<_>, writer| reader.unsplit(writer);
            Box::pin(serve_publishes(halves, rejoin, input, socket, peer, edge)).await
        }
        FirstRequest::Hyper(prefix) => {
            let io = Rewind::new(prefix, tls);
            Box::pin(serve_hyper(io, socket, peer, edge, OnceLock::new())).await
        }
    }
}

/// Serves a connection whose first request is a publish: the lean path's
/// pipeline on its two halves, then, from the first request the pipeline
/// does not serve, hyper on the connection `rejoin` makes of them again.
async fn serve_publishes<R, W, I>(
    (mut reader, mut writer): (R, W),
    rejoin: impl FnOnce(R, W) -> I,
    input: BytesMut,
    socket: SharedSocket,
    peer: SocketAddr,
    edge: Edge,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let open = edge
        .metrics
        .connection_opened(Protocol::Http1, edge.tls.is_some());
    let pipeline = Pipeline {
        app: edge.app.clone(),
        peer,
        head_timeout: edge.head_timeout,
        stop: edge.stop.clone(),
    };
    let after = lean::publish::serve(&mut reader, &mut writer, input, pipeline).await;
    if let After::Hyper(rest) = after {
        let io = Rewind::new(rest, rejoin(reader, writer));
        Box::pin(serve_hyper(io, socket, peer, edge, OnceLock::from(open))).await;
    }
}

/// Serves a connection with hyper. `io` is the connection (plain or TLS,
/// with any bytes already read put back); `socket` is its TCP socket, whose
/// read side is watched for the client leaving; `counted`, the
/// connection's count in the metrics when the lean path made it already.
async fn serve_hyper<I>(
    io: I,
    socket: SharedSocket,
    peer: SocketAddr,
    edge: Edge,
    counted: OnceLock<OpenConnection>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Edge {
        app,
        head_timeout,
        mut stop,
        tls,
        http2_max_streams,
        lean: _,
        metrics,
        connections: _,
    } = edge;
    let tls = tls.is_some();
    let kill = Arc::new(Notify::new());
    let handle = ConnectionHandle {
        kill: Arc::clone(&kill),
    };
    let activity = Activity::new();
    let tracked = activity.clone();
    // Counted at its first request, when hyper has told HTTP/1.1 from h2c
    // by the preface (over TLS, ALPN has chosen); dropped with the service,
    // when the connection is. A connection that never completes a request
    // head is not counted (docs/operations.md).
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        counted.get_or_init(|| metrics.connection_opened(Protocol::of(request.version()), tls));
        request.extensions_mut().insert(ConnectInfo(peer));
        let connection = handle.clone();
        let busy = tracked.begin();
        let app = app.clone();
        async move {
            // On HTTP/2 this runs in the stream's own task, which has its
            // own kill switch (`StreamTasks`): a lagging subscriber has its
            // stream reset and the other tabs' streams go on. On HTTP/1.1
            // the request is the connection's.
            let handle = STREAM_KILL
                .try_with(|kill| ConnectionHandle {
                    kill: Arc::clone(kill),
                })
                .unwrap_or(connection);
            request.extensions_mut().insert(handle);
            let Ok(response) = app.oneshot(request).await;
            // The request counts as in flight until its body is done: a
            // subscription's connection is never idle.
            Ok::<_, std::convert::Infallible>(
                response.map(|body| axum::body::Body::new(InFlight { body, _busy: busy })),
            )
        }
    });
    let mut builder = auto::Builder::new(StreamTasks);
    // With a timer, hyper's header-read timeout covers each whole request
    // head on HTTP/1.1, from when the connection goes idle: so it is the
    // keep-alive idle timeout there too.
    // hyper's read buffer is what a request head may fill: 400 KiB by
    // default, which an anonymous client could make the hub hold on every
    // connection for the whole head deadline. Heads past it get 431.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_REQUEST_BUFFER);
    // HTTP/2: the flow-control windows bound what a client may send
    // before the hub reads (publish bodies; a subscriber sends nothing),
    // the send buffer what waits per stream for a slow reader beyond the
    // hub's own queue (`max_pending_bytes`), so 100 idle streams on one
    // connection cost little; see docs/performance.md.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(http2_max_streams)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_send_buf_size(H2_SEND_BUFFER);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!("connection from {peer}: {err}");
            }
        }
        // Dropping the connection closes the socket.
        _ = kill.notified() => {
            tracing::info!(%peer, "closed the stalled connection of a subscriber that fell too far behind");
        }
        // hyper does not notice this while it holds unread input. A client
        // that only half-closed after its request still gets an answer that
        // is ready within the grace; a stream whose reader left does not.
        _ = socket.closed_by_peer() => {
            tracing::debug!("{peer} closed its side of the connection");
            let _ = tokio::time::timeout(HALF_CLOSE_GRACE, conn).await;
        }
        // HTTP/2 has no header timer between requests: the same idle
        // timeout, kept here for both protocols.
        _ = activity.idle_for(head_timeout) => {
            tracing::debug!("closing the idle connection of {peer}");
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(head_timeout, conn).await;
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// What a client may send on one HTTP/2 stream before the hub reads it.
const H2_STREAM_WINDOW: u32 = 64 * 1024;

/// What a client may send on one HTTP/2 connection before the hub reads.
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;

/// What waits to be sent on one HTTP/2 stream (whose reader is slow) before
/// the hub stops producing for it.
const H2_SEND_BUFFER: usize = 64 * 1024;

tokio::task_local! {
    /// The kill switch of the HTTP/2 stream whose task this is.
    static STREAM_KILL: Arc<Notify>;
}

/// The executor hyper spawns HTTP/2 stream tasks with: each task gets a
/// kill switch of its own (`STREAM_KILL`, for the request's
/// `ConnectionHandle`); when it fires, the task is dropped, and h2 resets
/// that stream (`RST_STREAM`), leaving the connection and its other
/// streams alone.
#[derive(Clone, Copy)]
struct StreamTasks;

impl<F> hyper::rt::Executor<F> for StreamTasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, task: F) {
        let kill = Arc::new(Notify::new());
        let killed = Arc::clone(&kill);
        tokio::spawn(STREAM_KILL.scope(kill, async move {
            tokio::select! {
                _ = task => {}
                _ = killed.notified() => {
                    tracing::info!("reset the HTTP/2 stream of a subscriber that fell too far behind");
                }
            }
        }));
    }
}

/// Requests in flight on one connection, and since when it has had none.
#[derive(Clone)]
struct Activity {
    inner: Arc<ActivityInner>,
}

struct ActivityInner {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
}

/// Held while a request (and its response body) is in flight.
struct Busy {
    activity: Activity,
}

impl Activity {
    fn new() -> Self {
        Activity {
            inner: Arc::new(ActivityInner {
                in_flight: AtomicUsize::new(0),
                idle_since: Mutex::new(Instant::now()),
            }),
        }
    }

    fn begin(&self) -> Busy {
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy {
            activity: self.clone(),
        }
    }

    /// Resolves once the connection has had no request in flight for
    /// `timeout`. Wakes at most once per `timeout` while it waits.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = *self
                .inner
                .idle_since
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let busy = self.inner.in_flight.load(Ordering::Relaxed) > 0;
            let deadline = if busy {
                Instant::now() + timeout
            } else {
                since + timeout
            };
            if !busy && Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let inner = &self.activity.inner;
        if inner.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            *inner.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct InFlight {
    body: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for InFlight {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
