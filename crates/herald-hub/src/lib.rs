//! The Herald hub core: topics, matchers, grants, and the fan-out of
//! published updates to subscribers. No HTTP: `herald-server` puts the
//! Mercure routes in front of it, and any other front end can too.
//!
//! A [`Hub`] owns a [`Store`](herald_store::Store), the one ordered log of
//! updates. [`Hub::validate`] checks an [`Update`] against the publish
//! rules, once; [`Hub::publish`] takes the [`ValidUpdate`], encodes it once
//! and appends it; a single dispatcher task follows the log and hands each
//! record's shared bytes to every matching [`Subscription`]. A subscription that resumes from a
//! `Last-Event-ID` first replays the log after that id, then continues live,
//! with no gap and no duplicate at the seam.
//!
//! ```
//! use std::sync::Arc;
//! use futures_util::StreamExt;
//! use herald_hub::{Hub, HubConfig, SubscribeRequest, Update};
//! use herald_hub::matcher::{Matcher, MatcherKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = HubConfig::new("http://localhost:8080/.well-known/mercure".parse()?);
//! let hub = Hub::start(Arc::new(herald_store::MemoryStore::new()), config).await?;
//!
//! let topic = "https://example.com/books/1";
//! let matcher = Matcher::new(MatcherKind::Exact, topic, hub.url())?;
//! let mut subscription = hub.subscribe(SubscribeRequest::new(vec![matcher])).await?;
//!
//! let update = hub.validate(Update::new(topic, "hello"))?;
//! let published = hub.publish(update).await?;
//! let frame = subscription.next().await.expect("one frame");
//! let expected = format!("id: {}\ndata: hello\n\n", published.id);
//! assert_eq!(&frame[..], expected.as_bytes());
//! # Ok(())
//! # }
//! ```
//!
//! # Memory
//!
//! Every update is encoded once; subscribers share its bytes. An idle
//! subscriber holds a small queue head and its matchers. A subscriber with
//! more than [`HubConfig::max_pending_bytes`] of unsent frames queued behind
//! the one it writes next is closed with [`CloseReason::Lagged`] (it can
//! resume from history): a slow reader never grows the hub without bound and
//! never slows the others, while one large update, alone in an idle
//! subscriber's queue, is always delivered.

mod config;
mod delivery;
mod direct;
mod dispatcher;
mod error;
mod health;
mod hub;
mod presence;
mod registry;
mod reserved;
mod state;
mod stats;
mod subscriber;
mod subscription;
mod topic_retention;
mod update;

pub mod field_rules;
pub mod grant;
pub mod matcher;

pub use config::{HubConfig, IdKind, PublishLimits};
pub use direct::DirectWriter;
pub use error::{InvalidUpdate, PublishError, SizeLimit, SubscribeError, UpdateTooLarge};
pub use health::Unhealthy;
pub use hub::{Hub, SubscriptionsScope};
pub use presence::{match_type, Snapshot, SubscriptionDoc, LEGACY_MATCH_TYPE};
pub use reserved::{EARLIEST, HUB_EVENT_TYPE};
pub use stats::{Disconnects, HubStats};
pub use subscriber::CloseReason;
pub use subscription::{ResumePoint, SubscribeRequest, Subscription};
pub use topic_retention::TopicRetention;
pub use update::{Published, Update, ValidUpdate};
