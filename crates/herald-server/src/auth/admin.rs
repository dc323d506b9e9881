//! The admin grant: who may read the hub's own statistics (`GET
//! /ui/stats`, the stream behind `/ui/dashboard`).
//!
//! It is an ordinary draft-08 grant, `subscribe` on a topic in the hub's
//! reserved namespace, [`ADMIN_TOPIC`] below the hub's URL
//! (`https://hub.example.com/.well-known/mercure/admin`, or the same as an
//! absolute path, `/.well-known/mercure/admin`):
//!
//! ```json
//! {"type": "https://mercure.rocks/authorization-detail",
//!  "actions": ["subscribe"],
//!  "topics": [{"match": "/.well-known/mercure/admin"}]}
//! ```
//!
//! Why a topic and not a new claim or action: every issuer that mints
//! Mercure tokens can already express it, `herald token --admin` is
//! `--subscribe` on that topic, legacy tokens (`mercure.subscribe`) work
//! the same way, and no publisher can publish to it (the reserved
//! namespace is refused at publish), so the stats stream cannot be fed
//! forged updates. Rejected: an `admin` action in the Mercure detail (a
//! word the draft does not define, which other hubs would ignore
//! silently), and a Herald-specific detail type (a second parser, and
//! issuers would need to learn it).
//!
//! Any matcher covering the topic grants it, as for any private update:
//! so a token that may `subscribe` to `*` (every private update of the
//! hub, such as the publisher token `herald serve` prints) is an admin
//! too. That reads nothing it could not already read worse.

use herald_hub::grant::Grants;
use herald_hub::matcher::Topic;
use url::Url;

/// The last segment of the admin topic, below the hub's URL.
pub const ADMIN_TOPIC: &str = "admin";

/// The admin topic of the hub at `hub_url`, absolute:
/// `<hub URL>/admin` (the hub URL's query and fragment dropped).
pub fn admin_topic(hub_url: &Url) -> String {
    let mut url = hub_url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let base = url.as_str().trim_end_matches('/');
    format!("{base}/{ADMIN_TOPIC}")
}

/// The admin topic of the hub at `hub_url` as an absolute path
/// (`/.well-known/mercure/admin`): what `herald token --admin` grants, the
/// same on any host and port.
pub fn admin_path(hub_url: &Url) -> String {
    format!("{}/{ADMIN_TOPIC}", hub_url.path().trim_end_matches('/'))
}

/// Whether `grants` hold the admin grant on the hub at `hub_url`: a
/// `subscribe` matcher covering the admin topic, written as an absolute
/// URL or as an absolute path.
pub fn is_admin(grants: &Grants, hub_url: &Url) -> bool {
    let absolute = admin_topic(hub_url);
    let path = admin_path(hub_url);
    grants.may_read(&[Topic::new(&absolute, hub_url), Topic::new(&path, hub_url)])
}

#[cfg(test)]
mod tests {
    use herald_hub::matcher::{Matcher, MatcherKind};

    use super::*;

    fn grants(kind: MatcherKind, value: &str, hub: &Url) -> Grants {
        Grants::new(Vec::new(), vec![Matcher::new(kind, value, hub).unwrap()])
    }

    #[test]
    fn the_admin_topic_in_either_spelling_or_a_covering_matcher() {
        let hub = Url::parse("http://127.0.0.1:8080/.well-known/mercure").unwrap();
        assert_eq!(
            admin_topic(&hub),
            "http://127.0.0.1:8080/.well-known/mercure/admin"
        );
        assert_eq!(admin_path(&hub), "/.well-known/mercure/admin");
        let yes = [
            (
                MatcherKind::Exact,
                "http://127.0.0.1:8080/.well-known/mercure/admin",
            ),
            (MatcherKind::Exact, "/.well-known/mercure/admin"),
            (MatcherKind::Exact, "*"),
            (MatcherKind::UrlPattern, "/.well-known/mercure/:name"),
        ];
        for (kind, value) in yes {
            assert!(is_admin(&grants(kind, value, &hub), &hub), "{value}");
        }
        let no = [
            (MatcherKind::Exact, "admin"),
            (
                MatcherKind::Exact,
                "http://other.example/.well-known/mercure/admin",
            ),
            (MatcherKind::Exact, "/.well-known/mercure"),
            (MatcherKind::UrlPattern, "/books/:id"),
        ];
        for (kind, value) in no {
            assert!(!is_admin(&grants(kind, value, &hub), &hub), "{value}");
        }
        // Publishing to it grants nothing.
        let publisher = Grants::new(
            vec![Matcher::new(MatcherKind::Exact, "*", &hub).unwrap()],
            Vec::new(),
        );
        assert!(!is_admin(&publisher, &hub));
        assert!(!is_admin(&Grants::none(), &hub));
    }

    #[test]
    fn a_hub_below_a_path_has_its_topic_below_it() {
        let hub = Url::parse("https://example.com/hub/.well-known/mercure?x=1").unwrap();
        assert_eq!(
            admin_topic(&hub),
            "https://example.com/hub/.well-known/mercure/admin"
        );
        assert!(is_admin(
            &grants(MatcherKind::Exact, "/hub/.well-known/mercure/admin", &hub),
            &hub
        ));
        assert!(herald_hub::field_rules::addresses_reserved_namespace(
            &admin_topic(&hub),
            &hub
        ));
    }
}
