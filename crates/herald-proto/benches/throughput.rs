//! Decode and encode throughput on three stream shapes, with the
//! `eventsource-stream` crate's decoder on the same input as a peer.
//!
//! Run: `cargo bench -p herald-proto --bench throughput`. Results and how to
//! read them: `docs/performance.md`.

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt as _;
use herald_proto::{Decoder, Encoder, Event, FrameRef};

/// Network reads arrive in chunks; 16 KiB is a typical socket read.
const CHUNK: usize = 16 * 1024;

struct Input {
    name: &'static str,
    events: Vec<Event>,
    stream: Vec<u8>,
}

impl Input {
    fn new(name: &'static str, events: Vec<Event>) -> Self {
        let stream = events
            .iter()
            .flat_map(|e| Encoder::encode(e).to_vec())
            .collect();
        Input {
            name,
            events,
            stream,
        }
    }

    fn throughput(&self) -> Throughput {
        Throughput::ElementsAndBytes {
            elements: self.events.len() as u64,
            bytes: self.stream.len() as u64,
        }
    }
}

/// (a) ~100-byte JSON events with ids, as a hub sends them.
fn json_events() -> Input {
    let events = (0..10_000u64)
        .map(|i| {
            let data = format!(
                r#"{{"user":"u{:04}","action":"update","seq":{i},"value":{:.6}}}"#,
                i % 9973,
                i as f64 / 7.0
            );
            Event::new(data).with_id(format!("{:07}", i)).unwrap()
        })
        .collect();
    Input::new("json_100B", events)
}

/// (b) ~30-byte AI-token events: no id, a short JSON delta.
fn token_events() -> Input {
    let words = [
        "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy",
    ];
    let events = (0..30_000)
        .map(|i| Event::new(format!(r#"{{"t":"{}"}}"#, words[i % words.len()])))
        .collect();
    Input::new("token_30B", events)
}

/// (c) 64 KiB events of 80-column lines (logs, documents).
fn large_events() -> Input {
    let line = "x".repeat(79);
    let data = vec![line.as_str(); 64 * 1024 / 80].join("\n");
    let events = (0..16)
        .map(|i| Event::new(data.clone()).with_id(i.to_string()).unwrap())
        .collect();
    Input::new("multiline_64KiB", events)
}

fn inputs() -> Vec<Input> {
    vec![json_events(), token_events(), large_events()]
}

fn decode_herald(stream: &[u8]) -> usize {
    let mut decoder = Decoder::new();
    let mut count = 0;
    for chunk in stream.chunks(CHUNK) {
        decoder.feed(chunk).unwrap();
        while let Some(event) = decoder.next_event() {
            black_box(&event);
            count += 1;
        }
    }
    count
}

/// The borrowing API: each event is looked at in the decoder's buffers.
fn decode_herald_borrowed(stream: &[u8]) -> usize {
    let mut decoder = Decoder::new();
    let mut count = 0;
    for chunk in stream.chunks(CHUNK) {
        decoder
            .feed_with(chunk, |frame| {
                if let FrameRef::Event(event) = frame {
                    black_box(event.data());
                    count += 1;
                }
            })
            .unwrap();
    }
    count
}

fn decode_peer(chunks: &[Bytes]) -> usize {
    use eventsource_stream::Eventsource as _;
    let stream = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    futures_executor::block_on(stream.eventsource().fold(0, |count, event| {
        black_box(event.unwrap());
        async move { count + 1 }
    }))
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for input in inputs() {
        group.throughput(input.throughput());
        let expected = input.events.len();
        assert_eq!(decode_herald(&input.stream), expected);
        group.bench_with_input(
            BenchmarkId::new("herald", input.name),
            &input,
            |b, input| b.iter(|| decode_herald(black_box(&input.stream))),
        );
        assert_eq!(decode_herald_borrowed(&input.stream), expected);
        group.bench_with_input(
            BenchmarkId::new("herald-borrowed", input.name),
            &input,
            |b, input| b.iter(|| decode_herald_borrowed(black_box(&input.stream))),
        );
        let chunks: Vec<Bytes> = input
            .stream
            .chunks(CHUNK)
            .map(Bytes::copy_from_slice)
            .collect();
        assert_eq!(decode_peer(&chunks), expected);
        group.bench_with_input(
            BenchmarkId::new("eventsource-stream", input.name),
            &chunks,
            |b, chunks| b.iter(|| decode_peer(black_box(chunks))),
        );
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for input in inputs() {
        group.throughput(input.throughput());
        group.bench_with_input(
            BenchmarkId::new("herald", input.name),
            &input,
            |b, input| {
                b.iter(|| {
                    input
                        .events
                        .iter()
                        .map(|event| Encoder::encode(black_box(event)).len())
                        .sum::<usize>()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
