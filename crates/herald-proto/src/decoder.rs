//! The decoder: the WHATWG "interpret an event stream" algorithm, sans I/O.
//!
//! Feed it byte chunks of any size, cut anywhere, and take out [`Frame`]s.
//! It never fails on malformed input (the algorithm ignores what it does not
//! understand); the only errors are the configured size [`Limits`], which
//! bound its memory whatever a server sends.
//!
//! # How it follows the standard while working on bytes
//!
//! The standard decodes the stream as UTF-8 (with replacement) first and
//! then splits lines. This decoder cuts each chunk at its last line end:
//! the complete lines before the cut are decoded together, in one
//! `simdutf8` pass that usually finds valid UTF-8 and copies nothing (lines
//! of invalid UTF-8 are then decoded one by one, with replacement), and
//! the line after it is held as bytes until its end arrives, so a
//! character split across chunks is decoded whole. That gives the same
//! text: CR and LF are ASCII, ASCII bytes never belong to a multi-byte
//! sequence, so every invalid sequence ends before a line end and is
//! replaced the same way in both orders.
//!
//! Lines are then read from that text, each found with a short block
//! search (`find_line_end`). An event's data line is lent to
//! [`Decoder::feed_with`] straight from the chunk when the event ends in
//! it, and copied into the data buffer once otherwise.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A dispatched message, as an `EventSource` would fire it.
///
/// Its data, type and last event id live in one buffer, so that a decoded
/// event costs one allocation, not three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// `data`, then the event type (empty for the default type), then the
    /// last event id.
    buf: String,
    data_len: usize,
    type_len: usize,
}

impl MessageEvent {
    /// Builds an event by hand (for tests and adapters).
    pub fn new(event_type: &str, data: impl Into<String>, last_event_id: &str) -> Self {
        let mut buf = data.into();
        let data_len = buf.len();
        let event_type = if event_type == DEFAULT_TYPE {
            ""
        } else {
            event_type
        };
        buf.reserve_exact(event_type.len() + last_event_id.len());
        buf.push_str(event_type);
        buf.push_str(last_event_id);
        MessageEvent {
            buf,
            data_len,
            type_len: event_type.len(),
        }
    }

    /// The event type: the `event:` field, or `message` when there was none.
    pub fn event_type(&self) -> &str {
        match &self.buf[self.data_len..self.data_len + self.type_len] {
            "" => DEFAULT_TYPE,
            event_type => event_type,
        }
    }

    /// The data: the `data:` lines joined with LF.
    pub fn data(&self) -> &str {
        &self.buf[..self.data_len]
    }

    /// The stream's last event id when this event was dispatched (ids
    /// persist from one event to the next until the server changes them).
    pub fn last_event_id(&self) -> &str {
        &self.buf[self.data_len + self.type_len..]
    }

    /// Takes the data out without copying it.
    pub fn into_data(mut self) -> String {
        self.buf.truncate(self.data_len);
        self.buf
    }
}

const DEFAULT_TYPE: &str = "message";

/// What the decoder produces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A message an `EventSource` would dispatch.
    Event(MessageEvent),
    /// A comment line (`: text`), with one leading space removed. Clients
    /// ignore them; they are surfaced for tools that show heartbeats.
    Comment(String),
    /// A valid `retry:` field set the reconnection time.
    Retry(Duration),
}

/// Size limits, the decoder's only source of errors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, in bytes, without its line end.
    pub max_line: usize,
    /// Largest data buffer of one event, in bytes.
    pub max_event: usize,
}

impl Default for Limits {
    /// 16 MiB for both: far above any sane event, low enough that a broken
    /// or hostile server cannot exhaust memory.
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            max_event: 16 << 20,
        }
    }
}

/// A configured limit was exceeded. The stream should be abandoned; call
/// [`Decoder::finish`] before reusing the decoder for a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
}

/// Which limit was exceeded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A line grew past [`Limits::max_line`].
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// An event's data grew past [`Limits::max_event`].
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl DecodeError {
    /// Which limit was exceeded.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::LineTooLong { limit } => {
                write!(f, "event stream line longer than {limit} bytes")
            }
            DecodeErrorKind::EventTooLarge { limit } => {
                write!(f, "event stream event larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An incremental `text/event-stream` decoder.
///
/// ```
/// use herald_proto::{Decoder, Frame};
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"id: 1\nevent: greet\ndata: hel")?;
/// assert_eq!(decoder.next_frame(), None); // the event is not finished yet
/// decoder.feed(b"lo\r\n\r\n")?;
/// let Some(Frame::Event(event)) = decoder.next_frame() else { panic!() };
/// assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("greet", "hello", "1"));
/// assert_eq!(decoder.last_event_id(), "1");
/// # Ok::<(), herald_proto::DecodeError>(())
/// ```
///
/// # Reconnecting
///
/// At the end of a connection call [`Decoder::finish`]: it drops the
/// unterminated event, as the standard says, and readies the decoder for
/// the next connection while keeping what a client carries across
/// reconnections: [`Decoder::last_event_id`] (to send as `Last-Event-ID`)
/// and [`Decoder::reconnection_time`].
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// The start of a line that has not ended yet (also the first bytes of
    /// the stream while the BOM check waits for three of them).
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting the next one belongs to
    /// that CRLF.
    skip_lf: bool,
    bom_checked: bool,
    data: String,
    event_type: String,
    /// The standard's "last event ID buffer" while `id_buffer_changed`
    /// (an `id:` field since the last dispatch). Otherwise the buffer
    /// equals `last_event_id`, and this holds an older id, kept only for
    /// its allocation: dispatch swaps the two instead of copying.
    id_buffer: String,
    id_buffer_changed: bool,
    /// The standard's "last event ID string", committed at dispatch.
    last_event_id: String,
    reconnection_time: Option<Duration>,
    frames: VecDeque<Frame>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            line: Vec::new(),
            skip_lf: false,
            bom_checked: false,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            id_buffer_changed: false,
            last_event_id: String::new(),
            reconnection_time: None,
            frames: VecDeque::new(),
        }
    }

    /// A decoder for a reconnection that resumes from `last_event_id` (as
    /// an `EventSource` does when it was given one).
    pub fn resuming(limits: Limits, last_event_id: &str) -> Self {
        let mut decoder = Self::with_limits(limits);
        decoder.last_event_id = last_event_id.to_owned();
        decoder
    }

    /// Decodes the next chunk of the stream. Frames it completes are queued
    /// for [`Decoder::next_frame`]; a partial line is kept for the next call.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when a line or an event exceeds the [`Limits`].
    /// Frames completed before the error stay queued.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let mut frames = std::mem::take(&mut self.frames);
        let result = self.feed_into(chunk, &mut Queue(&mut frames));
        self.frames = frames;
        result
    }

    /// Decodes the next chunk like [`Decoder::feed`], but hands each frame
    /// to `on_frame` as it completes, borrowed from the decoder's buffers,
    /// instead of queuing an owned copy: decoding then allocates nothing per
    /// event. For consumers that look at an event and move on (a load
    /// generator, a filter, a counter).
    ///
    /// ```
    /// use herald_proto::{Decoder, FrameRef};
    ///
    /// let mut decoder = Decoder::new();
    /// let mut total = 0;
    /// decoder.feed_with(b"data: 1\n\ndata: 2\n\n", |frame| {
    ///     if let FrameRef::Event(event) = frame {
    ///         total += event.data().parse::<u32>().unwrap();
    ///     }
    /// })?;
    /// assert_eq!(total, 3);
    /// # Ok::<(), herald_proto::DecodeError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Decoder::feed`]; frames completed before the error were handed
    /// out.
    pub fn feed_with(
        &mut self,
        chunk: &[u8],
        on_frame: impl FnMut(FrameRef<'_>),
    ) -> Result<(), DecodeError> {
        self.feed_into(chunk, &mut Callback(on_frame))
    }

    fn feed_into(&mut self, mut chunk: &[u8], sink: &mut impl Sink) -> Result<(), DecodeError> {
        if !self.bom_checked {
            // Hold the first bytes while they could still be a BOM. On a
            // mismatch, the held bytes (a BOM prefix, so no line end among
            // them) simply stay as the start of the first line.
            while self.line.len() < BOM.len() {
                match chunk.split_first() {
                    None => return Ok(()),
                    Some((&byte, rest)) if byte == BOM[self.line.len()] => {
                        self.line.push(byte);
                        chunk = rest;
                    }
                    Some(_) => break,
                }
            }
            self.bom_checked = true;
            if self.line == BOM {
                self.line.clear();
            }
        }
        self.feed_lines(chunk, sink)
    }

    fn feed_lines(&mut self, mut chunk: &[u8], sink: &mut impl Sink) -> Result<(), DecodeError> {
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        if !self.line.is_empty() {
            // The line held from the previous chunk ends here, or later.
            let Some(end) = find_line_end(chunk) else {
                self.check_line_len(self.line.len() + chunk.len())?;
                self.line.extend_from_slice(chunk);
                return Ok(());
            };
            self.check_line_len(self.line.len() + end)?;
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(&chunk[..end]);
            let result = self.interpret_bytes(&line, sink);
            line.clear();
            self.line = line;
            result?;
            chunk = self.after_line_end(chunk, end);
        }
        // The chunk's complete lines are decoded as UTF-8 in one pass, and
        // then read as text. Checking each value on its own cost ~140
        // instructions per 100-byte event (callgrind), mostly set-up:
        // `simdutf8` hands inputs under 64 bytes to the standard library.
        let (lines, rest) = match memchr::memrchr2(b'\r', b'\n', chunk) {
            Some(last) => chunk.split_at(last + 1),
            None => (&b""[..], chunk),
        };
        if !lines.is_empty() {
            match simdutf8::basic::from_utf8(lines) {
                Ok(text) => self.feed_text(text, sink)?,
                Err(_) => self.feed_invalid(lines, sink)?,
            }
            if rest.is_empty() && lines.ends_with(b"\r") {
                self.skip_lf = true;
            }
        }
        if !rest.is_empty() {
            self.check_line_len(rest.len())?;
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// What follows the line end at `end`: past a CRLF's LF too, or
    /// noting that the LF may start the next chunk.
    fn after_line_end<'c>(&mut self, chunk: &'c [u8], end: usize) -> &'c [u8] {
        let mut next = end + 1;
        if chunk[end] == b'\r' {
            match chunk.get(next) {
                Some(b'\n') => next += 1,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        &chunk[next..]
    }

    /// Interprets complete lines of valid UTF-8 (`text` ends with a line
    /// end).
    ///
    /// A first data line is lent to the sink straight from `text` when
    /// the event ends within it, so the usual one-line event is not
    /// copied; it is copied into the data buffer when a second data line
    /// follows or `text` ends first.
    fn feed_text(&mut self, text: &str, sink: &mut impl Sink) -> Result<(), DecodeError> {
        let bytes = text.as_bytes();
        let mut pending = None;
        let mut start = 0;
        let result = loop {
            // A blank line (the end of every event) needs no search.
            let len = match bytes.get(start) {
                None => break Ok(()),
                Some(b'\n' | b'\r') => 0,
                Some(_) => match find_line_end(&bytes[start..]) {
                    Some(len) => len,
                    None => break Ok(()),
                },
            };
            let end = start + len;
            if let Err(error) = self.check_line_len(len) {
                break Err(error);
            }
            if let Err(error) = self.interpret(&text[start..end], &mut pending, sink) {
                break Err(error);
            }
            start = end + 1;
            if bytes[end] == b'\r' && bytes.get(start) == Some(&b'\n') {
                start += 1;
            }
        };
        self.keep(pending);
        result
    }

    /// Interprets complete lines holding invalid UTF-8 one by one, each
    /// decoded with replacement (an invalid sequence never spans a line
    /// end, which is ASCII).
    fn feed_invalid(&mut self, mut lines: &[u8], sink: &mut impl Sink) -> Result<(), DecodeError> {
        while let Some(end) = find_line_end(lines) {
            self.check_line_len(end)?;
            self.interpret_bytes(&lines[..end], sink)?;
            let mut next = end + 1;
            if lines[end] == b'\r' && lines.get(next) == Some(&b'\n') {
                next += 1;
            }
            lines = &lines[next..];
        }
        Ok(())
    }

    /// Interprets one line given as bytes, decoded with replacement.
    fn interpret_bytes(&mut self, line: &[u8], sink: &mut impl Sink) -> Result<(), DecodeError> {
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        let mut pending = None;
        let result = self.interpret(&text, &mut pending, sink);
        self.keep(pending);
        result
    }

    fn check_line_len(&mut self, len: usize) -> Result<(), DecodeError> {
        if len > self.limits.max_line {
            self.line.clear();
            return Err(DecodeError {
                kind: DecodeErrorKind::LineTooLong {
                    limit: self.limits.max_line,
                },
            });
        }
        Ok(())
    }

    /// Interprets one line (without its line end). `pending` is the
    /// event's one data line while it is lent rather than copied (see
    /// [`Decoder::feed_text`]); the data buffer is empty meanwhile.
    #[inline(always)]
    fn interpret<'t>(
        &mut self,
        line: &'t str,
        pending: &mut Option<&'t str>,
        sink: &mut impl Sink,
    ) -> Result<(), DecodeError> {
        // The lines of nearly every event, recognised by their first bytes
        // before the general split into name and value below.
        if let Some(value) = line.strip_prefix("data:") {
            return self.data_line(strip_space(value), pending);
        }
        if line.is_empty() {
            self.dispatch(pending, sink);
            return Ok(());
        }
        if let Some(value) = line.strip_prefix("id:") {
            self.id_field(strip_space(value));
            return Ok(());
        }
        let (name, value) = match find_colon(line.as_bytes()) {
            None => (line, ""),
            Some(colon) => (&line[..colon], strip_space(&line[colon + 1..])),
        };
        match name {
            "" => sink.comment(value),
            "data" => return self.data_line(value, pending),
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "id" => self.id_field(value),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Overlong digit strings saturate: a client waits "forever"
                // rather than wrapping around to a short time.
                let millis = value.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                let time = Duration::from_millis(millis);
                self.reconnection_time = Some(time);
                sink.retry(time);
            }
            _ => {}
        }
        Ok(())
    }

    #[inline]
    fn data_line<'t>(
        &mut self,
        value: &'t str,
        pending: &mut Option<&'t str>,
    ) -> Result<(), DecodeError> {
        let held = self.data.len() + pending.map_or(0, |first| first.len() + 1);
        if held + value.len() + 1 > self.limits.max_event {
            self.data.clear();
            *pending = None;
            return Err(DecodeError {
                kind: DecodeErrorKind::EventTooLarge {
                    limit: self.limits.max_event,
                },
            });
        }
        if held == 0 {
            *pending = Some(value);
            return Ok(());
        }
        self.keep(pending.take());
        self.push_data(value);
        Ok(())
    }

    /// Copies a lent data line into the data buffer.
    fn keep(&mut self, pending: Option<&str>) {
        if let Some(first) = pending {
            self.push_data(first);
        }
    }

    fn push_data(&mut self, value: &str) {
        // Reserve for the LF, the type and the id as well, so that an owned
        // event of several lines allocates once (see `Queue`).
        let id_len = if self.id_buffer_changed {
            self.id_buffer.len()
        } else {
            self.last_event_id.len()
        };
        self.data
            .reserve(value.len() + 1 + self.event_type.len() + id_len);
        self.data.push_str(value);
        self.data.push('\n');
    }

    fn id_field(&mut self, value: &str) {
        // An id holding NUL is ignored: it could not be sent back in a
        // `Last-Event-ID` header.
        // (A byte loop: ids are short, and `contains` calls `memchr`.)
        if value.bytes().any(|b| b == 0) {
            return;
        }
        self.id_buffer.clear();
        self.id_buffer.push_str(value);
        self.id_buffer_changed = true;
    }

    fn dispatch(&mut self, pending: &mut Option<&str>, sink: &mut impl Sink) {
        if self.id_buffer_changed {
            // The buffer becomes the last event id. Swapped, not copied:
            // the old id left in the buffer is never read (see the field).
            self.id_buffer_changed = false;
            std::mem::swap(&mut self.id_buffer, &mut self.last_event_id);
        }
        if let Some(data) = pending.take() {
            sink.event(Data::Lent(data), &self.event_type, &self.last_event_id);
        } else if !self.data.is_empty() {
            sink.event(
                Data::Buffered(&mut self.data),
                &self.event_type,
                &self.last_event_id,
            );
        }
        self.data.clear();
        self.event_type.clear();
    }

    /// The next decoded frame, if one is complete.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// The next decoded message, skipping comments and retry frames.
    pub fn next_event(&mut self) -> Option<MessageEvent> {
        while let Some(frame) = self.frames.pop_front() {
            if let Frame::Event(event) = frame {
                return Some(event);
            }
        }
        None
    }

    /// Ends the current stream: the unterminated line and event are
    /// dropped, as the standard says. Frames already decoded stay queued.
    /// The decoder is then ready for the next connection: the last event
    /// id and reconnection time are kept, the id buffer starts from the
    /// last event id, the data and type buffers start empty, and a BOM is
    /// stripped again.
    pub fn finish(&mut self) {
        self.line.clear();
        self.skip_lf = false;
        self.bom_checked = false;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer_changed = false;
    }

    /// Whether the stream so far ends inside an event: a line not ended
    /// yet, or data lines not yet dispatched by a blank line. What
    /// [`Decoder::finish`] would drop.
    pub fn holds_unfinished_event(&self) -> bool {
        !self.line.is_empty() || !self.data.is_empty()
    }

    /// The last event id: what a reconnecting client sends as
    /// `Last-Event-ID` (when it is not empty).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time the server last set with `retry:`, if any.
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.reconnection_time
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// A dispatched event, borrowed from the decoder (see
/// [`Decoder::feed_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    event_type: &'a str,
    data: &'a str,
    last_event_id: &'a str,
}

impl<'a> EventRef<'a> {
    /// The event type: the `event:` field, or `message` when there was none.
    pub fn event_type(&self) -> &'a str {
        match self.event_type {
            "" => DEFAULT_TYPE,
            event_type => event_type,
        }
    }

    /// The data: the `data:` lines joined with LF.
    pub fn data(&self) -> &'a str {
        self.data
    }

    /// The stream's last event id when this event was dispatched.
    pub fn last_event_id(&self) -> &'a str {
        self.last_event_id
    }

    /// An owned copy.
    pub fn to_owned(&self) -> MessageEvent {
        MessageEvent::new(self.event_type(), self.data, self.last_event_id)
    }
}

/// A frame handed out by [`Decoder::feed_with`], borrowed from the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameRef<'a> {
    /// A message an `EventSource` would dispatch.
    Event(EventRef<'a>),
    /// A comment line, with one leading space removed.
    Comment(&'a str),
    /// A valid `retry:` field set the reconnection time.
    Retry(Duration),
}

/// Where the line interpreter puts what it completes: queued as owned
/// frames ([`Decoder::feed`]) or lent to a callback ([`Decoder::feed_with`]).
/// One interpreter, two ways out, so the two APIs cannot drift apart.
trait Sink {
    fn event(&mut self, data: Data<'_>, event_type: &str, last_event_id: &str);
    fn comment(&mut self, text: &str);
    fn retry(&mut self, time: Duration);
}

/// An event's data as the interpreter hands it out.
enum Data<'a> {
    /// One data line, lent from the chunk being decoded.
    Lent(&'a str),
    /// The data buffer: the data lines, each followed by LF. The sink may
    /// take the buffer; whatever it leaves is cleared by the decoder.
    Buffered(&'a mut String),
}

struct Queue<'q>(&'q mut VecDeque<Frame>);

impl Sink for Queue<'_> {
    fn event(&mut self, data: Data<'_>, event_type: &str, last_event_id: &str) {
        // One buffer for the whole event, allocated once: a buffered
        // event's data already has room (see `Decoder::push_data`).
        let extra = event_type.len() + last_event_id.len();
        let mut buf = match data {
            Data::Lent(data) => {
                let mut buf = String::with_capacity(data.len() + extra);
                buf.push_str(data);
                buf
            }
            Data::Buffered(data) => {
                let mut buf = std::mem::take(data);
                buf.pop(); // the LF after the last data line
                buf.reserve_exact(extra);
                buf
            }
        };
        let data_len = buf.len();
        buf.push_str(event_type);
        buf.push_str(last_event_id);
        self.0.push_back(Frame::Event(MessageEvent {
            buf,
            data_len,
            type_len: event_type.len(),
        }));
    }

    fn comment(&mut self, text: &str) {
        self.0.push_back(Frame::Comment(text.to_owned()));
    }

    fn retry(&mut self, time: Duration) {
        self.0.push_back(Frame::Retry(time));
    }
}

struct Callback<F>(F);

impl<F: FnMut(FrameRef<'_>)> Sink for Callback<F> {
    fn event(&mut self, data: Data<'_>, event_type: &str, last_event_id: &str) {
        let data = match data {
            Data::Lent(data) => data,
            Data::Buffered(data) => &data[..data.len() - 1],
        };
        (self.0)(FrameRef::Event(EventRef {
            event_type,
            data,
            last_event_id,
        }));
    }

    fn comment(&mut self, text: &str) {
        (self.0)(FrameRef::Comment(text));
    }

    fn retry(&mut self, time: Duration) {
        (self.0)(FrameRef::Retry(time));
    }
}

/// The first CR or LF of `bytes`.
///
/// Lines are short (an `id:` of a few bytes, a `data:` line of about a
/// hundred), and `memchr2` spends most of its ~60 instructions a call
/// setting up on them. Here each 16 bytes are first tested for a control
/// character (`< 0x0E`) with a comparison the compiler turns into a few
/// SIMD instructions (on x86_64: SSE2 `pminub`, `pcmpeqb`, `pmovmskb`),
/// and only a block that holds one is looked at closely.
#[inline(always)]
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    let mut blocks = bytes.chunks_exact(16);
    let mut offset = 0;
    for block in &mut blocks {
        let block: &[u8; 16] = block.try_into().expect("chunks of 16");
        if block.iter().fold(false, |any, &b| any | (b <= b'\r')) {
            if let Some(i) = first_line_end(block) {
                return Some(offset + i);
            }
        }
        offset += 16;
    }
    let tail = blocks.remainder();
    tail.iter()
        .position(|&b| is_line_end(b))
        .map(|i| offset + i)
}

fn is_line_end(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// The first CR or LF of a block that holds a control character.
#[inline(always)]
fn first_line_end(block: &[u8; 16]) -> Option<usize> {
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    // Word-at-a-time: a high bit for each byte below 0x0E. A byte above a
    // flagged one may be flagged too (the borrow), so only the lowest flag
    // is exact: it is a line end unless the text holds another control
    // character (a tab, say), which the byte loop then steps over.
    let x = u128::from_le_bytes(*block);
    let flags = x.wrapping_sub(ONES * 0x0E) & !x & (ONES << 7);
    let first = (flags.trailing_zeros() / 8) as usize;
    match block.get(first) {
        Some(&byte) if is_line_end(byte) => Some(first),
        _ => first_line_end_slowly(block),
    }
}

/// [`first_line_end`] past other control characters; kept out of line so
/// that the usual path does not load the block byte by byte up front.
#[cold]
#[inline(never)]
fn first_line_end_slowly(block: &[u8; 16]) -> Option<usize> {
    block.iter().position(|&b| is_line_end(b))
}

/// One leading space removed from a field's value.
#[inline]
fn strip_space(value: &str) -> &str {
    value.strip_prefix(' ').unwrap_or(value)
}

/// The first `:` of a line. Field names are short (`data`, `id`, `event`,
/// `retry`), so a plain scan of the first bytes finds it before a SIMD
/// search would have set up; long names fall back to `memchr`.
fn find_colon(line: &[u8]) -> Option<usize> {
    const SHORT: usize = 8;
    match line.iter().take(SHORT).position(|&b| b == b':') {
        Some(colon) => Some(colon),
        None if line.len() > SHORT => memchr::memchr(b':', &line[SHORT..]).map(|i| i + SHORT),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String, String)> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk).unwrap();
            while let Some(event) = decoder.next_event() {
                out.push((
                    event.event_type().to_owned(),
                    event.data().to_owned(),
                    event.last_event_id().to_owned(),
                ));
            }
        }
        out
    }

    #[test]
    fn cr_at_chunk_end_swallows_the_next_lf() {
        let got = events(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, "a");
    }

    #[test]
    fn finish_keeps_the_last_event_id_only() {
        let mut decoder = Decoder::new();
        decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n").unwrap();
        decoder.finish();
        assert_eq!(decoder.last_event_id(), "1");
        decoder.feed(b"data: c\n\n").unwrap();
        let first = decoder.next_event().unwrap();
        let second = decoder.next_event().unwrap();
        assert_eq!((first.data(), first.last_event_id()), ("a", "1"));
        assert_eq!((second.data(), second.last_event_id()), ("c", "1"));
    }

    #[test]
    fn limits_are_the_only_errors() {
        let limits = Limits {
            max_line: 10,
            max_event: 12,
        };
        let mut decoder = Decoder::with_limits(limits);
        let err = decoder.feed(b"data: 123456789").unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::LineTooLong { limit: 10 });
        let mut decoder = Decoder::with_limits(limits);
        decoder.feed(b"data:12\n").unwrap();
        decoder.feed(b"data:1234\n").unwrap();
        let err = decoder.feed(b"data:1234\n").unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::EventTooLarge { limit: 12 });
        assert_eq!(err.to_string(), "event stream event larger than 12 bytes");
    }

    #[test]
    fn overlong_retry_saturates() {
        let mut decoder = Decoder::new();
        decoder.feed(b"retry: 99999999999999999999999\n").unwrap();
        assert_eq!(
            decoder.reconnection_time(),
            Some(Duration::from_millis(u64::MAX))
        );
    }

    proptest::proptest! {
        /// The block search finds what a byte loop finds, whatever control
        /// characters (flagged by its first test too) come before.
        #[test]
        fn find_line_end_is_a_byte_search(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'\n', b'\r', b'\t', 0, 0x0B, 0x0E, b'a', 0xFF, 0x80]),
                0..80,
            ),
            start in 0usize..80,
        ) {
            let bytes = &bytes[start.min(bytes.len())..];
            let want = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
            proptest::prop_assert_eq!(find_line_end(bytes), want);
        }
    }

    /// Found by the oracle test: a line of invalid UTF-8 ending in CR in
    /// the middle of a chunk took the LF starting the next chunk for the
    /// rest of a CRLF.
    #[test]
    fn cr_ending_an_invalid_line_mid_chunk_keeps_the_next_lf() {
        let got = events(&[b"x\xFF\rdata: a", b"\n\n"]);
        assert_eq!(got, [("message".into(), "a".into(), String::new())]);
    }

    #[test]
    fn lent_data_survives_the_chunk_end() {
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for chunk in [&b"data: a\n"[..], b"\ndata: b\ndata: c\n", b"\r\n"] {
            decoder
                .feed_with(chunk, |frame| {
                    if let FrameRef::Event(event) = frame {
                        got.push(event.data().to_owned());
                    }
                })
                .unwrap();
        }
        assert_eq!(got, ["a", "b\nc"]);
    }

    #[test]
    fn comments_are_surfaced() {
        let mut decoder = Decoder::new();
        decoder.feed(b": ping\n:\n").unwrap();
        assert_eq!(decoder.next_frame(), Some(Frame::Comment("ping".into())));
        assert_eq!(decoder.next_frame(), Some(Frame::Comment(String::new())));
    }
}
