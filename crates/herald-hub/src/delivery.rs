//! The delivery rule, in one place: does this subscriber get this record?
//!
//! A subscriber gets a record when one of its matchers selects one of the
//! record's topics (canonical or alternate) and, if the record is private,
//! its grants allow `subscribe` on at least one of those topics. Matchers
//! never widen what the grants allow, and grants never select anything.
//!
//! Three paths ask, and each goes through [`receives`]:
//!
//! - live fan-out (`registry`): a subscriber found through the exact-topic
//!   index is already selected ([`Selection::Indexed`]); one with a pattern
//!   is checked matcher by matcher;
//! - replay (`subscription`), matcher by matcher;
//! - the resume check (`Hub::subscribe`): the record a `Last-Event-ID`
//!   names need only be visible ([`Selection::AnyTopic`]), since a cursor
//!   is a position in the log, whatever its topic; a private one the
//!   subscriber may not read is answered like an unknown id.
//!
//! Records of the hub's own bookkeeping (the active subscriptions leases,
//! `<hub path>/nodes/…`) reach no subscriber, whatever its grants: they
//! are folded by the hub, not news for anyone.
//!
//! Before this rule had one home it was spread over a subscriber method,
//! the registry's fan-out closure and the hub's resume check, and each path
//! could drift from the others.

use herald_store::Record;
use url::Url;

use crate::grant::Grants;
use crate::matcher::{Matcher, Topic};
use crate::reserved::is_lease_topic;

/// A record as the rule sees it: its topics prepared for matching (resolved
/// against the hub's URL only if a pattern needs it), and its privacy.
/// Built once per record, then asked about any number of subscribers.
pub(crate) struct Addressed<'r> {
    topics: Vec<Topic<'r>>,
    private: bool,
    /// The hub's own bookkeeping: delivered to nobody.
    internal: bool,
}

impl<'r> Addressed<'r> {
    pub fn new(record: &'r Record, base: &'r Url) -> Self {
        Addressed {
            topics: record.topics.iter().map(|t| Topic::new(t, base)).collect(),
            private: record.private,
            internal: record
                .topics
                .first()
                .is_some_and(|topic| is_lease_topic(topic, base)),
        }
    }
}

/// How the subscriber's matchers select the record.
#[derive(Copy, Clone)]
pub(crate) enum Selection<'m> {
    /// The exact-topic index found the subscriber under one of the record's
    /// topics: selected, no matcher needs evaluating.
    Indexed,
    /// Selected if one of these matchers selects one of the record's topics.
    Matchers(&'m [Matcher]),
    /// Whatever the topic: only visibility counts (a resume cursor).
    AnyTopic,
}

/// Whether a subscriber selecting by `selection`, with `grants` (`None`:
/// anonymous), gets `record`.
pub(crate) fn receives(
    record: &Addressed<'_>,
    selection: Selection<'_>,
    grants: Option<&Grants>,
) -> bool {
    let selected = match selection {
        Selection::Indexed | Selection::AnyTopic => true,
        Selection::Matchers(matchers) => matchers
            .iter()
            .any(|matcher| record.topics.iter().any(|topic| matcher.matches(topic))),
    };
    selected
        && !record.internal
        && (!record.private || grants.is_some_and(|grants| grants.may_read(&record.topics)))
}
