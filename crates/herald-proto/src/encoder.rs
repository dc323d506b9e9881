//! The encoder: an [`Event`] written once into shared bytes.
//!
//! A hub writes each event to many subscribers, so the frame is built once,
//! into one exactly-sized buffer, and handed out as [`Bytes`] whose clones
//! share that buffer. The output follows the WHATWG serialization: data is
//! split on CR, LF and CRLF into one `data:` line each, and every event ends
//! with a blank line.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Event;

/// Writes events, comments and `retry:` hints in the `text/event-stream`
/// format.
///
/// ```
/// use herald_proto::{Encoder, Event};
///
/// let event = Event::new("a\nb").with_type("update")?.with_id("7")?;
/// assert_eq!(&Encoder::encode(&event)[..], b"id: 7\nevent: update\ndata: a\ndata: b\n\n");
/// assert_eq!(&Encoder::comment("ping")[..], b": ping\n");
/// assert_eq!(&Encoder::retry(500)[..], b"retry: 500\n");
/// # Ok::<(), herald_proto::EventError>(())
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct Encoder;

impl Encoder {
    /// Encodes one event into a frame of its own.
    pub fn encode(event: &Event) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::encoded_len(event));
        Self::encode_into(event, &mut out);
        out.freeze()
    }

    /// Appends one event to `out`; several events may share one buffer.
    pub fn encode_into(event: &Event, out: &mut BytesMut) {
        out.reserve(Self::encoded_len(event));
        if let Some(id) = event.id() {
            put_field(out, b"id", id.as_bytes());
        }
        if let Some(event_type) = event.event_type() {
            put_field(out, b"event", event_type.as_bytes());
        }
        if let Some(retry) = event.retry() {
            put_field(out, b"retry", retry.to_string().as_bytes());
        }
        for line in Lines::new(event.data().as_bytes()) {
            put_field(out, b"data", line);
        }
        out.put_u8(b'\n');
    }

    /// The exact size of [`Encoder::encode`]'s output.
    pub fn encoded_len(event: &Event) -> usize {
        let field = |name: &[u8], value: usize| name.len() + 2 + value + 1;
        let mut len = 1;
        if let Some(id) = event.id() {
            len += field(b"id", id.len());
        }
        if let Some(event_type) = event.event_type() {
            len += field(b"event", event_type.len());
        }
        if let Some(retry) = event.retry() {
            len += field(b"retry", decimal_len(retry));
        }
        for line in Lines::new(event.data().as_bytes()) {
            len += field(b"data", line.len());
        }
        len
    }

    /// A comment frame, such as the heartbeat that keeps proxies from
    /// closing an idle stream. Clients ignore it. A multi-line text becomes
    /// one comment line per line.
    ///
    /// No blank line follows it: a blank line only ends an event, and an
    /// `EventSource` dispatches nothing for one without data, but some
    /// client libraries hand out an empty event for every blank line
    /// (Python's httpx-sse, `@microsoft/fetch-event-source`). The same goes
    /// for [`Encoder::retry`].
    pub fn comment(text: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(text.len() + 4);
        for line in Lines::new(text.as_bytes()) {
            out.put_u8(b':');
            if !line.is_empty() {
                out.put_u8(b' ');
                out.put_slice(line);
            }
            out.put_u8(b'\n');
        }
        out.freeze()
    }

    /// A frame that only sets the client's reconnection time: one `retry:`
    /// line, which takes effect as it is read (no blank line follows, see
    /// [`Encoder::comment`]).
    pub fn retry(millis: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(decimal_len(millis) + 8);
        put_field(&mut out, b"retry", millis.to_string().as_bytes());
        out.freeze()
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// The lines of a text split on CR, LF and CRLF. Unlike `str::lines`, a
/// lone CR is a line end too, and a trailing line end yields a final empty
/// line (so that `"a\n"` round-trips as two `data:` lines).
struct Lines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines { rest: Some(text) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr2(b'\r', b'\n', rest) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(end) => {
                let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[end + skip..]);
                Some(&rest[..end])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(event: &Event) -> String {
        let bytes = Encoder::encode(event);
        assert_eq!(bytes.len(), Encoder::encoded_len(event));
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn splits_data_on_every_line_end() {
        let event = Event::new("a\rb\r\nc\nd");
        assert_eq!(encode(&event), "data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn empty_and_trailing_lines_survive() {
        assert_eq!(encode(&Event::new("")), "data: \n\n");
        assert_eq!(encode(&Event::new("a\n")), "data: a\ndata: \n\n");
        assert_eq!(encode(&Event::new("\n\n")), "data: \ndata: \ndata: \n\n");
    }

    #[test]
    fn writes_every_field_once() {
        let event = Event::new("x")
            .with_id("")
            .unwrap()
            .with_type("t")
            .unwrap()
            .with_retry(10);
        assert_eq!(encode(&event), "id: \nevent: t\nretry: 10\ndata: x\n\n");
    }

    #[test]
    fn comments_and_retry_frames() {
        assert_eq!(&Encoder::comment("")[..], b":\n");
        assert_eq!(&Encoder::comment("a\r\nb")[..], b": a\n: b\n");
        assert_eq!(&Encoder::retry(0)[..], b"retry: 0\n");
        assert_eq!(
            &Encoder::retry(u64::MAX)[..],
            b"retry: 18446744073709551615\n"
        );
    }

    #[test]
    fn encode_into_appends() {
        let mut out = BytesMut::new();
        Encoder::encode_into(&Event::new("1"), &mut out);
        Encoder::encode_into(&Event::new("2"), &mut out);
        assert_eq!(&out[..], b"data: 1\n\ndata: 2\n\n");
    }
}
