//! Pipelined publishes: a connection's publish requests answered
//! concurrently, the answers written in order.
//!
//! hyper answers the requests of an HTTP/1.1 connection one after the
//! other: it reads the next request once the previous answer is written.
//! A publisher that pipelines its requests (sends the next before the
//! answer to the last) then has one publish in flight at a time, and with
//! a durable store each one waits for a disk sync of its own
//! (docs/performance.md, "Durable publishes"). Here the requests a
//! connection has sent are all handed to the router at once, so the store
//! commits them together (one sync for the lot); they are appended in the
//! order they were sent ([`crate::publish_order`]), and the answers go out
//! in that order, as HTTP/1.1 requires.
//!
//! Only the plain publish takes this path: a `POST` of the hub's endpoint
//! over HTTP/1.1 with a `Content-Length` body of at most
//! [`MAX_BODY`] bytes, a form or JSON, and nothing that asks for more
//! (`Expect`, `Upgrade`, a transfer coding). At the first request that is
//! anything else, this path answers everything before it and hands the
//! connection to hyper with the bytes already read, as [`super::read_first`]
//! does.
//!
//! What a client can make a connection hold is bounded: [`BUDGET`] bytes
//! of requests read and not yet answered, [`MAX_IN_FLIGHT`] requests in
//! the router, answers of at most [`MAX_ANSWER`] bytes, and no more
//! requests read while [`MAX_UNREAD`] bytes of answers wait for the client
//! to read them. Waiting on the
//! client is bounded by the head timeout: for the next request to arrive
//! whole from when the connection went quiet, and for an answer to be
//! read. Waiting on the hub is not (hyper does not bound it either).

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use http::{header, HeaderValue, Method, Request};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::{head, Length, MAX_HEAD, MAX_HEADERS};
use crate::publish_order::{Sequence, Turn};
use crate::MERCURE_PATH;

/// The largest publish body taken here; larger ones go to hyper, which
/// streams them.
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// The most bytes of requests a connection holds, read and not yet
/// answered (as much as hyper buffers of one connection's input).
pub(crate) const BUDGET: usize = 64 * 1024;

/// The most requests of one connection in the router at once.
pub(crate) const MAX_IN_FLIGHT: usize = 32;

/// The most bytes of answers a connection holds that its client has not
/// read: past it, no more requests are read until it reads them.
pub(crate) const MAX_UNREAD: usize = 64 * 1024;

/// The largest answer written here (the hub's answers to a publish are an
/// id or a short problem report); a larger one closes the connection.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// What one read asks for when the input has less room than
/// [`MIN_READ`].
const READ_SIZE: usize = 8 * 1024;

/// The least room a read is made with.
const MIN_READ: usize = 1024;

/// What the connection serves requests with.
pub(crate) struct Pipeline {
    pub(crate) app: Router,
    pub(crate) peer: SocketAddr,
    /// How long the client may take to send a request, or to read an
    /// answer.
    pub(crate) head_timeout: Duration,
    /// Set when the hub shuts down: answer what was read, then close.
    pub(crate) stop: watch::Receiver<bool>,
}

/// How the pipeline ended.
pub(crate) enum After {
    /// The connection is done (closed by either side, or failed).
    Closed,
    /// A request this path does not serve begins these bytes: hyper serves
    /// the connection from here on, every earlier request answered.
    Hyper(Bytes),
}

/// Whether a first request head is a publish this path serves.
pub(crate) fn takes(head: &httparse::Request<'_, '_>) -> bool {
    accepted(head).is_some()
}

/// Serves publishes from `reader` (whose first bytes, `input`, were read
/// already) until the connection ends or a request for hyper arrives.
pub(crate) async fn serve<R, W>(
    reader: &mut R,
    writer: &mut W,
    mut input: BytesMut,
    pipeline: Pipeline,
) -> After
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Pipeline {
        app,
        peer,
        head_timeout,
        mut stop,
    } = pipeline;
    let mut answering: FuturesOrdered<Answering> = FuturesOrdered::new();
    // The order their publishes are appended in.
    let mut sequence = Sequence::new();
    // Bytes of the requests in `answering`, for the budget.
    let mut held: usize = 0;
    // The body of the last request in `answering`, while it arrives.
    let mut feeding: Option<Feeding> = None;
    let mut out = BytesMut::new();
    let mut unflushed = false;
    let mut reading = Reading::Open;
    let mut deadline = Instant::now() + head_timeout;
    loop {
        if let Some(body) = &mut feeding {
            if body.feed(&mut input) {
                feeding = None;
            }
        }
        // Every request whose head is in goes to the router now.
        while feeding.is_none() && reading == Reading::Open && answering.len() < MAX_IN_FLIGHT {
            match next_request(&mut input) {
                Next::Partial => break,
                Next::Other => reading = Reading::Handover,
                Next::Request(publish) => {
                    let Publish {
                        request,
                        len,
                        closes,
                        feeding: body,
                    } = *publish;
                    held += len;
                    if closes {
                        reading = Reading::Closing;
                    }
                    feeding = body;
                    let turn = sequence.next_turn();
                    answering.push_back(answer(app.clone(), peer, request, turn, len, closes));
                    deadline = Instant::now() + head_timeout;
                }
            }
        }
        if out.is_empty() && unflushed {
            // A no-op on a plain socket; over TLS the records go out now.
            match tokio::time::timeout_at(deadline, writer.flush()).await {
                Ok(Ok(())) => unflushed = false,
                _ => return After::Closed,
            }
        }
        if answering.is_empty() && out.is_empty() {
            match reading {
                Reading::Open => {}
                Reading::Handover => return After::Hyper(input.freeze()),
                Reading::Closing => {
                    let _ = tokio::time::timeout_at(deadline, writer.shutdown()).await;
                    return After::Closed;
                }
            }
        }
        let room = BUDGET.saturating_sub(input.len() + held);
        // A client that does not read its answers gets no more of them.
        let may_read = reading == Reading::Open && room > 0 && out.len() < MAX_UNREAD;
        // Waiting on the client: for a request, or for it to read answers
        // (a body on its way is the route's to wait for, with its own
        // deadline).
        let on_client = answering.is_empty() || !out.is_empty();
        if may_read && input.capacity() - input.len() < MIN_READ {
            // Else `BytesMut` grows by 64 bytes a read.
            input.reserve(room.min(READ_SIZE));
        }
        let mut room = (&mut input).limit(room);
        tokio::select! {
            answered = answering.next(), if !answering.is_empty() => {
                let Some(answered) = answered else { continue };
                held -= answered.len;
                let Some((parts, body)) = answered.response else {
                    // An answer this path cannot write: the client cannot
                    // be answered in order any more.
                    return After::Closed;
                };
                // Answered before its body was all read (a refusal, a
                // body too slow): what follows on the connection is the
                // rest of that body, so nothing more is read.
                let cut = answering.is_empty() && feeding.take().is_some();
                if answered.closes || cut {
                    reading = Reading::Closing;
                }
                // The last answer before the close says so.
                let closes = reading == Reading::Closing && answering.is_empty();
                if out.is_empty() {
                    // The client has this long to read it (writes that
                    // go out move the deadline; answers piling up do not).
                    deadline = Instant::now() + head_timeout;
                }
                out.unsplit(wire(parts, &body, closes));
            }
            written = writer.write_buf(&mut out), if !out.is_empty() => {
                match written {
                    Ok(n) if n > 0 => {
                        unflushed = true;
                        deadline = Instant::now() + head_timeout;
                    }
                    _ => return After::Closed,
                }
            }
            read = reader.read_buf(&mut room), if may_read => {
                match read {
                    Ok(n) if n > 0 => {}
                    // The client sends no more: what it sent is answered
                    // (a body cut off fails its request).
                    _ => {
                        if let Some(body) = feeding.take() {
                            body.cut_off();
                        }
                        reading = Reading::Closing;
                    }
                }
            }
            _ = stop.changed(), if reading == Reading::Open => {
                if let Some(body) = feeding.take() {
                    body.cut_off();
                }
                reading = Reading::Closing;
            }
            () = tokio::time::sleep_until(deadline), if on_client => {
                tracing::debug!("closing the connection of {peer}: the client took too long");
                return After::Closed;
            }
        }
    }
}

/// Whether more requests are read from the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    Open,
    /// The input begins with a request for hyper.
    Handover,
    /// Nothing more is read: the client closed its side or asked to
    /// close, or the hub is stopping.
    Closing,
}

/// An answer on its way.
type Answering = Pin<Box<dyn std::future::Future<Output = Answered> + Send>>;

/// What the router answered to a request.
struct Answered {
    /// The response, its body whole; `None` when it cannot be written here.
    response: Option<(http::response::Parts, Bytes)>,
    /// The request's length on the wire.
    len: usize,
    /// The client asked to close the connection after it.
    closes: bool,
}

/// A publish whose head was read whole.
struct Publish {
    request: Request<axum::body::Body>,
    /// Its length on the wire, body included.
    len: usize,
    /// The client asked to close the connection after it.
    closes: bool,
    /// Its body, when not all of it was read yet.
    feeding: Option<Feeding>,
}

/// The body of a request in the router, fed as its bytes arrive.
struct Feeding {
    sender: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    /// Bytes still to come.
    remaining: usize,
}

impl Feeding {
    /// Hands on what of the body `input` holds; `true` when the body is
    /// complete.
    fn feed(&mut self, input: &mut BytesMut) -> bool {
        let n = self.remaining.min(input.len());
        if n > 0 {
            // The router may have answered already and dropped the body.
            let _ = self.sender.send(Ok(input.split_to(n).freeze()));
            self.remaining -= n;
        }
        self.remaining == 0
    }

    /// The connection ended before the body did: the request fails, as
    /// it would with hyper, rather than go on with part of its body.
    fn cut_off(self) {
        let _ = self
            .sender
            .send(Err(std::io::ErrorKind::UnexpectedEof.into()));
    }
}

/// What the input begins with.
enum Next {
    /// Not yet a whole request head.
    Partial,
    /// A request for hyper (or a malformed one, which hyper answers).
    Other,
    Request(Box<Publish>),
}

/// Takes the first request off `input` if its head is whole and a
/// publish, with as much of its body as came.
fn next_request(input: &mut BytesMut) -> Next {
    if input.is_empty() {
        return Next::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => return Next::Partial,
        // Too large, too many headers, or malformed: hyper answers it.
        _ => return Next::Other,
    };
    let Some(accepted) = accepted(&head) else {
        return Next::Other;
    };
    let Some(builder) = super::copy_head(&head, Method::POST) else {
        return Next::Other;
    };
    let len = head_len + accepted.body_len;
    let mut taken = input.split_to(len.min(input.len()));
    let first = taken.split_off(head_len).freeze();
    let first_len = first.len();
    let (body, feeding) = if first_len == accepted.body_len {
        (axum::body::Body::from(first), None)
    } else {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let _ = sender.send(Ok(first));
        let chunks = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let feeding = Feeding {
            sender,
            remaining: accepted.body_len - first_len,
        };
        (axum::body::Body::from_stream(chunks), Some(feeding))
    };
    match builder.body(body) {
        Ok(request) => Next::Request(Box::new(Publish {
            request,
            len,
            closes: accepted.closes,
            feeding,
        })),
        Err(_) => Next::Other,
    }
}

/// What a publish head says of its body and connection.
struct Accepted {
    body_len: usize,
    closes: bool,
}

/// The head of a publish this path serves, or `None`.
fn accepted(head: &httparse::Request<'_, '_>) -> Option<Accepted> {
    if head.method? != "POST" || head.version? != 1 {
        return None;
    }
    let path = head.path?.split('?').next()?;
    if path != MERCURE_PATH {
        return None;
    }
    let mut body_len = None;
    let mut closes = false;
    let mut simple_body = false;
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // One length, digits only (as hyper reads it): anything else is
            // hyper's to refuse.
            if body_len.is_some() || h.value.is_empty() || h.value.len() > 9 {
                return None;
            }
            if !h.value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            body_len = std::str::from_utf8(h.value).ok()?.parse().ok();
        } else if h.name.eq_ignore_ascii_case("content-type") {
            // A form or JSON; a stream of events (a streaming publish) is
            // hyper's, its answer may be long.
            let value = h.value.to_ascii_lowercase();
            simple_body = value.starts_with(b"application/x-www-form-urlencoded")
                || value.starts_with(b"application/json");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let value = h.value.to_ascii_lowercase();
            if contains_token(&value, b"upgrade") {
                return None;
            }
            closes = contains_token(&value, b"close");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("expect")
            || h.name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        }
    }
    let body_len = body_len?;
    (simple_body && body_len <= MAX_BODY).then_some(Accepted { body_len, closes })
}

/// Whether a comma-separated header value holds `token`.
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii() == token)
}

/// Runs a publish through the router and reads the answer's body whole.
fn answer(
    app: Router,
    peer: SocketAddr,
    mut request: Request<axum::body::Body>,
    turn: Turn,
    len: usize,
    closes: bool,
) -> Answering {
    Box::pin(async move {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(turn);
        let Ok(response) = app.oneshot(request).await;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .ok()
            .map(|body| body.to_bytes());
        Answered {
            response: body.map(|body| (parts, body)),
            len,
            closes,
        }
    })
}

/// An answer as it goes on the wire, dated as hyper dates its answers.
fn wire(mut parts: http::response::Parts, body: &[u8], closes: bool) -> BytesMut {
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
        parts.headers.entry(header::DATE).or_insert(date);
    }
    let length = if closes {
        Length::Known(body.len())
    } else {
        Length::KeepAlive(body.len())
    };
    let mut wire = head(&parts, length);
    wire.extend_from_slice(body);
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Option<Accepted> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Request::new(&mut headers);
        head.parse(input).ok()?;
        accepted(&head)
    }

    const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

    #[test]
    fn a_plain_publish_is_taken() {
        let head =
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 12\r\n\r\n");
        let taken = parse(head.as_bytes()).unwrap();
        assert_eq!(taken.body_len, 12);
        assert!(!taken.closes);
        let head = "POST /.well-known/mercure?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(parse(head.as_bytes()).unwrap().closes);
    }

    #[test]
    fn anything_unusual_goes_to_hyper() {
        for head in [
            // Not a publish.
            format!("GET /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\n\r\n"),
            format!("POST /other HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.0\r\n{FORM}\r\nContent-Length: 1\r\n\r\n"),
            // No length, two lengths, a signed one, a big one.
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: +1\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 16385\r\n\r\n"),
            // A streaming publish, or no content type.
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Type: text/event-stream\r\nContent-Length: 1\r\n\r\n".to_owned(),
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 1\r\n\r\n".to_owned(),
            // Asking for more than a body.
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            format!("POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"),
        ] {
            assert!(parse(head.as_bytes()).is_none(), "{head}");
        }
    }

    #[test]
    fn requests_come_off_the_input_whole() {
        let one = format!(
            "POST /.well-known/mercure HTTP/1.1\r\n{FORM}\r\nContent-Length: 5\r\n\r\nhello"
        );
        let mut input =
            BytesMut::from(format!("{one}{one}GET /healthz HTTP/1.1\r\n\r\n").as_bytes());
        for _ in 0..2 {
            match next_request(&mut input) {
                Next::Request(publish) => {
                    assert_eq!(publish.len, one.len());
                    assert!(!publish.closes);
                    assert!(publish.feeding.is_none());
                }
                _ => panic!("a publish"),
            }
        }
        assert!(matches!(next_request(&mut input), Next::Other));
        assert_eq!(&input[..], b"GET /healthz HTTP/1.1\r\n\r\n");
        // A head not all there yet stays.
        let mut input = BytesMut::from(&one.as_bytes()[..20]);
        assert!(matches!(next_request(&mut input), Next::Partial));
        assert_eq!(input.len(), 20);
        // A body not all there yet is fed as it comes.
        let mut input = BytesMut::from(&one.as_bytes()[..one.len() - 2]);
        let Next::Request(publish) = next_request(&mut input) else {
            panic!("a publish");
        };
        assert!(input.is_empty());
        let mut feeding = publish.feeding.expect("the rest to come");
        assert_eq!(feeding.remaining, 2);
        let mut rest = BytesMut::from(&b"loGET"[..]);
        assert!(feeding.feed(&mut rest));
        assert_eq!(&rest[..], b"GET");
    }
}
