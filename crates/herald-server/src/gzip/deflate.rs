//! A raw DEFLATE encoder (RFC 1951) for event streams: small, flushed
//! after every chunk, with a short window.
//!
//! General-purpose deflaters keep large tables for as long as a stream
//! lives. Counted with a counting global allocator (2026-11-29):
//! miniz_oxide's `CompressorOxide` holds 311 KiB, zlib-rs's `Deflate` 245
//! KiB at its smallest window (9 bits; 371 KiB at 15); C zlib at its
//! smallest window still holds a 64 KiB hash head and 64 KiB of literal
//! buffers (its `memLevel` is not exposed by `flate2`).
//! An event stream lives for hours and writes a few hundred bytes at a
//! time, and the hub holds tens of thousands of them, so this encoder is
//! cut to what such a stream needs:
//!
//! - LZ77 over the last [`WINDOW`] bytes, one candidate per hash bucket
//!   (the previous event is where a JSON feed repeats itself: its keys,
//!   its `id:` prefix, its `data: {"`);
//! - every chunk one block with the fixed Huffman codes (a dynamic block's
//!   code tables cost more than they save on a few hundred bytes), or
//!   stored blocks when that is smaller (already compressed or random
//!   data);
//! - a sync flush after every chunk (an empty stored block: the output
//!   ends on a byte boundary and a decoder can hand out everything), so no
//!   event waits in the compressor;
//! - its state, [`WINDOW`] bytes of history plus a hash table, allocated on
//!   the first chunk and given back by [`Deflater::forget`]; the stream
//!   then goes on without back references into the forgotten bytes, which
//!   any decoder accepts.

/// How far back a match may reach, in bytes.
pub const WINDOW: usize = 4096;
/// Bytes compressed per pass: the work buffer holds the window and one
/// segment, whatever the size of the chunk.
const SEGMENT: usize = 4096;
/// log2 of the hash table's buckets.
const HASH_BITS: u32 = 10;
/// The shortest match looked for (the hash covers four bytes).
const MIN_MATCH: usize = 4;
/// The longest match DEFLATE can say.
const MAX_MATCH: usize = 258;
/// The most bytes one stored block carries.
const MAX_STORED: usize = 65_535;

/// A raw DEFLATE stream that is never finished until [`Deflater::finish`]:
/// each [`Deflater::compress`] appends one flushed piece of it.
#[derive(Default)]
pub struct Deflater {
    /// `None` until the first chunk, and again after [`Deflater::forget`].
    state: Option<Box<State>>,
}

/// The matcher's memory: about 12 KiB.
struct State {
    /// The last [`WINDOW`] bytes of input, then the segment being compressed.
    work: Vec<u8>,
    /// The absolute stream position of `work[0]`.
    base: u32,
    /// For each hash of four bytes, the absolute position where they last
    /// began (wrapping: a stale entry is only a candidate, checked byte by
    /// byte before it is used).
    head: Box<[u32; 1 << HASH_BITS]>,
}

impl State {
    fn new() -> Box<Self> {
        Box::new(State {
            work: Vec::with_capacity(WINDOW + SEGMENT),
            base: 0,
            head: Box::new([u32::MAX; 1 << HASH_BITS]),
        })
    }
}

impl Deflater {
    /// A deflater that has allocated nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `input`, compressed and flushed, to `out`: after it, a
    /// decoder given everything written so far yields all of the input so
    /// far. Each call writes at least one whole block, so the output
    /// always grows (by 5 bytes for an empty input).
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let state = self.state.get_or_insert_with(State::new);
        put_block(input, out, |segment, bits| {
            state.encode_segment(segment, bits)
        });
    }

    /// As [`Deflater::compress`], but a deflater that holds no history
    /// writes `input` as literals and stays without: a heartbeat on a
    /// quiet stream costs no allocation. (One that holds history must add
    /// `input` to it, or its distances would no longer match the
    /// decoder's window: it compresses as usual.)
    pub fn compress_without_history(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.state.is_some() {
            return self.compress(input, out);
        }
        put_block(input, out, |segment, bits| {
            for &byte in segment {
                bits.put_literal_or_length(u16::from(byte));
            }
        });
    }

    /// Gives back the matcher's memory; the next chunk starts with no
    /// history (and allocates it again).
    pub fn forget(&mut self) {
        self.state = None;
    }

    /// Whether the matcher's memory is held.
    pub fn holds_memory(&self) -> bool {
        self.state.is_some()
    }

    /// Ends the stream: a final, empty block. Nothing may follow.
    pub fn finish(self, out: &mut Vec<u8>) {
        let mut bits = BitWriter::new(out);
        // BFINAL = 1, BTYPE = 01, then the end-of-block code.
        bits.put(0b011, 3);
        bits.put_literal_or_length(END_OF_BLOCK);
        bits.align();
    }
}

impl State {
    /// Adds `segment` to the window and writes its symbols.
    fn encode_segment(&mut self, segment: &[u8], bits: &mut BitWriter<'_>) {
        // Keep only the window before the new bytes.
        if self.work.len() > WINDOW {
            let drop = self.work.len() - WINDOW;
            self.work.drain(..drop);
            // Truncation is the point: positions wrap (see `head`).
            self.base = self.base.wrapping_add(drop as u32);
        }
        let from = self.work.len();
        self.work.extend_from_slice(segment);
        let mut matcher = Matcher {
            work: &self.work,
            base: self.base,
            head: &mut self.head,
        };
        let mut i = from;
        while let Some(&byte) = matcher.work.get(i) {
            match matcher.longest_match(i) {
                Some((length, distance)) => {
                    bits.put_match(length, distance);
                    // Index the positions the match covers too, so the next
                    // event finds them.
                    for p in i..i + length {
                        matcher.insert(p);
                    }
                    i += length;
                }
                None => {
                    matcher.insert(i);
                    bits.put_literal_or_length(u16::from(byte));
                    i += 1;
                }
            }
        }
    }
}

/// The window and the hash table, borrowed for one segment.
struct Matcher<'s> {
    work: &'s [u8],
    base: u32,
    head: &'s mut [u32; 1 << HASH_BITS],
}

impl Matcher<'_> {
    /// The longest match (length, distance) for the bytes at `i`, if one
    /// of at least [`MIN_MATCH`] bytes starts at the last position with the
    /// same hash, within the window.
    fn longest_match(&self, i: usize) -> Option<(usize, usize)> {
        let work = self.work;
        let key = hash(work.get(i..i + MIN_MATCH)?);
        let candidate = self.head[key].wrapping_sub(self.base) as usize;
        if candidate >= i || i - candidate > WINDOW {
            return None;
        }
        let limit = (work.len() - i).min(MAX_MATCH);
        let length = work[candidate..]
            .iter()
            .zip(&work[i..i + limit])
            .take_while(|(a, b)| a == b)
            .count();
        (length >= MIN_MATCH).then_some((length, i - candidate))
    }

    fn insert(&mut self, i: usize) {
        if let Some(four) = self.work.get(i..i + MIN_MATCH) {
            self.head[hash(four)] = self.base.wrapping_add(i as u32);
        }
    }
}

fn hash(four: &[u8]) -> usize {
    let word = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
    (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Writes `input` as one fixed-code block whose symbols `encode` writes
/// segment by segment, then a sync flush; or as stored blocks when that
/// is smaller.
fn put_block(input: &[u8], out: &mut Vec<u8>, mut encode: impl FnMut(&[u8], &mut BitWriter<'_>)) {
    let start = out.len();
    {
        let mut bits = BitWriter::new(out);
        // BFINAL = 0, BTYPE = 01: fixed Huffman codes.
        bits.put(0b010, 3);
        for segment in input.chunks(SEGMENT) {
            encode(segment, &mut bits);
        }
        bits.put_literal_or_length(END_OF_BLOCK);
        sync_flush(&mut bits);
    }
    // Stored blocks cost five bytes each beyond their data: when the codes
    // saved less than that, say it that way instead. The matcher's history
    // holds the input either way, as the decoder's window does.
    let stored = input.len() + 5 * input.len().div_ceil(MAX_STORED).max(1) + 5;
    if out.len() - start > stored {
        out.truncate(start);
        put_stored(input, out);
    }
}

/// An empty stored block: the output ends on a byte boundary, and a
/// decoder has everything before it (zlib's `Z_SYNC_FLUSH`).
fn sync_flush(bits: &mut BitWriter<'_>) {
    bits.put(0b000, 3);
    bits.align();
    bits.out.extend_from_slice(&[0x00, 0x00, 0xFF, 0xFF]);
}

/// `input` as stored blocks, then a sync flush.
fn put_stored(input: &[u8], out: &mut Vec<u8>) {
    for block in input.chunks(MAX_STORED) {
        // BFINAL = 0, BTYPE = 00, padded to the byte: one zero byte.
        out.push(0x00);
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0x00, 0x00, 0x00, 0xFF, 0xFF]);
}

const END_OF_BLOCK: u16 = 256;

/// Bits into bytes, least significant first (RFC 1951 §3.1.1).
struct BitWriter<'o> {
    out: &'o mut Vec<u8>,
    acc: u64,
    count: u32,
}

impl<'o> BitWriter<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            count: 0,
        }
    }

    /// Appends the `n` (at most 32) low bits of `value`.
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.count;
        self.count += n;
        while self.count >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// Pads with zeros to the next byte boundary.
    fn align(&mut self) {
        if self.count > 0 {
            self.out.push(self.acc as u8);
        }
        self.acc = 0;
        self.count = 0;
    }

    /// A literal byte (0–255), the end of a block (256), or a length
    /// symbol (257–285), in the fixed code.
    fn put_literal_or_length(&mut self, symbol: u16) {
        let (code, len) = FIXED_LITERAL_CODES[usize::from(symbol)];
        self.put(u32::from(code), u32::from(len));
    }

    /// A back reference: `length` bytes (3–258) from `distance` back
    /// (1–32768).
    fn put_match(&mut self, length: usize, distance: usize) {
        let (symbol, extra_bits, extra) = length_code(length);
        self.put_literal_or_length(symbol);
        self.put(extra, extra_bits);
        let (code, extra_bits, extra) = distance_code(distance);
        // Fixed distance codes are five bits, sent most significant first.
        self.put(u32::from(reverse(code, 5)), 5);
        self.put(extra, extra_bits);
    }
}

/// The length symbol, its extra bits' count and value (RFC 1951 §3.2.5).
fn length_code(length: usize) -> (u16, u32, u32) {
    debug_assert!((3..=MAX_MATCH).contains(&length));
    if length == MAX_MATCH {
        return (285, 0, 0);
    }
    let l = (length - 3) as u32;
    if l < 8 {
        return (257 + l as u16, 0, 0);
    }
    let log = 31 - l.leading_zeros();
    let symbol = 257 + 4 * (log - 1) + ((l >> (log - 2)) & 3);
    let extra_bits = log - 2;
    (symbol as u16, extra_bits, l & ((1 << extra_bits) - 1))
}

/// The distance code, its extra bits' count and value (RFC 1951 §3.2.5).
fn distance_code(distance: usize) -> (u16, u32, u32) {
    debug_assert!((1..=32_768).contains(&distance));
    let d = (distance - 1) as u32;
    if d < 4 {
        return (d as u16, 0, 0);
    }
    let log = 31 - d.leading_zeros();
    let code = 2 * log + ((d >> (log - 1)) & 1);
    let extra_bits = log - 1;
    (code as u16, extra_bits, d & ((1 << extra_bits) - 1))
}

/// The fixed literal/length code (RFC 1951 §3.2.6), each code bit-reversed
/// for the least-significant-first writer, with its length.
const FIXED_LITERAL_CODES: [(u16, u8); 288] = {
    let mut table = [(0u16, 0u8); 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, len) = match symbol {
            0..=143 => (0x30 + symbol as u16, 8),
            144..=255 => (0x190 + (symbol as u16 - 144), 9),
            256..=279 => (symbol as u16 - 256, 7),
            _ => (0xC0 + (symbol as u16 - 280), 8),
        };
        table[symbol] = (reverse(code, len), len);
        symbol += 1;
    }
    table
};

/// The low `len` bits of `code`, in reverse order.
const fn reverse(code: u16, len: u8) -> u16 {
    code.reverse_bits() >> (16 - len as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(raw)
            .read_to_end(&mut out)
            .expect("a valid DEFLATE stream");
        out
    }

    /// Compresses each chunk, then ends the stream; returns the stream and
    /// where each chunk's piece ended.
    fn deflate_chunks(chunks: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut deflater = Deflater::new();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for chunk in chunks {
            deflater.compress(chunk, &mut out);
            ends.push(out.len());
        }
        deflater.finish(&mut out);
        (out, ends)
    }

    #[test]
    fn length_and_distance_codes_follow_the_rfc_table() {
        assert_eq!(length_code(3), (257, 0, 0));
        assert_eq!(length_code(10), (264, 0, 0));
        assert_eq!(length_code(11), (265, 1, 0));
        assert_eq!(length_code(12), (265, 1, 1));
        assert_eq!(length_code(13), (266, 1, 0));
        assert_eq!(length_code(19), (269, 2, 0));
        assert_eq!(length_code(35), (273, 3, 0));
        assert_eq!(length_code(227), (284, 5, 0));
        assert_eq!(length_code(257), (284, 5, 30));
        assert_eq!(length_code(258), (285, 0, 0));
        assert_eq!(distance_code(1), (0, 0, 0));
        assert_eq!(distance_code(4), (3, 0, 0));
        assert_eq!(distance_code(5), (4, 1, 0));
        assert_eq!(distance_code(8), (5, 1, 1));
        assert_eq!(distance_code(9), (6, 2, 0));
        assert_eq!(distance_code(4097), (24, 11, 0));
        assert_eq!(distance_code(32_768), (29, 13, 8191));
    }

    #[test]
    fn a_json_feed_compresses_and_inflates_to_the_same_bytes() {
        let events: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "id: urn:uuid:5e2a{i:04}-2b4c-4d2e-9f10-1a2b3c4d5e6f\ndata: {{\"symbol\":\"ACME\",\"price\":{}.{:02},\"volume\":{},\"ts\":\"2026-11-29T17:{:02}:00Z\"}}\n\n",
                    100 + i % 7,
                    i % 100,
                    1000 + i * 13,
                    i % 60
                )
            })
            .collect();
        let chunks: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        let (stream, _) = deflate_chunks(&chunks);
        let plain: Vec<u8> = chunks.concat();
        assert_eq!(inflate(&stream), plain);
        // A general-purpose deflater (32 KiB window, dynamic codes,
        // hundreds of KiB of state) flushed event by event does no better.
        let mut general = flate2::Compress::new(flate2::Compression::default(), false);
        let mut reference = Vec::with_capacity(plain.len());
        for chunk in &chunks {
            general
                .compress_vec(chunk, &mut reference, flate2::FlushCompress::Sync)
                .expect("room reserved");
        }
        assert!(
            stream.len() <= reference.len(),
            "{} bytes here, {} from flate2",
            stream.len(),
            reference.len()
        );
        // The previous events are in the window: under a third of the size.
        assert!(
            stream.len() * 3 < plain.len(),
            "{} compressed bytes for {}",
            stream.len(),
            plain.len()
        );
    }

    #[test]
    fn every_piece_decodes_as_soon_as_it_is_written() {
        let chunks: [&[u8]; 3] = [b"retry: 3000\n", b"data: one\n\n", b":\n"];
        let (stream, ends) = deflate_chunks(&chunks);
        let mut decoder = flate2::Decompress::new(false);
        let mut seen = Vec::new();
        let mut from = 0;
        for (chunk, end) in chunks.iter().zip(ends) {
            let mut out = vec![0u8; 256];
            let before = decoder.total_out();
            decoder
                .decompress(&stream[from..end], &mut out, flate2::FlushDecompress::Sync)
                .expect("valid");
            let produced = (decoder.total_out() - before) as usize;
            seen.extend_from_slice(&out[..produced]);
            assert_eq!(&out[..produced], *chunk, "everything written so far");
            from = end;
        }
        assert_eq!(seen, chunks.concat());
    }

    #[test]
    fn incompressible_chunks_go_out_stored() {
        // A xorshift sequence: no repeats for LZ77, bytes ≥ 144 for half.
        let mut x = 0x1234_5678_u32;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let (stream, _) = deflate_chunks(&[&noise]);
        assert_eq!(inflate(&stream), noise);
        assert!(stream.len() <= noise.len() + 5 * 2 + 5 + 2);
    }

    #[test]
    fn long_runs_and_large_chunks_cross_segments() {
        let run = vec![b'a'; 70_000];
        let mut mixed = Vec::new();
        for i in 0..5_000u32 {
            mixed.extend_from_slice(format!("line {} of {}\n", i % 37, i % 11).as_bytes());
        }
        let (stream, _) = deflate_chunks(&[&run, &mixed, b"", &run[..3]]);
        assert_eq!(inflate(&stream), [&run[..], &mixed, &run[..3]].concat());
        assert!(stream.len() < 1_000 + mixed.len() / 2);
    }

    #[test]
    fn forgetting_the_history_keeps_the_stream_valid() {
        let mut deflater = Deflater::new();
        let mut out = Vec::new();
        deflater.compress(b"data: {\"a\":1}\n\n", &mut out);
        assert!(deflater.holds_memory());
        deflater.forget();
        assert!(!deflater.holds_memory());
        deflater.compress(b"data: {\"a\":1}\n\n", &mut out);
        deflater.finish(&mut out);
        assert_eq!(inflate(&out), b"data: {\"a\":1}\n\ndata: {\"a\":1}\n\n");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_chunks_inflate_to_their_concatenation(
            chunks in proptest::collection::vec(
                proptest::collection::vec(
                    // Few distinct bytes: matches of every length and distance.
                    proptest::prop_oneof![0u8..4, proptest::num::u8::ANY],
                    0..3_000,
                ),
                0..12,
            ),
            forget_at in proptest::option::of(0usize..12),
            without_history in proptest::collection::vec(proptest::bool::ANY, 12),
        ) {
            let mut deflater = Deflater::new();
            let mut out = Vec::new();
            for (i, chunk) in chunks.iter().enumerate() {
                if forget_at == Some(i) {
                    deflater.forget();
                }
                if without_history[i] {
                    deflater.compress_without_history(chunk, &mut out);
                } else {
                    deflater.compress(chunk, &mut out);
                }
            }
            deflater.finish(&mut out);
            proptest::prop_assert_eq!(inflate(&out), chunks.concat());
        }
    }
}
