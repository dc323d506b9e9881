//! `herald decode [FILE]`: decodes a captured event stream into JSON lines.
//!
//! It decodes as bytes arrive (`curl -N URL | herald decode` prints each
//! event as soon as its blank line comes in) and prints one object per
//! dispatched event, exactly
//! `{"type": "...", "data": "...", "last_event_id": "..."}`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use herald_proto::{Decoder, MessageEvent};

/// Decode a captured text/event-stream into one JSON object per event.
///
/// Reads FILE, or standard input when no FILE is given, and decodes it with
/// the WHATWG algorithm as the bytes arrive. Each dispatched event is
/// printed as one line:
///
///   {"type": "message", "data": "hello", "last_event_id": "42"}
///
/// An unterminated event at the end of the input is dropped, as a browser
/// would. Exits 0 at the end of the input.
///
/// Example: curl -sN http://localhost:8080/events | herald decode
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The captured stream; standard input when absent or "-".
    file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let input: Box<dyn Read> = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        _ => Box::new(io::stdin().lock()),
    };
    decode(input, io::stdout().lock())
}

/// Decodes `input` chunk by chunk, writing and flushing each chunk's events
/// before reading on, so a live stream is printed live.
fn decode(mut input: impl Read, mut output: impl Write) -> anyhow::Result<()> {
    let mut decoder = Decoder::new();
    let mut buf = vec![0; 64 * 1024];
    let mut line = String::new();
    loop {
        let read = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).context("cannot read the input"),
        };
        decoder.feed(&buf[..read])?;
        while let Some(event) = decoder.next_event() {
            line.clear();
            write_json_line(&event, &mut line);
            output.write_all(line.as_bytes())?;
        }
        output.flush()?;
    }
    // The end of the input: an unterminated event is dropped.
    decoder.finish();
    Ok(())
}

/// `{"type": "...", "data": "...", "last_event_id": "..."}` and a newline.
pub fn write_json_line(event: &MessageEvent, out: &mut String) {
    let string = |s: &str| serde_json::to_string(s).expect("a str always serializes");
    out.push_str("{\"type\": ");
    out.push_str(&string(event.event_type()));
    out.push_str(", \"data\": ");
    out.push_str(&string(event.data()));
    out.push_str(", \"last_event_id\": ");
    out.push_str(&string(event.last_event_id()));
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_exact_json_form() {
        let mut out = Vec::new();
        decode(
            &b"id: 7\nevent: up\ndata: a\ndata: \"b\"\n\ndata: tail-without-blank-line\n"[..],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\": \"up\", \"data\": \"a\\n\\\"b\\\"\", \"last_event_id\": \"7\"}\n"
        );
    }
}
