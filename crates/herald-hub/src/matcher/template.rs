//! Legacy selectors as RFC 6570 URI templates, compiled to an anchored
//! regular expression that matches the template's expansions.
//!
//! The legacy protocol says a topic matches a selector when it is one of
//! the strings the template can expand to. We compile the template to a
//! `regex` crate pattern (linear-time matching, like URL patterns) instead
//! of matching by hand: literals are escaped, and each `{…}` expression
//! becomes an optional group accepting what that expression can expand to.
//!
//! No Rust crate matches (rather than expands) URI templates well, so this
//! is our own, kept small. The Go hub used `yosida95/uritemplate`; we accept
//! the same templates (levels 1–4: operators none, `+`, `#`, `.`, `/`, `;`,
//! `?`, `&`; `:N` prefix and `*` explode modifiers) and are stricter in one
//! place: for `;`, `?` and `&` the variable's *name* must appear, so
//! `{?topic}` matches `?topic=…` but not `?other=…`.
//!
//! Deliberate simplifications (each only makes a template match a little
//! more than its strict expansion set, never less):
//! * every variable may be undefined, so an expression may expand to nothing
//!   (`/books/{id}` matches `/books/`), which is RFC 6570's own rule;
//! * a value may be a list (`a,b`), since lists expand that way;
//! * prefix modifiers (`{var:3}`) do not bound the length: a bounded
//!   repetition per expression would grow the compiled regex with N;
//! * an expression of several variables, or with an exploded one, accepts
//!   its items in any order and number, which keeps the regex linear in the
//!   template's size;
//! * values may contain non-ASCII characters, because topics are IRIs.

use std::fmt::Write;

use regex::{Regex, RegexBuilder};

/// One character of a value expanded with the "unreserved" allow-set, plus
/// `,` (the list separator). Non-ASCII is accepted as IRI characters.
const VALUE_U: &str = r"(?:[A-Za-z0-9\-._~,]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])*";
/// The same for exploded associative values in unnamed expressions
/// (`{x*}` → `k=v,k2=v2`).
const VALUE_U_EQ: &str = r"(?:[A-Za-z0-9\-._~,=]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])*";
/// A value expanded with the "unreserved + reserved" allow-set (`+`, `#`).
const VALUE_R: &str = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])*";
/// A key of an exploded associative value in a named expression.
const KEY: &str = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])+";

/// The compiled regex's size limit: far above what a [`super::MAX_MATCHER_LEN`]
/// template needs, but it stops a crafted template from costing memory.
const SIZE_LIMIT: usize = 4 << 20;

/// Compiles `template`: `None` when it is not a URI template with at least
/// one expression (then it is an exact string), `Some(Err)` when it is one
/// but too large to compile.
pub(super) fn compile(template: &str) -> Option<Result<Regex, String>> {
    let pattern = to_regex(template)?;
    Some(
        RegexBuilder::new(&pattern)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => "too complex".to_owned(),
                other => other.to_string(),
            }),
    )
}

/// The regex source for `template`, or `None` if it is not a template with
/// expressions.
pub(super) fn to_regex(template: &str) -> Option<String> {
    let mut re = String::with_capacity(template.len() * 4);
    re.push_str(r"\A");
    let mut expressions = 0;
    let mut rest = template;
    while !rest.is_empty() {
        let Some(open) = rest.find(['{', '}']) else {
            re.push_str(&regex::escape(rest));
            break;
        };
        if rest.as_bytes()[open] == b'}' {
            return None; // a `}` outside an expression: not a template
        }
        re.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + 1..];
        let close = after.find(['{', '}'])?;
        if after.as_bytes()[close] == b'{' {
            return None; // nested or unclosed
        }
        expression(&after[..close], &mut re)?;
        expressions += 1;
        rest = &after[close + 1..];
    }
    if expressions == 0 {
        return None;
    }
    re.push_str(r"\z");
    Some(re)
}

/// How an operator expands (RFC 6570 appendix A's table).
struct Operator {
    first: &'static str,
    sep: &'static str,
    named: bool,
    /// `;` writes a bare name for an empty value; `?` and `&` write `name=`.
    empty_is_bare: bool,
    reserved: bool,
}

fn operator(c: char) -> Option<Operator> {
    let op = |first, sep, named, empty_is_bare, reserved| Operator {
        first,
        sep,
        named,
        empty_is_bare,
        reserved,
    };
    Some(match c {
        '+' => op("", ",", false, false, true),
        '#' => op("#", ",", false, false, true),
        '.' => op(".", ".", false, false, false),
        '/' => op("/", "/", false, false, false),
        ';' => op(";", ";", true, true, false),
        '?' => op("?", "&", true, false, false),
        '&' => op("&", "&", true, false, false),
        _ => return None,
    })
}

struct VarSpec<'a> {
    name: &'a str,
    explode: bool,
}

/// Appends the regex for one expression (the text between braces), or
/// returns `None` if it is not a valid expression.
fn expression(body: &str, re: &mut String) -> Option<()> {
    let mut chars = body.chars();
    let first = chars.next()?;
    let (op, list) = match operator(first) {
        Some(op) => (op, chars.as_str()),
        // Reserved for future extensions by RFC 6570 §2.2: not a template.
        None if "=,!@|".contains(first) => return None,
        None => (operator_simple(), body),
    };
    let vars = list.split(',').map(varspec).collect::<Option<Vec<_>>>()?;
    let any_explode = vars.iter().any(|v| v.explode);

    re.push_str("(?:");
    re.push_str(&regex::escape(op.first));
    if op.named {
        let items: Vec<String> = vars.iter().map(|v| named_item(&op, v)).collect();
        if vars.len() == 1 && !any_explode {
            re.push_str(&items[0]);
        } else {
            let alternation = format!("(?:{})", items.join("|"));
            let _ = write!(
                re,
                "{alternation}(?:{}{alternation})*",
                regex::escape(op.sep)
            );
        }
    } else {
        let value = if op.reserved {
            VALUE_R
        } else if any_explode {
            VALUE_U_EQ
        } else {
            VALUE_U
        };
        re.push_str(value);
        if vars.len() > 1 || any_explode {
            let _ = write!(re, "(?:{}{value})*", regex::escape(op.sep));
        }
    }
    re.push_str(")?");
    Some(())
}

fn operator_simple() -> Operator {
    Operator {
        first: "",
        sep: ",",
        named: false,
        empty_is_bare: false,
        reserved: false,
    }
}

/// One `name=value` item of a `;`, `?` or `&` expression.
fn named_item(op: &Operator, var: &VarSpec<'_>) -> String {
    // An exploded variable may be an associative array, whose keys replace
    // the variable's name.
    let name = if var.explode {
        KEY.to_owned()
    } else {
        regex::escape(var.name)
    };
    if op.empty_is_bare {
        format!("{name}(?:={VALUE_U})?")
    } else {
        format!("{name}={VALUE_U}")
    }
}

/// Parses `varname [ ":" max-length | "*" ]`.
fn varspec(spec: &str) -> Option<VarSpec<'_>> {
    let (name, explode) = if let Some(name) = spec.strip_suffix('*') {
        (name, true)
    } else if let Some((name, len)) = spec.split_once(':') {
        // max-length = %x31-39 0*3DIGIT
        let valid = (1..=4).contains(&len.len())
            && len.bytes().all(|b| b.is_ascii_digit())
            && !len.starts_with('0');
        if !valid {
            return None;
        }
        (name, false)
    } else {
        (spec, false)
    };
    valid_varname(name).then_some(VarSpec { name, explode })
}

/// `varname = varchar *( ["."] varchar )`, `varchar = ALPHA / DIGIT / "_" /
/// pct-encoded`.
fn valid_varname(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes[0] == b'.' || bytes[bytes.len() - 1] == b'.' {
        return false;
    }
    let mut i = 0;
    let mut previous_dot = false;
    while i < bytes.len() {
        match bytes[i] {
            b'.' if previous_dot => return false,
            b'.' => previous_dot = true,
            b'%' => {
                let hex = |b: u8| b.is_ascii_hexdigit();
                if i + 2 >= bytes.len() || !hex(bytes[i + 1]) || !hex(bytes[i + 2]) {
                    return false;
                }
                i += 2;
                previous_dot = false;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => previous_dot = false,
            _ => return false,
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(t: &str) -> Regex {
        compile(t).expect("a template").expect("compiles")
    }

    #[test]
    fn not_templates() {
        for t in [
            "https://example.com/books/1",
            "",
            "a}b",
            "a{b",
            "a{}b",
            "{a{b}}",
            "{=x}",
            "{!x}",
            "{x:0}",
            "{x:10000}",
            "{x:}",
            "{x-y}",
            "{.x.}",
            "{x..y}",
            "{%zz}",
            "{x,}",
            "{x**}",
        ] {
            assert!(compile(t).is_none(), "{t:?} should not be a template");
        }
    }

    #[test]
    fn varnames() {
        for t in [
            "{x}",
            "{x.y}",
            "{x_1}",
            "{%41b}",
            "{x:1}",
            "{x:9999}",
            "{x*}",
            "{a,b:2,c*}",
        ] {
            assert!(compile(t).is_some(), "{t:?} should be a template");
        }
    }

    #[test]
    fn simple_level_1() {
        let re = regex("https://example.com/books/{id}");
        assert!(re.is_match("https://example.com/books/1"));
        assert!(re.is_match("https://example.com/books/caf%C3%A9"));
        assert!(re.is_match("https://example.com/books/café"));
        assert!(re.is_match("https://example.com/books/"));
        assert!(!re.is_match("https://example.com/books/1/reviews"));
        assert!(!re.is_match("https://example.com/books/1?x=1"));
        assert!(!re.is_match("xhttps://example.com/books/1"));
        assert!(!re.is_match("https://example.com/books/1#x"));
        assert!(!re.is_match("https://example.com/books/%zz"));
    }

    #[test]
    fn literals_are_escaped() {
        let re = regex("https://example.com/a.b/{id}");
        assert!(re.is_match("https://example.com/a.b/1"));
        assert!(!re.is_match("https://example.com/aXb/1"));
    }

    #[test]
    fn reserved_expansion() {
        let re = regex("https://example.com/{+path}");
        assert!(re.is_match("https://example.com/a/b/c?x=1&y=2"));
        let re = regex("https://example.com/page{#section}");
        assert!(re.is_match("https://example.com/page#intro"));
        assert!(re.is_match("https://example.com/page"));
        assert!(!re.is_match("https://example.com/pageintro"));
    }

    #[test]
    fn label_and_path_segments() {
        let re = regex("/foo/{bar}/baz{.ext}");
        assert!(re.is_match("/foo/x/baz.json"));
        assert!(re.is_match("/foo/x/baz.tar.gz"));
        assert!(re.is_match("/foo/x/baz"));
        assert!(!re.is_match("/foo/x/y/baz"));
        let re = regex("/files{/path}");
        assert!(re.is_match("/files/a"));
        assert!(re.is_match("/files"));
        assert!(!re.is_match("/files/a/b"));
        let re = regex("/files{/path*}");
        assert!(re.is_match("/files/a/b/c"));
        let re = regex("/files{/a,b}");
        assert!(re.is_match("/files/x/y"));
    }

    #[test]
    fn query_expansion() {
        let re = regex("https://example.com/users/foo/{?topic}");
        assert!(re.is_match(
            "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
        ));
        assert!(re.is_match("https://example.com/users/foo/"));
        assert!(re.is_match("https://example.com/users/foo/?topic="));
        assert!(!re.is_match("https://example.com/users/foo/?other=1"));
        assert!(!re.is_match("https://example.com/users/foo/?topic=a&x=b"));
        assert!(!re.is_match("https://example.com/users/foo/?topic=https://example.com"));
        let re = regex("/search{?q,lang}");
        assert!(re.is_match("/search?q=cat&lang=en"));
        assert!(re.is_match("/search?lang=en"));
        assert!(!re.is_match("/search?x=en"));
        let re = regex("/search{?q}{&lang}");
        assert!(re.is_match("/search?q=cat&lang=en"));
        let re = regex("/search{?params*}");
        assert!(re.is_match("/search?a=1&b=2"));
    }

    #[test]
    fn path_parameters() {
        let re = regex("/map{;x,y}");
        assert!(re.is_match("/map;x=1;y=2"));
        assert!(re.is_match("/map;x"));
        assert!(!re.is_match("/map;z=1"));
    }

    #[test]
    fn modifiers_tolerated() {
        let re = regex("https://example.com/dictionary/{term:1}/{term}");
        assert!(re.is_match("https://example.com/dictionary/c/cat"));
        let re = regex("{list*}");
        assert!(re.is_match("red,green,blue"));
        assert!(re.is_match("a=1,b=2"));
    }
}
