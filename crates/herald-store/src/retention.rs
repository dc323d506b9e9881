//! [`Retention`]: how much history the log keeps.

use std::time::Duration;

/// Retention policy. Both limits are optional (`None` = unlimited); when both
/// are set a record is kept only while it satisfies both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many of the newest records.
    pub max_events: Option<u64>,
    /// Drop records whose age (now minus
    /// [`Record::published_at`](crate::Record::published_at)) exceeds this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Whether this policy never removes anything.
    pub fn is_unlimited(&self) -> bool {
        self.max_events.is_none() && self.max_age.is_none()
    }
}
