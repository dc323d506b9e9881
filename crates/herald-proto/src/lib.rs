//! The Server-Sent Events wire format: a write-once [`Encoder`] and a
//! WHATWG-exact incremental [`Decoder`]. No I/O, no async runtime.
//!
//! This is the one SSE codec of Herald: the hub encodes with it, and the
//! client library, `herald tail`, `herald decode` and `herald bench` decode
//! with it.
//!
//! ```
//! use herald_proto::{Decoder, Encoder, Event};
//!
//! // Server side: encode once, share the bytes with every subscriber.
//! let frame = Encoder::encode(&Event::new("first line\nsecond line").with_id("1")?);
//!
//! // Client side: feed bytes as they arrive, cut anywhere.
//! let mut decoder = Decoder::new();
//! for byte in frame.iter() {
//!     decoder.feed(std::slice::from_ref(byte))?;
//! }
//! let event = decoder.next_event().expect("one event");
//! assert_eq!(event.data(), "first line\nsecond line");
//! assert_eq!(decoder.last_event_id(), "1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Standards
//!
//! Decoding follows the WHATWG HTML standard, §9.2.6 "Interpreting an event
//! stream": UTF-8 with replacement, one leading BOM stripped, CR / LF / CRLF
//! line ends with chunk boundaries anywhere, unknown fields and comments
//! ignored, `id` holding NUL ignored, `retry` digits only, the trailing
//! event of a stream that ends mid-event dropped. Encoding follows the
//! standard's serialization: data split into one `data:` line per line, a
//! blank line after each event.
//!
//! # Limits
//!
//! The decoder buffers at most one line and one event's data; [`Limits`]
//! bounds both (16 MiB each by default), and exceeding a limit is the only
//! error it reports.

mod decoder;
mod encoder;
mod event;

pub use decoder::{
    DecodeError, DecodeErrorKind, Decoder, EventRef, Frame, FrameRef, Limits, MessageEvent,
};
pub use encoder::Encoder;
pub use event::{parse_retry, Event, EventError, Field, Problem};
