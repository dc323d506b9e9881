//! The words the protocol keeps for the hub itself, each defined once: the
//! publish rules refuse them (`topic`), the hub writes them (`subscription`,
//! `hub`), and front ends compare against them.

/// The SSE event type of the hub's own events: the gap report and the
/// subscription events. Publishers cannot use it (a publish with
/// `type=mercure` is refused), so such an event cannot be forged.
///
/// The gap report is sent before the replay when a subscriber resumes from
/// an id the hub no longer has (unknown, or trimmed by retention), or from
/// the id of a private update it may not read. Its data is JSON:
/// `{"type": "gap", "last_event_id": "<the id asked for>", "resumed_from":
/// "earliest"}`: the replay then starts from the earliest event retained,
/// so nothing still retained is skipped.
///
/// Subscription events (with [`HubConfig::subscriptions`](crate::HubConfig::subscriptions))
/// carry a subscription's document ([`SubscriptionDoc`](crate::SubscriptionDoc)).
pub const HUB_EVENT_TYPE: &str = "mercure";

/// The segment under the hub's path where nodes renew their active
/// subscriptions leases (`<hub path>/nodes/<node>`): the hub's own
/// bookkeeping, delivered to no subscriber (see `delivery`).
pub(crate) const NODES_SEGMENT: &str = "nodes";

/// Whether `topic` is a lease record's: `<hub path>/nodes/…`, where only
/// the hub writes (the reserved namespace refuses publishers there).
pub(crate) fn is_lease_topic(topic: &str, hub: &url::Url) -> bool {
    topic
        .strip_prefix(hub.path().trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(NODES_SEGMENT))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The cursor that asks for every retained event (`Last-Event-ID:
/// earliest`), and what `Mercure-Last-Event-ID` answers when the replay
/// starts there. Publishers cannot use it as an id.
pub const EARLIEST: &str = "earliest";
