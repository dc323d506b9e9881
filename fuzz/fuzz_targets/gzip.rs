//! Fuzzes the event-stream gzip encoder: whatever the chunks, and wherever
//! the compressor forgets its history, the pieces make one gzip member that
//! inflates to exactly the chunks, and each piece decodes on its own
//! arrival (nothing is held back).
#![no_main]

use std::io::Read as _;

use herald_server::gzip::GzipEncoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte of every chunk says how long it is (×16) and whether
    // the encoder forgets its history first (odd).
    let mut rest = data;
    let mut encoder = GzipEncoder::new();
    let mut wire = Vec::new();
    let mut plain = Vec::new();
    let mut inflater = flate2::Decompress::new(false);
    let mut inflated = Vec::new();
    while let Some((&control, tail)) = rest.split_first() {
        let len = (usize::from(control) * 16).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        if control % 2 == 1 {
            encoder.forget();
        }
        let piece = encoder.encode(chunk);
        let from = wire.len();
        wire.extend_from_slice(&piece);
        plain.extend_from_slice(chunk);
        // Everything after the 10-byte header is DEFLATE: inflate this
        // piece alone and find the whole input so far.
        let mut input = &wire[from.max(10)..];
        loop {
            let mut out = [0u8; 8192];
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            inflater
                .decompress(input, &mut out, flate2::FlushDecompress::Sync)
                .expect("a valid DEFLATE piece");
            let used = (inflater.total_in() - before_in) as usize;
            let made = (inflater.total_out() - before_out) as usize;
            inflated.extend_from_slice(&out[..made]);
            input = &input[used..];
            if used == 0 && made == 0 {
                break;
            }
        }
        assert_eq!(inflated, plain, "a piece held something back");
    }
    wire.extend_from_slice(&encoder.finish());
    let mut whole = Vec::new();
    flate2::read::GzDecoder::new(&wire[..])
        .read_to_end(&mut whole)
        .expect("one valid gzip member, checksum and size included");
    assert_eq!(whole, plain);
});
