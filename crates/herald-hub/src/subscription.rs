//! A subscription: the stream of frames one subscriber receives.
//!
//! It yields, in order: the in-band gap report (when the requested cursor
//! was unknown or trimmed), the replay of history after the cursor, then
//! live frames from its queue. The replay reads the store's log up to the
//! `dispatched` cursor taken when the subscriber was registered; the live
//! queue holds only records after it (see `registry`), so the seam has no
//! gap and no duplicate even while publishes race the subscribe.

use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::Stream;
use herald_proto::{Encoder, Event};
use herald_store::{Cursor, ErrorKind, Record, StoreError};

use crate::delivery::{self, Addressed, Selection};
use crate::direct::DirectWriter;
use crate::grant::Grants;
use crate::matcher::Matcher;
use crate::presence::Announcement;
use crate::reserved::{EARLIEST, HUB_EVENT_TYPE};
use crate::state::Shared;
use crate::subscriber::{CloseReason, Pending, Subscriber};

/// What a subscriber asks for.
#[derive(Clone, Debug)]
pub struct SubscribeRequest {
    /// The topic matchers; a record matching any of them is selected.
    pub matchers: Vec<Matcher>,
    /// What the subscriber's token grants; `None` for an anonymous
    /// subscriber, who receives public updates only.
    pub grants: Option<Grants>,
    /// Resume after this event id (`earliest`: from the oldest retained).
    pub last_event_id: Option<String>,
    /// Notified if the subscriber is cut off for lagging. A stalled
    /// connection does not poll its stream, so it would not see the end;
    /// a front end that owns the connection closes it on this signal.
    pub on_lag: Option<Arc<tokio::sync::Notify>>,
    /// The subscriber's connection, for the hub to write live frames to
    /// directly while it keeps up (see [`DirectWriter`]); `None`: every
    /// frame goes through the subscription's stream.
    pub direct: Option<Arc<dyn DirectWriter>>,
}

impl SubscribeRequest {
    /// An anonymous, live-only subscription.
    pub fn new(matchers: Vec<Matcher>) -> Self {
        SubscribeRequest {
            matchers,
            grants: None,
            last_event_id: None,
            on_lag: None,
            direct: None,
        }
    }
}

/// Where a subscription's replay starts: what the `Mercure-Last-Event-ID`
/// response header reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumePoint {
    /// No cursor was given: live only.
    Live,
    /// `earliest` was asked for: everything retained.
    Earliest,
    /// The requested id was found: the replay starts after it.
    After(Arc<str>),
    /// The requested id is unknown, trimmed, or names a private update the
    /// subscriber may not read (answered exactly like an unknown id, so as
    /// not to confirm that it exists): a gap report was sent and the replay
    /// starts from the earliest retained event.
    Gap(Arc<str>),
}

impl ResumePoint {
    /// The `Mercure-Last-Event-ID` value, when a cursor was requested.
    pub fn header_value(&self) -> Option<&str> {
        match self {
            ResumePoint::Live => None,
            ResumePoint::Earliest | ResumePoint::Gap(_) => Some(EARLIEST),
            ResumePoint::After(id) => Some(id),
        }
    }
}

/// The most replayed bytes coalesced into one frame.
const REPLAY_CHUNK: usize = 256 * 1024;

/// A live subscription: a `Stream` of encoded frames, ready to write.
///
/// Dropping it unregisters the subscriber at once.
pub struct Subscription {
    shared: Arc<Shared>,
    subscriber: Arc<Subscriber>,
    resume: ResumePoint,
    gap_report: Option<Bytes>,
    replay: Option<Replay>,
    closed: Option<CloseReason>,
    /// The documents of its subscriptions, when the hub publishes
    /// subscription events: their end is published on drop.
    announced: Option<Announcement>,
}

struct Replay {
    log: BoxStream<'static, Result<Record, StoreError>>,
    until: Cursor,
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        subscriber: Arc<Subscriber>,
        resume: ResumePoint,
        replay_from: Option<Cursor>,
        until: Cursor,
        announced: Option<Announcement>,
    ) -> Self {
        let gap_report = match &resume {
            ResumePoint::Gap(id) => {
                shared.counters.gaps.fetch_add(1, Relaxed);
                Some(gap_report(id))
            }
            _ => None,
        };
        let replay = replay_from.filter(|from| *from < until).map(|from| Replay {
            log: shared.store.follow(from),
            until,
        });
        Subscription {
            shared,
            subscriber,
            resume,
            gap_report,
            replay,
            closed: None,
            announced,
        }
    }

    /// The subscriber's id in subscription events and the subscriptions
    /// API (`urn:uuid:…`, one per connection); `None` when the hub does not
    /// publish subscription events.
    pub fn subscriber_id(&self) -> Option<&str> {
        Some(&self.announced.as_ref()?.docs().first()?.subscriber)
    }

    /// Where the replay started (for the `Mercure-Last-Event-ID` header).
    pub fn resume_point(&self) -> &ResumePoint {
        &self.resume
    }

    /// Why the stream ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Ends the stream now, for a reason its owner decided (a front end
    /// passes [`CloseReason::Expired`] when the subscriber's token
    /// expires): the next poll yields `None`, [`close_reason`] reports
    /// `reason`, and the hub counts the end under it
    /// ([`HubStats::disconnects`](crate::HubStats::disconnects)). A stream
    /// that has already ended keeps its first reason.
    ///
    /// [`close_reason`]: Subscription::close_reason
    pub fn end(&mut self, reason: CloseReason) {
        self.closed.get_or_insert(reason);
        // Whoever ends the stream writes its end: no frame may follow.
        self.subscriber.detach();
    }

    /// Polls the replay: the next chunk of replayed frames, or `None` once
    /// the replay reached the seam.
    fn poll_replay(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, CloseReason>>> {
        let Some(replay) = &mut self.replay else {
            return Poll::Ready(None);
        };
        let mut chunk = BytesMut::new();
        let mut finished = false;
        loop {
            match replay.log.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(record))) => {
                    if record.cursor > replay.until {
                        finished = true;
                        break;
                    }
                    let addressed = Addressed::new(&record, &self.shared.config.url);
                    let selection = Selection::Matchers(&self.subscriber.matchers);
                    if delivery::receives(&addressed, selection, self.subscriber.grants.as_ref()) {
                        chunk.extend_from_slice(&record.frame);
                    }
                    if record.cursor == replay.until {
                        finished = true;
                        break;
                    }
                    if chunk.len() >= REPLAY_CHUNK {
                        break;
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    // Retention removed records this replay still needed: say
                    // so and end the stream right after what was replayed
                    // (never live frames past the hole); the client resumes
                    // from its last id and replays what is retained.
                    tracing::debug!("replay interrupted: {err}");
                    if err.kind() == ErrorKind::Trimmed {
                        self.shared.counters.gaps.fetch_add(1, Relaxed);
                        chunk.extend_from_slice(&gap_report(""));
                    } else {
                        self.shared.counters.replay_errors.fetch_add(1, Relaxed);
                    }
                    self.replay = None;
                    self.closed = Some(CloseReason::Resync);
                    return Poll::Ready(Some(Ok(chunk.freeze())));
                }
                Poll::Ready(None) => {
                    // The store closed under us: the hub is going away.
                    self.replay = None;
                    return Poll::Ready(Some(Err(CloseReason::Shutdown)));
                }
                Poll::Pending => {
                    if chunk.is_empty() {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        if finished {
            self.replay = None;
        }
        if chunk.is_empty() {
            // Nothing matched in this stretch of history.
            return Poll::Ready(if finished {
                None
            } else {
                Some(Ok(Bytes::new()))
            });
        }
        Poll::Ready(Some(Ok(chunk.freeze())))
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.closed.is_some() {
            return Poll::Ready(None);
        }
        if let Some(report) = this.gap_report.take() {
            return Poll::Ready(Some(report));
        }
        while this.replay.is_some() {
            match this.poll_replay(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => {
                    if this.closed.is_some() {
                        return Poll::Ready(None);
                    }
                    continue;
                }
                Poll::Ready(Some(Ok(chunk))) => return Poll::Ready(Some(chunk)),
                Poll::Ready(Some(Err(reason))) => {
                    this.closed = Some(reason);
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => break,
            }
        }
        match this.subscriber.take(cx.waker()) {
            Pending::Frames(frames) => Poll::Ready(Some(frames)),
            Pending::Empty => Poll::Pending,
            Pending::Closed(reason) => {
                this.closed = Some(reason);
                Poll::Ready(None)
            }
            // Its connection failed under a direct write: the client left.
            Pending::Gone => Poll::Ready(None),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The one place a subscription's end is counted. The hub's reason
        // is read from the queue too: a stalled connection is dropped
        // without ever polling the end its stream was given.
        let reason = self.closed.or_else(|| self.subscriber.close_reason());
        self.shared.counters.ended.count(reason);
        self.shared.unregister(self.subscriber.id);
        if let Some(announced) = self.announced.take() {
            announced.end(Arc::clone(&self.shared));
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.subscriber.id)
            .field("resume", &self.resume)
            .field("replaying", &self.replay.is_some())
            .field("closed", &self.closed)
            .finish()
    }
}

/// The in-band gap report (see [`HUB_EVENT_TYPE`]).
fn gap_report(requested: &str) -> Bytes {
    let data = format!(
        "{{\"type\": \"gap\", \"last_event_id\": {}, \"resumed_from\": {}}}",
        json_string(requested),
        json_string(EARLIEST)
    );
    let event = Event::new(data)
        .with_type(HUB_EVENT_TYPE)
        .expect("a constant, valid type");
    Encoder::encode(&event)
}

/// A JSON string literal (ids are validated text, but may hold quotes and
/// backslashes).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
