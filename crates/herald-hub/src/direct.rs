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
//! Every write happens under the queue lock, by whichever side holds it,
//! so two writes never interleave and no "who is writing" flag is needed;
//! none of them waits (the writer only tries). A connection whose write
//! fails is left to its task, which finds the stream over.

use std::fmt::Debug;
use std::io;
use std::task::{Context, Poll};

/// A connection the hub may write frames to directly (see the module
/// docs). Implemented by a front end for a plain socket; the framing (an
/// HTTP/1.1 chunk around each frame, or none) is the front end's.
///
/// Every method is called under the subscriber's queue lock, never
/// concurrently with another for the same connection, and must not block.
pub trait DirectWriter: Send + Sync + Debug {
    /// How many bytes `frame` takes on the wire, framed.
    fn framed_len(&self, frame: &[u8]) -> usize;

    /// Writes what the connection takes now of `frame`, framed, starting
    /// `offset` bytes into its framed form; returns how many framed bytes
    /// went out. [`io::ErrorKind::WouldBlock`] when it takes none now
    /// (the connection is full, or it must not be written now); any other
    /// error ends direct writes to it for good.
    fn try_write(&self, frame: &[u8], offset: usize) -> io::Result<usize>;

    /// Ready once the connection may take more bytes; otherwise registers
    /// the context's waker to be woken when it does.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}
