//! Just enough HTTP/1.1 for a load generator, sans I/O: request writers, the
//! response head (parsed by `httparse`), and a body decoder for identity
//! and `Transfer-Encoding: chunked` bodies.
//!
//! Hyper-based hubs send SSE streams chunked; nginx and node may use either
//! framing. The decoder takes bytes as they arrive, cut anywhere, and hands
//! out payload slices without copying; only a chunk-size line cut across
//! reads is buffered (a few bytes). A hand-written client rather than
//! hyper's keeps a subscriber to one small read buffer and one task, so
//! tens of thousands fit in a process.

use std::fmt;

/// A malformed or unsupported response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The response head is not valid HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The response head does not fit in the read buffer.
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// A chunk-size line is malformed.
    #[error("malformed chunk size")]
    ChunkSize,
    /// The bytes after a chunk's data are not CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// `Content-Length` is not a number, or is given twice with different
    /// values.
    #[error("bad Content-Length")]
    ContentLength,
}

/// Appends a `GET` request for an event stream, asking for it compressed
/// with gzip when `gzip` is set.
pub fn write_get(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    last_event_id: Option<&str>,
    gzip: bool,
) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n");
    if gzip {
        out.extend_from_slice(b"Accept-Encoding: gzip\r\n");
    }
    if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
        out.extend_from_slice(b"Last-Event-ID: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a keep-alive `POST` request with a `Content-Length` body.
pub fn write_post(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    content_type: &str,
    bearer: Option<&str>,
    body: &[u8],
) {
    use std::io::Write as _;
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    if let Some(token) = bearer {
        out.extend_from_slice(b"\r\nAuthorization: Bearer ");
        out.extend_from_slice(token.as_bytes());
    }
    // Writing to a Vec cannot fail.
    let _ = write!(out, "\r\nContent-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: n` (or no body at all: 0).
    Length(u64),
    /// Neither: the body ends when the connection closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
    /// `Content-Encoding` names gzip (`gzip` or `x-gzip`), the only coding
    /// given.
    pub gzip: bool,
    /// `Content-Encoding` names some other coding (or several).
    pub other_coding: bool,
    /// Bytes the head took; what follows is body.
    pub len: usize,
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more
/// bytes are needed.
///
/// # Errors
///
/// [`HttpError::Head`] for a malformed head, [`HttpError::ContentLength`] for
/// a bad length.
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf).map_err(HttpError::Head)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or(0);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut close = response.version == Some(0);
    let mut codings = Vec::new();
    for header in response.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("content-encoding") {
            codings.extend(
                value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|coding| {
                        !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
                    }),
            );
            continue;
        }
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(HttpError::ContentLength)?;
            if length.is_some_and(|old| old != n) {
                return Err(HttpError::ContentLength);
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let gzip = matches!(codings[..], [coding] if coding.eq_ignore_ascii_case(b"gzip")
        || coding.eq_ignore_ascii_case(b"x-gzip"));
    Ok(Some(ResponseHead {
        status,
        framing,
        close,
        gzip,
        other_coding: !gzip && !codings.is_empty(),
        len,
    }))
}

/// What one [`BodyDecoder::decode`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used; the rest belongs to the next response.
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting CR (false) or LF (true).
    DataEnd(bool),
    /// After the last chunk: in the trailer section, at a line start.
    TrailerLineStart,
    /// After the last chunk: inside a trailer line, or after its CR.
    TrailerLine,
    /// After the last chunk: an empty line's CR was seen.
    TrailerEnd,
    /// Identity body with this many bytes left.
    Length(u64),
    /// Identity body delimited by the connection's end.
    UntilClose,
    /// The body is complete.
    Done,
}

/// Incremental body decoder: feed it the bytes after the head, in pieces of
/// any size, and it passes the payload to a callback.
#[derive(Clone)]
pub struct BodyDecoder {
    state: State,
    /// A chunk-size line cut across reads (rare; bounded).
    partial: Vec<u8>,
}

/// Longest chunk-size line (with extensions) accepted.
const MAX_SIZE_LINE: usize = 1024;

impl fmt::Debug for BodyDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyDecoder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl BodyDecoder {
    /// A decoder for a body with the given framing.
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Chunked => State::Size,
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            partial: Vec::new(),
        }
    }

    /// The body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `payload` with each run of body bytes. Stops
    /// at the end of the body: bytes after it are not consumed.
    ///
    /// # Errors
    ///
    /// A malformed chunked framing.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<Progress, HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            match self.state {
                State::Done => break,
                State::UntilClose => {
                    payload(rest);
                    pos = input.len();
                }
                State::Length(left) | State::Data(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    payload(&rest[..take]);
                    pos += take;
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), n) => State::Length(n),
                        (_, 0) => State::DataEnd(false),
                        (_, n) => State::Data(n),
                    };
                }
                State::Size => pos += self.size_line(rest)?,
                State::DataEnd(seen_cr) => {
                    self.state = match (seen_cr, rest[0]) {
                        (false, b'\r') => State::DataEnd(true),
                        (true, b'\n') => State::Size,
                        _ => return Err(HttpError::ChunkEnd),
                    };
                    pos += 1;
                }
                State::TrailerLineStart => {
                    self.state = match rest[0] {
                        b'\r' => State::TrailerEnd,
                        b'\n' => State::Done,
                        _ => State::TrailerLine,
                    };
                    pos += 1;
                }
                State::TrailerLine => {
                    match memchr_lf(rest) {
                        Some(i) => {
                            self.state = State::TrailerLineStart;
                            pos += i + 1;
                        }
                        None => pos = input.len(),
                    };
                }
                State::TrailerEnd => {
                    self.state = if rest[0] == b'\n' {
                        State::Done
                    } else {
                        State::TrailerLine
                    };
                    pos += 1;
                }
            }
        }
        Ok(Progress {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    /// Consumes (part of) a chunk-size line from `rest`; returns the bytes
    /// used.
    fn size_line(&mut self, rest: &[u8]) -> Result<usize, HttpError> {
        let (used, parsed) = if self.partial.is_empty() {
            match httparse::parse_chunk_size(rest).map_err(|_| HttpError::ChunkSize)? {
                httparse::Status::Complete((used, size)) => (used, Some(size)),
                httparse::Status::Partial => (rest.len(), None),
            }
        } else {
            // Complete the held line up to its LF, then parse it whole.
            let used = memchr_lf(rest).map_or(rest.len(), |i| i + 1);
            self.partial.extend_from_slice(&rest[..used]);
            match httparse::parse_chunk_size(&self.partial).map_err(|_| HttpError::ChunkSize)? {
                httparse::Status::Complete((_, size)) => {
                    self.partial.clear();
                    (used, Some(size))
                }
                httparse::Status::Partial => (used, None),
            }
        };
        match parsed {
            Some(0) => self.state = State::TrailerLineStart,
            Some(size) => self.state = State::Data(size),
            None if self.partial.is_empty() => self.partial.extend_from_slice(rest),
            None => {}
        }
        if self.partial.len() > MAX_SIZE_LINE {
            return Err(HttpError::ChunkSize);
        }
        Ok(used)
    }
}

fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` cut at every pair of split points; each must yield
    /// `expected` and stop exactly at `end` (the bytes after the body).
    fn check(framing: Framing, input: &[u8], expected: &[u8], end: usize) {
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let mut decoder = BodyDecoder::new(framing);
                let mut out = Vec::new();
                let mut consumed = 0;
                for piece in [&input[..a], &input[a..b], &input[b..]] {
                    let start = consumed;
                    if decoder.is_done() {
                        break;
                    }
                    let progress = decoder
                        .decode(piece, |p| out.extend_from_slice(p))
                        .unwrap_or_else(|e| panic!("split {a}/{b}: {e}"));
                    consumed = start + progress.consumed;
                    if !progress.done {
                        assert_eq!(progress.consumed, piece.len(), "split {a}/{b}");
                    }
                }
                assert_eq!(out, expected, "split {a}/{b}");
                if end < input.len() || framing != Framing::UntilClose {
                    assert!(decoder.is_done(), "split {a}/{b}");
                    assert_eq!(consumed, end, "split {a}/{b}");
                }
            }
        }
    }

    #[test]
    fn chunked_at_every_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\nNEXT";
        check(Framing::Chunked, body, b"hello 0123456789", body.len() - 4);
        let trailers = b"3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nZ";
        check(Framing::Chunked, trailers, b"abc", trailers.len() - 1);
        let bare_lf = b"2\r\nab\r\n0\r\n\nZ";
        check(Framing::Chunked, bare_lf, b"ab", bare_lf.len() - 1);
    }

    #[test]
    fn identity_at_every_split() {
        check(Framing::Length(5), b"helloNEXT", b"hello", 5);
        check(Framing::Length(0), b"NEXT", b"", 0);
        check(Framing::UntilClose, b"data: x\n\n", b"data: x\n\n", 9);
    }

    #[test]
    fn bad_chunks() {
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        assert!(decoder.decode(b"zz\r\n", |_| {}).is_err());
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        assert!(decoder.decode(b"1\r\nabc", |_| {}).is_err());
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let long = vec![b'1'; 2000];
        assert!(decoder.decode(&long, |_| {}).is_err());
    }

    #[test]
    fn heads() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nrest";
        let parsed = parse_head(head).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert_eq!(parsed.framing, Framing::Chunked);
        assert_eq!(&head[parsed.len..], b"rest");
        assert!(!parsed.close);
        assert_eq!(parse_head(&head[..20]).unwrap(), None);
        let head = b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
        let parsed = parse_head(head).unwrap().unwrap();
        assert_eq!((parsed.framing, parsed.close), (Framing::Length(12), true));
        let head = b"HTTP/1.0 200 OK\r\n\r\n";
        let parsed = parse_head(head).unwrap().unwrap();
        assert_eq!((parsed.framing, parsed.close), (Framing::UntilClose, true));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(!parsed.gzip && !parsed.other_coding);
        for (coding, gzip, other) in [
            ("gzip", true, false),
            ("X-Gzip", true, false),
            ("identity, gzip", true, false),
            ("br", false, true),
            ("gzip, br", false, true),
            ("identity", false, false),
        ] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\n\r\n");
            let parsed = parse_head(head.as_bytes()).unwrap().unwrap();
            assert_eq!(
                (parsed.gzip, parsed.other_coding),
                (gzip, other),
                "{coding}"
            );
        }
        assert!(parse_head(b"NOPE\r\n\r\n").is_err());
    }

    #[test]
    fn requests() {
        let mut out = Vec::new();
        write_get(&mut out, "h:1", "/s?x=1", Some("urn:1"), false);
        assert_eq!(
            out,
            b"GET /s?x=1 HTTP/1.1\r\nHost: h:1\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nLast-Event-ID: urn:1\r\n\r\n"
        );
        out.clear();
        write_get(&mut out, "h:1", "/s", None, true);
        assert_eq!(
            out,
            b"GET /s HTTP/1.1\r\nHost: h:1\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        out.clear();
        write_post(&mut out, "h:1", "/p", "text/plain", Some("T"), b"abc");
        assert_eq!(
            out,
            b"POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/plain\r\nAuthorization: Bearer T\r\nContent-Length: 3\r\n\r\nabc"
        );
    }
}
