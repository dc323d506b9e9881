//! The head: how a node learns, without polling the log, that any node
//! appended, so its followers wake (the `watch` that
//! [`follow_log`](herald_store::follow::follow_log) sleeps on).
//!
//! After every append a node rings a doorbell: a core NATS message on
//! `<name>.head` carrying the new last sequence, sent once the append is
//! acknowledged (so the records are readable when it arrives). Every node
//! subscribes to it. A doorbell is not stored, so one can be lost (a node
//! that died between its acknowledgement and its doorbell, a reconnect):
//! a slow timer also reads the stream's last sequence, which bounds how
//! late a follower can be then, not how late it usually is.
//!
//! Rejected: one JetStream consumer per node as the doorbell (server-side
//! state that needs recreating after every NATS restart, for what a
//! subscription and a timer do); a subscription to the records' subjects
//! themselves (every frame would reach every node twice, and a message is
//! delivered to subscribers even when JetStream refused to store it).

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use herald_store::Cursor;
use tokio::sync::watch;

use crate::Shared;

/// How often the head is read from the stream, in case a doorbell was lost.
const REFRESH: Duration = Duration::from_secs(1);

impl Shared {
    /// Notes that the stream's last sequence is at least `seq`, waking
    /// followers if it moved.
    pub(crate) fn saw_head(&self, seq: u64) {
        if let Some(head) = &*self.head_lock() {
            head.send_if_modified(|head| {
                let moved = seq > head.get();
                if moved {
                    *head = Cursor::new(seq);
                }
                moved
            });
        }
    }

    /// A doorbell: wakes followers whatever it says (a forged sequence past
    /// the real head must not stop later doorbells from waking them), and
    /// raises the head they read up to.
    fn rung(&self, seq: u64) {
        if let Some(head) = &*self.head_lock() {
            head.send_modify(|head| *head = Cursor::new(seq.max(head.get())));
        }
    }

    /// The last sequence this node knows of.
    pub(crate) fn head_now(&self) -> u64 {
        self.head_lock()
            .as_ref()
            .map_or(0, |head| head.borrow().get())
    }

    /// After an append this node made: wakes its own followers, and rings
    /// the other nodes' doorbell.
    pub(crate) fn appended(&self, last: u64) {
        self.saw_head(last);
        let client = self.client.clone();
        let subject = self.names.head.clone();
        // Sent from a task: the publish only queues the message, but the
        // append's caller must not wait on a full client buffer for it.
        tokio::spawn(async move {
            let _ = client.publish(subject, last.to_string().into()).await;
        });
    }
}

/// Keeps `shared`'s head up to date until the store is dropped or closed.
pub(crate) async fn track(
    shared: Weak<Shared>,
    mut doorbell: async_nats::Subscriber,
    mut closed: watch::Receiver<bool>,
) {
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            rung = doorbell.next() => {
                let Some(message) = rung else { return };
                // Anyone may publish here: a payload that is not a
                // sequence is ignored, and a sequence past the real head
                // only bounds how far followers look (batches are judged
                // on the stream's own head).
                let seq = std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok());
                let Some(shared) = shared.upgrade() else { return };
                if let Some(seq) = seq {
                    shared.rung(seq);
                }
            }
            _ = refresh.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                match shared.state().await {
                    Ok(state) => shared.saw_head(state.last),
                    Err(error) => tracing::debug!(%error, "cannot read the stream's head"),
                }
            }
            changed = closed.changed() => {
                if changed.is_err() || *closed.borrow() {
                    return;
                }
            }
        }
    }
}
