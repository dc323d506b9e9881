//! Topic matchers: which topics a subscription (or a grant) selects.
//!
//! Mercure draft-08 defines `exact` (byte-for-byte) and `urlpattern` (the
//! WHATWG URL Pattern standard, evaluated in linear time) matchers; the
//! reserved value `*` matches every topic whatever the type. The legacy
//! protocol's selectors are `*`, an exact string, or an RFC 6570 URI
//! template.
//!
//! A [`Matcher`] is compiled once (when a subscription is made or a token is
//! validated) and evaluated against many [`Topic`]s; a `Topic` is prepared
//! once per published update and evaluated by many matchers, so it parses
//! its URL lazily and at most once.
//!
//! ```
//! use herald_hub::matcher::{Matcher, MatcherKind, Topic};
//! let hub = url::Url::parse("https://example.com/.well-known/mercure").unwrap();
//! let books = Matcher::new(MatcherKind::UrlPattern, "/books/:id", &hub).unwrap();
//! assert!(books.matches(&Topic::new("https://example.com/books/1", &hub)));
//! assert!(books.matches(&Topic::new("/books/2", &hub)));
//! assert!(!books.matches(&Topic::new("https://example.com/books/1/reviews", &hub)));
//! ```
//!
//! # Limits
//!
//! Matcher values longer than [`MAX_MATCHER_LEN`] bytes (or the limit given
//! to [`Matcher::with_max_len`]) are refused, as are
//! values with control or format characters ([`crate::field_rules::check_text`]).
//! URL patterns compile to the `regex` crate, whose matching time is
//! linear in the topic's length whatever the pattern: no backtracking, so
//! no pattern can stall the hub (draft-08, "URL-Pattern Denial of
//! Service"). URI templates are matched by a small automaton of our own,
//! linear too, and refused past [`MAX_TEMPLATE_EXPRESSIONS`] expressions.

mod template;
mod url_pattern;

pub use template::MAX_EXPRESSIONS as MAX_TEMPLATE_EXPRESSIONS;

use std::fmt;
use std::sync::{Arc, OnceLock};

use url::Url;

use crate::field_rules::check_text;

/// The longest matcher value [`Matcher::new`] accepts, in bytes (URL
/// patterns, templates and exact values alike); [`Matcher::with_max_len`]
/// takes another limit.
pub const MAX_MATCHER_LEN: usize = 2048;

/// A compiled topic matcher. Cheap to clone.
#[derive(Clone)]
pub struct Matcher {
    inner: Arc<Inner>,
}

struct Inner {
    kind: MatcherKind,
    value: String,
    compiled: Compiled,
}

enum Compiled {
    All,
    Exact,
    // Boxed: eight compiled components dwarf the other variants.
    UrlPattern(Box<url_pattern::Pattern>),
    /// A legacy selector that is a URI template: matches the template
    /// string itself (legacy rule 2) or any expansion of it (rule 3).
    Template(template::Template),
}

/// The kinds of matcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatcherKind {
    /// `exact`: byte-for-byte comparison.
    Exact,
    /// `urlpattern`: a WHATWG URL Pattern.
    UrlPattern,
    /// A legacy selector: exact or an RFC 6570 URI template.
    LegacySelector,
}

impl MatcherKind {
    /// The registered name (`exact`, `urlpattern`) used in `match_<type>`
    /// query parameters and in `match_type`; `None` for legacy selectors,
    /// which have no name in draft-08.
    pub fn name(self) -> Option<&'static str> {
        match self {
            MatcherKind::Exact => Some("exact"),
            MatcherKind::UrlPattern => Some("urlpattern"),
            MatcherKind::LegacySelector => None,
        }
    }
}

/// Why a matcher could not be compiled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatcherErrorKind {
    /// The value is longer than the limit ([`MAX_MATCHER_LEN`] by default).
    TooLong,
    /// The value contains a control or format character.
    InvalidText,
    /// The value is not valid for its kind (e.g. a malformed URL pattern).
    InvalidPattern,
    /// The value would cost too much to match (a URI template with more
    /// than [`MAX_TEMPLATE_EXPRESSIONS`] expressions).
    TooComplex,
}

/// A matcher that could not be compiled. Its message is a phrase fit for a
/// 400 body after the parameter's name (`3000 bytes, longer than …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatcherError {
    kind: MatcherErrorKind,
    message: String,
}

impl MatcherError {
    fn new(kind: MatcherErrorKind, message: String) -> Self {
        MatcherError { kind, message }
    }

    /// Why compilation failed.
    pub fn kind(&self) -> MatcherErrorKind {
        self.kind
    }
}

impl fmt::Display for MatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MatcherError {}

/// A topic prepared for matching (its URL parsed at most once).
///
/// Make one per topic of an update and evaluate every candidate matcher
/// against it: the first URL pattern to look at it resolves the topic
/// against the hub's URL, and the others reuse that result.
pub struct Topic<'a> {
    raw: &'a str,
    base: &'a Url,
    // `OnceLock` rather than `OnceCell`: it keeps `Topic` `Sync`, so an
    // update's topics can be shared by reference with worker threads; the
    // cost over `OnceCell` is one atomic load per evaluation.
    url: OnceLock<Option<Url>>,
}

impl<'a> Topic<'a> {
    /// Prepares `raw` for matching; relative topics resolve against `base`
    /// (the hub's URL) when a URL pattern needs them.
    pub fn new(raw: &'a str, base: &'a Url) -> Self {
        Topic {
            raw,
            base,
            url: OnceLock::new(),
        }
    }

    /// The topic as published.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The topic resolved against the hub's URL with the WHATWG URL parser,
    /// or `None` if it is not a valid URL reference. Parsed on first call.
    pub fn url(&self) -> Option<&Url> {
        self.url
            .get_or_init(|| self.base.join(self.raw).ok())
            .as_ref()
    }
}

impl fmt::Debug for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Topic").field(&self.raw).finish()
    }
}

impl Matcher {
    /// Compiles a matcher of the given kind; `*` is the wildcard for every
    /// kind. Relative URL patterns resolve against `base` (the hub's URL).
    ///
    /// Fails when the value is longer than [`MAX_MATCHER_LEN`], contains a
    /// control or format character, or is not a valid URL pattern (for
    /// [`MatcherKind::UrlPattern`]). Every string is a valid exact matcher
    /// and a valid legacy selector: a selector that is not a URI template is
    /// an exact string.
    pub fn new(kind: MatcherKind, value: &str, base: &Url) -> Result<Matcher, MatcherError> {
        Matcher::with_max_len(kind, value, base, MAX_MATCHER_LEN)
    }

    /// [`Matcher::new`] with another length limit than [`MAX_MATCHER_LEN`]
    /// (a hub's `max_matcher_len` setting). Whatever the length, matching
    /// stays linear in the topic's length; a template's cost is bounded by
    /// [`MAX_TEMPLATE_EXPRESSIONS`].
    pub fn with_max_len(
        kind: MatcherKind,
        value: &str,
        base: &Url,
        max_len: usize,
    ) -> Result<Matcher, MatcherError> {
        if value.len() > max_len {
            return Err(MatcherError::new(
                MatcherErrorKind::TooLong,
                format!("{} bytes, longer than the limit of {max_len}", value.len()),
            ));
        }
        check_text(value)
            .map_err(|e| MatcherError::new(MatcherErrorKind::InvalidText, e.to_string()))?;
        let compiled = if value == "*" {
            Compiled::All
        } else {
            match kind {
                MatcherKind::Exact => Compiled::Exact,
                MatcherKind::UrlPattern => {
                    let pattern = url_pattern::Pattern::new(value, base).map_err(|e| {
                        MatcherError::new(
                            MatcherErrorKind::InvalidPattern,
                            format!("invalid URL pattern: {e}"),
                        )
                    })?;
                    Compiled::UrlPattern(Box::new(pattern))
                }
                MatcherKind::LegacySelector => match template::compile(value) {
                    None => Compiled::Exact,
                    Some(Ok(template)) => Compiled::Template(template),
                    Some(Err(e)) => {
                        return Err(MatcherError::new(
                            MatcherErrorKind::TooComplex,
                            format!("URI template too complex: {e}"),
                        ))
                    }
                },
            }
        };
        Ok(Matcher {
            inner: Arc::new(Inner {
                kind,
                value: value.to_owned(),
                compiled,
            }),
        })
    }

    /// The `match_type` / `match_<type>` name of a kind (`exact`,
    /// `urlpattern`), or `None` for names the hub does not support.
    /// Names are case-sensitive.
    pub fn kind_from_name(name: &str) -> Option<MatcherKind> {
        match name {
            "exact" => Some(MatcherKind::Exact),
            "urlpattern" => Some(MatcherKind::UrlPattern),
            _ => None,
        }
    }

    /// The kind this matcher was created with (also for `*`).
    pub fn kind(&self) -> MatcherKind {
        self.inner.kind
    }

    /// The matcher's value as given (the pattern, template or topic).
    pub fn as_str(&self) -> &str {
        &self.inner.value
    }

    /// Whether this is the `*` wildcard.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.inner.compiled, Compiled::All)
    }

    /// The one topic this matcher selects, if it selects exactly one (an
    /// exact matcher, or a legacy selector that is not a template): for
    /// indexing subscriptions by topic.
    pub fn exact_topic(&self) -> Option<&str> {
        match &self.inner.compiled {
            Compiled::Exact => Some(&self.inner.value),
            _ => None,
        }
    }

    /// How many URI template expressions this matcher evaluates per match
    /// (0 unless it is a legacy template): matching costs about that many
    /// passes over the topic, so a front end can bound the sum over one
    /// subscription.
    pub fn template_expressions(&self) -> usize {
        match &self.inner.compiled {
            Compiled::Template(template) => template.expressions(),
            _ => 0,
        }
    }

    /// Whether the topic matches.
    ///
    /// Exact and wildcard matchers never allocate. URL patterns resolve the
    /// topic (once per [`Topic`]); a topic that is not a valid URL reference
    /// matches no URL pattern. Legacy templates match the raw topic string.
    pub fn matches(&self, topic: &Topic<'_>) -> bool {
        match &self.inner.compiled {
            Compiled::All => true,
            Compiled::Exact => self.inner.value == topic.raw,
            Compiled::UrlPattern(pattern) => topic.url().is_some_and(|url| pattern.matches(url)),
            Compiled::Template(template) => {
                self.inner.value == topic.raw || template.is_match(topic.raw)
            }
        }
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (&self.inner.compiled, self.inner.kind) {
            (Compiled::All, _) => return f.write_str("Matcher(*)"),
            (_, MatcherKind::Exact) => "exact",
            (_, MatcherKind::UrlPattern) => "urlpattern",
            (Compiled::Template(_), MatcherKind::LegacySelector) => "template",
            (_, MatcherKind::LegacySelector) => "legacy",
        };
        write!(f, "Matcher({kind} {:?})", self.inner.value)
    }
}

impl PartialEq for Matcher {
    /// Two matchers are equal when their kind and value are (or both are
    /// `*`): the hub may deduplicate such subscriptions.
    fn eq(&self, other: &Self) -> bool {
        (self.is_wildcard() && other.is_wildcard())
            || (self.inner.kind == other.inner.kind && self.inner.value == other.inner.value)
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if !self.is_wildcard() {
            self.inner.kind.hash(state);
        }
        self.inner.value.hash(state);
    }
}
