//! The rules for the strings a publisher or subscriber gives (topics,
//! matcher values, event ids, event types): which characters and which
//! reserved values they may not hold. The [`Topic`](crate::matcher::Topic)
//! a matcher selects is in [`matcher`](crate::matcher).
//!
//! Mercure (draft-08, Terminology and Publication) constrains every topic,
//! topic matcher value, event `id` and event `type` the same way: no C0
//! (U+0000–U+001F) or C1 (U+0080–U+009F) control characters, no U+007F, and
//! no Unicode format characters (general category `Cf`: zero-width and
//! bidirectional controls), because these end up in SSE framing and in
//! identifiers a person reads. [`check_text`] is that rule; the other
//! functions add the per-field reservations:
//!
//! * a topic must not be exactly `*` (the wildcard) and must not address the
//!   hub's own namespace ([`addresses_reserved_namespace`]), so a publisher
//!   cannot forge subscription events;
//! * an event id must not start with `#` (hub-generated ids) nor be
//!   `earliest` (the replay-everything cursor);
//! * an event type must not be `mercure` (hub-generated events).
//!
//! Every error's `Display` is a short English phrase, without the field's
//! name, fit for a 400 body once prefixed with it: e.g.
//! `contains U+200B (a format character) at byte 4`.
//! Validity of UTF-8 is a given: these functions take `&str`.

use std::fmt;

use unicode_general_category::{get_general_category, GeneralCategory};
use url::Url;

use crate::reserved::{EARLIEST, HUB_EVENT_TYPE};

/// A string contains a character the protocol forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// A C0 or C1 control character, or U+007F (DEL).
    Control {
        /// The offending character.
        character: char,
        /// Its byte offset in the string.
        offset: usize,
    },
    /// A Unicode format character (general category `Cf`), such as U+200B
    /// ZERO WIDTH SPACE or U+202E RIGHT-TO-LEFT OVERRIDE.
    Format {
        /// The offending character.
        character: char,
        /// Its byte offset in the string.
        offset: usize,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Control { character, offset } => write!(
                f,
                "contains U+{:04X} (a control character) at byte {offset}",
                u32::from(*character)
            ),
            TextError::Format { character, offset } => write!(
                f,
                "contains U+{:04X} (a format character) at byte {offset}",
                u32::from(*character)
            ),
        }
    }
}

impl std::error::Error for TextError {}

/// Checks the character rule shared by topics, matcher values, event ids and
/// event types: no C0, C1, DEL or `Cf` characters.
///
/// ```
/// use herald_hub::field_rules::check_text;
/// assert!(check_text("https://example.com/books/1").is_ok());
/// assert!(check_text("books\u{200B}1").is_err()); // zero-width space
/// assert!(check_text("line\nbreak").is_err());
/// ```
pub fn check_text(value: &str) -> Result<(), TextError> {
    // Fast path: most values are printable ASCII, where only C0 and DEL can
    // be wrong; avoid the Unicode table look-up for them.
    if value.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(());
    }
    for (offset, character) in value.char_indices() {
        let code = u32::from(character);
        if code < 0x20 || (0x7F..=0x9F).contains(&code) {
            return Err(TextError::Control { character, offset });
        }
        if code >= 0xA0 && get_general_category(character) == GeneralCategory::Format {
            return Err(TextError::Format { character, offset });
        }
    }
    Ok(())
}

/// A topic value a publisher may not use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic contains a forbidden character.
    Text(TextError),
    /// The topic is exactly `*`, the reserved wildcard.
    Wildcard,
    /// The topic addresses the hub's reserved namespace.
    ReservedNamespace,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Text(e) => e.fmt(f),
            TopicError::Wildcard => f.write_str("`*` is reserved for the wildcard matcher"),
            TopicError::ReservedNamespace => {
                f.write_str("it addresses the hub's reserved namespace")
            }
        }
    }
}

impl std::error::Error for TopicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TopicError::Text(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks one published topic (canonical or alternate): the character rule,
/// not `*`, and not in the hub's reserved namespace. A publish request with
/// any topic failing this is answered 400 whatever its token.
pub fn check_topic(topic: &str, hub_url: &Url) -> Result<(), TopicError> {
    check_text(topic).map_err(TopicError::Text)?;
    if topic == "*" {
        return Err(TopicError::Wildcard);
    }
    if addresses_reserved_namespace(topic, hub_url) {
        return Err(TopicError::ReservedNamespace);
    }
    Ok(())
}

/// Whether `topic` addresses the hub's reserved namespace: the path of the
/// hub's URL and everything below it (`/.well-known/mercure` and
/// `/.well-known/mercure/...` for the default hub URL), whatever the scheme
/// or authority.
///
/// Per draft-08 (Publication), the topic is resolved against the hub URL with
/// the WHATWG URL parser (which removes dot segments, also their `%2e`
/// spellings), then percent-encoded *unreserved* characters in the path are
/// decoded, so `/.well-known/%6Dercure/x` and `/.well-known/mercure/../mercure/x`
/// are caught; a raw prefix test would miss them and an absolute topic on the
/// hub's own host. A topic that does not parse as a URL reference cannot name
/// a hub path, so it is not reserved.
///
/// When the hub is mounted at the root (`/`), only the path `/` itself (and
/// paths starting with `//`) is reserved: reserving every path would forbid
/// every topic.
pub fn addresses_reserved_namespace(topic: &str, hub_url: &Url) -> bool {
    let Ok(resolved) = hub_url.join(topic) else {
        return false;
    };
    // An opaque path (`urn:x:/...`, `mailto:...`) is not a hierarchical path
    // and cannot be a path on the hub.
    if resolved.cannot_be_a_base() {
        return false;
    }
    let path = normalize_path(resolved.path());
    let hub_path = normalize_path(hub_url.path());
    let hub_path = match hub_path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => hub_path.as_str(),
    };
    path == hub_path
        || path
            .strip_prefix(hub_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §2.3: ALPHA,
/// DIGIT, `-`, `.`, `_`, `~`) and removes any dot segment the decoding
/// revealed. Other escapes (`%2F`, non-ASCII) are kept: decoding `%2F` would
/// change the path's structure, which the spec does not ask for.
fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let decoded = hi << 4 | lo;
                if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
                    out.push(char::from(decoded));
                    i += 3;
                    continue;
                }
            }
        }
        // Copy one whole UTF-8 sequence (the WHATWG parser already
        // percent-encoded non-ASCII, but stay correct if it did not).
        let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    if out.split('/').any(|s| s == "." || s == "..") {
        remove_dot_segments(&out)
    } else {
        out
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §5.2.4 on an absolute path, segment-wise.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path.split('/').skip(1).peekable();
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        match segment {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A client-supplied event id the hub must refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventIdError {
    /// The id starts with `#`, the prefix of hub-generated ids.
    StartsWithHash,
    /// The id is `earliest`, the reserved replay-everything cursor.
    Earliest,
    /// The id is empty: in an event stream `id:` with no value resets the
    /// client's last event id, so it could never be resumed from.
    Empty,
    /// The id starts or ends with a space or a tab, which HTTP strips from
    /// the `Last-Event-ID` header (optional whitespace): the id would come
    /// back as another one (`" earliest"` as `earliest`).
    Padded,
    /// The id contains a forbidden character.
    Text(TextError),
}

impl fmt::Display for EventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventIdError::StartsWithHash => {
                f.write_str("it must not start with `#` (reserved for hub-generated ids)")
            }
            EventIdError::Earliest => {
                f.write_str("`earliest` is reserved for replaying all history")
            }
            EventIdError::Empty => f.write_str(
                "it must not be empty (an empty id resets the client's last event id); \
                 leave the field out to have the hub generate one",
            ),
            EventIdError::Padded => f.write_str(
                "it must not start or end with a space or a tab (HTTP strips them from the \
                 Last-Event-ID header, so the id could not be resumed from)",
            ),
            EventIdError::Text(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EventIdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventIdError::Text(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a client-supplied event id: not starting with `#`, not `earliest`,
/// and it must survive a round trip through the `Last-Event-ID` header
/// unchanged: not empty, no leading or trailing space or tab (HTTP's
/// optional whitespace, which every server trims), and the character rule.
pub fn check_event_id(id: &str) -> Result<(), EventIdError> {
    if id.is_empty() {
        return Err(EventIdError::Empty);
    }
    let padding = [' ', '\t'];
    if id.starts_with(padding) || id.ends_with(padding) {
        return Err(EventIdError::Padded);
    }
    if id.starts_with('#') {
        return Err(EventIdError::StartsWithHash);
    }
    if id == EARLIEST {
        return Err(EventIdError::Earliest);
    }
    check_text(id).map_err(EventIdError::Text)
}

/// A client-supplied event type the hub must refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventTypeError {
    /// The type is `mercure`, reserved for hub-generated events.
    Reserved,
    /// The type contains a forbidden character.
    Text(TextError),
}

impl fmt::Display for EventTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventTypeError::Reserved => {
                f.write_str("`mercure` is reserved for the hub's own events")
            }
            EventTypeError::Text(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EventTypeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventTypeError::Text(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a client-supplied event type: the character rule and not
/// `mercure`.
pub fn check_event_type(event_type: &str) -> Result<(), EventTypeError> {
    check_text(event_type).map_err(EventTypeError::Text)?;
    if event_type == HUB_EVENT_TYPE {
        return Err(EventTypeError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/./b/."), "/a/b/");
        assert_eq!(remove_dot_segments("/.."), "/");
        assert_eq!(remove_dot_segments("/a/.."), "/");
    }

    #[test]
    fn unreserved_decoding() {
        assert_eq!(normalize_path("/%2e%6D%7e%2F%41"), "/.m~%2FA");
        assert_eq!(normalize_path("/%"), "/%");
        assert_eq!(normalize_path("/%4"), "/%4");
        assert_eq!(normalize_path("/%zz"), "/%zz");
        assert_eq!(normalize_path("/a/%2E%2E/b"), "/b");
    }
}
