//! [`serve`]: run a [`HubApp`] on a listener, in the shape of `axum::serve`:
//! `serve(listener, app).await` runs until an I/O error, and
//! `serve(listener, app).with_graceful_shutdown(signal).await` until the
//! signal, then drains.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use tokio::net::TcpListener;

use crate::{listener, HubApp, Tls};

/// Serves `app` on `listener`. Await it, or first add
/// [`Serve::with_graceful_shutdown`].
///
/// Every connection gets the app's connection settings
/// (`max_connections`, `max_connections_per_ip`, `head_timeout_secs`), and
/// a subscriber the hub cuts off for lagging has its connection closed at
/// once, even when it is too stalled to notice by itself.
pub fn serve(listener: TcpListener, app: HubApp) -> Serve {
    Serve {
        listener,
        app,
        tls: None,
    }
}

/// A server that runs until an I/O error; see [`serve`].
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: HubApp,
    tls: Option<Tls>,
}

/// A server that stops at a signal; see [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until it is awaited"]
pub struct WithGracefulShutdown<F> {
    serve: Serve,
    signal: F,
}

impl Serve {
    /// Serves over TLS only: every connection starts with a handshake
    /// (bounded by `head_timeout_secs`), then speaks HTTP/2 if the client
    /// chose `h2` by ALPN (browsers do), else HTTP/1.1. Keep a clone of
    /// `tls` to [`reload`](Tls::reload) the certificate.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Stops when `signal` resolves: stops accepting, tells every
    /// subscriber to reconnect soon (a `retry:` of `shutdown_retry_ms`),
    /// ends their streams, and resolves once open connections are done (or
    /// after a few seconds).
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }
}

type ServeFuture = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

impl IntoFuture for Serve {
    type Output = std::io::Result<()>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(listener::run(
            self.listener,
            self.app,
            self.tls,
            std::future::pending(),
        ))
    }
}

impl<F> IntoFuture for WithGracefulShutdown<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = std::io::Result<()>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(listener::run(
            self.serve.listener,
            self.serve.app,
            self.serve.tls,
            self.signal,
        ))
    }
}
