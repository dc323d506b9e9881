//! The order of one connection's pipelined publishes.
//!
//! The lean path hands the publishes a client pipelined on one connection
//! to the router together ([`crate::lean::publish`]), so that the store can
//! commit them together; they must still be appended in the order the
//! client sent them. Each such request carries a [`Turn`] (a request
//! extension); the publish route waits for it just before it publishes,
//! and gives it up as soon as its append has its place in the log: after
//! the append's first poll when the store appends in poll order
//! ([`herald_store::Store::appends_in_poll_order`]), else once the append
//! is done. A request that ends before it publishes (refused, malformed)
//! gives its turn up as it is dropped.

use std::collections::BTreeSet;
use std::future::Future as _;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use herald_hub::{Hub, PublishError, Published, ValidUpdate};
use tokio::sync::watch;

/// Hands out the turns of one connection's requests, in order.
pub(crate) struct Sequence {
    line: Arc<watch::Sender<Line>>,
    issued: u64,
}

/// Where the line is: the turn that may go, and the later ones already
/// given up (out of order: a refusal ends before the publishes ahead of it).
#[derive(Default)]
struct Line {
    next: u64,
    given_up: BTreeSet<u64>,
}

impl Sequence {
    pub(crate) fn new() -> Self {
        Sequence {
            line: Arc::new(watch::Sender::new(Line::default())),
            issued: 0,
        }
    }

    /// The turn of the next request.
    pub(crate) fn next_turn(&mut self) -> Turn {
        let ticket = Ticket {
            number: self.issued,
            line: Arc::clone(&self.line),
        };
        self.issued += 1;
        Turn(Arc::new(Mutex::new(Some(ticket))))
    }
}

/// A request's place in its connection's line, as a request extension
/// (which must be `Clone`: the clones share one ticket, taken once).
#[derive(Clone)]
pub(crate) struct Turn(Arc<Mutex<Option<Ticket>>>);

impl Turn {
    /// The ticket, to the first who asks.
    pub(crate) fn take(&self) -> Option<Ticket> {
        self.0.lock().ok()?.take()
    }
}

/// A place in the line; given up when dropped.
pub(crate) struct Ticket {
    number: u64,
    line: Arc<watch::Sender<Line>>,
}

impl Ticket {
    /// Publishes once every earlier request of the connection has its
    /// place in the log, and lets the next one go as soon as this one has.
    pub(crate) async fn publish(
        self,
        hub: &Hub,
        update: ValidUpdate,
    ) -> Result<Published, PublishError> {
        let mut line = self.line.subscribe();
        // The sender lives in this ticket: the wait cannot fail.
        let _ = line.wait_for(|line| line.next == self.number).await;
        let mut publishing = std::pin::pin!(hub.publish(update));
        if !hub.publishes_in_poll_order() {
            let published = publishing.await;
            drop(self);
            return published;
        }
        let first = std::future::poll_fn(|cx| Poll::Ready(publishing.as_mut().poll(cx))).await;
        drop(self);
        match first {
            Poll::Ready(published) => published,
            Poll::Pending => publishing.await,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let number = self.number;
        self.line.send_modify(|line| {
            line.given_up.insert(number);
            while line.given_up.remove(&line.next) {
                line.next += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(sequence: &Sequence) -> u64 {
        sequence.line.borrow().next
    }

    #[test]
    fn the_line_moves_past_turns_given_up_in_any_order() {
        let mut sequence = Sequence::new();
        let turns: Vec<Turn> = (0..4).map(|_| sequence.next_turn()).collect();
        // A later request refused first: the line waits for the first.
        drop(turns[2].take());
        assert_eq!(next(&sequence), 0);
        drop(turns[0].take());
        assert_eq!(next(&sequence), 1);
        // Taken once, even through a clone of the extension.
        let clone = turns[1].clone();
        let ticket = clone.take().unwrap();
        assert!(turns[1].take().is_none());
        drop(ticket);
        assert_eq!(next(&sequence), 3);
        // Dropping the extension (the request) gives the turn up too.
        drop(turns);
        assert_eq!(next(&sequence), 4);
    }

    /// Started last first, the publishes still reach the log in the order
    /// of their turns.
    #[tokio::test]
    async fn publishes_are_appended_in_the_order_of_their_turns() {
        let url = url::Url::parse("https://hub.test/.well-known/mercure").unwrap();
        let store = Arc::new(herald_store::MemoryStore::new());
        let hub = Hub::start(store, herald_hub::HubConfig::new(url))
            .await
            .unwrap();
        let mut sequence = Sequence::new();
        let turns: Vec<Turn> = (0..3).map(|_| sequence.next_turn()).collect();
        let tasks: Vec<_> = (0..3)
            .rev()
            .map(|i| {
                let ticket = turns[i].take().unwrap();
                let hub = hub.clone();
                let update = herald_hub::Update::new("/t", i.to_string());
                let task = tokio::spawn(async move {
                    let update = hub.validate(update).unwrap();
                    ticket.publish(&hub, update).await.unwrap().cursor
                });
                (i, task)
            })
            .collect();
        let mut cursors = [None; 3];
        for (i, task) in tasks {
            cursors[i] = Some(task.await.unwrap());
        }
        assert!(
            cursors[0] < cursors[1] && cursors[1] < cursors[2],
            "{cursors:?}"
        );
    }
}
