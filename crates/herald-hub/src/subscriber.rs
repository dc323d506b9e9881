//! One subscriber's side of the fan-out: its matchers, its grants, and a
//! bounded queue of shared frames waiting to be written.
//!
//! The dispatcher pushes into the queue under a short `std::sync::Mutex`
//! (never held across an await; a tokio mutex would only add cost here), and
//! wakes the subscription's task. Frames are `Bytes` clones of the one
//! encoded frame: queuing copies no event data. A subscriber whose front end
//! gave it a [`DirectWriter`] is written to under the same lock instead,
//! while its connection keeps up (see `direct`).
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
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use herald_store::Cursor;
use tokio::sync::Notify;

use crate::direct::{DirectWriter, Framed};
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

/// The most bytes held for one subscriber before they are written, within
/// a batch of the dispatcher (see [`Subscriber::push`]).
pub(crate) const HOLD_BYTES: usize = 64 * 1024;

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
    /// Where the direct writer's state is (0: none), for
    /// [`Subscriber::prefetch_writer`]: an address, never dereferenced.
    writer_at: usize,
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
    /// Who writes the frames.
    writer: Writer,
    /// Bytes of the head frame already written directly.
    head_written: usize,
    /// The queued frames are held by the dispatcher, to be written
    /// together at the end of its batch ([`Subscriber::release`]); nobody
    /// is woken for them.
    held: bool,
}

/// Who writes a subscriber's frames.
enum Writer {
    /// Its stream hands them to its connection's task.
    Stream,
    /// The hub will write them directly once the stream reaches its live
    /// frames (its replay and gap report go out through the stream first).
    Soon(Arc<dyn DirectWriter>),
    /// The hub writes them directly, and the queue holds them framed.
    Direct(Arc<dyn DirectWriter>),
    /// A direct write failed: the connection is gone, the stream ends.
    Broken,
}

/// What the subscription finds when it polls its queue.
pub(crate) enum Pending {
    Frames(Bytes),
    Empty,
    Closed(CloseReason),
    /// A direct write failed: the client is gone.
    Gone,
}

/// How writing a frame directly, with nothing queued before it, went.
enum Through {
    /// All of it went out.
    All,
    /// This many bytes of it went out (maybe none): the rest is queued.
    Part(usize),
    /// Not written: no direct writer, a backlog, or the connection broke.
    No,
}

/// How writing the queue directly went.
enum Flushed {
    /// Everything queued is written.
    Done,
    /// The connection is full: the task is woken when it drains.
    Blocked,
    /// A write failed: direct writes are over for this connection.
    Broken,
}

impl Subscriber {
    pub fn new(
        id: u64,
        matchers: Vec<Matcher>,
        grants: Option<Grants>,
        last: Cursor,
        on_lag: Option<Arc<Notify>>,
        direct: Option<Arc<dyn DirectWriter>>,
    ) -> Self {
        Subscriber {
            id,
            matchers,
            grants,
            on_lag,
            writer_at: direct
                .as_ref()
                .map_or(0, |writer| Arc::as_ptr(writer).cast::<()>() as usize),
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                keepalive_only: false,
                last,
                closed: None,
                waker: None,
                writer: direct.map_or(Writer::Stream, Writer::Soon),
                head_written: 0,
                held: false,
            }),
        }
    }

    /// Asks the CPU to bring this subscriber into its cache, for a push to
    /// come: the fan-out does it for the next subscribers while it writes
    /// to one, since at thousands of subscribers each is a cache miss.
    #[inline]
    pub fn prefetch(&self) {
        prefetch(std::ptr::from_ref(self).cast(), std::mem::size_of::<Self>());
    }

    /// The same for the state of its direct writer (its socket), found
    /// through this subscriber, which should be in the cache by now.
    #[inline]
    pub fn prefetch_writer(&self) {
        if self.writer_at != 0 {
            prefetch(self.writer_at as *const u8, 128);
        }
    }

    /// Queues a record's frame, or closes the subscriber for lagging when
    /// more than `max_bytes` would wait behind the head of its queue (see the
    /// module docs: a frame into an empty queue is always accepted).
    ///
    /// With `hold` (the dispatcher has several records at once), a frame
    /// the hub would write directly is held in the queue instead, up to
    /// [`HOLD_BYTES`], so that the batch goes out in one write per
    /// subscriber: the caller then [`release`](Subscriber::release)s it.
    ///
    /// Returns [`Push::Delivered`] when the frame was queued or written;
    /// [`Push::Held`] when it is the first frame held since the last
    /// release; [`Push::Skipped`] when the subscriber is already closed or already
    /// has this record (its cursor is at or before the last one queued: the
    /// history→live seam, or a second matcher selecting the same record);
    /// [`Push::Lagged`] when this push closed it for lagging (its queue is
    /// emptied and `on_lag` notified; the caller removes it from the index).
    pub fn push(
        &self,
        cursor: Cursor,
        frame: &Bytes,
        framed: &mut Framed,
        max_bytes: usize,
        hold: bool,
    ) -> Push {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_some() || matches!(queue.writer, Writer::Broken) {
            return Push::Skipped;
        }
        if cursor <= queue.last {
            return Push::Skipped;
        }
        queue.last = cursor;
        if queue.keepalive_only {
            // A heartbeat partly written must be finished first.
            if queue.head_written == 0 {
                queue.frames.clear();
                queue.bytes = 0;
            }
            queue.keepalive_only = false;
        }
        if hold && queue.held && queue.bytes >= HOLD_BYTES.min(max_bytes / 2) {
            // Enough held: out it goes before more is held (held bytes
            // must never look like lag).
            queue.release();
        }
        if hold && queue.may_hold() {
            let first = !queue.held;
            queue.held = true;
            let item = queue.form(frame, framed);
            queue.bytes += item.len() + ENTRY_OVERHEAD;
            queue.frames.push_back(item);
            queue.count(frame.len());
            return if first { Push::Held } else { Push::Delivered };
        }
        let item = match queue.write_through(frame, framed) {
            Through::All => {
                queue.count(frame.len());
                return Push::Delivered;
            }
            Through::Part(written) => {
                queue.head_written = written;
                framed.wire().clone()
            }
            Through::No if matches!(queue.writer, Writer::Broken) => return Push::Skipped,
            Through::No => queue.form(frame, framed),
        };
        let size = item.len() + ENTRY_OVERHEAD;
        let head = queue
            .frames
            .front()
            .map_or(size, |head| head.len() + ENTRY_OVERHEAD);
        queue.bytes += size;
        if queue.bytes.saturating_sub(head) > max_bytes {
            queue.frames = VecDeque::new();
            queue.bytes = 0;
            queue.held = false;
            queue.closed = Some(CloseReason::Lagged);
            wake(&mut queue);
            if let Some(on_lag) = &self.on_lag {
                on_lag.notify_one();
            }
            return Push::Lagged;
        }
        queue.frames.push_back(item);
        queue.count(frame.len());
        wake(&mut queue);
        Push::Delivered
    }

    /// Queues a frame that is not a record (a heartbeat); never counted as
    /// lag, dropped if the queue already holds frames (they keep the
    /// connection busy anyway).
    pub fn push_keepalive(&self, frame: &Bytes, framed: &mut Framed) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_some() || !queue.frames.is_empty() {
            return;
        }
        queue.count(frame.len());
        let item = match queue.write_through(frame, framed) {
            Through::All => return,
            Through::Part(written) => {
                queue.head_written = written;
                framed.wire().clone()
            }
            Through::No if matches!(queue.writer, Writer::Broken) => return,
            Through::No => queue.form(frame, framed),
        };
        queue.bytes += item.len() + ENTRY_OVERHEAD;
        queue.keepalive_only = true;
        queue.frames.push_back(item);
        wake(&mut queue);
    }

    /// Ends the stream after the frames already queued (plus `last_words`).
    pub fn close(&self, reason: CloseReason, last_words: Option<&Bytes>, framed: &mut Framed) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed.is_some() {
            return;
        }
        if let Some(frame) = last_words {
            queue.count(frame.len());
            let item = queue.form(frame, framed);
            queue.frames.push_back(item);
            queue.keepalive_only = false;
        }
        queue.closed = Some(reason);
        wake(&mut queue);
    }

    /// Writes the frames held for the dispatcher's batch (see
    /// [`push`](Subscriber::push)): one write for all of them. Whatever the
    /// connection does not take now is left to the subscription's task,
    /// which is woken, as after any partial direct write.
    pub fn release(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.held {
            queue.release();
        }
    }

    /// Stops direct writes: the subscription's stream ended early (its
    /// token expired), and its connection is about to end the body itself.
    pub fn detach(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(queue.writer, Writer::Broken) {
            queue.writer = Writer::Stream;
        }
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
    ///
    /// With a [`DirectWriter`], the queue is written here instead (the
    /// first call marks the subscription live), and frames are handed out
    /// only if a direct write failed.
    pub fn take(&self, waker: &Waker) -> Pending {
        let mut guard = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let queue = &mut *guard;
        if let Writer::Soon(writer) = &queue.writer {
            // The stream reached its live frames: from now on the hub
            // writes them, framed, beginning with those queued meanwhile.
            let writer = Arc::clone(writer);
            if !queue.frames.is_empty() {
                let frames = queue.coalesce();
                writer.count(frames.len());
                let wire = writer.framed(&frames);
                queue.bytes = wire.len() + ENTRY_OVERHEAD;
                queue.frames.push_back(wire);
            }
            queue.writer = Writer::Direct(writer);
        }
        match queue.flush(waker) {
            Flushed::Done => {}
            Flushed::Blocked => {
                queue.remember(waker);
                return Pending::Empty;
            }
            Flushed::Broken => return Pending::Gone,
        }
        let frames = match queue.frames.len() {
            0 => {
                if let Some(reason) = queue.closed {
                    return Pending::Closed(reason);
                }
                queue.remember(waker);
                return Pending::Empty;
            }
            1 => queue.frames.pop_front().expect("one frame"),
            _ => queue.coalesce(),
        };
        queue.bytes = 0;
        queue.keepalive_only = false;
        Pending::Frames(frames)
    }
}

impl Queue {
    /// Whether a frame the hub writes directly may be held: nothing but
    /// held frames waits (a backlog is the task's to write).
    fn may_hold(&self) -> bool {
        matches!(self.writer, Writer::Direct(_))
            && (self.held || (self.frames.is_empty() && self.head_written == 0))
    }

    /// Writes the held frames now; the task is woken for what the
    /// connection does not take.
    fn release(&mut self) {
        match self.flush(Waker::noop()) {
            Flushed::Done | Flushed::Broken => {}
            Flushed::Blocked => wake(self),
        }
    }

    fn remember(&mut self, waker: &Waker) {
        match &self.waker {
            Some(current) if current.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    /// Every queued frame in one buffer, the queue left empty.
    fn coalesce(&mut self) -> Bytes {
        let mut buf = bytes::BytesMut::with_capacity(self.bytes);
        for frame in self.frames.drain(..) {
            buf.extend_from_slice(&frame);
        }
        // Give back the ring buffer's memory once a burst is over: idle
        // subscribers should cost almost nothing.
        if self.frames.capacity() > 64 {
            self.frames = VecDeque::new();
        }
        buf.freeze()
    }

    /// Counts a frame the hub took on to write directly (see
    /// [`DirectWriter::count`]); frames for the stream are counted there.
    fn count(&self, len: usize) {
        if let Writer::Direct(writer) = &self.writer {
            writer.count(len);
        }
    }

    /// `frame` as the queue holds it: framed for the connection once the
    /// hub writes to it directly, as it is otherwise.
    fn form(&self, frame: &Bytes, framed: &mut Framed) -> Bytes {
        match &self.writer {
            Writer::Direct(writer) => framed.for_writer(writer.as_ref(), frame).clone(),
            _ => frame.clone(),
        }
    }

    /// Writes `frame` directly if the hub writes this subscriber's frames
    /// and nothing waits before it. After [`Through::Part`], the framed
    /// frame is `framed.wire()`.
    fn write_through(&mut self, frame: &Bytes, framed: &mut Framed) -> Through {
        let Writer::Direct(writer) = &self.writer else {
            return Through::No;
        };
        if !self.frames.is_empty() {
            return Through::No;
        }
        let wire = framed.for_writer(writer.as_ref(), frame);
        match writer.try_write(wire) {
            Ok(n) if n >= wire.len() => Through::All,
            Ok(0) => {
                self.break_off();
                Through::No
            }
            Ok(n) => Through::Part(n),
            Err(err) if is_transient(&err) => Through::Part(0),
            Err(_) => {
                self.break_off();
                Through::No
            }
        }
    }

    /// Writes queued frames directly until the queue is empty or the
    /// connection is full (then `waker` is woken when it drains). A
    /// backlog goes out in one write, as the connection's task writes it.
    fn flush(&mut self, waker: &Waker) -> Flushed {
        // Whoever flushes writes the held frames too: they are an ordinary
        // queue from here on.
        self.held = false;
        let Writer::Direct(writer) = &self.writer else {
            return match self.writer {
                Writer::Broken => Flushed::Broken,
                _ => Flushed::Done,
            };
        };
        let writer = Arc::clone(writer);
        loop {
            if self.head_written == 0 && self.frames.len() > 1 {
                // Framed frames one after the other are framed still.
                let all = self.coalesce();
                self.bytes = all.len() + ENTRY_OVERHEAD;
                self.frames.push_back(all);
            }
            let Some(head) = self.frames.front() else {
                self.bytes = 0;
                self.keepalive_only = false;
                return Flushed::Done;
            };
            let len = head.len();
            let written = writer.try_write(head.get(self.head_written..).unwrap_or_default());
            match written {
                Ok(0) if self.head_written < len => {
                    self.break_off();
                    return Flushed::Broken;
                }
                Ok(n) => {
                    self.head_written += n;
                    if self.head_written >= len {
                        let size = len + ENTRY_OVERHEAD;
                        self.frames.pop_front();
                        self.bytes = self.bytes.saturating_sub(size);
                        self.head_written = 0;
                    }
                }
                Err(err) if is_transient(&err) => {
                    match writer.poll_writable(&mut Context::from_waker(waker)) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => {
                            self.break_off();
                            return Flushed::Broken;
                        }
                        Poll::Pending => return Flushed::Blocked,
                    }
                }
                Err(_) => {
                    self.break_off();
                    return Flushed::Broken;
                }
            }
        }
    }

    /// A direct write failed: the connection is gone. Nothing more is
    /// queued or written; the stream ends.
    fn break_off(&mut self) {
        self.writer = Writer::Broken;
        self.held = false;
        self.frames = VecDeque::new();
        self.bytes = 0;
        self.head_written = 0;
        wake(self);
    }
}

/// A write that took nothing now but may later.
fn is_transient(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Hints that `len` bytes from `at` will be read soon. Only a hint: no
/// memory is read, and any address will do. A plain read of the next
/// subscriber (no `unsafe`) was measured too and saved little: a read has
/// to complete before the `send` that follows it, a prefetch does not
/// (docs/performance.md, "The fan-out's cache misses").
#[allow(unsafe_code)]
#[inline(always)]
fn prefetch(at: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut line = at as usize & !63;
        while line < at as usize + len {
            // SAFETY: a prefetch is a hint to the cache: it reads no
            // memory the program sees and never faults, whatever the
            // address (SSE, which every x86_64 has).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}

/// The outcome of [`Subscriber::push`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// The frame is queued or written: one delivery.
    Delivered,
    /// The frame is held for the end of the dispatcher's batch, the first
    /// since the last release: one delivery, and the caller releases it.
    Held,
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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;

    use proptest::prelude::*;

    use super::*;

    /// A connection that takes `room` bytes, then would block; frames are
    /// framed as `<len>|frame` so that their boundaries show in the output.
    #[derive(Debug, Default)]
    struct Pipe {
        out: Mutex<Vec<u8>>,
        room: AtomicUsize,
        broken: std::sync::atomic::AtomicBool,
        /// Writes that took bytes.
        writes: AtomicUsize,
    }

    impl Pipe {
        fn framed(frame: &[u8]) -> Vec<u8> {
            let mut out = format!("{}|", frame.len()).into_bytes();
            out.extend_from_slice(frame);
            out
        }

        /// The data the connection received, unframed; `None` if the
        /// framing is broken (a frame cut into by another).
        fn received(&self) -> Option<Vec<u8>> {
            let out = self.out.lock().unwrap();
            let mut rest = &out[..];
            let mut data = Vec::new();
            while !rest.is_empty() {
                let bar = rest.iter().position(|&b| b == b'|')?;
                let len: usize = std::str::from_utf8(&rest[..bar]).ok()?.parse().ok()?;
                data.extend_from_slice(rest.get(bar + 1..bar + 1 + len)?);
                rest = &rest[bar + 1 + len..];
            }
            Some(data)
        }
    }

    impl DirectWriter for Pipe {
        fn framing_key(&self) -> usize {
            0
        }

        fn framed(&self, frame: &Bytes) -> Bytes {
            Pipe::framed(frame).into()
        }

        fn try_write(&self, wire: &[u8]) -> io::Result<usize> {
            if self.broken.load(SeqCst) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = wire.len().min(self.room.load(SeqCst));
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room.fetch_sub(n, SeqCst);
            self.writes.fetch_add(1, SeqCst);
            self.out.lock().unwrap().extend_from_slice(&wire[..n]);
            Ok(n)
        }

        fn poll_writable(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            if self.room.load(SeqCst) > 0 {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn count(&self, _: usize) {}
    }

    /// Counts wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn subscriber(pipe: &Arc<Pipe>) -> Subscriber {
        let direct = Arc::clone(pipe) as Arc<dyn DirectWriter>;
        Subscriber::new(1, Vec::new(), None, Cursor::ZERO, None, Some(direct))
    }

    /// A connection that takes everything.
    fn open_pipe() -> Arc<Pipe> {
        Arc::new(Pipe {
            room: AtomicUsize::new(usize::MAX / 2),
            ..Pipe::default()
        })
    }

    const HEARTBEAT: &[u8] = b":\n\n";

    fn frame(i: u64) -> Bytes {
        Bytes::from(format!("data: {}\n\n", "x".repeat(i as usize % 40)))
    }

    #[test]
    fn an_idle_live_subscriber_is_written_to_without_a_wake() {
        let pipe = open_pipe();
        let subscriber = subscriber(&pipe);
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        // Before the stream polls its queue (a replay may be going out),
        // frames wait in the queue.
        assert_eq!(
            subscriber.push(
                Cursor::new(1),
                &frame(1),
                &mut Framed::default(),
                1 << 20,
                false
            ),
            Push::Delivered
        );
        assert!(pipe.out.lock().unwrap().is_empty());
        // The first poll writes them and marks the stream live.
        assert!(matches!(subscriber.take(&waker), Pending::Empty));
        assert_eq!(*pipe.out.lock().unwrap(), Pipe::framed(&frame(1)));
        // Then frames go straight out, and nobody is woken.
        assert_eq!(
            subscriber.push(
                Cursor::new(2),
                &frame(2),
                &mut Framed::default(),
                1 << 20,
                false
            ),
            Push::Delivered
        );
        subscriber.push_keepalive(&Bytes::from_static(b":\n\n"), &mut Framed::default());
        let mut expected = Pipe::framed(&frame(1));
        expected.extend(Pipe::framed(&frame(2)));
        expected.extend(Pipe::framed(b":\n\n"));
        assert_eq!(*pipe.out.lock().unwrap(), expected);
        assert_eq!(wakes.0.load(SeqCst), 0);
    }

    /// A batch of records goes out in one write at its end, nobody woken.
    #[test]
    fn a_batch_is_held_then_written_at_once() {
        let pipe = open_pipe();
        let subscriber = subscriber(&pipe);
        let wakes = Arc::new(Wakes::default());
        assert!(matches!(
            subscriber.take(&Waker::from(Arc::clone(&wakes))),
            Pending::Empty
        ));
        let pushes: Vec<Push> = (1..=3)
            .map(|i| {
                let framed = &mut Framed::default();
                subscriber.push(Cursor::new(i), &frame(i), framed, 1 << 20, true)
            })
            .collect();
        assert_eq!(pushes, [Push::Held, Push::Delivered, Push::Delivered]);
        assert_eq!(pipe.writes.load(SeqCst), 0);
        subscriber.release();
        assert_eq!(pipe.writes.load(SeqCst), 1);
        let expected: Vec<u8> = (1..=3).flat_map(|i| Pipe::framed(&frame(i))).collect();
        assert_eq!(*pipe.out.lock().unwrap(), expected);
        assert_eq!(wakes.0.load(SeqCst), 0);
        // Past `HOLD_BYTES`, what is held goes out before more is held.
        let big = Bytes::from(vec![b'x'; HOLD_BYTES]);
        for i in 4..=6 {
            subscriber.push(Cursor::new(i), &big, &mut Framed::default(), 1 << 20, true);
        }
        assert_eq!(pipe.writes.load(SeqCst), 3);
        subscriber.release();
        assert_eq!(pipe.writes.load(SeqCst), 4);
    }

    #[test]
    fn a_failed_write_ends_the_stream() {
        let pipe = Arc::new(Pipe::default());
        let subscriber = subscriber(&pipe);
        let waker = Waker::from(Arc::new(Wakes::default()));
        assert!(matches!(subscriber.take(&waker), Pending::Empty));
        pipe.broken.store(true, SeqCst);
        subscriber.push(
            Cursor::new(1),
            &frame(1),
            &mut Framed::default(),
            1 << 20,
            false,
        );
        // The client is gone: the stream ends, and nothing more is queued.
        assert!(matches!(subscriber.take(&waker), Pending::Gone));
        let push = subscriber.push(
            Cursor::new(2),
            &frame(2),
            &mut Framed::default(),
            1 << 20,
            false,
        );
        assert_eq!(push, Push::Skipped);
    }

    #[test]
    fn after_detach_nothing_is_written() {
        let pipe = Arc::new(Pipe {
            room: AtomicUsize::new(1 << 20),
            ..Pipe::default()
        });
        let subscriber = subscriber(&pipe);
        let waker = Waker::from(Arc::new(Wakes::default()));
        assert!(matches!(subscriber.take(&waker), Pending::Empty));
        subscriber.detach();
        subscriber.push(
            Cursor::new(1),
            &frame(1),
            &mut Framed::default(),
            1 << 20,
            false,
        );
        assert!(pipe.out.lock().unwrap().is_empty());
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Publishes a frame (its size varies with the cursor); held for
        /// the end of a batch or not.
        Push { hold: bool },
        /// The dispatcher's batch is over: held frames are written.
        Release,
        /// A heartbeat (dropped when records keep the connection busy).
        Heartbeat,
        /// The client reads this many bytes: the socket takes them.
        Drain(usize),
        /// The connection's task polls the stream.
        Poll,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => any::<bool>().prop_map(|hold| Step::Push { hold }),
            1 => Just(Step::Release),
            1 => Just(Step::Heartbeat),
            2 => (0usize..64).prop_map(Step::Drain),
            2 => Just(Step::Poll),
        ]
    }

    proptest! {
        /// Whoever writes and however the socket drains, the connection
        /// receives every frame's data, in order, framed whole, and never
        /// through the stream as well.
        #[test]
        fn frames_arrive_whole_and_in_order(steps in prop::collection::vec(step(), 1..80)) {
            let pipe = Arc::new(Pipe::default());
            let subscriber = subscriber(&pipe);
            let waker = Waker::from(Arc::new(Wakes::default()));
            let mut expected = Vec::new();
            let mut next = 1;
            for step in steps {
                match step {
                    Step::Push { hold } => {
                        let push = subscriber.push(Cursor::new(next), &frame(next), &mut Framed::default(), 1 << 20, hold);
                        prop_assert!(push == Push::Delivered || hold && push == Push::Held, "{:?}", push);
                        expected.extend_from_slice(&frame(next));
                        next += 1;
                    }
                    Step::Release => subscriber.release(),
                    Step::Heartbeat => {
                        subscriber.push_keepalive(&Bytes::from_static(HEARTBEAT), &mut Framed::default());
                    }
                    Step::Drain(n) => {
                        pipe.room.fetch_add(n, SeqCst);
                    }
                    Step::Poll => match subscriber.take(&waker) {
                        Pending::Empty => {}
                        Pending::Frames(_) => prop_assert!(false, "frames handed to the stream"),
                        Pending::Closed(reason) => prop_assert!(false, "closed: {:?}", reason),
                        Pending::Gone => prop_assert!(false, "gone"),
                    },
                }
            }
            // Finally the batch ends and the client reads everything.
            subscriber.release();
            pipe.room.store(usize::MAX / 2, SeqCst);
            prop_assert!(matches!(subscriber.take(&waker), Pending::Empty));
            // A backlog may go out as one frame: the framing is the
            // connection's (chunks), the data must be exact, heartbeats
            // aside (whole, wherever they went).
            let received = pipe.received();
            prop_assert!(received.is_some(), "a frame was cut into");
            let text = String::from_utf8(received.unwrap()).unwrap();
            prop_assert_eq!(text.replace(":\n\n", ""), String::from_utf8(expected).unwrap());
        }
    }
}
