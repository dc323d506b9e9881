//! Write-through fan-out: the dispatcher writes a record's frame straight
//! to an idle subscriber's connection, instead of queuing it and waking
//! the connection's task to write it.
//!
//! With 10,000 subscribers of one topic, each event cost one task wake and
//! one poll per subscriber (the task, the reactor's readiness check, the
//! scheduler's queue, the stream, the body) on top of the socket write
//! itself: a quarter of the hub's CPU, and twice the p99 of a server that
//! only writes (docs/performance.md, "Round two"). A front end that owns a
//! plain socket can hand the hub a [`DirectWriter`] for it; the hub then
//! writes under the subscriber's queue lock, without waiting:
//!
//! - while the subscription is live (everything before the first live
//!   frame, its replay and gap report, went out through its stream), its
//!   queue is empty, and the socket takes the whole frame: the frame is
//!   written and nobody is woken;
//! - when the socket takes part of a frame, or none, the frame is queued
//!   with how much of it went out, and the subscription's task is woken:
//!   from then on it writes the queue itself, still under the lock, as the
//!   socket drains (one coalesced write for a backlog, as before);
//! - frames that arrive while a backlog waits are queued behind it, so
//!   they go out in order, and lag is measured as before.
//!
//! - when the dispatcher has several records at once, each subscriber's
//!   frames of the batch are held in its queue and released in one write
//!   at the end of it (`Subscriber::release`): write-through alone made a
//!   burst one `send` per record per subscriber.
//!
//! Every write happens under the queue lock, by whichever side holds it,
//! so two writes never interleave and no "who is writing" flag is needed;
//! none of them waits (the writer only tries). A connection whose write
//! fails is left to its task, which finds the stream over.

use std::fmt::Debug;
use std::io;
use std::task::{Context, Poll};

use bytes::Bytes;

/// A connection the hub may write frames to directly (see the module
/// docs). Implemented by a front end for a plain socket; the framing (an
/// HTTP/1.1 chunk around each frame, or none) is the front end's.
///
/// Every method is called under the subscriber's queue lock, never
/// concurrently with another for the same connection, and must not block.
pub trait DirectWriter: Send + Sync + Debug {
    /// Which framing this connection puts around frames: connections with
    /// the same key frame alike, so the hub frames each record once for
    /// all of them.
    fn framing_key(&self) -> usize;

    /// `frame` as it goes on this connection's wire.
    fn framed(&self, frame: &Bytes) -> Bytes;

    /// Writes what the connection takes now of `wire` (framed bytes);
    /// returns how many went out. [`io::ErrorKind::WouldBlock`] when it
    /// takes none now (it is full, or must not be written now); any other
    /// error ends direct writes to it for good.
    fn try_write(&self, wire: &[u8]) -> io::Result<usize>;

    /// Ready once the connection may take more bytes; otherwise registers
    /// the context's waker to be woken when it does.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Counts `len` bytes of frames (unframed) the hub took on to write to
    /// this connection, as a stream counts the frames it hands out.
    fn count(&self, len: usize);
}

/// One record's frame, framed once per framing for every subscriber it is
/// written to directly (the fan-out of one record shares one copy).
#[derive(Default)]
pub(crate) struct Framed {
    key: usize,
    wire: Option<Bytes>,
}

impl Framed {
    /// `frame` as `writer` frames it, made at most once per framing.
    pub(crate) fn for_writer(&mut self, writer: &dyn DirectWriter, frame: &Bytes) -> &Bytes {
        let key = writer.framing_key();
        if self.wire.is_none() || self.key != key {
            self.key = key;
            self.wire = Some(writer.framed(frame));
        }
        self.wire.get_or_insert_with(Bytes::new)
    }

    /// The framed frame last made (empty before any).
    pub(crate) fn wire(&self) -> &Bytes {
        static EMPTY: Bytes = Bytes::new();
        self.wire.as_ref().unwrap_or(&EMPTY)
    }
}
