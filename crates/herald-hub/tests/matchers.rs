//! Topic matchers, topic rules and grants: the Mercure draft-08 and legacy
//! rules, checked through one `check` helper per concern.

use herald_hub::field_rules::{
    addresses_reserved_namespace, check_event_id, check_event_type, check_text, check_topic,
    EventIdError, EventTypeError, TextError, TopicError,
};
use herald_hub::grant::Grants;
use herald_hub::matcher::{
    Matcher, MatcherErrorKind, MatcherKind, Topic, MAX_MATCHER_LEN, MAX_TEMPLATE_EXPRESSIONS,
};
use url::Url;

const HUB: &str = "https://example.com/.well-known/mercure";

fn hub() -> Url {
    Url::parse(HUB).unwrap()
}

/// Asserts that a matcher of `kind` built from `value` matches exactly the
/// topics marked `true`.
#[track_caller]
fn check(kind: MatcherKind, value: &str, cases: &[(&str, bool)]) {
    let base = hub();
    let matcher = Matcher::new(kind, value, &base)
        .unwrap_or_else(|e| panic!("{kind:?} {value:?} should compile: {e}"));
    for &(topic, expected) in cases {
        assert_eq!(
            matcher.matches(&Topic::new(topic, &base)),
            expected,
            "{kind:?} {value:?} against {topic:?}"
        );
    }
}

// ---------------------------------------------------------------- exact

#[test]
fn exact_is_byte_for_byte() {
    check(
        MatcherKind::Exact,
        "https://example.com/foo",
        &[
            ("https://example.com/foo", true),
            ("https://EXAMPLE.com/foo", false),
            ("https://example.com/Foo", false),
            ("https://example.com/foo/", false),
            ("https://example.com/./foo", false),
            ("https://example.com/%66oo", false),
            ("/foo", false),
        ],
    );
    // No resolution against the hub's URL.
    check(
        MatcherKind::Exact,
        "bar",
        &[
            ("bar", true),
            ("https://example.com/.well-known/bar", false),
        ],
    );
    // No Unicode normalization: NFC "é" vs NFD "e\u{301}".
    check(
        MatcherKind::Exact,
        "caf\u{e9}",
        &[("caf\u{e9}", true), ("cafe\u{301}", false)],
    );
}

#[test]
fn exact_topic_for_indexing() {
    let base = hub();
    let m = Matcher::new(MatcherKind::Exact, "a", &base).unwrap();
    assert_eq!(m.exact_topic(), Some("a"));
    assert_eq!(m.as_str(), "a");
    assert_eq!(m.kind(), MatcherKind::Exact);
    let m = Matcher::new(MatcherKind::UrlPattern, "/a/:b", &base).unwrap();
    assert_eq!(m.exact_topic(), None);
    let m = Matcher::new(MatcherKind::Exact, "*", &base).unwrap();
    assert_eq!(m.exact_topic(), None);
    let m = Matcher::new(MatcherKind::LegacySelector, "https://example.com/x", &base).unwrap();
    assert_eq!(m.exact_topic(), Some("https://example.com/x"));
    let m = Matcher::new(
        MatcherKind::LegacySelector,
        "https://example.com/{x}",
        &base,
    )
    .unwrap();
    assert_eq!(m.exact_topic(), None);
}

// ---------------------------------------------------------------- wildcard

#[test]
fn star_matches_everything_for_every_kind() {
    let topics = [
        ("https://example.com/foo", true),
        ("bar", true),
        ("*", true),
        ("http://[not a url", true),
        ("", true),
    ];
    for kind in [
        MatcherKind::Exact,
        MatcherKind::UrlPattern,
        MatcherKind::LegacySelector,
    ] {
        check(kind, "*", &topics);
        assert!(Matcher::new(kind, "*", &hub()).unwrap().is_wildcard());
    }
    assert!(!Matcher::new(MatcherKind::Exact, "**", &hub())
        .unwrap()
        .is_wildcard());
}

#[test]
fn kind_names() {
    assert_eq!(Matcher::kind_from_name("exact"), Some(MatcherKind::Exact));
    assert_eq!(
        Matcher::kind_from_name("urlpattern"),
        Some(MatcherKind::UrlPattern)
    );
    assert_eq!(Matcher::kind_from_name("URLPattern"), None);
    assert_eq!(Matcher::kind_from_name("regexp"), None);
    assert_eq!(Matcher::kind_from_name(""), None);
    assert_eq!(MatcherKind::UrlPattern.name(), Some("urlpattern"));
    assert_eq!(MatcherKind::LegacySelector.name(), None);
}

// ---------------------------------------------------------------- urlpattern

#[test]
fn urlpattern_spec_examples() {
    // Subscription example.
    check(
        MatcherKind::UrlPattern,
        "https://example.com/bar/:id",
        &[
            ("https://example.com/bar/1", true),
            ("https://example.com/bar/abc", true),
            ("https://example.com/bar/", false),
            ("https://example.com/bar/1/2", false),
            ("https://example.org/bar/1", false),
            ("http://example.com/bar/1", false),
        ],
    );
    // Subscribers example: a user's namespace.
    check(
        MatcherKind::UrlPattern,
        "https://example.com/users/42/*",
        &[
            ("https://example.com/users/42/books/1", true),
            ("https://example.com/users/42/", true),
            ("https://example.com/users/43/books/1", false),
            ("https://example.com/books/1", false),
        ],
    );
    check(
        MatcherKind::UrlPattern,
        "https://example.com/books/:id",
        &[
            ("https://example.com/books/1", true),
            ("https://example.com/books/2", true),
        ],
    );
}

#[test]
fn urlpattern_relative_pattern_and_topics_use_the_hub_url() {
    // The spec's example of a relative pattern: subscription events.
    check(
        MatcherKind::UrlPattern,
        "/.well-known/mercure/subscriptions/exact/:topic/:subscriber",
        &[
            ("/.well-known/mercure/subscriptions/exact/a/b", true),
            (
                "https://example.com/.well-known/mercure/subscriptions/exact/a/b",
                true,
            ),
            (
                "https://other.example/.well-known/mercure/subscriptions/exact/a/b",
                false,
            ),
            ("/.well-known/mercure/subscriptions/exact/a", false),
        ],
    );
    // A relative topic against an absolute pattern.
    check(
        MatcherKind::UrlPattern,
        "https://example.com/books/:id",
        &[("/books/1", true), ("../books/1", true), ("books/1", false)],
    );
    // Relative path patterns resolve against the hub URL's directory.
    check(
        MatcherKind::UrlPattern,
        "/books/:id",
        &[
            ("https://example.com/books/1", true),
            ("http://example.com/books/1", false),
        ],
    );
}

#[test]
fn urlpattern_case_sensitivity() {
    // Host names are case-insensitive (URL canonicalization); paths are not,
    // and ignoreCase is never enabled.
    check(
        MatcherKind::UrlPattern,
        "https://Example.COM/Books/:id",
        &[
            ("https://example.com/Books/1", true),
            ("https://EXAMPLE.com/Books/1", true),
            ("https://example.com/books/1", false),
        ],
    );
}

#[test]
fn urlpattern_canonicalizes_the_topic() {
    check(
        MatcherKind::UrlPattern,
        "https://example.com/books/:id",
        &[
            ("https://example.com/books/../books/1", true),
            ("https://example.com:443/books/1", true),
            ("HTTPS://example.com/books/1", true),
        ],
    );
}

#[test]
fn urlpattern_other_components() {
    check(
        MatcherKind::UrlPattern,
        "https://example.com/search?q=:term",
        &[
            ("https://example.com/search?q=cats", true),
            ("https://example.com/search?x=cats", false),
        ],
    );
    check(
        MatcherKind::UrlPattern,
        "https://*.example.com/*",
        &[
            ("https://api.example.com/a", true),
            ("https://example.com/a", false),
            ("https://api.example.org/a", false),
        ],
    );
    check(
        MatcherKind::UrlPattern,
        "https://example.com/books/:id(\\d+)",
        &[
            ("https://example.com/books/12", true),
            ("https://example.com/books/ab", false),
        ],
    );
    check(
        MatcherKind::UrlPattern,
        "urn\\:uuid\\:*",
        &[
            ("urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022", true),
            ("https://example.com/x", false),
        ],
    );
}

#[test]
fn urlpattern_unparseable_topics_never_match() {
    check(
        MatcherKind::UrlPattern,
        "*://*/*",
        &[
            ("http://[::1", false),
            ("https://exa mple.com/", false),
            ("http://example.com:99999/", false),
            ("https://example.com/ok", true),
        ],
    );
    // Even a pattern matching every URL does not match an unparseable topic,
    // while `*` does (it is not a URL pattern).
    check(MatcherKind::UrlPattern, "*", &[("http://[::1", true)]);
}

#[test]
fn urlpattern_invalid_patterns_are_refused() {
    let base = hub();
    for value in [
        "https://example.com/(",
        "https://example.com/:id(",
        // ECMAScript-only syntax: look-ahead and back-references would need a
        // backtracking engine, so they do not compile.
        "https://example.com/:id((?=a)a)",
        "https://example.com/:id((?:a)\\1)",
        "https://example.com/:id((a)\\2)",
    ] {
        let err = Matcher::new(MatcherKind::UrlPattern, value, &base).unwrap_err();
        assert_eq!(
            err.kind(),
            MatcherErrorKind::InvalidPattern,
            "{value:?}: {err}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn urlpattern_pathological_patterns_stay_linear() {
    let base = hub();
    // Many nested optional wildcards: exponential on a backtracking engine.
    let mut pattern = String::from("https://example.com/");
    while pattern.len() < MAX_MATCHER_LEN - 20 {
        pattern.push_str("(a*)*");
    }
    let topic = format!("https://example.com/{}b", "a".repeat(2000));
    let m = Matcher::new(MatcherKind::UrlPattern, &pattern, &base).unwrap();
    assert!(!m.matches(&Topic::new(&topic, &base)));

    // Wildcards and named groups against a 2 KiB topic: 512 bytes of them
    // compile and stay linear; 2 KiB of them compile past the bound on a
    // component's program and are refused (issue 9: each such pattern cost
    // hundreds of KiB).
    let groups = |len: usize| {
        let mut pattern = String::from("https://example.com/");
        let mut i = 0;
        while pattern.len() < len {
            pattern.push_str(&format!("*:g{i}-"));
            i += 1;
        }
        pattern
    };
    let m = Matcher::new(MatcherKind::UrlPattern, &groups(512), &base).unwrap();
    let topic = format!("https://example.com/{}x", "a-".repeat(1000));
    assert!(!m.matches(&Topic::new(&topic, &base)));
    let err = Matcher::new(
        MatcherKind::UrlPattern,
        &groups(MAX_MATCHER_LEN - 20),
        &base,
    )
    .unwrap_err();
    assert_eq!(err.kind(), MatcherErrorKind::InvalidPattern);
    assert!(err.to_string().contains("too complex"), "{err}");

    // A regexp group with nested quantifiers, the classic ReDoS shape.
    let m = Matcher::new(
        MatcherKind::UrlPattern,
        "https://example.com/:x((?:a+)+b)",
        &base,
    )
    .unwrap();
    let topic = format!("https://example.com/{}c", "a".repeat(2000));
    assert!(!m.matches(&Topic::new(&topic, &base)));
}

// ---------------------------------------------------------------- legacy

#[test]
fn legacy_selectors() {
    let kind = MatcherKind::LegacySelector;
    check(
        kind,
        "https://example.com/books/{id}",
        &[
            ("https://example.com/books/1", true),
            ("https://example.com/books/foo-bar", true),
            ("https://example.com/books/{id}", true), // the template itself
            ("https://example.com/books/1/reviews", false),
            ("https://example.com/books/1?x", false),
            ("/books/1", false), // no URL resolution
        ],
    );
    check(
        kind,
        "https://example.com/users/foo/{?topic}",
        &[
            (
                "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
                true,
            ),
            ("https://example.com/users/foo/?other=1", false),
            ("https://example.com/users/bar/?topic=1", false),
        ],
    );
    check(
        kind,
        "/foo/{bar}/baz{.ext}",
        &[
            ("/foo/1/baz", true),
            ("/foo/1/baz.json", true),
            ("/foo/1/2/baz", false),
        ],
    );
    check(
        kind,
        "https://example.com/{+path}",
        &[("https://example.com/a/b?c=d", true)],
    );
    // Not templates: exact strings.
    check(
        kind,
        "https://example.com/{unclosed",
        &[
            ("https://example.com/{unclosed", true),
            ("https://example.com/x", false),
        ],
    );
    check(
        kind,
        "bar",
        &[
            ("bar", true),
            ("Bar", false),
            ("https://example.com/.well-known/bar", false),
        ],
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn length_limit() {
    let base = hub();
    let at_limit = format!("https://example.com/{}", "a".repeat(MAX_MATCHER_LEN - 20));
    assert_eq!(at_limit.len(), MAX_MATCHER_LEN);
    let over = format!("{at_limit}a");
    for kind in [
        MatcherKind::Exact,
        MatcherKind::UrlPattern,
        MatcherKind::LegacySelector,
    ] {
        assert!(Matcher::new(kind, &at_limit, &base).is_ok(), "{kind:?}");
        let err = Matcher::new(kind, &over, &base).unwrap_err();
        assert_eq!(err.kind(), MatcherErrorKind::TooLong);
        assert_eq!(err.to_string(), "2049 bytes, longer than the limit of 2048");
    }
}

#[test]
fn templates_are_bounded_by_their_expressions() {
    let base = hub();
    // At the limit: accepted, and matched in one pass over the topic.
    let value = "{a}".repeat(MAX_TEMPLATE_EXPRESSIONS);
    let m = Matcher::new(MatcherKind::LegacySelector, &value, &base).unwrap();
    assert!(m.matches(&Topic::new("abc", &base)));
    let value = format!("/x{}", "{?a*}".repeat(MAX_TEMPLATE_EXPRESSIONS));
    let m = Matcher::new(MatcherKind::LegacySelector, &value, &base).unwrap();
    assert!(m.matches(&Topic::new("/x?a=1&b=2?c=3", &base)));
    let topic = format!("/x?{}b=2", "a=1&".repeat(500));
    assert!(m.matches(&Topic::new(&topic, &base)));
    assert!(!m.matches(&Topic::new(&format!("{topic}/"), &base)));
    // Many variables in one expression cost one expression.
    let value = format!("{{?{}}}", vec!["a"; MAX_MATCHER_LEN / 2 - 2].join(","));
    let m = Matcher::new(MatcherKind::LegacySelector, &value, &base).unwrap();
    assert!(m.matches(&Topic::new("?a=1&a=2", &base)));

    // Past it (issue 9: hundreds of `{?a*}` cost ~30 MiB and 0.5 s each
    // with the regex engine): refused, not compiled.
    for value in [
        "{a}".repeat(MAX_TEMPLATE_EXPRESSIONS + 1),
        "{?a*}".repeat(MAX_MATCHER_LEN / 5),
    ] {
        let err = Matcher::new(MatcherKind::LegacySelector, &value, &base).unwrap_err();
        assert_eq!(err.kind(), MatcherErrorKind::TooComplex, "{value}");
    }
}

#[test]
fn matcher_values_follow_the_text_rule() {
    let base = hub();
    for value in [
        "a\u{0}b",
        "a\nb",
        "a\u{7f}",
        "a\u{85}",
        "a\u{200b}b",
        "\u{feff}a",
    ] {
        for kind in [
            MatcherKind::Exact,
            MatcherKind::UrlPattern,
            MatcherKind::LegacySelector,
        ] {
            let err = Matcher::new(kind, value, &base).unwrap_err();
            assert_eq!(
                err.kind(),
                MatcherErrorKind::InvalidText,
                "{kind:?} {value:?}"
            );
        }
    }
}

#[test]
fn equality_for_deduplication() {
    let base = hub();
    let a = Matcher::new(MatcherKind::Exact, "x", &base).unwrap();
    let b = Matcher::new(MatcherKind::Exact, "x", &base).unwrap();
    let c = Matcher::new(MatcherKind::UrlPattern, "x", &base).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let star1 = Matcher::new(MatcherKind::Exact, "*", &base).unwrap();
    let star2 = Matcher::new(MatcherKind::UrlPattern, "*", &base).unwrap();
    assert_eq!(star1, star2);
    assert_eq!(format!("{a:?}"), "Matcher(exact \"x\")");
    assert_eq!(format!("{star1:?}"), "Matcher(*)");
}

#[test]
fn topic_parses_lazily_and_once() {
    let base = hub();
    let topic = Topic::new("/books/1", &base);
    assert_eq!(topic.as_str(), "/books/1");
    let first = topic.url().unwrap() as *const Url;
    let second = topic.url().unwrap() as *const Url;
    assert_eq!(first, second);
    assert_eq!(topic.url().unwrap().as_str(), "https://example.com/books/1");
    assert!(Topic::new("http://[::1", &base).url().is_none());
}

// ---------------------------------------------------------------- text rule

#[test]
fn check_text_rejects_controls_and_format_characters() {
    assert!(check_text("").is_ok());
    assert!(check_text("https://example.com/books/1").is_ok());
    assert!(check_text("café/日本/😀").is_ok());
    assert!(check_text("\u{a0}").is_ok()); // NBSP is Zs, not Cf
    let control = |c: char, offset| TextError::Control {
        character: c,
        offset,
    };
    let format = |c: char, offset| TextError::Format {
        character: c,
        offset,
    };
    for (value, expected) in [
        ("a\u{0}", control('\u{0}', 1)),
        ("\t", control('\t', 0)),
        ("a\r\nb", control('\r', 1)),
        ("\u{1f}", control('\u{1f}', 0)),
        ("x\u{7f}", control('\u{7f}', 1)),
        ("é\u{80}", control('\u{80}', 2)),
        ("\u{85}", control('\u{85}', 0)),
        ("\u{9f}", control('\u{9f}', 0)),
        ("a\u{200b}b", format('\u{200b}', 1)),
        ("\u{202e}evil", format('\u{202e}', 0)),
        ("\u{feff}bom", format('\u{feff}', 0)),
        ("\u{ad}", format('\u{ad}', 0)),       // soft hyphen
        ("\u{2066}", format('\u{2066}', 0)),   // LEFT-TO-RIGHT ISOLATE
        ("\u{e0001}", format('\u{e0001}', 0)), // LANGUAGE TAG
    ] {
        assert_eq!(check_text(value), Err(expected), "{value:?}");
    }
    assert_eq!(
        check_text("ab\u{200b}").unwrap_err().to_string(),
        "contains U+200B (a format character) at byte 2"
    );
    assert_eq!(
        check_text("\n").unwrap_err().to_string(),
        "contains U+000A (a control character) at byte 0"
    );
}

// ---------------------------------------------------------------- reserved namespace

#[test]
fn reserved_namespace() {
    let base = hub();
    for (topic, reserved) in [
        ("https://example.com/.well-known/mercure", true),
        ("https://example.com/.well-known/mercure/", true),
        (
            "https://example.com/.well-known/mercure/subscriptions/a/b",
            true,
        ),
        ("/.well-known/mercure/subscriptions", true),
        ("/.well-known/mercure", true),
        // Other scheme or authority: still the hub's path.
        (
            "https://hub.example.com/.well-known/mercure/subscriptions/x",
            true,
        ),
        ("http://other.example/.well-known/mercure", true),
        ("foo:/.well-known/mercure/x", true),
        // Percent-encoded unreserved characters are decoded.
        ("/.well-known/%6Dercure/x", true),
        ("/.well-known/%6dercure", true),
        ("/%2Ewell-known/mercure/x", true),
        ("https://example.com/%2e%77ell-known/mercure", true),
        // Dot segments are removed.
        ("/.well-known/mercure/../mercure/x", true),
        ("/a/../.well-known/mercure/x", true),
        ("/.well-known/./mercure", true),
        ("/.well-known/mercure/%2e%2e/mercure/x", true),
        // Relative references resolve against the hub URL.
        ("mercure/x", true),
        ("./mercure", true),
        ("mercure", true),
        ("../.well-known/mercure/x", true),
        ("?query", true),
        ("#fragment", true),
        ("", true),
        // Backslashes are slashes in special URLs.
        ("https://example.com\\.well-known\\mercure\\x", true),
        // Not reserved.
        ("https://example.com/.well-known/mercurex", false),
        ("https://example.com/.well-known/mercure-x", false),
        ("https://example.com/.well-known/MERCURE", false),
        ("/.well-known/mercure%2Fx", false),
        ("/.well-known%2Fmercure", false),
        ("https://example.com/books/1", false),
        ("/.well-known/mercure/../x", false),
        ("mercurex", false),
        ("bar", false),
        ("urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022", false),
        ("urn:x:/.well-known/mercure", false),
        // Unparseable: not reserved.
        ("http://[::1/.well-known/mercure", false),
    ] {
        assert_eq!(
            addresses_reserved_namespace(topic, &base),
            reserved,
            "{topic:?}"
        );
    }
}

#[test]
fn reserved_namespace_follows_the_hub_path() {
    let base = Url::parse("https://example.com/hub/").unwrap();
    assert!(addresses_reserved_namespace("/hub", &base));
    assert!(addresses_reserved_namespace("/hub/x", &base));
    assert!(addresses_reserved_namespace("x", &base));
    assert!(!addresses_reserved_namespace("/hubx", &base));
    let root = Url::parse("https://example.com/").unwrap();
    assert!(addresses_reserved_namespace("/", &root));
    assert!(!addresses_reserved_namespace("/books/1", &root));
}

#[test]
fn topic_id_and_type_rules() {
    let base = hub();
    assert_eq!(check_topic("https://example.com/books/1", &base), Ok(()));
    assert_eq!(check_topic("*", &base), Err(TopicError::Wildcard));
    assert_eq!(
        check_topic("/.well-known/mercure/x", &base),
        Err(TopicError::ReservedNamespace)
    );
    assert!(matches!(
        check_topic("a\u{200b}", &base),
        Err(TopicError::Text(_))
    ));

    assert_eq!(check_event_id("urn:uuid:1"), Ok(()));
    assert_eq!(check_event_id("a#b"), Ok(()));
    assert_eq!(check_event_id("#1"), Err(EventIdError::StartsWithHash));
    assert_eq!(check_event_id("earliest"), Err(EventIdError::Earliest));
    assert_eq!(check_event_id("Earliest"), Ok(()));
    assert!(matches!(
        check_event_id("a\nid: x"),
        Err(EventIdError::Text(_))
    ));
    assert!(matches!(
        check_event_id("\u{202e}"),
        Err(EventIdError::Text(_))
    ));

    assert_eq!(check_event_type("message"), Ok(()));
    assert_eq!(check_event_type("mercure"), Err(EventTypeError::Reserved));
    assert_eq!(check_event_type("Mercure"), Ok(()));
    assert!(matches!(
        check_event_type("a\r"),
        Err(EventTypeError::Text(_))
    ));

    assert_eq!(
        check_event_id("#1").unwrap_err().to_string(),
        "it must not start with `#` (reserved for hub-generated ids)"
    );
    assert_eq!(
        check_event_type("mercure").unwrap_err().to_string(),
        "`mercure` is reserved for the hub's own events"
    );
}

// ---------------------------------------------------------------- grants

fn matchers(kind: MatcherKind, values: &[&str]) -> Vec<Matcher> {
    values
        .iter()
        .map(|v| Matcher::new(kind, v, &hub()).unwrap())
        .collect()
}

#[test]
fn grants_publish_every_topic_read_any_topic() {
    let base = hub();
    let mut publish = matchers(MatcherKind::Exact, &["https://example.com/a"]);
    publish.extend(matchers(
        MatcherKind::UrlPattern,
        &["https://example.com/books/:id"],
    ));
    let subscribe = matchers(MatcherKind::UrlPattern, &["https://example.com/users/42/*"]);
    let grants = Grants::new(publish, subscribe);
    let t = |s| Topic::new(s, &base);

    assert!(grants.may_publish(&t("https://example.com/a")));
    assert!(grants.may_publish(&t("https://example.com/books/1")));
    assert!(!grants.may_publish(&t("https://example.com/b")));
    assert!(grants.may_publish_all(&[t("https://example.com/a"), t("/books/2")]));
    assert!(!grants.may_publish_all(&[t("https://example.com/a"), t("https://example.com/b")]));

    // The spec's alternate-topic example.
    let update = [
        t("https://example.com/books/1"),
        t("https://example.com/users/42/books/1"),
    ];
    assert!(grants.may_read(&update));
    assert!(!grants.may_read(&update[..1]));
    assert!(grants.can_publish() && grants.can_subscribe());
    assert_eq!(grants.publish_matchers().len(), 2);
    assert_eq!(grants.subscribe_matchers().len(), 1);

    let none = Grants::none();
    assert!(!none.may_publish(&t("https://example.com/a")));
    assert!(!none.may_read(&update));
    assert!(!none.can_publish() && !none.can_subscribe());

    let all = Grants::new(matchers(MatcherKind::Exact, &["*"]), vec![]);
    assert!(all.may_publish_all(&[t("x"), t("http://[::1")]));
    assert!(!all.may_read(&[t("x")]));
}

#[test]
fn grants_payloads_first_match_wins() {
    let base = hub();
    let mut builder = Grants::builder();
    builder
        .subscribe(
            matchers(MatcherKind::Exact, &["https://example.com/foo"]),
            Some(serde_json::json!({"custom1": 1})),
        )
        .subscribe(
            matchers(MatcherKind::UrlPattern, &["https://example.com/bar/:id"]),
            Some(serde_json::json!({"custom2": 2})),
        )
        .subscribe(
            matchers(MatcherKind::Exact, &["https://example.com/nopayload"]),
            None,
        )
        .subscribe(
            matchers(MatcherKind::Exact, &["*"]),
            Some(serde_json::json!({"custom3": 3})),
        );
    let grants = builder.build();
    let payload = |m: &str| grants.subscribe_payload(&Topic::new(m, &base)).cloned();
    assert_eq!(
        payload("https://example.com/foo"),
        Some(serde_json::json!({"custom1": 1}))
    );
    // The subscription's matcher string is treated as a topic.
    assert_eq!(
        payload("https://example.com/bar/:id"),
        Some(serde_json::json!({"custom2": 2}))
    );
    assert_eq!(
        payload("https://example.com/bar/7"),
        Some(serde_json::json!({"custom2": 2}))
    );
    assert_eq!(payload("https://example.com/nopayload"), None);
    assert_eq!(payload("anything"), Some(serde_json::json!({"custom3": 3})));

    let mut builder = Grants::builder();
    builder
        .default_payload(serde_json::json!({"legacy": true}))
        .subscribe(
            matchers(MatcherKind::LegacySelector, &["https://example.com/{id}"]),
            None,
        );
    let legacy = builder.build();
    assert_eq!(
        legacy.subscribe_payload(&Topic::new("whatever", &base)),
        Some(&serde_json::json!({"legacy": true}))
    );
    assert!(legacy.may_read(&[Topic::new("https://example.com/1", &base)]));
    assert!(!legacy.may_read(&[Topic::new("whatever", &base)]));
}
