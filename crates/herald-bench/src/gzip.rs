//! The gzip side of a compressed subscription (`--gzip`), sans I/O: a
//! response body with `Content-Encoding: gzip` goes in, in pieces cut
//! anywhere, and the event stream comes out as it arrives.
//!
//! A hub that compresses an event stream flushes after every chunk (a
//! DEFLATE sync flush, `00 00 FF FF`), so every byte it sent so far can be
//! inflated at once: the decoder feeds each piece to a raw-DEFLATE
//! [`flate2::Decompress`] with [`FlushDecompress::Sync`] and hands out what
//! comes out, in slices of at most [`OUT_CHUNK`] bytes. Its memory is fixed
//! per stream: flate2's inflater (a 32 KiB window and its tables) and that
//! one output buffer, whatever arrives.
//!
//! Only what Herald (and nginx's gzip module) write is accepted: the bare
//! 10-byte gzip header (no name, comment or extra field), one member, and
//! the trailer when the hub ends the stream, checked against the data
//! (CRC-32 and length). Anything else is a [`GzipError`], never a panic: a
//! load generator reads whatever the hub under test sends.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// The gzip header's fixed part (RFC 1952 §2.3).
const HEADER_LEN: usize = 10;
/// The trailer: CRC-32 and the length modulo 2³², little-endian.
const TRAILER_LEN: usize = 8;
/// The most bytes handed out per call of the sink.
pub const OUT_CHUNK: usize = 4096;

/// A gzip stream that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GzipError {
    /// The first bytes are not a gzip header of the DEFLATE method.
    #[error("not a gzip stream (bad magic number or method)")]
    Header,
    /// The header announces optional fields (name, comment, extra, header
    /// CRC) or reserved flags; a hub has no reason to send them.
    #[error("gzip header flags {0:#04x} not supported (a hub sends a bare header)")]
    Flags(u8),
    /// The DEFLATE data is corrupt.
    #[error("corrupt gzip stream: {0}")]
    Deflate(#[source] flate2::DecompressError),
    /// The inflater took no input and gave no output: a corrupt stream it
    /// did not report (guards against looping).
    #[error("corrupt gzip stream: the inflater made no progress")]
    Stalled,
    /// The trailer's CRC-32 or length does not match the data.
    #[error("gzip trailer does not match the stream (CRC-32 or length)")]
    Trailer,
    /// Bytes after the trailer.
    #[error("data after the end of the gzip stream")]
    TrailingData,
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Reading the header; this many bytes of it seen.
    Header(usize),
    /// Inflating.
    Body,
    /// After the last block; this many trailer bytes seen.
    Trailer(usize),
    /// The trailer checked: the stream is complete.
    Done,
}

/// Incremental gzip decoder for one response body.
pub struct GzipDecoder {
    part: Part,
    inflater: Decompress,
    /// The CRC-32 and length of what came out, for the trailer.
    crc: Crc,
    trailer: [u8; TRAILER_LEN],
    out: Box<[u8]>,
}

impl std::fmt::Debug for GzipDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipDecoder")
            .field("part", &self.part)
            .finish_non_exhaustive()
    }
}

impl Default for GzipDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl GzipDecoder {
    /// A decoder at the start of a gzip stream.
    pub fn new() -> GzipDecoder {
        GzipDecoder {
            part: Part::Header(0),
            // Raw DEFLATE: the gzip framing is read here, not by flate2.
            inflater: Decompress::new(false),
            crc: Crc::new(),
            trailer: [0; TRAILER_LEN],
            out: vec![0; OUT_CHUNK].into_boxed_slice(),
        }
    }

    /// The stream ended with a valid trailer.
    pub fn is_done(&self) -> bool {
        self.part == Part::Done
    }

    /// Decodes `input`, the next bytes of the body, calling `sink` with
    /// each run of inflated bytes.
    ///
    /// # Errors
    ///
    /// A stream that is not gzip, is corrupt, or goes on after its
    /// trailer. The decoder is of no use after an error.
    pub fn feed(&mut self, mut input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<(), GzipError> {
        while !input.is_empty() {
            match self.part {
                Part::Header(seen) => {
                    let take = input.len().min(HEADER_LEN - seen);
                    check_header(seen, &input[..take])?;
                    input = &input[take..];
                    self.part = if seen + take == HEADER_LEN {
                        Part::Body
                    } else {
                        Part::Header(seen + take)
                    };
                }
                Part::Body => input = self.inflate(input, &mut sink)?,
                Part::Trailer(seen) => {
                    let take = input.len().min(TRAILER_LEN - seen);
                    self.trailer[seen..seen + take].copy_from_slice(&input[..take]);
                    input = &input[take..];
                    if seen + take < TRAILER_LEN {
                        self.part = Part::Trailer(seen + take);
                        continue;
                    }
                    let (crc, len) = self.trailer.split_at(4);
                    if crc != self.crc.sum().to_le_bytes() || len != self.crc.amount().to_le_bytes()
                    {
                        return Err(GzipError::Trailer);
                    }
                    self.part = Part::Done;
                }
                Part::Done => return Err(GzipError::TrailingData),
            }
        }
        Ok(())
    }

    /// Inflates from `input` until it is used up (and every byte it yields
    /// handed out) or the last block ends; returns what is left of it.
    fn inflate<'a>(
        &mut self,
        mut input: &'a [u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<&'a [u8], GzipError> {
        loop {
            let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(input, &mut self.out, FlushDecompress::Sync)
                .map_err(GzipError::Deflate)?;
            // Both are bounded by the slices' lengths.
            let consumed = (self.inflater.total_in() - in_before) as usize;
            let produced = (self.inflater.total_out() - out_before) as usize;
            let out = &self.out[..produced];
            if !out.is_empty() {
                self.crc.update(out);
                sink(out);
            }
            input = &input[consumed..];
            if status == Status::StreamEnd {
                self.part = Part::Trailer(0);
                return Ok(input);
            }
            // A full output buffer may have more behind it, even when the
            // input is used up.
            if produced < self.out.len() && input.is_empty() {
                return Ok(input);
            }
            if consumed == 0 && produced == 0 {
                return Err(GzipError::Stalled);
            }
        }
    }
}

/// Checks `bytes`, the header's bytes from offset `seen` on.
fn check_header(seen: usize, bytes: &[u8]) -> Result<(), GzipError> {
    for (offset, &byte) in (seen..).zip(bytes) {
        match offset {
            // ID1, ID2, CM = 8 (DEFLATE).
            0 if byte != 0x1f => return Err(GzipError::Header),
            1 if byte != 0x8b => return Err(GzipError::Header),
            2 if byte != 8 => return Err(GzipError::Header),
            3 if byte != 0 => return Err(GzipError::Flags(byte)),
            // MTIME, XFL, OS: anything.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};

    use super::*;

    /// A gzip stream as a hub writes one: the header, then each chunk
    /// compressed and sync-flushed, then (when `end`) the final block and
    /// the trailer.
    fn gzip_stream(chunks: &[&[u8]], end: bool) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        let mut compress = Compress::new(Compression::default(), false);
        let mut crc = Crc::new();
        let mut run = |input: &[u8], flush: FlushCompress, out: &mut Vec<u8>| {
            out.reserve(input.len() + 1024);
            let before = compress.total_in();
            compress.compress_vec(input, out, flush).unwrap();
            assert_eq!(compress.total_in() - before, input.len() as u64);
        };
        for chunk in chunks {
            run(chunk, FlushCompress::Sync, &mut out);
            crc.update(chunk);
        }
        if end {
            run(b"", FlushCompress::Finish, &mut out);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&crc.amount().to_le_bytes());
        }
        out
    }

    /// Feeds `pieces` in turn; the inflated bytes, or the first error.
    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), GzipError> {
        let mut decoder = GzipDecoder::new();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, |bytes| {
                assert!(bytes.len() <= OUT_CHUNK);
                out.extend_from_slice(bytes);
            })?;
        }
        Ok((out, decoder.is_done()))
    }

    const CHUNKS: [&[u8]; 4] = [
        b"retry: 3000\n",
        b"id: urn:uuid:1\ndata: {\"seq\":0,\"symbol\":\"AAPL\",\"price\":187.23}\n\n",
        b":\n",
        b"id: urn:uuid:2\ndata: {\"seq\":1,\"symbol\":\"AAPL\",\"price\":187.25}\n\n",
    ];

    #[test]
    fn inflates_at_every_pair_of_splits() {
        let plain = CHUNKS.concat();
        for end in [false, true] {
            let wire = gzip_stream(&CHUNKS, end);
            for a in 0..=wire.len() {
                for b in a..=wire.len() {
                    let pieces = [&wire[..a], &wire[a..b], &wire[b..]];
                    let (out, done) = decode(&pieces).unwrap_or_else(|e| panic!("{a}/{b}: {e}"));
                    assert_eq!(out, plain, "split {a}/{b}");
                    assert_eq!(done, end, "split {a}/{b}");
                }
            }
        }
    }

    #[test]
    fn each_flushed_chunk_comes_out_when_it_arrives() {
        let wire = gzip_stream(&CHUNKS, false);
        let mut decoder = GzipDecoder::new();
        let mut out = Vec::new();
        let mut fed = 0;
        for (i, chunk) in CHUNKS.iter().enumerate() {
            // The stream up to and including chunk i's flush.
            let upto = gzip_stream(&CHUNKS[..=i], false).len();
            decoder
                .feed(&wire[fed..upto], |b| out.extend_from_slice(b))
                .unwrap();
            fed = upto;
            assert!(out.ends_with(chunk), "chunk {i}");
        }
    }

    #[test]
    fn output_larger_than_the_buffer_comes_out_whole() {
        // Highly compressible: a few hundred bytes inflate to 1 MiB.
        let big = vec![b'x'; 1 << 20];
        let wire = gzip_stream(&[&big, b"tail"], true);
        let (out, done) = decode(&[&wire]).unwrap();
        assert_eq!(out.len(), big.len() + 4);
        assert!(out.ends_with(b"xtail"));
        assert!(done);
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let wire = gzip_stream(&CHUNKS, true);
        let with = |at: usize, byte: u8| {
            let mut bad = wire.clone();
            bad[at] = byte;
            bad
        };
        for (bad, expect) in [
            (with(0, 0x1e), "magic"),
            (with(2, 7), "magic"),
            (with(3, 0x08), "flags"),
            (with(wire.len() - 8, wire[wire.len() - 8] ^ 1), "trailer"),
            (with(wire.len() - 1, 1), "trailer"),
            ([&wire[..], b"x"].concat(), "after"),
            (
                [&wire[..10], &[0xff; 64][..]].concat(),
                "corrupt gzip stream",
            ),
        ] {
            let error = decode(&[&bad]).unwrap_err().to_string();
            assert!(error.contains(expect), "{expect}: {error}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A xorshift generator: deterministic noise after a valid header,
        // fed in pieces of varying size.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            let len = (next() % 300) as usize;
            let mut wire = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            wire.extend((0..len).map(|_| next() as u8));
            let mut decoder = GzipDecoder::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let take = rest.len().min(1 + (next() % 40) as usize);
                if decoder.feed(&rest[..take], |_| {}).is_err() {
                    break;
                }
                rest = &rest[take..];
            }
        }
    }
}
