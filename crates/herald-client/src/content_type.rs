//! The `Content-Type` check: is a response an event stream?
//!
//! An `EventSource` accepts a response only when its MIME type *essence* is
//! `text/event-stream`: the WHATWG "parse a MIME type" algorithm (MIME
//! Sniffing §4.4) lowercases type and subtype, trims HTTP whitespace, and
//! ignores every parameter, so `TEXT/Event-Stream; charset=utf-16` and
//! `text/event-stream;` are accepted while `x bogus` or `text/event-streams`
//! are not. The charset never matters: the stream is always UTF-8.
//!
//! A prefix or `contains` test would be the tempting shortcut; it accepts
//! `text/event-streams` and rejects `Text/Event-Stream`, so the algorithm is
//! followed step by step instead. Parameters are skipped without parsing:
//! a malformed parameter never makes the essence invalid.

/// The essence an `EventSource` requires.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// Whether a `Content-Type` value's MIME type essence is `text/event-stream`.
pub(crate) fn is_event_stream(value: &[u8]) -> bool {
    match essence(value) {
        Some((kind, subtype)) => {
            kind.eq_ignore_ascii_case(b"text") && subtype.eq_ignore_ascii_case(b"event-stream")
        }
        None => false,
    }
}

/// The `(type, subtype)` of a MIME type, not yet lowercased, or `None` when
/// the value does not parse.
fn essence(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let value = trim_http_whitespace(value);
    let slash = value.iter().position(|&b| b == b'/')?;
    let (kind, rest) = (&value[..slash], &value[slash + 1..]);
    if !is_token(kind) {
        return None;
    }
    let subtype = match rest.iter().position(|&b| b == b';') {
        Some(semicolon) => &rest[..semicolon],
        None => rest,
    };
    // Only trailing whitespace is removed here: leading whitespace after the
    // slash is not a token code point, so it fails the token check below.
    let subtype = trim_end_http_whitespace(subtype);
    if !is_token(subtype) {
        return None;
    }
    Some((kind, subtype))
}

fn is_http_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_http_whitespace(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| !is_http_whitespace(b))
        .unwrap_or(value.len());
    trim_end_http_whitespace(&value[start..])
}

fn trim_end_http_whitespace(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .rposition(|&b| !is_http_whitespace(b))
        .map_or(0, |last| last + 1);
    &value[..end]
}

/// An HTTP token: one or more of `!#$%&'*+-.^_`|~`, digits and ASCII letters.
fn is_token(value: &[u8]) -> bool {
    !value.is_empty()
        && value.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for value in [
            "text/event-stream",
            "text/event-stream;charset=utf-8",
            "text/event-stream; charset=UTF-8",
            "text/event-stream;charset=windows-1252",
            "text/event-stream;",
            "TEXT/Event-Stream",
            "  text/event-stream \t",
            "text/event-stream ; charset=utf-8",
            "text/event-stream;;;=bogus",
        ] {
            assert!(is_event_stream(value.as_bytes()), "{value:?}");
        }
    }

    #[test]
    fn rejected() {
        for value in [
            "",
            "x bogus",
            "text/x-bogus",
            "text/plain",
            "application/json",
            "text/event-streams",
            "text/ event-stream",
            "text /event-stream",
            "text/event stream",
            "/event-stream",
            "text/",
            "text",
            "text/event-stream\u{0}",
        ] {
            assert!(!is_event_stream(value.as_bytes()), "{value:?}");
        }
        assert!(!is_event_stream(b"text/event-stream\xff"));
    }
}
