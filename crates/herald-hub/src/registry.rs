//! Who is subscribed to what: the index the dispatcher fans out through.
//!
//! Exact matchers (the common case: one topic per resource) are indexed by
//! topic, so a record reaches its subscribers with one hash lookup per
//! topic however many subscribers the hub holds. Wildcards, URL patterns
//! and URI templates cannot be indexed that way; those subscribers are
//! checked one by one. Whether a subscriber found either way gets the
//! record is `delivery::receives`, the one delivery rule.
//!
//! Each topic's subscribers, like the scanned ones, are a map keyed by
//! subscriber id, so registering and unregistering cost the same however
//! many share the topic. A `Vec` scanned for the id on every insert (to
//! index a subscriber listing a topic twice only once) and every removal
//! made a reconnect storm on one popular topic quadratic. The map costs a
//! little more memory per topic and iterates a little slower than a `Vec`
//! on dispatch (hashbrown walks its control bytes, not a dense array),
//! which is the cheaper side to pay on.
//!
//! While the fan-out writes to one subscriber it asks the CPU to fetch the
//! next ones (their queue, their socket's state: `Subscriber::prefetch`),
//! which at thousands of subscribers are cache misses otherwise paid one
//! after the other, after each send.
//!
//! The registry also holds `dispatched`, the cursor of the last record fanned
//! out. Registering a subscriber and reading `dispatched` happen under the
//! same lock as a dispatch, which is what makes the history→live seam exact:
//! the new subscriber receives live every record after `dispatched`, and its
//! replay covers everything up to it.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use herald_store::{Cursor, Record};
use url::Url;

use crate::delivery::{self, Addressed, Selection};
use crate::direct::Framed;
use crate::stats::Counters;
use crate::subscriber::{CloseReason, Push, Subscriber};

/// Subscribers by id.
type Subscribers = HashMap<u64, Arc<Subscriber>>;

#[derive(Default)]
pub(crate) struct Registry {
    /// Subscribers reached through the exact-topic index.
    by_topic: HashMap<Box<str>, Subscribers>,
    /// Subscribers with at least one non-exact matcher.
    scanned: Subscribers,
    /// Every subscriber, for heartbeats and shutdown.
    all: Subscribers,
    pub dispatched: Cursor,
    pub closed: bool,
}

impl Registry {
    pub fn starting_at(dispatched: Cursor) -> Self {
        Registry {
            dispatched,
            ..Registry::default()
        }
    }

    pub fn insert(&mut self, subscriber: Arc<Subscriber>) {
        let mut scanned = false;
        for matcher in &subscriber.matchers {
            match matcher.exact_topic() {
                // A subscriber listing the same topic twice is indexed once.
                Some(topic) => {
                    self.by_topic
                        .entry(topic.into())
                        .or_default()
                        .insert(subscriber.id, Arc::clone(&subscriber));
                }
                None => scanned = true,
            }
        }
        if scanned {
            self.scanned.insert(subscriber.id, Arc::clone(&subscriber));
        }
        self.all.insert(subscriber.id, subscriber);
    }

    /// Removes a subscriber; false if it was not registered (any more).
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(subscriber) = self.all.remove(&id) else {
            return false;
        };
        for matcher in &subscriber.matchers {
            if let Some(topic) = matcher.exact_topic() {
                if let Some(subscribers) = self.by_topic.get_mut(topic) {
                    subscribers.remove(&id);
                    if subscribers.is_empty() {
                        self.by_topic.remove(topic);
                    }
                }
            }
        }
        self.scanned.remove(&id);
        true
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Fans one record out to every subscriber that gets it. With `held`,
    /// frames written directly are held instead, and the subscribers
    /// holding them are added to `held`, for the caller to
    /// [`release`](Subscriber::release) once its batch is dispatched.
    pub fn dispatch(
        &mut self,
        record: &Record,
        base: &Url,
        max_bytes: usize,
        counters: &Counters,
        mut held: Option<&mut Vec<Arc<Subscriber>>>,
    ) {
        let addressed = Addressed::new(record, base);
        let mut lagged = Vec::new();
        let hold = held.is_some();
        // Framed once for every subscriber it is written to directly.
        let mut framed = Framed::default();
        let mut deliver = |subscriber: &Arc<Subscriber>, selection: Selection<'_>| {
            if !delivery::receives(&addressed, selection, subscriber.grants.as_ref()) {
                return;
            }
            match subscriber.push(record.cursor, &record.frame, &mut framed, max_bytes, hold) {
                Push::Delivered => {
                    counters.delivered.fetch_add(1, Relaxed);
                }
                Push::Held => {
                    counters.delivered.fetch_add(1, Relaxed);
                    if let Some(held) = held.as_deref_mut() {
                        held.push(Arc::clone(subscriber));
                    }
                }
                Push::Lagged => {
                    counters.lagged.fetch_add(1, Relaxed);
                    lagged.push(subscriber.id);
                }
                Push::Skipped => {}
            }
        };
        for topic in record.topics.iter() {
            if let Some(subscribers) = self.by_topic.get(topic.as_str()) {
                // At thousands of subscribers each is a few cache misses
                // (its queue, its socket's state), paid one after the other
                // and after the kernel's send: ask for the next ones while
                // this one is written to.
                let mut one_ahead = subscribers.values().skip(1);
                let mut two_ahead = subscribers.values().skip(2);
                for subscriber in subscribers.values() {
                    if let Some(next) = two_ahead.next() {
                        next.prefetch();
                    }
                    if let Some(next) = one_ahead.next() {
                        next.prefetch_writer();
                    }
                    deliver(subscriber, Selection::Indexed);
                }
            }
        }
        for subscriber in self.scanned.values() {
            deliver(subscriber, Selection::Matchers(&subscriber.matchers));
        }
        // A lagging subscriber leaves the index at once: its connection may
        // take a while to notice (it is stalled), but the hub stops working
        // for it now.
        if !lagged.is_empty() {
            // One line per record, not per subscriber: a slow network can
            // cut many at once.
            tracing::info!(
                subscribers = lagged.len(),
                max_pending_bytes = max_bytes,
                "closed subscribers that fell too far behind (they resume from history)"
            );
        }
        for id in lagged {
            if self.remove(id) {
                counters.subscribers.fetch_sub(1, Relaxed);
            }
        }
        self.dispatched = record.cursor;
    }

    /// Queues a heartbeat for the subscribers of one slice: those whose
    /// id is `slice` modulo `slices`.
    pub fn heartbeat(&self, frame: &Bytes, slice: u64, slices: u64) {
        let mut framed = Framed::default();
        for subscriber in self.all.values() {
            if subscriber.id % slices == slice {
                subscriber.push_keepalive(frame, &mut framed);
            }
        }
    }

    pub fn close_all(&mut self, reason: CloseReason, last_words: Option<&Bytes>) {
        let mut framed = Framed::default();
        for subscriber in self.all.values() {
            subscriber.close(reason, last_words, &mut framed);
        }
    }
}
