//! The outgoing event: what a server writes to an event stream.
//!
//! An [`Event`] is validated when it is built, so that encoding can never
//! fail and never produce a frame that a client would read differently from
//! what was meant: an `id` or `event` field holding a line break would split
//! into two fields on the wire, and one holding NUL is ignored by browsers.
//! Data has no such restriction: the encoder splits it into `data:` lines.

use std::fmt;

/// One event to be written to a `text/event-stream`.
///
/// ```
/// use herald_proto::Event;
///
/// let event = Event::new("line one\nline two")
///     .with_type("update")?
///     .with_id("42")?
///     .with_retry(3_000);
/// assert_eq!(event.event_type(), Some("update"));
/// # Ok::<(), herald_proto::EventError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    data: String,
    event_type: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl Event {
    /// An event of the default type (`message`) carrying `data`.
    ///
    /// Data may hold any text: CR, LF and CRLF become line breaks between
    /// `data:` lines, which a client joins back with LF.
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// Sets the event type (the `event:` field).
    ///
    /// # Errors
    ///
    /// [`EventError`] if the type contains CR, LF or NUL.
    pub fn with_type(mut self, event_type: impl Into<String>) -> Result<Self, EventError> {
        let event_type = event_type.into();
        check_field(Field::Type, &event_type)?;
        self.event_type = Some(event_type);
        Ok(self)
    }

    /// Sets the event id (the `id:` field), which the client sends back as
    /// `Last-Event-ID` when it reconnects. An empty id resets the client's
    /// last event id.
    ///
    /// # Errors
    ///
    /// [`EventError`] if the id contains CR, LF or NUL.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, EventError> {
        let id = id.into();
        check_field(Field::Id, &id)?;
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the client's reconnection time, in milliseconds (the `retry:`
    /// field).
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// The data.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The event type, if one was set.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The id, if one was set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The reconnection time in milliseconds, if one was set.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }
}

/// Parses a `retry` value given as text (a form field, a CLI flag): ASCII
/// digits only, as the WHATWG parser accepts them.
///
/// ```
/// assert_eq!(herald_proto::parse_retry("03000"), Ok(3000));
/// assert!(herald_proto::parse_retry("3s").is_err());
/// ```
///
/// # Errors
///
/// [`EventError`] if the text is empty, holds anything but ASCII digits, or
/// does not fit in a `u64`.
pub fn parse_retry(text: &str) -> Result<u64, EventError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EventError::new(Field::Retry, Problem::NotDigits));
    }
    text.parse()
        .map_err(|_| EventError::new(Field::Retry, Problem::TooLarge))
}

fn check_field(field: Field, value: &str) -> Result<(), EventError> {
    match value.bytes().find(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        Some(b'\0') => Err(EventError::new(field, Problem::Nul)),
        Some(_) => Err(EventError::new(field, Problem::LineBreak)),
        None => Ok(()),
    }
}

/// An invalid field value given to [`Event`] or [`parse_retry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    field: Field,
    problem: Problem,
}

/// The field an [`EventError`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The `id` field.
    Id,
    /// The `event` field.
    Type,
    /// The `retry` field.
    Retry,
}

/// What is wrong with the value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// It contains CR or LF, which would end the field early.
    LineBreak,
    /// It contains NUL, which makes clients ignore an id.
    Nul,
    /// A retry that is not ASCII digits.
    NotDigits,
    /// A retry too large for 64 bits.
    TooLarge,
}

impl EventError {
    fn new(field: Field, problem: Problem) -> Self {
        EventError { field, problem }
    }

    /// The field that was rejected.
    pub fn field(&self) -> Field {
        self.field
    }

    /// Why it was rejected.
    pub fn problem(&self) -> Problem {
        self.problem
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            Field::Id => "id",
            Field::Type => "event type",
            Field::Retry => "retry",
        };
        let problem = match self.problem {
            Problem::LineBreak => "must not contain CR or LF",
            Problem::Nul => "must not contain NUL",
            Problem::NotDigits => "must be ASCII digits",
            Problem::TooLarge => "is too large",
        };
        write!(f, "{field} {problem}")
    }
}

impl std::error::Error for EventError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_line_breaks_and_nul() {
        for bad in ["a\nb", "a\rb", "\r\n", "a\0"] {
            assert!(Event::new("").with_id(bad).is_err(), "{bad:?}");
            assert!(Event::new("").with_type(bad).is_err(), "{bad:?}");
        }
        let err = Event::new("").with_id("x\0").unwrap_err();
        assert_eq!((err.field(), err.problem()), (Field::Id, Problem::Nul));
        assert_eq!(err.to_string(), "id must not contain NUL");
    }

    #[test]
    fn accepts_ordinary_text() {
        let event = Event::new("d").with_id("urn:uuid:1 …").unwrap();
        assert_eq!(event.id(), Some("urn:uuid:1 …"));
    }

    #[test]
    fn retry_is_digits_only() {
        assert_eq!(parse_retry("0"), Ok(0));
        assert_eq!(parse_retry("0042"), Ok(42));
        for bad in ["", " 1", "1 ", "-1", "+1", "1e3", "１"] {
            assert!(parse_retry(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_retry("99999999999999999999999")
                .unwrap_err()
                .problem(),
            Problem::TooLarge
        );
    }
}
