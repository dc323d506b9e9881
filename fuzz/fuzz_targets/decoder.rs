//! Fuzzes the decoder: it must never panic, must stay within its limits,
//! and must decode the same frames however the input is cut into chunks.
#![no_main]

use herald_proto::{Decoder, Frame, Limits};
use libfuzzer_sys::fuzz_target;

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_line: 512,
    max_event: 2048,
};

fn decode(chunks: &[&[u8]]) -> Result<Vec<Frame>, ()> {
    let mut decoder = Decoder::with_limits(LIMITS);
    let mut frames = Vec::new();
    for chunk in chunks {
        let fed = decoder.feed(chunk);
        frames.extend(std::iter::from_fn(|| decoder.next_frame()));
        fed.map_err(|_| ())?;
    }
    decoder.finish();
    frames.extend(std::iter::from_fn(|| decoder.next_frame()));
    for frame in &frames {
        if let Frame::Event(event) = frame {
            assert!(event.data().len() <= LIMITS.max_event);
        }
    }
    Ok(frames)
}

fuzz_target!(|input: &[u8]| {
    // The first byte picks a chunk size, the rest is the stream.
    let Some((&size, stream)) = input.split_first() else {
        return;
    };
    let size = usize::from(size).max(1);
    let whole = decode(&[stream]);
    let chunks: Vec<&[u8]> = stream.chunks(size).collect();
    let split = decode(&chunks);
    if let (Ok(whole), Ok(split)) = (&whole, &split) {
        assert_eq!(whole, split, "chunking changed the result");
    }
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    if let (Ok(whole), Ok(bytewise)) = (&whole, &decode(&bytewise)) {
        assert_eq!(whole, bytewise, "byte-by-byte decoding changed the result");
    }
});
