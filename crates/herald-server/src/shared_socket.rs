//! A TCP socket shared by hyper's connection and a watcher of its read
//! side.
//!
//! hyper notices a client that closes its connection mid-response only
//! while it has no unread input: once a client pipelined bytes after a
//! request (another request, a stray line end), hyper stops reading, and a
//! subscription whose client went away would live on until a heartbeat
//! write failed, or forever without heartbeats. The watcher peeks at the
//! socket (consuming nothing hyper needs) and the accept loop drops the
//! connection when the client's side is closed.
//!
//! tokio lets several tasks wait for the same socket's readiness: hyper's
//! reads go through `poll_read_ready` (one waker slot), the watcher's
//! `peek` through the socket's waiter list, and both are woken.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One socket, read and written through shared references.
#[derive(Clone)]
pub(crate) struct SharedSocket(Arc<TcpStream>);

impl SharedSocket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        SharedSocket(Arc::new(stream))
    }

    /// Resolves once the client closed its side (or the socket failed).
    /// While input waits that hyper has not read, it looks again every
    /// second rather than spin on a readable socket.
    pub(crate) async fn closed_by_peer(&self) {
        let mut byte = [0u8; 1];
        loop {
            match self.0.peek(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.0, cx, buf)
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored(&self.0, cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored(&self.0, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(&self.0))
    }
}

/// `AsyncRead::poll_read` through a shared reference to the socket.
pub(crate) fn poll_read(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match stream.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            // Readiness was stale; `try_read` cleared it.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Poll::Ready(Err(err)),
        }
    }
}

/// `AsyncWrite::poll_write_vectored` through a shared reference to the
/// socket.
pub(crate) fn poll_write_vectored(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_write_vectored(bufs) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// Closes the socket's write side (a FIN), through a shared reference.
pub(crate) fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write)
}
