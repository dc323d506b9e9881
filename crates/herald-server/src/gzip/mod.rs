//! gzip for event streams (`compression = "gzip"`), negotiated by
//! `Accept-Encoding`, flushed after every chunk so no event is held back.
//!
//! A JSON feed repeats itself from event to event (its keys, its `id:`
//! prefix), and a compressor that remembers the previous events turns the
//! repeats into a few bits each. That memory is what an event stream
//! cannot afford in the usual size: the hub holds tens of thousands of
//! streams for hours. So each compressed stream has a [`GzipEncoder`] over
//! Herald's own DEFLATE encoder ([`deflate`]: a 4 KiB window and a 4 KiB
//! hash table, about 12 KiB in all while the stream is busy), and a stream
//! with no event for [`QUIET`] gives that memory back after its next chunk
//! (a heartbeat, typically; heartbeats and the `retry:` hint are not
//! events, and a stream without history writes them without allocating):
//! an idle compressed subscriber holds what an idle plain one does, plus a
//! few bytes. The allocator keeps what was given back for the next busy
//! stream (glibc does not hand such small blocks back to the system), so
//! the hub's resident memory follows the most streams busy at once, not
//! the most streams open.
//!
//! Compression opens a side channel wherever one stream mixes what an
//! attacker can publish with secrets it must not learn, as BREACH showed
//! for web pages: the size of the compressed stream tells whether the two
//! share bytes. That is why it is off by default (`docs/security.md`).

pub mod deflate;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap};

use deflate::Deflater;

/// A stream with no event for this long gives back its compressor's
/// memory after its next chunk. Shorter than the default heartbeat
/// (15 s), so an idle stream's first heartbeat is what frees it.
pub const QUIET: Duration = Duration::from_secs(5);

/// The gzip member header (RFC 1952 §2.3): no name, no time, no flags.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One gzip stream written chunk by chunk, every chunk flushed.
#[derive(Default)]
pub struct GzipEncoder {
    deflater: Deflater,
    crc: crc32fast::Hasher,
    /// The input's length modulo 2³², as the trailer gives it.
    size: u32,
    started: bool,
}

impl GzipEncoder {
    /// An encoder that has written and allocated nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `chunk`, compressed (after the gzip header, on the first call): a
    /// decoder given every piece so far yields every chunk so far.
    pub fn encode(&mut self, chunk: &[u8]) -> Bytes {
        self.encode_with(chunk, Deflater::compress)
    }

    fn encode_with(
        &mut self,
        chunk: &[u8],
        compress: fn(&mut Deflater, &[u8], &mut Vec<u8>),
    ) -> Bytes {
        let mut out = Vec::with_capacity(chunk.len() / 2 + 32);
        if !self.started {
            out.extend_from_slice(&HEADER);
            self.started = true;
        }
        compress(&mut self.deflater, chunk, &mut out);
        self.crc.update(chunk);
        // Truncation is the format's: ISIZE is the size modulo 2³².
        self.size = self.size.wrapping_add(chunk.len() as u32);
        Bytes::from(out)
    }

    /// As [`GzipEncoder::encode`], without allocating the compressor's
    /// memory when it is not held (see
    /// [`Deflater::compress_without_history`]).
    pub fn encode_without_history(&mut self, chunk: &[u8]) -> Bytes {
        self.encode_with(chunk, Deflater::compress_without_history)
    }

    /// Gives back the compressor's memory; the stream goes on, without
    /// references to what came before.
    pub fn forget(&mut self) {
        self.deflater.forget();
    }

    /// Whether the compressor's memory is held.
    pub fn holds_memory(&self) -> bool {
        self.deflater.holds_memory()
    }

    /// The end of the stream: the final block and the gzip trailer (after
    /// the header, if nothing was encoded).
    pub fn finish(self) -> Bytes {
        let mut out = Vec::with_capacity(HEADER.len() + 10);
        if !self.started {
            out.extend_from_slice(&HEADER);
        }
        self.deflater.finish(&mut out);
        out.extend_from_slice(&self.crc.finalize().to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        Bytes::from(out)
    }
}

/// The compression of one event stream: a [`GzipEncoder`] that gives its
/// memory back when the stream goes quiet.
pub(crate) struct StreamGzip {
    encoder: GzipEncoder,
    /// When the last chunk with an event in it went out.
    last_event: Option<Instant>,
}

impl StreamGzip {
    pub(crate) fn new() -> Self {
        StreamGzip {
            encoder: GzipEncoder::new(),
            last_event: None,
        }
    }

    pub(crate) fn encode(&mut self, chunk: &[u8]) -> Bytes {
        self.encode_at(chunk, Instant::now())
    }

    fn encode_at(&mut self, chunk: &[u8], now: Instant) -> Bytes {
        let out = if carries_an_event(chunk) {
            self.last_event = Some(now);
            self.encoder.encode(chunk)
        } else {
            self.encoder.encode_without_history(chunk)
        };
        if self
            .last_event
            .is_none_or(|last| now.duration_since(last) >= QUIET)
        {
            self.encoder.forget();
        }
        out
    }

    pub(crate) fn finish(self) -> Bytes {
        self.encoder.finish()
    }
}

/// Whether a chunk of the stream holds more than comments (heartbeats) and
/// `retry:` lines. Those are short; a longer chunk is taken for an event
/// without looking.
fn carries_an_event(chunk: &[u8]) -> bool {
    chunk.len() > 64
        || chunk
            .split(|&byte| byte == b'\n')
            .any(|line| !(line.is_empty() || line.starts_with(b":") || line.starts_with(b"retry:")))
}

/// Whether the request's `Accept-Encoding` takes gzip (RFC 9110 §12.5.3):
/// `gzip` (or its old name `x-gzip`) with a weight above zero, or else `*`
/// with one. Elements that do not parse are ignored.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let elements = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for element in elements {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let Some(weight) = weight(parts) else {
            continue;
        };
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.map_or(weight, |w: f32| w.max(weight)));
        } else if coding == "*" {
            any = Some(weight);
        }
    }
    gzip.or(any).is_some_and(|weight| weight > 0.0)
}

/// The `q` parameter among `params` (1 when absent); `None` when it does
/// not parse as a weight (RFC 9110 §12.4.2: 0 to 1, three decimals).
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    let mut weight = 1.0;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            let value = value.trim();
            let well_formed = !value.is_empty()
                && value.len() <= 5
                && value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            weight = value
                .parse::<f32>()
                .ok()
                .filter(|w| well_formed && *w <= 1.0)?;
        }
    }
    Some(weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::io::Read as _;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn gzip_is_taken_when_the_client_weighs_it_above_zero() {
        for yes in [
            &["gzip"][..],
            &["gzip, deflate, br, zstd"], // Chromium's
            &["br;q=1.0, gzip;q=0.8, *;q=0.1"],
            &["x-gzip"],
            &["*"],
            &["deflate", "GZIP ; q=0.5"],
            &["gzip;q=0, gzip;q=1"],
        ] {
            assert!(accepts_gzip(&headers(yes)), "{yes:?}");
        }
        for no in [
            &[][..],
            &["identity"],
            &["br, deflate"],
            &["gzip;q=0"],
            &["gzip;q=0.000, *"],
            &["*;q=0"],
            &["gzip;q=2"],
            &["gzip;q=abc"],
            &["gzip;q"],
            &["gzip;q=-1"],
            &["gzipped"],
        ] {
            assert!(!accepts_gzip(&headers(no)), "{no:?}");
        }
    }

    #[test]
    fn a_stream_of_pieces_is_one_gzip_member() {
        let mut encoder = GzipEncoder::new();
        let mut wire = Vec::new();
        for chunk in [
            &b"retry: 3000\n"[..],
            b"data: {\"n\":1}\n\n",
            b":\n",
            b"data: {\"n\":2}\n\n",
        ] {
            wire.extend_from_slice(&encoder.encode(chunk));
        }
        wire.extend_from_slice(&encoder.finish());
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_string(&mut plain)
            .expect("a valid gzip stream, checksum and size included");
        assert_eq!(
            plain,
            "retry: 3000\ndata: {\"n\":1}\n\n:\ndata: {\"n\":2}\n\n"
        );
    }

    #[test]
    fn a_quiet_stream_gives_its_memory_back_after_its_next_chunk() {
        let mut stream = StreamGzip::new();
        let mut wire = Vec::new();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        wire.extend_from_slice(&stream.encode_at(b"retry: 3000\n", at(0)));
        assert!(!stream.encoder.holds_memory(), "no event yet, nothing held");
        wire.extend_from_slice(&stream.encode_at(b"data: 1\n\n", at(1)));
        assert!(
            stream.encoder.holds_memory(),
            "a busy stream keeps its window"
        );
        // Heartbeats more often than QUIET: the stream is still idle.
        for beat in 2..=5 {
            wire.extend_from_slice(&stream.encode_at(b":\n", at(beat)));
            assert!(
                stream.encoder.holds_memory(),
                "{beat} s: not quiet for long yet"
            );
        }
        wire.extend_from_slice(&stream.encode_at(b":\n", at(6)));
        assert!(!stream.encoder.holds_memory(), "quiet for 5 s: given back");
        wire.extend_from_slice(&stream.encode_at(b":\n", at(7)));
        assert!(
            !stream.encoder.holds_memory(),
            "a heartbeat does not take it again"
        );
        wire.extend_from_slice(&stream.encode_at(b"data: 2\n\n", at(8)));
        assert!(stream.encoder.holds_memory());
        wire.extend_from_slice(&stream.finish());
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_string(&mut plain)
            .expect("valid");
        assert_eq!(
            plain,
            "retry: 3000\ndata: 1\n\n:\n:\n:\n:\n:\n:\ndata: 2\n\n"
        );
    }

    #[test]
    fn heartbeats_and_retry_hints_are_not_events() {
        assert!(!carries_an_event(b":\n"));
        assert!(!carries_an_event(b"retry: 3000\n"));
        assert!(!carries_an_event(b": keep-alive\n:\n"));
        assert!(carries_an_event(b"data: x\n\n"));
        assert!(carries_an_event(b":\ndata: x\n\n"));
        assert!(carries_an_event(&[b':'; 65]));
    }

    #[test]
    fn an_empty_stream_is_a_valid_gzip_member() {
        let wire = GzipEncoder::new().finish();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_end(&mut plain)
            .expect("valid");
        assert!(plain.is_empty());
    }
}
