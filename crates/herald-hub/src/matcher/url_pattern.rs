//! `urlpattern` matchers: the WHATWG URL Pattern standard, via the
//! `urlpattern` crate (Deno's implementation).
//!
//! Why this is safe against pathological patterns: `urlpattern::UrlPattern`
//! is generic over its regular-expression engine and defaults to
//! `regex::Regex` with `RegexSyntax::Rust`; we name both explicitly below.
//! The `regex` crate has no backtracking (no look-around, no
//! back-references) and guarantees matching in time linear in the input, as
//! draft-08's "URL-Pattern Denial of Service" requires; a pattern using
//! ECMAScript-only syntax (look-ahead, back-references) fails to compile and
//! is refused with a 400 rather than run on a backtracking engine.
//!
//! What a pattern may cost: the crate builds each component's regex through
//! the `RegExp` trait, so ours ([`Component`]) builds it with bounds, the
//! compiled program at most [`COMPILED_LIMIT`] bytes (larger: the pattern
//! is refused as too complex) and the lazy DFA's cache at most
//! [`DFA_CACHE_LIMIT`] (past it the regex crate falls back to slower
//! engines that need no more memory). With the crate's defaults (10 MiB
//! and 2 MiB per regex, eight regexes per pattern) a few long patterns in
//! one anonymous subscribe cost megabytes.
//!
//! Why we do not call `UrlPattern::test`: it takes the URL by value and
//! copies each of its eight components into `String`s, and `exec` also
//! collects capture groups, per evaluation. The hub evaluates many patterns
//! against one topic, so we borrow the components from the topic's parsed
//! [`Url`] (the same accessors `urlpattern::quirks` uses, hence the same
//! strings) and ask each component's compiled regex `is_match`, which
//! allocates nothing and skips capture bookkeeping.

use std::fmt;

use regex::{Regex, RegexBuilder};
use url::Url;
use urlpattern::regexp::RegExp;
use urlpattern::{RegexSyntax, UrlPattern, UrlPatternInit, UrlPatternOptions};

/// The largest compiled program of one component's regex, in bytes.
pub(super) const COMPILED_LIMIT: usize = 256 * 1024;

/// The largest lazy-DFA cache of one component's regex, in bytes.
pub(super) const DFA_CACHE_LIMIT: usize = 64 * 1024;

/// A compiled URL pattern.
pub(super) struct Pattern {
    pattern: UrlPattern<Component>,
}

/// One component's regex, built within [`COMPILED_LIMIT`] and
/// [`DFA_CACHE_LIMIT`].
pub(super) struct Component(Regex);

impl RegExp for Component {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        RegexBuilder::new(pattern)
            .size_limit(COMPILED_LIMIT)
            .dfa_size_limit(DFA_CACHE_LIMIT)
            .build()
            .map(Component)
            .map_err(|_| ())
    }

    /// The capture groups, as the trait asks (the crate uses this while
    /// parsing; the hub itself only asks [`Regex::is_match`]).
    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.0.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|c| c.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// Why a URL pattern was refused (the `urlpattern` crate's message).
pub(super) struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pattern {
    /// Compiles `value` as a URL Pattern constructor string with `base` as
    /// its base URL (draft-08: relative patterns resolve against the hub's
    /// URL). `ignoreCase` stays off, as draft-08 requires.
    pub(super) fn new(value: &str, base: &Url) -> Result<Pattern, PatternError> {
        // The base only serves relative patterns. Given to an absolute one,
        // the standard still joins a pathname not starting with `/` onto the
        // base's directory, so `urn\:uuid\:*` would become
        // `urn:/.well-known/uuid:*` and never match a URN topic.
        let init = match UrlPatternInit::parse_constructor_string::<Component>(value, None) {
            Err(urlpattern::Error::BaseUrlRequired) => {
                UrlPatternInit::parse_constructor_string::<Component>(value, Some(base.clone()))
            }
            other => other,
        }
        .map_err(|e| PatternError(e.to_string()))?;
        let options = UrlPatternOptions {
            regex_syntax: RegexSyntax::Rust,
            ignore_case: false,
        };
        let pattern = UrlPattern::<Component>::parse(init, options).map_err(|e| match e {
            // The crate cannot say why a regex failed: a syntax it does not
            // accept, or a program past our bound.
            urlpattern::Error::RegExp(()) => PatternError(format!(
                "its regular expression is invalid or too complex (at most {} KiB compiled per component)",
                COMPILED_LIMIT / 1024
            )),
            other => PatternError(other.to_string()),
        })?;
        Ok(Pattern { pattern })
    }

    /// Whether the (already resolved) topic URL matches every component.
    pub(super) fn matches(&self, url: &Url) -> bool {
        let p = &self.pattern;
        // Most selective components first, so a miss is usually decided by
        // the first regex.
        component(&p.pathname.regexp, url::quirks::pathname(url))
            && component(&p.hostname.regexp, url.host_str().unwrap_or_default())
            && component(&p.protocol.regexp, url.scheme())
            && component(&p.port.regexp, url::quirks::port(url))
            && component(&p.search.regexp, url.query().unwrap_or_default())
            && component(&p.hash.regexp, url.fragment().unwrap_or_default())
            && component(&p.username.regexp, url.username())
            && component(&p.password.regexp, url.password().unwrap_or_default())
    }
}

/// One component's anchored regex (`^…$`, as the standard generates) against
/// the component's string. A component whose regex failed to compile
/// cannot match (`UrlPattern::parse` already refuses such patterns).
fn component(regexp: &Result<Component, urlpattern::Error>, value: &str) -> bool {
    regexp.as_ref().is_ok_and(|re| re.0.is_match(value))
}
