//! The hub's settings, with their defaults in one place.

use std::time::Duration;

use herald_store::Retention;
use url::Url;

use crate::TopicRetention;

/// How a [`Hub`](crate::Hub) behaves.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The hub's own URL (`…/.well-known/mercure`): the base against which
    /// relative topics and URL patterns resolve, and the reserved namespace.
    pub url: Url,
    /// Unsent bytes a subscriber may have queued behind the frame it writes
    /// next before it is closed as lagging. The frame at the head of the
    /// queue never counts, so any accepted update, however large its
    /// encoding, reaches an idle subscriber. Default: 1 MiB.
    pub max_pending_bytes: usize,
    /// A comment frame is queued to every subscriber this often, so that
    /// proxies keep idle streams open. `None` disables it. Default: 15 s.
    pub heartbeat: Option<Duration>,
    /// Size limits on published updates.
    pub publish_limits: PublishLimits,
    /// How the hub generates ids for updates published without one.
    pub ids: IdKind,
    /// How much history the store keeps. [`Hub::start`](crate::Hub::start)
    /// runs the one task that applies it
    /// ([`herald_store::spawn_retention`]), which ends with the hub; the
    /// statistics read it from here. Default: unlimited (the store keeps
    /// everything).
    pub retention: Retention,
    /// How often retention runs: between runs the log may exceed
    /// `retention` by what was appended in one interval. Zero is taken as
    /// the default. Default: 1 s.
    pub retention_interval: Duration,
    /// Per-topic retention: updates on the topics these rules match are
    /// removed once their rule's time has run out, wherever they are in
    /// the log (see [`TopicRetention`] for how rules combine). Applied by
    /// the same task as `retention`. Default: none.
    pub topic_retention: Vec<TopicRetention>,
    /// Active subscriptions (draft-08): publish a subscription event when a
    /// subscription starts and ends, and keep the table the subscriptions
    /// API answers from ([`Hub::active_subscriptions`](crate::Hub::active_subscriptions)).
    /// Costs one store append per subscribe and per unsubscribe. Default:
    /// off.
    pub subscriptions: bool,
    /// With `subscriptions`: how long a hub node counts as alive after it
    /// last renewed its lease (it renews every third of this). The
    /// subscriptions of a node that died are ended this long, and at most
    /// a third more, after its last renewal. Default: 30 s.
    pub subscription_lease: Duration,
}

/// The ids the hub generates (`urn:uuid:…`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum IdKind {
    /// UUIDv7: ordered by time, so a durable store's id index stays compact
    /// and fast (measured 2–3× more durable publishes per second than
    /// random ids on the disk store). An id reveals when it was published.
    #[default]
    TimeOrdered,
    /// UUIDv4: opaque, as draft-08 recommends to operators whose private
    /// updates are sensitive: a `Mercure-Last-Event-ID` cursor then
    /// discloses nothing about the update it names.
    Random,
}

impl HubConfig {
    /// The defaults, for a hub at `url`.
    pub fn new(url: Url) -> Self {
        HubConfig {
            url,
            max_pending_bytes: 1 << 20,
            heartbeat: Some(Duration::from_secs(15)),
            publish_limits: PublishLimits::default(),
            ids: IdKind::default(),
            retention: Retention::default(),
            retention_interval: RETENTION_INTERVAL,
            topic_retention: Vec::new(),
            subscriptions: false,
            subscription_lease: Duration::from_secs(30),
        }
    }
}

/// The default [`HubConfig::retention_interval`].
const RETENTION_INTERVAL: Duration = Duration::from_secs(1);

impl HubConfig {
    /// [`retention_interval`](HubConfig::retention_interval), with zero
    /// taken as the default (a zero interval would trim in a busy loop).
    pub(crate) fn effective_retention_interval(&self) -> Duration {
        if self.retention_interval.is_zero() {
            RETENTION_INTERVAL
        } else {
            self.retention_interval
        }
    }
}

/// Limits on one published update; exceeding one is a
/// [`PublishError::TooLarge`](crate::PublishError::TooLarge) (HTTP 413).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishLimits {
    /// Topics per update (canonical and alternates). Default: 64.
    pub max_topics: usize,
    /// Bytes per topic. Default: 2,048.
    pub max_topic_len: usize,
    /// Bytes of data. Default: 1 MiB.
    pub max_data_len: usize,
    /// Bytes of a custom id or event type. Default: 1,024.
    pub max_field_len: usize,
}

impl Default for PublishLimits {
    fn default() -> Self {
        PublishLimits {
            max_topics: 64,
            max_topic_len: 2048,
            max_data_len: 1 << 20,
            max_field_len: 1024,
        }
    }
}
