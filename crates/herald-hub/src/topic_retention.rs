//! [`TopicRetention`]: per-topic retention rules (keep `chat/*` for an
//! hour), and the one function that turns them into an update's
//! [`keep_for`](herald_store::NewRecord::keep_for).
//!
//! The rules are the hub's, because matching topics is: the store only
//! sees each record's own deadline, indexes it at append, and removes the
//! record once it has run out ([`herald_store::Store::trim`]). So a rule
//! applies to the updates published while it is configured; changing the
//! rules does not touch what is already stored.
//!
//! An update with several topics is kept as long as its longest-lived
//! topic asks: each topic takes the first rule that matches it, the update
//! the longest of their durations, and a topic that no rule matches keeps
//! the update under the log-wide retention alone. A rule never removes an
//! update that another of its topics still wants.

use std::time::Duration;

use url::Url;

use crate::matcher::{Matcher, Topic};

/// Keep the updates on topics that `matcher` matches for `keep_for` after
/// their publication (or less, if the log-wide retention is stricter).
#[derive(Clone, Debug)]
pub struct TopicRetention {
    matcher: Matcher,
    keep_for: Duration,
}

impl TopicRetention {
    /// A rule: updates on topics `matcher` matches live `keep_for`.
    pub fn new(matcher: Matcher, keep_for: Duration) -> Self {
        TopicRetention { matcher, keep_for }
    }

    /// The topics this rule applies to.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// How long the updates it applies to are kept.
    pub fn keep_for(&self) -> Duration {
        self.keep_for
    }
}

/// The [`keep_for`](herald_store::NewRecord::keep_for) of an update on
/// `topics` under `rules` (see the module docs): `None` when no rule is
/// configured or some topic matches none.
pub(crate) fn keep_for(rules: &[TopicRetention], topics: &[String], hub: &Url) -> Option<Duration> {
    if rules.is_empty() {
        return None;
    }
    let mut longest: Option<Duration> = None;
    for raw in topics {
        let topic = Topic::new(raw, hub);
        let rule = rules.iter().find(|rule| rule.matcher.matches(&topic))?;
        longest = longest.max(Some(rule.keep_for));
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatcherKind;

    fn hub() -> Url {
        Url::parse("https://hub.example/.well-known/mercure").unwrap()
    }

    fn rule(pattern: &str, secs: u64) -> TopicRetention {
        let matcher = Matcher::new(MatcherKind::UrlPattern, pattern, &hub()).unwrap();
        TopicRetention::new(matcher, Duration::from_secs(secs))
    }

    fn topics(list: &[&str]) -> Vec<String> {
        list.iter().map(|topic| (*topic).to_owned()).collect()
    }

    #[test]
    fn no_rules_keep_nothing_apart() {
        assert_eq!(
            keep_for(&[], &topics(&["https://a.example/chat/1"]), &hub()),
            None
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = [
            rule("https://a.example/chat/vip-*", 86_400),
            rule("https://a.example/chat/*", 3_600),
        ];
        let of = |topic: &str| keep_for(&rules, &topics(&[topic]), &hub());
        assert_eq!(
            of("https://a.example/chat/1"),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(
            of("https://a.example/chat/vip-7"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(of("https://a.example/books/1"), None, "no rule matches");
    }

    #[test]
    fn relative_patterns_and_topics_resolve_against_the_hub() {
        let rules = [rule("/chat/*", 60)];
        let of = |topic: &str| keep_for(&rules, &topics(&[topic]), &hub());
        assert_eq!(
            of("https://hub.example/chat/1"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(of("/chat/2"), Some(Duration::from_secs(60)));
        assert_eq!(of("https://other.example/chat/1"), None);
    }

    #[test]
    fn the_longest_lived_topic_decides() {
        let rules = [
            rule("https://a.example/chat/*", 60),
            rule("https://a.example/log/*", 600),
        ];
        let both = topics(&["https://a.example/chat/1", "https://a.example/log/1"]);
        assert_eq!(
            keep_for(&rules, &both, &hub()),
            Some(Duration::from_secs(600))
        );
        let one_unruled = topics(&["https://a.example/chat/1", "https://a.example/books/1"]);
        assert_eq!(
            keep_for(&rules, &one_unruled, &hub()),
            None,
            "a topic under the log-wide retention alone keeps the update"
        );
    }
}
