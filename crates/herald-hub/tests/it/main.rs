//! Integration tests of the hub core, through its public API, on the
//! in-memory store.

mod delivery;
mod fanout;
mod faults;
mod ids;
mod presence;
mod publish_rules;
mod resume;
mod retention;
mod two_hubs;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_hub::matcher::{Matcher, MatcherKind};
use herald_hub::{Hub, HubConfig, PublishError, Published, SubscribeRequest, Subscription, Update};
use herald_proto::{Decoder, MessageEvent};
use herald_store::MemoryStore;

/// The hub URL of every test hub.
pub const URL: &str = "https://hub.example/.well-known/mercure";

/// A hub on a fresh memory store, without heartbeats.
pub async fn hub() -> Hub {
    hub_with(|_| {}).await
}

/// The test hubs' config: the defaults at [`URL`], without heartbeats.
pub fn config() -> HubConfig {
    let mut config = HubConfig::new(URL.parse().unwrap());
    config.heartbeat = None;
    config
}

/// A hub with a tweaked config.
pub async fn hub_with(configure: impl FnOnce(&mut HubConfig)) -> Hub {
    let mut config = config();
    configure(&mut config);
    Hub::start(Arc::new(MemoryStore::new()), config)
        .await
        .unwrap()
}

/// Validates and publishes an update, as a front end does.
pub async fn publish(hub: &Hub, update: Update) -> Result<Published, PublishError> {
    hub.publish(hub.validate(update)?).await
}

/// An exact matcher.
pub fn exact(hub: &Hub, topic: &str) -> Matcher {
    Matcher::new(MatcherKind::Exact, topic, hub.url()).unwrap()
}

/// Subscribes to one topic, optionally resuming.
pub async fn subscribe(hub: &Hub, topic: &str, last_event_id: Option<&str>) -> Subscription {
    let mut request = SubscribeRequest::new(vec![exact(hub, topic)]);
    request.last_event_id = last_event_id.map(str::to_owned);
    hub.subscribe(request).await.unwrap()
}

/// Reads frames until `n` events were decoded (or the stream ends).
pub async fn events(subscription: &mut Subscription, n: usize) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    while out.len() < n {
        let Some(frames): Option<Bytes> = subscription.next().await else {
            break;
        };
        decoder.feed(&frames).unwrap();
        out.extend(std::iter::from_fn(|| decoder.next_event()));
    }
    out
}
