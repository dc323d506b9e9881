//! A stand-alone decode loop for instruction counts: decodes one of the
//! three streams of `benches/throughput.rs` (in 16 KiB chunks) a number of
//! times, with either API.
//!
//! ```sh
//! cargo build --release -p herald-proto --example decode_loop
//! valgrind --tool=callgrind --toggle-collect='*decode_round*' \
//!     target/release/examples/decode_loop borrowed json 5
//! ```
//!
//! Arguments: `owned` (`feed` + `next_event`) or `borrowed` (`feed_with`);
//! `json` (a), `token` (b) or `large` (c); rounds. `--toggle-collect`
//! counts the decoding only: divide by the events decoded (printed).

use std::hint::black_box;

use herald_proto::{Decoder, Encoder, Event, FrameRef};

const CHUNK: usize = 16 * 1024;

/// The events of the benchmark's inputs, built the same way.
fn events(input: &str) -> Vec<Event> {
    match input {
        "json" => (0..10_000u64)
            .map(|i| {
                let data = format!(
                    r#"{{"user":"u{:04}","action":"update","seq":{i},"value":{:.6}}}"#,
                    i % 9973,
                    i as f64 / 7.0
                );
                Event::new(data).with_id(format!("{i:07}")).unwrap()
            })
            .collect(),
        "token" => {
            let words = [
                "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy",
            ];
            (0..30_000)
                .map(|i| Event::new(format!(r#"{{"t":"{}"}}"#, words[i % words.len()])))
                .collect()
        }
        "large" => {
            let line = "x".repeat(79);
            let data = vec![line.as_str(); 64 * 1024 / 80].join("\n");
            (0..16)
                .map(|i| Event::new(data.clone()).with_id(i.to_string()).unwrap())
                .collect()
        }
        other => panic!("unknown input {other:?}: json, token or large"),
    }
}

/// Decodes the stream once; the events taken out.
#[inline(never)]
fn decode_round(stream: &[u8], owned: bool) -> usize {
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in stream.chunks(CHUNK) {
        if owned {
            decoder.feed(chunk).unwrap();
            while let Some(event) = decoder.next_event() {
                black_box(&event);
                events += 1;
            }
        } else {
            decoder
                .feed_with(chunk, |frame| {
                    if let FrameRef::Event(event) = frame {
                        black_box(event.data());
                        events += 1;
                    }
                })
                .unwrap();
        }
    }
    events
}

fn main() {
    let mut args = std::env::args().skip(1);
    let api = args.next().unwrap_or_else(|| "borrowed".into());
    let input = args.next().unwrap_or_else(|| "json".into());
    let rounds: usize = args.next().map_or(10, |n| n.parse().expect("rounds"));
    let stream: Vec<u8> = events(&input)
        .iter()
        .flat_map(|event| Encoder::encode(event).to_vec())
        .collect();
    let owned = api == "owned";
    let events: usize = (0..rounds)
        .map(|_| decode_round(black_box(&stream), owned))
        .sum();
    println!(
        "{api} {input}: {events} events, {} bytes per round",
        stream.len()
    );
}
