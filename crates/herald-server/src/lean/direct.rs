//! A lean subscriber's plain socket, shared by its connection's task and
//! the hub, which writes live frames to it directly while it keeps up
//! ([`herald_hub::DirectWriter`]: no task wake per event).
//!
//! The connection's task reads it (to notice the client leaving) and
//! writes the response head, the `retry:` hint and any replay; the hub
//! writes live frames, each framed as the connection frames the rest (an
//! HTTP/1.1 chunk, or bare for HTTP/1.0). The hub's writes never wait, and
//! happen under the subscriber's queue lock, after everything the task
//! wrote (the hub writes only once the task polls for live frames).
//!
//! Two things stay the connection's to decide, so they are recorded here:
//! a token's expiry (nothing is written past it, whoever writes), and
//! whether a frame was left half-written (then the body cannot be ended
//! with a last chunk: the connection is just closed).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use herald_hub::DirectWriter;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Duplex, FramedParts, Framing};
use crate::shared_socket;

/// The socket of a lean subscription over plain TCP.
#[derive(Clone, Debug)]
pub(crate) struct DirectSocket(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    stream: TcpStream,
    framing: Framing,
    /// `herald_bytes_written_total`: frames the hub writes count here as
    /// the ones the connection writes count in its body.
    written: Counter,
    /// When the subscriber's token expires, in milliseconds since the Unix
    /// epoch; 0: never.
    expires_at_ms: AtomicU64,
    /// The last direct write left a frame incomplete.
    mid_frame: AtomicBool,
}

impl DirectSocket {
    pub(crate) fn new(stream: TcpStream, framing: Framing, written: Counter) -> Self {
        DirectSocket(Arc::new(Inner {
            stream,
            framing,
            written,
            expires_at_ms: AtomicU64::new(0),
            mid_frame: AtomicBool::new(false),
        }))
    }

    /// The hub's handle for writing to this socket, which stops writing at
    /// `expires_at` (the subscriber's token's expiry): the connection's
    /// task ends the stream then, and the hub must not serve a subscriber
    /// past its credential even until the task runs.
    pub(crate) fn writer(&self, expires_at: Option<SystemTime>) -> Arc<dyn DirectWriter> {
        if let Some(at) = expires_at {
            let ms = at.duration_since(UNIX_EPOCH).map_or(1, |since| {
                since.as_millis().clamp(1, u64::MAX.into()) as u64
            });
            self.0.expires_at_ms.store(ms, Relaxed);
        }
        Arc::clone(&self.0) as Arc<dyn DirectWriter>
    }
}

impl Inner {
    fn expired(&self) -> bool {
        match self.expires_at_ms.load(Relaxed) {
            0 => false,
            at => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(true, |now| now.as_millis() >= u128::from(at)),
        }
    }
}

impl DirectWriter for Inner {
    fn framing_key(&self) -> usize {
        self.framing as usize
    }

    fn framed(&self, frame: &Bytes) -> Bytes {
        match self.framing {
            Framing::Close => frame.clone(),
            Framing::Chunked => {
                let parts = FramedParts::new(self.framing, frame);
                let mut wire = BytesMut::with_capacity(parts.len());
                let mut slices = [IoSlice::new(&[]); 3];
                for part in parts.rest(0, &mut slices) {
                    wire.extend_from_slice(part);
                }
                wire.freeze()
            }
        }
    }

    fn try_write(&self, wire: &[u8]) -> io::Result<usize> {
        if self.expired() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Straight to the socket: tokio's `try_write` first reads the
        // readiness it keeps for the socket, one more cache miss per
        // subscriber per event in a fan-out to thousands. Only a socket
        // that is full goes through tokio, whose write (a second try)
        // clears that readiness, so that `poll_writable` waits for the
        // socket to drain rather than spin.
        let n = match socket2::SockRef::from(&self.stream).send(wire) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.stream.try_write(wire)?,
            sent => sent?,
        };
        self.mid_frame.store(n < wire.len(), Relaxed);
        Ok(n)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_write_ready(cx)
    }

    fn count(&self, len: usize) {
        self.written.inc_by(len as u64);
    }
}

/// One side of the shared socket, for the connection's task.
pub(crate) struct Side<'a>(&'a TcpStream);

impl AsyncRead for Side<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        shared_socket::poll_read(self.0, cx, buf)
    }
}

impl AsyncWrite for Side<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        shared_socket::poll_write_vectored(self.0, cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        shared_socket::poll_write_vectored(self.0, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shared_socket::shutdown_write(self.0))
    }
}

impl AsyncRead for DirectSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut Side(&self.0.stream)).poll_read(cx, buf)
    }
}

impl AsyncWrite for DirectSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut Side(&self.0.stream)).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut Side(&self.0.stream)).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut Side(&self.0.stream)).poll_shutdown(cx)
    }
}

impl Duplex for DirectSocket {
    fn halves(
        &mut self,
    ) -> (
        impl AsyncRead + Unpin + Send + '_,
        impl AsyncWrite + Unpin + Send + '_,
    ) {
        (Side(&self.0.stream), Side(&self.0.stream))
    }

    fn direct(&self) -> Option<&DirectSocket> {
        Some(self)
    }

    fn mid_frame(&self) -> bool {
        self.0.mid_frame.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt as _;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A socket the hub writes to, and the client's end of it.
    async fn pair() -> (DirectSocket, TcpStream, Counter) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let written = Counter::default();
        let socket = DirectSocket::new(server, Framing::Chunked, written.clone());
        (socket, client, written)
    }

    #[tokio::test]
    async fn frames_go_out_as_chunks_and_count_unframed() {
        let (socket, mut client, written) = pair().await;
        let writer = socket.writer(Some(SystemTime::now() + Duration::from_secs(60)));
        let wire = writer.framed(&Bytes::from_static(b"data: hi\n\n"));
        assert_eq!(&wire[..], b"a\r\ndata: hi\n\n\r\n");
        assert_eq!(writer.try_write(&wire).unwrap(), wire.len());
        writer.count(10);
        let mut got = vec![0u8; wire.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, &wire[..]);
        assert_eq!(written.get(), 10);
        assert!(!socket.mid_frame());
    }

    #[tokio::test]
    async fn nothing_is_written_past_the_token_s_expiry() {
        let (socket, mut client, _) = pair().await;
        let writer = socket.writer(Some(SystemTime::now() - Duration::from_secs(1)));
        let err = writer.try_write(b"a\r\ndata: hi\n\n\r\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop((writer, socket));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}
