//! Property tests: for any valid event sequence and any chunking,
//! decode(encode(events)) gives the events back.

use herald_proto::{Decoder, Encoder, Event, Frame, FrameRef};
use proptest::prelude::*;

/// Text for ids and types: anything but CR, LF and NUL.
fn field_text() -> impl Strategy<Value = String> {
    "[^\r\n\0]{0,12}"
}

/// Data: any text, line ends included (the encoder normalises CR and CRLF
/// to line breaks, which the decoder returns as LF).
fn data_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r]{0,40}",
        "(\r\n|\r|\n|[a-zé😀 :]){0,20}",
        Just(String::new()),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        data_text(),
        proptest::option::of(field_text()),
        proptest::option::of(field_text()),
        proptest::option::of(0u64..100_000),
    )
        .prop_map(|(data, event_type, id, retry)| {
            let mut event = Event::new(data);
            if let Some(event_type) = event_type {
                event = event.with_type(event_type).unwrap();
            }
            if let Some(id) = id {
                event = event.with_id(id).unwrap();
            }
            if let Some(retry) = retry {
                event = event.with_retry(retry);
            }
            event
        })
}

/// Split points as fractions, so they apply to a stream of any length.
fn cuts() -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(0.0f64..1.0, 0..12)
}

fn normalise(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_inverts_encode(events in proptest::collection::vec(event(), 0..16), cuts in cuts()) {
        let stream: Vec<u8> = events.iter().flat_map(|e| Encoder::encode(e).to_vec()).collect();
        let mut points: Vec<usize> = cuts.iter().map(|f| (f * stream.len() as f64) as usize).collect();
        points.sort_unstable();
        points.push(stream.len());

        let mut decoder = Decoder::new();
        let mut start = 0;
        for point in points {
            decoder.feed(&stream[start..point]).unwrap();
            start = point;
        }
        let mut got = Vec::new();
        let mut retry = None;
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Frame::Event(event) => got.push(event),
                Frame::Retry(time) => retry = Some(time.as_millis() as u64),
                _ => {}
            }
        }

        prop_assert_eq!(got.len(), events.len());
        let mut last_id = String::new();
        for (sent, received) in events.iter().zip(&got) {
            if let Some(id) = sent.id() {
                last_id = id.to_owned();
            }
            let want_type = match sent.event_type() {
                None | Some("") => "message",
                Some(t) => t,
            };
            prop_assert_eq!(received.data(), normalise(sent.data()));
            prop_assert_eq!(received.event_type(), want_type);
            prop_assert_eq!(received.last_event_id(), last_id.as_str());
        }
        prop_assert_eq!(retry, events.iter().rev().find_map(Event::retry));
    }

    #[test]
    fn decoder_never_panics_and_chunking_never_matters(bytes in proptest::collection::vec(any::<u8>(), 0..256), cut in 0usize..256) {
        let whole = decode_all(&[&bytes]);
        let cut = cut.min(bytes.len());
        let split = decode_all(&[&bytes[..cut], &bytes[cut..]]);
        prop_assert_eq!(&whole, &split);
        let borrowed = decode_all_borrowed(&[&bytes[..cut], &bytes[cut..]]);
        prop_assert_eq!(whole, borrowed);
    }
}

/// `feed_with`, with each borrowed frame turned into its owned form.
fn decode_all_borrowed(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder
            .feed_with(chunk, |frame| {
                frames.push(match frame {
                    FrameRef::Event(event) => Frame::Event(event.to_owned()),
                    FrameRef::Comment(text) => Frame::Comment(text.to_owned()),
                    FrameRef::Retry(time) => Frame::Retry(time),
                    _ => unreachable!("no other frames exist"),
                })
            })
            .unwrap();
    }
    decoder.finish();
    frames
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut decoder = Decoder::new();
    for chunk in chunks {
        decoder.feed(chunk).unwrap();
    }
    decoder.finish();
    std::iter::from_fn(|| decoder.next_frame()).collect()
}
