//! The lean path for subscriptions: a long-lived event stream written
//! straight to the socket, without hyper's per-connection buffers.
//!
//! An idle HTTP/1 connection served by hyper keeps about 16 KiB of read and
//! write buffers for as long as it lives; an SSE subscription lives for
//! hours and writes a few small frames. Measured with 5,000 idle
//! subscribers on `herald serve`, that put the hub at 19.6 KiB of RSS per
//! subscriber (`docs/performance.md`, S1). So the accept loop reads the
//! first request head itself, into a small buffer, and parses it with
//! `httparse` (the parser hyper uses). A `GET` of the subscribe endpoint
//! is then answered here: the request goes through the same router (auth,
//! matchers, limits and CORS are the ordinary handlers'), and an event
//! stream response is written: the head, then each frame as it comes, the
//! socket's read side watched for the client going away, and the
//! connection closed at the end. Every other request, or anything this
//! path is unsure of, goes to hyper with the bytes already read.
//!
//! Over plain TCP the socket is shared with the hub ([`DirectSocket`]):
//! once the stream is live, the hub's dispatcher writes each frame to it
//! directly while it keeps up, and this task wakes only when the socket
//! fills (`herald_hub::DirectWriter`). Over TLS, and for a compressed
//! stream, every frame goes through this task.
//!
//! The body is chunked for HTTP/1.1 (HTTP/1.0 has no chunks: its body ends
//! when the connection does). Closing the connection would end the body
//! just as well, but clients read the two differently: Python's
//! `requests` (under `sseclient-py`) reads a body without chunks in
//! fixed-size blocks and holds an event back until the block fills, and
//! `@microsoft/fetch-event-source` takes a close for a failure. Each chunk
//! is written with its size line and end in one vectored write, the frame
//! itself not copied, and the size line is not kept across polls: the
//! connection's future came out 8 bytes smaller than without chunks (328
//! bytes against 336, `size_of_val` in a release build), so chunks cost an
//! idle subscriber nothing.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Notify;
use tower::ServiceExt as _;

use crate::listener::ConnectionHandle;
use crate::MERCURE_PATH;

mod direct;
pub(crate) mod publish;

pub(crate) use direct::DirectSocket;

/// The largest request head read here; larger ones go to hyper, which
/// answers them as it does any other.
const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed here; requests with more go to hyper.
const MAX_HEADERS: usize = 48;

/// A connection whose read and write sides can wait at once, split
/// without allocating where the stream allows it: a plain socket is shared
/// by reference (the lean path exists to keep an idle subscriber small);
/// a TLS stream shares one session between them (`tokio::io::split`, one
/// task polls both, so its lock is never contended).
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {
    /// The two sides, for as long as the borrow.
    fn halves(
        &mut self,
    ) -> (
        impl AsyncRead + Unpin + Send + '_,
        impl AsyncWrite + Unpin + Send + '_,
    );

    /// The socket, when the hub may write live frames to it directly.
    fn direct(&self) -> Option<&DirectSocket> {
        None
    }

    /// Whether a direct write left a frame incomplete: the body cannot be
    /// ended cleanly.
    fn mid_frame(&self) -> bool {
        false
    }
}

impl<S> Duplex for tokio_rustls::server::TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn halves(
        &mut self,
    ) -> (
        impl AsyncRead + Unpin + Send + '_,
        impl AsyncWrite + Unpin + Send + '_,
    ) {
        tokio::io::split(self)
    }
}

/// What the first request head on a connection says to do.
pub(crate) enum FirstRequest {
    /// A subscribe request, parsed (boxed: the enum stays small in the
    /// connection's future, which lives for hours).
    Subscribe(Box<Request<axum::body::Body>>),
    /// A publish: the connection's publishes are answered here
    /// ([`publish::serve`]), from these bytes on.
    Publish(BytesMut),
    /// Anything else: hyper serves the connection from these bytes on.
    Hyper(Bytes),
    /// The client left (or sent nothing in time).
    Gone,
}

/// Reads the first request head and decides who serves it. The whole head
/// must arrive within `deadline` (one deadline, not one per read: a client
/// sending a byte now and then holds its connection no longer).
pub(crate) async fn read_first<S>(stream: &mut S, deadline: Duration) -> FirstRequest
where
    S: AsyncRead + Unpin,
{
    /// Who serves a whole head.
    enum Decided {
        Subscribe(Box<Request<axum::body::Body>>),
        Publish,
        Hyper,
    }
    let mut buf = BytesMut::with_capacity(1024);
    let read = async {
        loop {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut head = httparse::Request::new(&mut headers);
            match head.parse(&buf) {
                Ok(httparse::Status::Complete(_)) if publish::takes(&head) => {
                    return Some(Decided::Publish);
                }
                Ok(httparse::Status::Complete(len)) => {
                    // A client that already pipelined more bytes after the
                    // head is not an EventSource: let hyper handle it.
                    return Some(match subscribe_request(&head) {
                        Some(request) if len == buf.len() => Decided::Subscribe(Box::new(request)),
                        _ => Decided::Hyper,
                    });
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                    if buf.capacity() == buf.len() {
                        buf.reserve(buf.len());
                    }
                }
                // Too large, too many headers, or malformed: hyper answers it.
                _ => return Some(Decided::Hyper),
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Some(Decided::Subscribe(request))) => FirstRequest::Subscribe(request),
        Ok(Some(Decided::Publish)) => FirstRequest::Publish(buf),
        Ok(Some(Decided::Hyper)) => FirstRequest::Hyper(buf.freeze()),
        Ok(None) | Err(_) => FirstRequest::Gone,
    }
}

/// A `GET` of the subscribe endpoint with no body, as an `http::Request`;
/// `None` for anything else.
fn subscribe_request(head: &httparse::Request<'_, '_>) -> Option<Request<axum::body::Body>> {
    if head.method? != "GET" {
        return None;
    }
    let path = head.path?.split('?').next()?;
    if path != MERCURE_PATH {
        return None;
    }
    for h in head.headers.iter() {
        // A body, or a protocol switch, is not for this path.
        if h.name.eq_ignore_ascii_case("content-length") && h.value != b"0"
            || h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        }
    }
    copy_head(head, Method::GET)?
        .body(axum::body::Body::empty())
        .ok()
}

/// A request of `method` with the parsed head's target, version (1.1 or
/// 1.0) and headers; `None` when one of them is not valid HTTP.
fn copy_head(head: &httparse::Request<'_, '_>, method: Method) -> Option<http::request::Builder> {
    let version = match head.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let mut request = Request::builder()
        .method(method)
        .uri(head.path?)
        .version(version);
    for h in head.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        request = request.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some(request)
}

/// Serves one subscribe request on the socket, then closes it.
/// `write_deadline` bounds writing an answer that is not an event stream
/// (an error, to a client that may not read it); the accept loop passes
/// its head timeout. The event stream itself has no deadline: it ends when
/// the stream does, the client leaves, or the hub cuts it off.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in the stream's state"
)]
pub(crate) fn serve_subscribe<S>(
    mut stream: S,
    peer: SocketAddr,
    app: Router,
    request: Box<Request<axum::body::Body>>,
    write_deadline: Duration,
) -> impl std::future::Future<Output = ()> + Send
where
    S: Duplex,
{
    // An async block rather than an async fn: an async fn keeps its
    // arguments twice in its state (as arguments and as locals), for as
    // long as the stream lives.
    async move {
        let framing = Framing::of(request.version());
        let kill = Arc::new(Notify::new());
        // Boxed: answering the request (the router, the response head)
        // takes far more state than streaming does, and only for a moment,
        // while this future lives as long as the subscription. The request
        // is taken out of its box and moved into that future within this
        // block: a local (or a box moved out of) lives in the state until
        // its scope ends, and this block's ends before the stream starts
        // (it kept 240 bytes per idle subscriber).
        let responding = {
            let request = {
                let boxed = request;
                *boxed
            };
            Box::pin(respond(
                &mut stream,
                peer,
                app,
                request,
                Arc::clone(&kill),
                write_deadline,
            ))
        };
        if let Some(body) = responding.await {
            if stream_body(stream, body, framing, kill).await == Ended::Killed {
                tracing::info!(%peer, "closed the stalled connection of a subscriber that fell too far behind");
            }
        }
    }
}

/// How the event stream's body is delimited.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// HTTP/1.1: chunks, the last one empty.
    Chunked,
    /// HTTP/1.0: the body ends when the connection closes.
    Close,
}

impl Framing {
    /// How a response to a request of `version` is framed here.
    pub(crate) fn of(version: Version) -> Self {
        match version {
            Version::HTTP_10 => Framing::Close,
            _ => Framing::Chunked,
        }
    }
}

/// Runs the request through the router and writes the response head.
/// Returns the event stream's body, or `None` when the response was
/// complete (an error) or the client is gone.
async fn respond<S>(
    stream: &mut S,
    peer: SocketAddr,
    app: Router,
    mut request: Request<axum::body::Body>,
    kill: Arc<Notify>,
    write_deadline: Duration,
) -> Option<axum::body::Body>
where
    S: Duplex,
{
    let framing = Framing::of(request.version());
    request.extensions_mut().insert(ConnectInfo(peer));
    request.extensions_mut().insert(ConnectionHandle { kill });
    if let Some(socket) = stream.direct() {
        request.extensions_mut().insert(socket.clone());
    }
    let Ok(response) = app.oneshot(request).await;
    let is_stream = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        // A client that does not read its answer holds the connection no
        // longer than the deadline.
        let _ = tokio::time::timeout(write_deadline, write_whole(stream, response)).await;
        return None;
    }
    let (parts, body) = response.into_parts();
    let length = match framing {
        Framing::Chunked => Length::Chunked,
        Framing::Close => Length::Unknown,
    };
    stream.write_all(&head(&parts, length)).await.ok()?;
    // A no-op on a plain socket; over TLS the record goes out now.
    stream.flush().await.ok()?;
    Some(body)
}

/// How an event stream on the lean path ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The stream ended, or the client left or failed.
    Done,
    /// The hub cut the subscriber off for lagging.
    Killed,
}

/// Writes the event stream's frames as they come until it ends, the
/// client goes away, or the hub cuts the subscriber off.
async fn stream_body<S>(
    mut stream: S,
    mut body: axum::body::Body,
    framing: Framing,
    kill: Arc<Notify>,
) -> Ended
where
    S: Duplex,
{
    // Reads and writes wait at once (the client leaving, the next frame
    // going out).
    let (mut reader, mut writer) = stream.halves();
    // The client sends nothing more; a read returns only when it closes
    // (or misbehaves). A few bytes on the stack are enough to notice.
    let mut scratch = [0u8; 16];
    // One registration for the whole stream, not one per frame.
    let killed = kill.notified();
    tokio::pin!(killed);
    loop {
        let data = tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    // An empty chunk would end a chunked body.
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
                // The stream ended (shutdown, lag, token expiry) or failed.
                _ => break,
            },
            read = reader.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return Ended::Done,
                Ok(_) => continue,
            },
            // The hub cut this subscriber off for lagging: dropping the
            // socket is the only way to end a stalled write.
            _ = &mut killed => return Ended::Killed,
        };
        // The write can block for as long as the client does not read: the
        // kill switch must be heard here too.
        // Flushed frame by frame: nothing may wait in a TLS buffer.
        let write = write_frame(&mut writer, &data, framing);
        tokio::select! {
            written = write => {
                if written.is_err() {
                    return Ended::Done;
                }
            }
            _ = &mut killed => return Ended::Killed,
        }
    }
    drop((reader, writer));
    // A frame the hub wrote in part (the stream ended early: the token
    // expired while the client was slow) cannot be followed by the last
    // chunk: the client sees the body cut off, as it is.
    if framing == Framing::Chunked && !stream.mid_frame() {
        // The last chunk: the body is complete, not cut off.
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let _ = stream.shutdown().await;
    Ended::Done
}

/// Writes `data` framed, then flushes: as one chunk (its size line, the
/// data, the line end, in vectored writes where the stream takes them) or
/// bare. The size line is made again on every poll rather than kept: this
/// future waits inside every subscriber's task, so what it holds across a
/// poll, every idle subscriber pays for.
fn write_frame<'w, W>(
    writer: &'w mut W,
    data: &'w [u8],
    framing: Framing,
) -> impl std::future::Future<Output = std::io::Result<()>> + 'w
where
    W: AsyncWrite + Unpin,
{
    let mut written = 0;
    std::future::poll_fn(move |cx| {
        let parts = FramedParts::new(framing, data);
        while written < parts.len() {
            let mut slices = [IoSlice::new(&[]); 3];
            let rest = parts.rest(written, &mut slices);
            let n =
                std::task::ready!(std::pin::Pin::new(&mut *writer).poll_write_vectored(cx, rest))?;
            if n == 0 {
                return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            written += n;
        }
        std::pin::Pin::new(&mut *writer).poll_flush(cx)
    })
}

/// A frame as it goes on the wire: its chunk size line, the frame and the
/// line end, or the frame alone.
pub(crate) struct FramedParts<'a> {
    framing: Framing,
    size_line: [u8; 18],
    size_len: usize,
    data: &'a [u8],
}

impl<'a> FramedParts<'a> {
    pub(crate) fn new(framing: Framing, data: &'a [u8]) -> Self {
        let mut size_line = [0u8; 18];
        let size_len = match framing {
            Framing::Chunked => chunk_size_line(data.len(), &mut size_line).len(),
            Framing::Close => 0,
        };
        FramedParts {
            framing,
            size_line,
            size_len,
            data,
        }
    }

    fn parts(&self) -> [&[u8]; 3] {
        match self.framing {
            Framing::Chunked => [&self.size_line[..self.size_len], self.data, b"\r\n"],
            Framing::Close => [&[], self.data, &[]],
        }
    }

    /// The framed length.
    pub(crate) fn len(&self) -> usize {
        self.parts().iter().map(|part| part.len()).sum()
    }

    /// What is left past the first `skip` framed bytes, as up to three
    /// slices in `slices`.
    pub(crate) fn rest<'s>(
        &'s self,
        mut skip: usize,
        slices: &'s mut [IoSlice<'s>; 3],
    ) -> &'s [IoSlice<'s>] {
        let mut count = 0;
        for part in self.parts() {
            match part.get(skip..) {
                Some(rest) if !rest.is_empty() => {
                    slices[count] = IoSlice::new(rest);
                    count += 1;
                    skip = 0;
                }
                _ => skip -= part.len().min(skip),
            }
        }
        &slices[..count]
    }
}

/// `len` in hex and CRLF: a chunk's size line.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in buf[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *slot = DIGITS[(len >> shift) & 0xf];
    }
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    &buf[..digits + 2]
}

/// Writes a complete response and closes: the head (with its length when
/// the body knows it), then the body's frames as they come, whatever their
/// size; without a length, closing the connection ends the body.
async fn write_whole<S>(stream: &mut S, response: Response<axum::body::Body>)
where
    S: AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let length = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .map_or(Length::Unknown, Length::Known);
    if stream.write_all(&head(&parts, length)).await.is_err() {
        return;
    }
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            if stream.write_all(&data).await.is_err() {
                return;
            }
        }
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// What the head says of the body's length.
enum Length {
    /// `Content-Length`, and the connection closes after the body.
    Known(usize),
    /// `Content-Length`, and the connection stays open for more requests.
    KeepAlive(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the connection closes.
    Unknown,
}

/// The status line and headers; the connection closes after the body
/// unless `length` keeps it open.
///
/// A chunked body does not say `Connection: close`: the last chunk ends it,
/// and the hub may close an idle connection whenever it likes. Said
/// anyway, it makes Node's fetch (undici) take a stream cut off mid-chunk
/// for a clean end, so a client that stops at the end silently loses the
/// rest (seen with `eventsource-parser` over fetch, interop/matrix).
fn head(parts: &http::response::Parts, length: Length) -> BytesMut {
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Length::Known(length) => {
            out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
            out.extend_from_slice(b"connection: close\r\n");
        }
        Length::KeepAlive(length) => {
            out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
        }
        Length::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Length::Unknown => out.extend_from_slice(b"connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_size_lines_are_hex() {
        let mut buf = [0u8; 18];
        for (len, line) in [
            (0, &b"0\r\n"[..]),
            (9, b"9\r\n"),
            (10, b"a\r\n"),
            (255, b"ff\r\n"),
            (4096, b"1000\r\n"),
            (usize::MAX, b"ffffffffffffffff\r\n"),
        ] {
            assert_eq!(super::chunk_size_line(len, &mut buf), line, "{len}");
        }
    }
}
