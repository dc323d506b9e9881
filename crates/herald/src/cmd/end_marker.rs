//! The end of a stream: an event that says "nothing follows".
//!
//! A token stream, a job log or a progress feed ends with an ordinary
//! event, stored in the hub's history like any other: `event: end` (any
//! data), or the convention of AI APIs, `data: [DONE]` (any type). A
//! client that resumes after the end with `Last-Event-ID` gets the rest
//! and then the marker, so it knows the stream is over rather than quiet.
//! `herald relay` stops after republishing it and `herald tail
//! --until-end` after printing it; see docs/streams.md.
//!
//! The marker is data, not a connection state: the rejected alternative, a
//! hub closing the subscription (or answering 204) when a topic "ends",
//! would need a per-topic state the hub does not have, and would end a
//! subscription to `*` or a URL pattern that also matches live topics.

use std::fmt;
use std::str::FromStr;

use herald_proto::MessageEvent;

/// What marks a stream's end: an event type, or an exact data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndMarker {
    /// `event: TYPE`, whatever the data.
    Type(String),
    /// `data: TEXT` exactly (the whole data), whatever the type.
    Data(String),
}

impl EndMarker {
    /// `event: end` and `data: [DONE]`.
    pub fn defaults() -> Vec<EndMarker> {
        vec![
            EndMarker::Type("end".to_owned()),
            EndMarker::Data("[DONE]".to_owned()),
        ]
    }

    /// Whether `event` is this marker.
    pub fn matches(&self, event: &MessageEvent) -> bool {
        match self {
            EndMarker::Type(kind) => event.event_type() == kind,
            EndMarker::Data(data) => event.data() == data,
        }
    }

    /// Whether `event` is any of `markers`.
    pub fn any(markers: &[EndMarker], event: &MessageEvent) -> bool {
        markers.iter().any(|marker| marker.matches(event))
    }

    /// The markers a repeatable `--until` gives: the defaults when it was
    /// not given, none for `--until none`.
    pub fn from_args(given: &[UntilArg]) -> Vec<EndMarker> {
        if given.is_empty() {
            return EndMarker::defaults();
        }
        given
            .iter()
            .filter_map(|arg| match arg {
                UntilArg::None => None,
                UntilArg::Marker(marker) => Some(marker.clone()),
            })
            .collect()
    }
}

impl fmt::Display for EndMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndMarker::Type(kind) => write!(f, "event: {kind}"),
            EndMarker::Data(data) => write!(f, "data: {data}"),
        }
    }
}

/// One `--until` value: `event:TYPE`, `data:TEXT`, or `none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UntilArg {
    /// No end marker: stop only when the stream ends.
    None,
    /// A marker.
    Marker(EndMarker),
}

impl FromStr for UntilArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "none" {
            return Ok(UntilArg::None);
        }
        let (field, value) = text
            .split_once(':')
            .ok_or_else(|| format!("expected 'event:TYPE', 'data:TEXT' or 'none', got {text:?}"))?;
        // As in an event stream, one space after the colon is not part of
        // the value.
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field.trim() {
            "event" if !value.is_empty() => Ok(UntilArg::Marker(EndMarker::Type(value.to_owned()))),
            "data" => Ok(UntilArg::Marker(EndMarker::Data(value.to_owned()))),
            _ => Err(format!(
                "expected 'event:TYPE', 'data:TEXT' or 'none', got {text:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: &str) -> MessageEvent {
        MessageEvent::new(kind, data, "")
    }

    #[test]
    fn the_defaults_are_event_end_and_data_done() {
        let markers = EndMarker::from_args(&[]);
        assert!(EndMarker::any(&markers, &event("end", "")));
        assert!(EndMarker::any(&markers, &event("end", "bye")));
        assert!(EndMarker::any(&markers, &event("message", "[DONE]")));
        assert!(!EndMarker::any(&markers, &event("message", "[DONE] ")));
        assert!(!EndMarker::any(&markers, &event("message", "end")));
        assert!(!EndMarker::any(&markers, &event("ended", "")));
    }

    #[test]
    fn until_parses() {
        let parse = |s: &str| s.parse::<UntilArg>();
        assert_eq!(
            parse("event:done"),
            Ok(UntilArg::Marker(EndMarker::Type("done".into())))
        );
        assert_eq!(
            parse("data: [DONE]"),
            Ok(UntilArg::Marker(EndMarker::Data("[DONE]".into())))
        );
        assert_eq!(
            parse("data:"),
            Ok(UntilArg::Marker(EndMarker::Data(String::new())))
        );
        assert_eq!(parse("none"), Ok(UntilArg::None));
        assert!(parse("event:").is_err());
        assert!(parse("id:3").is_err());
        assert!(parse("end").is_err());
        assert!(EndMarker::from_args(&[UntilArg::None]).is_empty());
    }
}
