//! Legacy selectors as RFC 6570 URI templates, matched against topics by
//! a small automaton of our own, whose cost is bounded by construction.
//!
//! The legacy protocol says a topic matches a selector when it is one of
//! the strings the template can expand to. A template is parsed once into
//! [`Part`]s (literals and `{…}` expressions); matching walks the topic
//! once per part, carrying the set of positions the template so far can
//! end at (a Thompson-style simulation: no backtracking, each position
//! visited a bounded number of times per part).
//!
//! An earlier version compiled templates to the `regex` crate. Matching was
//! linear too, but each compiled regex carried its own engines and lazy-DFA
//! caches: an anonymous subscribe of a few hundred `{?a*}` expressions cost
//! ~30 MiB and half a second of CPU, and every matched update more (issue
//! 9). Here a template holds its parts and nothing else, compiling is one
//! pass over the text, and matching allocates two small bitsets.
//!
//! # Limits
//!
//! At most [`MAX_EXPRESSIONS`] expressions per template: matching a topic
//! of `n` bytes costs O(`n` × expressions), and real selectors have one or
//! two (`https://example.com/books/{id}`, `/users/{user}{?topic}`).
//!
//! # What matches
//!
//! The Go hub used `yosida95/uritemplate`; we accept the same templates
//! (levels 1–4: operators none, `+`, `#`, `.`, `/`, `;`, `?`, `&`; `:N`
//! prefix and `*` explode modifiers) and are stricter in one place: for `;`,
//! `?` and `&` the variable's *name* must appear, so `{?topic}` matches
//! `?topic=…` but not `?other=…`.
//!
//! Deliberate simplifications (each only makes a template match a little
//! more than its strict expansion set, never less):
//! * every variable may be undefined, so an expression may expand to nothing
//!   (`/books/{id}` matches `/books/`), which is RFC 6570's own rule;
//! * a value may be a list (`a,b`), since lists expand that way;
//! * prefix modifiers (`{var:3}`) do not bound the length;
//! * an expression of several variables, or with an exploded one, accepts
//!   its items in any order and number;
//! * values may contain non-ASCII characters, because topics are IRIs
//!   (any byte of a multi-byte character is accepted where a value is; a
//!   topic is valid UTF-8, so literals still align with characters).

/// The most `{…}` expressions one template may have.
pub const MAX_EXPRESSIONS: usize = 16;

/// A parsed URI template.
#[derive(Debug)]
pub(super) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Literal(Box<[u8]>),
    Expression(Expression),
}

/// One `{…}` expression: `(first item (sep item)*)?`, or `(first item)?`
/// when it cannot repeat.
#[derive(Debug)]
struct Expression {
    first: Option<u8>,
    sep: u8,
    repeats: bool,
    items: Items,
}

#[derive(Debug)]
enum Items {
    /// Unnamed operators: a run of value characters.
    Value(Class),
    /// `;`, `?`, `&`: one of the variables as `name=value` (or a bare
    /// `name` where the operator allows it).
    Named {
        names: Vec<Name>,
        empty_is_bare: bool,
    },
}

#[derive(Debug)]
enum Name {
    Literal(Box<[u8]>),
    /// An exploded variable: an associative array's keys replace its name.
    Key,
}

/// Which characters a value may hold, beside `%XX` and non-ASCII bytes.
#[derive(Copy, Clone, Debug)]
enum Class {
    /// Unreserved, plus `,` (the list separator).
    Unreserved,
    /// The same plus `=`, for exploded associative values (`k=v,k2=v2`).
    UnreservedEq,
    /// Unreserved and reserved (`+` and `#`).
    Reserved,
    /// A key of an exploded associative value: unreserved, no `,`.
    Key,
}

impl Class {
    fn allows(self, b: u8) -> bool {
        let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        match self {
            Class::Key => unreserved,
            Class::Unreserved => unreserved || b == b',',
            Class::UnreservedEq => unreserved || b == b',' || b == b'=',
            Class::Reserved => unreserved || b":/?#[]@!$&'()*+,;=".contains(&b),
        }
    }

    /// The length of the value character at `at`, if there is one.
    fn step(self, topic: &[u8], at: usize) -> Option<usize> {
        let b = *topic.get(at)?;
        if b >= 0x80 || self.allows(b) {
            return Some(1);
        }
        let hex = |i: usize| topic.get(at + i).is_some_and(u8::is_ascii_hexdigit);
        (b == b'%' && hex(1) && hex(2)).then_some(3)
    }
}

/// Why a string that looks like a template is refused.
#[derive(Debug)]
pub(super) enum TemplateError {
    TooManyExpressions(usize),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::TooManyExpressions(n) => write!(
                f,
                "{n} expressions, more than the limit of {MAX_EXPRESSIONS}"
            ),
        }
    }
}

/// Parses `template`: `None` when it is not a URI template with at least
/// one expression (then it is an exact string), `Some(Err)` when it is one
/// but exceeds the limits.
pub(super) fn compile(template: &str) -> Option<Result<Template, TemplateError>> {
    let mut parts = Vec::new();
    let mut expressions = 0;
    let mut rest = template;
    while !rest.is_empty() {
        // `{` and `}` are ASCII, so every split below is at a character
        // boundary.
        let Some((literal, after)) = rest.split_once(['{', '}']) else {
            parts.push(Part::Literal(rest.as_bytes().into()));
            break;
        };
        if rest.as_bytes().get(literal.len()) == Some(&b'}') {
            return None; // a `}` outside an expression: not a template
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.as_bytes().into()));
        }
        let (body, rest_after) = after.split_once(['{', '}'])?;
        if after.as_bytes().get(body.len()) == Some(&b'{') {
            return None; // nested or unclosed
        }
        parts.push(Part::Expression(expression(body)?));
        expressions += 1;
        rest = rest_after;
    }
    if expressions == 0 {
        return None;
    }
    if expressions > MAX_EXPRESSIONS {
        return Some(Err(TemplateError::TooManyExpressions(expressions)));
    }
    Some(Ok(Template { parts }))
}

/// How an operator expands (RFC 6570 appendix A's table).
struct Operator {
    first: Option<u8>,
    sep: u8,
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
        '+' => op(None, b',', false, false, true),
        '#' => op(Some(b'#'), b',', false, false, true),
        '.' => op(Some(b'.'), b'.', false, false, false),
        '/' => op(Some(b'/'), b'/', false, false, false),
        ';' => op(Some(b';'), b';', true, true, false),
        '?' => op(Some(b'?'), b'&', true, false, false),
        '&' => op(Some(b'&'), b'&', true, false, false),
        _ => return None,
    })
}

struct VarSpec<'a> {
    name: &'a str,
    explode: bool,
}

/// Parses one expression (the text between braces), or `None` if it is
/// not a valid expression.
fn expression(body: &str) -> Option<Expression> {
    let mut chars = body.chars();
    let first = chars.next()?;
    let (op, list) = match operator(first) {
        Some(op) => (op, chars.as_str()),
        // Reserved for future extensions by RFC 6570 §2.2: not a template.
        None if "=,!@|".contains(first) => return None,
        None => (
            Operator {
                first: None,
                sep: b',',
                named: false,
                empty_is_bare: false,
                reserved: false,
            },
            body,
        ),
    };
    let vars = list.split(',').map(varspec).collect::<Option<Vec<_>>>()?;
    let any_explode = vars.iter().any(|v| v.explode);
    let items = if op.named {
        Items::Named {
            names: vars
                .iter()
                .map(|v| match v.explode {
                    true => Name::Key,
                    false => Name::Literal(v.name.as_bytes().into()),
                })
                .collect(),
            empty_is_bare: op.empty_is_bare,
        }
    } else if op.reserved {
        Items::Value(Class::Reserved)
    } else if any_explode {
        Items::Value(Class::UnreservedEq)
    } else {
        Items::Value(Class::Unreserved)
    };
    Some(Expression {
        first: op.first,
        sep: op.sep,
        repeats: vars.len() > 1 || any_explode,
        items,
    })
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

/// A set of positions in the topic, `0..=len`.
#[derive(Clone)]
struct Positions {
    words: Vec<u64>,
}

impl Positions {
    fn new(len: usize) -> Self {
        Positions {
            words: vec![0; len / 64 + 1],
        }
    }

    fn insert(&mut self, at: usize) -> bool {
        let (word, bit) = (at / 64, 1u64 << (at % 64));
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    fn contains(&self, at: usize) -> bool {
        self.words[at / 64] & (1u64 << (at % 64)) != 0
    }

    fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    fn union(&mut self, other: &Positions) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    i * 64 + bit
                })
            })
        })
    }
}

impl Template {
    /// How many `{…}` expressions it has: what one match costs per byte of
    /// topic.
    pub(super) fn expressions(&self) -> usize {
        self.parts
            .iter()
            .filter(|part| matches!(part, Part::Expression(_)))
            .count()
    }

    /// Whether `topic` is one of the template's expansions.
    ///
    /// Costs O(`topic.len()` × parts): each part maps the set of positions
    /// the template can have reached to the next such set.
    pub(super) fn is_match(&self, topic: &str) -> bool {
        let topic = topic.as_bytes();
        let mut at = Positions::new(topic.len());
        at.insert(0);
        for part in &self.parts {
            at = match part {
                Part::Literal(literal) => {
                    let mut next = Positions::new(topic.len());
                    for p in at.iter() {
                        if topic.get(p..).is_some_and(|rest| rest.starts_with(literal)) {
                            next.insert(p + literal.len());
                        }
                    }
                    next
                }
                Part::Expression(expression) => expression.advance(topic, &at),
            };
            if at.is_empty() {
                return false;
            }
        }
        at.contains(topic.len())
    }
}

impl Expression {
    /// Where the expression can end, starting from any of `starts`.
    ///
    /// Each position is walked at most once per kind of run (values, keys)
    /// across all repetitions, so this is O(topic length) plus the literal
    /// names' comparisons.
    fn advance(&self, topic: &[u8], starts: &Positions) -> Positions {
        // The expression may expand to nothing.
        let mut ends = starts.clone();
        let mut from: Vec<usize> = starts
            .iter()
            .filter_map(|p| match self.first {
                None => Some(p),
                Some(first) => (topic.get(p) == Some(&first)).then_some(p + 1),
            })
            .collect();
        let mut walked = Walked {
            values: Positions::new(topic.len()),
            keys: Positions::new(topic.len()),
        };
        let mut reached = Positions::new(topic.len());
        let mut item_ends = Vec::new();
        while !from.is_empty() {
            item_ends.clear();
            self.items.ends(topic, &from, &mut walked, &mut item_ends);
            from.clear();
            for &q in &item_ends {
                if reached.insert(q) && self.repeats && topic.get(q) == Some(&self.sep) {
                    from.push(q + 1);
                }
            }
        }
        ends.union(&reached);
        ends
    }
}

/// Positions already walked by a run, for one expression's evaluation.
struct Walked {
    values: Positions,
    keys: Positions,
}

impl Items {
    /// Pushes where one item can end, starting from any of `starts`
    /// (positions already walked in an earlier round are not repeated).
    fn ends(&self, topic: &[u8], starts: &[usize], walked: &mut Walked, out: &mut Vec<usize>) {
        match self {
            Items::Value(class) => {
                for &p in starts {
                    run(*class, topic, p, &mut walked.values, out);
                }
            }
            Items::Named {
                names,
                empty_is_bare,
            } => {
                // Where each name ends; then `=value` (or nothing, if bare).
                let mut named = Vec::new();
                for &p in starts {
                    for name in names {
                        match name {
                            Name::Literal(name) => {
                                if topic.get(p..).is_some_and(|rest| rest.starts_with(name)) {
                                    named.push(p + name.len());
                                }
                            }
                            Name::Key => {
                                if let Some(step) = Class::Key.step(topic, p) {
                                    run(Class::Key, topic, p + step, &mut walked.keys, &mut named);
                                }
                            }
                        }
                    }
                }
                for &q in &named {
                    if topic.get(q) == Some(&b'=') {
                        run(Class::Unreserved, topic, q + 1, &mut walked.values, out);
                    }
                }
                if *empty_is_bare {
                    out.extend_from_slice(&named);
                }
            }
        }
    }
}

/// Pushes every position a run of `class` characters (possibly empty) from
/// `p` ends at, stopping where an earlier run passed: a run is
/// deterministic, so what follows was pushed then.
fn run(class: Class, topic: &[u8], mut p: usize, walked: &mut Positions, out: &mut Vec<usize>) {
    while walked.insert(p) {
        out.push(p);
        match class.step(topic, p) {
            Some(step) => p += step,
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(t: &str) -> Template {
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
