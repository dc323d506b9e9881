//! The parser corpus (`tests/data/parser.jsonl`, copied from the project's
//! shared conformance suite), each case run three ways: with its own
//! chunking, as one chunk, and one byte per chunk.

use base64::Engine as _;
use herald_proto::{Decoder, Frame, FrameRef};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    chunks: Option<Vec<String>>,
    #[serde(default)]
    chunks_b64: Option<Vec<String>>,
    events: Vec<Expected>,
    retry: Option<u64>,
    final_last_event_id: String,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct Expected {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    last_event_id: String,
}

struct Outcome {
    events: Vec<Expected>,
    retry: Option<u64>,
    last_event_id: String,
}

fn cases() -> Vec<Case> {
    let corpus = include_str!("../data/parser.jsonl");
    corpus
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("corpus line parses"))
        .collect()
}

impl Case {
    fn chunks(&self) -> Vec<Vec<u8>> {
        match (&self.chunks, &self.chunks_b64) {
            (Some(text), None) => text.iter().map(|c| c.as_bytes().to_vec()).collect(),
            (None, Some(b64)) => b64
                .iter()
                .map(|c| base64::engine::general_purpose::STANDARD.decode(c).unwrap())
                .collect(),
            _ => panic!("{}: exactly one of chunks / chunks_b64", self.name),
        }
    }
}

fn run(chunks: &[Vec<u8>]) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    let mut drain = |decoder: &mut Decoder| {
        while let Some(frame) = decoder.next_frame() {
            if let Frame::Event(event) = frame {
                events.push(Expected {
                    event_type: event.event_type().to_owned(),
                    data: event.data().to_owned(),
                    last_event_id: event.last_event_id().to_owned(),
                });
            }
        }
    };
    for chunk in chunks {
        decoder
            .feed(chunk)
            .expect("no limit is reached by the corpus");
        drain(&mut decoder);
    }
    decoder.finish();
    drain(&mut decoder);
    outcome(&decoder, events)
}

/// What a finished stream left: its events, reconnection time, last id.
fn outcome(decoder: &Decoder, events: Vec<Expected>) -> Outcome {
    Outcome {
        events,
        retry: decoder
            .reconnection_time()
            .map(|t| u64::try_from(t.as_millis()).unwrap()),
        last_event_id: decoder.last_event_id().to_owned(),
    }
}

/// The same run through the borrowing API, `feed_with`.
fn run_borrowed(chunks: &[Vec<u8>]) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder
            .feed_with(chunk, |frame| {
                if let FrameRef::Event(event) = frame {
                    events.push(Expected {
                        event_type: event.event_type().to_owned(),
                        data: event.data().to_owned(),
                        last_event_id: event.last_event_id().to_owned(),
                    });
                }
            })
            .expect("no limit is reached by the corpus");
    }
    decoder.finish();
    outcome(&decoder, events)
}

/// Runs every case with one chunking and reports all failures at once.
/// Both APIs, `feed` and `feed_with`, must pass.
fn check(chunking: &str, split: impl Fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>) {
    check_with(chunking, &split, run);
    check_with(&format!("{chunking}, borrowed"), &split, run_borrowed);
}

fn check_with(
    chunking: &str,
    split: &dyn Fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>,
    run: fn(&[Vec<u8>]) -> Outcome,
) {
    let cases = cases();
    assert!(cases.len() >= 100, "the corpus is complete");
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = run(&split(case.chunks()));
        if outcome.events != case.events
            || outcome.retry != case.retry
            || outcome.last_event_id != case.final_last_event_id
        {
            failures.push(format!(
                "{} ({chunking}): got events {:?} retry {:?} last id {:?}; want {:?} retry {:?} last id {:?}",
                case.name,
                outcome.events,
                outcome.retry,
                outcome.last_event_id,
                case.events,
                case.retry,
                case.final_last_event_id
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_with_its_own_chunks() {
    check("own chunks", |chunks| chunks);
}

#[test]
fn corpus_as_one_chunk() {
    check("one chunk", |chunks| vec![chunks.concat()]);
}

#[test]
fn corpus_one_byte_per_chunk() {
    check("byte by byte", |chunks| {
        chunks.concat().into_iter().map(|b| vec![b]).collect()
    });
}

#[test]
fn corpus_at_every_two_way_split() {
    // Every cut point of every case (long cases up to byte 300, which covers
    // their structure): the same events as the whole stream in one chunk.
    for case in cases() {
        let all = case.chunks().concat();
        let whole = run(std::slice::from_ref(&all));
        for cut in 0..=all.len().min(300) {
            let split = run(&[all[..cut].to_vec(), all[cut..].to_vec()]);
            assert_eq!(split.events, whole.events, "{} cut at {cut}", case.name);
            assert_eq!(split.last_event_id, whole.last_event_id, "{}", case.name);
            assert_eq!(split.retry, whole.retry, "{}", case.name);
        }
    }
}
