//! The decoder against a plain transcription of the WHATWG algorithm (the
//! whole stream decoded as UTF-8 with replacement first, then split into
//! lines), on streams built from the pieces a parser can trip on: field
//! names, colons, spaces, every line end, NUL and tab, a BOM, invalid and
//! cut UTF-8, and runs long enough to cross the decoder's 16-byte blocks.
//! Both APIs, at random chunkings.

use std::time::Duration;

use herald_proto::{Decoder, Frame, FrameRef};
use proptest::prelude::*;

/// What a stream decodes to: events (type, data, last id) and comments in
/// order, then the final last event id and reconnection time.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(String, String, String)>,
    last_event_id: String,
    retry: Option<Duration>,
}

/// The standard's algorithm, as written in §9.2.6, on the whole stream.
fn oracle(stream: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut frames = Vec::new();
    let (mut data, mut event_type, mut id_buffer) = (String::new(), String::new(), String::new());
    let mut last_event_id = String::new();
    let mut retry = None;
    let mut rest = text;
    // Only lines with a line end are interpreted; the rest is dropped.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        rest = match rest[end..].strip_prefix("\r\n") {
            Some(after) => after,
            None => &rest[end + 1..],
        };
        if line.is_empty() {
            last_event_id = id_buffer.clone();
            if !data.is_empty() {
                data.pop();
                let name = if event_type.is_empty() {
                    "message"
                } else {
                    &event_type
                };
                frames.push((name.to_owned(), data.clone(), last_event_id.clone()));
            }
            data.clear();
            event_type.clear();
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "" => frames.push(("(comment)".to_owned(), value.to_owned(), String::new())),
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = Some(Duration::from_millis(value.parse().unwrap_or(u64::MAX)));
            }
            _ => {}
        }
    }
    Outcome {
        frames,
        last_event_id,
        retry,
    }
}

fn decode(chunks: &[&[u8]], borrowed: bool) -> Outcome {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut take = |frame: Frame| match frame {
        Frame::Event(event) => frames.push((
            event.event_type().to_owned(),
            event.data().to_owned(),
            event.last_event_id().to_owned(),
        )),
        Frame::Comment(text) => frames.push(("(comment)".to_owned(), text, String::new())),
        _ => {}
    };
    for chunk in chunks {
        if borrowed {
            decoder
                .feed_with(chunk, |frame| match frame {
                    FrameRef::Event(event) => take(Frame::Event(event.to_owned())),
                    FrameRef::Comment(text) => take(Frame::Comment(text.to_owned())),
                    _ => {}
                })
                .unwrap();
        } else {
            decoder.feed(chunk).unwrap();
            while let Some(frame) = decoder.next_frame() {
                take(frame);
            }
        }
    }
    decoder.finish();
    Outcome {
        frames,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.reconnection_time(),
    }
}

fn piece() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![
        &b"data:"[..],
        b"data: ",
        b"data",
        b"id:",
        b"id: ",
        b"event:",
        b"retry:",
        b":",
        b" ",
        b"\n",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"x",
        b"42",
        b"\t",
        b"\0",
        b"\xEF\xBB\xBF",
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\xFF",
        b"\xE2\x82",
        b"\xF0\x9F\x98",
        b"{\"user\":\"u0042\",\"action\":\"update\"}",
        b"0123456789abcdef0123456789abcdef0",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_decoder_agrees_with_the_standard(
        pieces in proptest::collection::vec(piece(), 0..64),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
    ) {
        let stream = pieces.concat();
        let want = oracle(&stream);
        let mut points: Vec<usize> = cuts.iter().map(|f| (f * stream.len() as f64) as usize).collect();
        points.sort_unstable();
        points.push(stream.len());
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&stream[start..point]);
            start = point;
        }
        prop_assert_eq!(&decode(&chunks, false), &want, "feed");
        prop_assert_eq!(&decode(&chunks, true), &want, "feed_with");
    }
}
