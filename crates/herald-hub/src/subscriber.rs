//! One subscriber's side of the fan-out: its matchers, its grants, and a
//! bounded queue of shared frames waiting to be written.
//!
//! The dispatcher pushes into the queue under a short `std::sync::Mutex`
//! (never held across an await; a tokio mutex would only add cost here), and
//! wakes the subscription's task. Frames are `Bytes` clones of the one
//! encoded frame: queuing copies no event data.
//!
//! # What counts as lag
//!
//! The bound (`max_pending_bytes`) measures how far behind a subscriber is:
//! the bytes waiting *behind* the frame at the head of its queue, which is
//! the one its connection writes next. The head frame itself never counts,
//! whatever its size, so every update the publish limits accept reaches an
//! idle subscriber. That matters because the limits are on the data, and
//! the encoded frame is larger: each line break becomes `\ndata: `, so
//! 150,000 line breaks (a 150 KB body) encode to about 1 MB, and 1 MiB of
//! them to about 7 MiB. Comparing one frame with the bound made such an
//! update cut off every live subscriber it matched, each with nothing
//! received. Counting the head frame costs no memory per subscriber: it is
//! a clone of the one shared frame, so a subscriber holds at most the
//! bound plus one frame, plus the one its connection is writing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use bytes::Bytes;
use herald_store::Cursor;
use tokio::sync::Notify;

use crate::grant::Grants;
use crate::matcher::Matcher;

/// Why a subscription's stream ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// It fell more than [`HubConfig::max_pending_bytes`](crate::HubConfig)
    /// behind; the client can resume from history with its last event id.
    Lagged,
    /// The hub is shutting down.
    Shutdown,
    /// The hub's live log broke off (the store trimmed records the hub had
    /// not dispatched yet); the client resumes and is told of the gap.
    Resync,
    /// The subscriber's authorization expired (a token's `exp`): its front
    /// end ended the stream with
    /// [`Subscription::end`](crate::Subscription::end), as the hub must
    /// not go on serving a subscriber past its credential.
    Expired,
}

/// Per-entry bookkeeping counted against the pending-bytes bound, so that a
/// flood of tiny frames is bounded too.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<(Cursor, Bytes)>();

pub(crate) struct Subscriber {
    pub id: u64,
    pub matchers: Vec<Matcher>,
    /// `None`: anonymous, public updates only.
    pub grants: Option<Grants>,
    /// Told when the subscriber is cut off for lagging, so the front end can
    /// close a connection that is too stalled to poll its stream.
    on_lag: Option<Arc<Notify>>,
    queue: Mutex<Queue>,
}

struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes of every queued frame, head included (plus per-entry overhead).
    bytes: usize,
    /// The queue holds only a heartbeat: a record frame replaces it (the
    /// record keeps the connection busy just as well), so a heartbeat never
    /// stands at the head and turns a large record into lag.
    keepalive_only: bool,
    /// The cursor of the last record queued (or replayed): anything at or
    /// before it is a duplicate. Cursors only grow, so this one number
    /// dedupes both the history→live seam and a record matching several
    /// of the subscriber's matchers.
    last: Cursor,
    closed: Option<CloseReason>,
    waker: Option<Waker>,
}

/// What the subscription finds when it polls its queue.
pub(crate) enum Pending {
    Frames(Bytes),
    Empty,
    Closed(CloseReason),
}

impl Subscriber {
    pub fn new(
        id: u64,
        matchers: Vec<Matcher>,
        grants: Option<Grants>,
        last: Cursor,
        on_lag: Option<Arc<Notify>>,
    ) -> Self {
        Subscriber {
            id,
            matchers,
            grants,
            on_lag,
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                keepalive_only: false,
                last,
                closed: None,
                waker: None,
            }),
        }
    }

    /// Queues a record's frame, or closes the subscriber for lagging when
    /// more than `max_bytes` would wait behind the head of its queue (see the
    /// module docs: a frame into an empty queue is always accepted).
    ///
    /// Returns [`Push::Queued`] when the frame was queued;
    /// [`Push::Skipped`] when the subscriber is already closed or already
    /// has this record (its cursor is at or before the last one queued: the
    /// history→live seam, or a second matcher selecting the same record);
    /// [`Push::Lagged`] when this push closed it for lagging (its queue is
    /// emptied and `on_lag` notified; the caller removes it from the index).
    pub fn push(&self, cursor: Cursor, frame: &Bytes, max_bytes: usize) -> Push {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_some() {
            return Push::Skipped;
        }
        if cursor <= queue.last {
            return Push::Skipped;
        }
        queue.last = cursor;
        if queue.keepalive_only {
            queue.frames.clear();
            queue.bytes = 0;
            queue.keepalive_only = false;
        }
        let size = frame.len() + ENTRY_OVERHEAD;
        let head = queue
            .frames
            .front()
            .map_or(size, |head| head.len() + ENTRY_OVERHEAD);
        queue.bytes += size;
        if queue.bytes.saturating_sub(head) > max_bytes {
            queue.frames = VecDeque::new();
            queue.bytes = 0;
            queue.closed = Some(CloseReason::Lagged);
            wake(&mut queue);
            if let Some(on_lag) = &self.on_lag {
                on_lag.notify_one();
            }
            return Push::Lagged;
        }
        queue.frames.push_back(frame.clone());
        wake(&mut queue);
        Push::Queued
    }

    /// Queues a frame that is not a record (a heartbeat); never counted as
    /// lag, dropped if the queue already holds frames (they keep the
    /// connection busy anyway).
    pub fn push_keepalive(&self, frame: &Bytes) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_none() && queue.frames.is_empty() {
            queue.bytes += frame.len() + ENTRY_OVERHEAD;
            queue.keepalive_only = true;
            queue.frames.push_back(frame.clone());
            wake(&mut queue);
        }
    }

    /// Ends the stream after the frames already queued (plus `last_words`).
    pub fn close(&self, reason: CloseReason, last_words: Option<&Bytes>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_some() {
            return;
        }
        if let Some(frame) = last_words {
            queue.frames.push_back(frame.clone());
            queue.keepalive_only = false;
        }
        queue.closed = Some(reason);
        wake(&mut queue);
    }

    /// Why the hub closed this subscriber, if it did (whether or not its
    /// stream has seen the end yet: a stalled connection never polls it).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Takes every queued frame, coalesced into one buffer (one write).
    ///
    /// Frames pile up only when a subscriber's socket drains slower than
    /// updates arrive; then they are copied into one buffer so the
    /// connection makes one `write` for all of them. Handing them out one by
    /// one for a vectored write would avoid the copy, but would cost a poll
    /// of the stream and a lock per frame plus the kernel's per-iovec work,
    /// which we expect to exceed copying a few hundred bytes (SSE frames are
    /// small; not measured yet). A single pending frame, the common case,
    /// is not copied.
    pub fn take(&self, waker: &Waker) -> Pending {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let frames = match queue.frames.len() {
            0 => {
                if let Some(reason) = queue.closed {
                    return Pending::Closed(reason);
                }
                match &queue.waker {
                    Some(current) if current.will_wake(waker) => {}
                    _ => queue.waker = Some(waker.clone()),
                }
                return Pending::Empty;
            }
            1 => queue.frames.pop_front().expect("one frame"),
            _ => {
                let mut buf = bytes::BytesMut::with_capacity(queue.bytes);
                for frame in queue.frames.drain(..) {
                    buf.extend_from_slice(&frame);
                }
                // Give back the ring buffer's memory once a burst is over:
                // idle subscribers should cost almost nothing.
                if queue.frames.capacity() > 64 {
                    queue.frames = VecDeque::new();
                }
                buf.freeze()
            }
        };
        queue.bytes = 0;
        queue.keepalive_only = false;
        Pending::Frames(frames)
    }
}

/// The outcome of [`Subscriber::push`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// The frame is queued: one delivery.
    Queued,
    /// Nothing done: the subscriber is closed, or has the record already.
    Skipped,
    /// This push closed the subscriber for lagging.
    Lagged,
}

fn wake(queue: &mut Queue) {
    if let Some(waker) = queue.waker.take() {
        waker.wake();
    }
}
