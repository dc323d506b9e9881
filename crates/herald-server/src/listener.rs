//! The accept loop behind [`serve`](crate::serve): one task per
//! connection, each with a kill switch, and a graceful drain at shutdown.
//!
//! It exists instead of `axum::serve` for one reason: a subscriber that
//! stops reading stalls its connection, hyper then stops polling the
//! response body, and nothing in the body can end it. The hub notifies the
//! connection's kill switch when it cuts such a subscriber off, and this
//! loop drops the connection, which closes the socket. (An HTTP/2
//! connection carries several streams; killing it makes them all
//! reconnect, which they do with `Last-Event-ID`, so nothing is lost.)
//!
//! It also reads each connection's first request head itself: a subscribe
//! request takes the lean path (`lean.rs`), everything else goes to hyper.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use herald_hub::Hub;
use herald_proto::Encoder;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;

use crate::lean::{self, First};
use crate::rewind::Rewind;
use tower::ServiceExt as _;

/// Put in every request's extensions: closes the request's connection.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    pub(crate) kill: Arc<Notify>,
}

/// How long open connections may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    hub: Hub,
    shutdown_retry_ms: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors (or a connection reset before
                    // accept): not fatal; back off a little and go on.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(stream, peer, app.clone(), stop_rx.clone()));
    }

    // Refuse new work, tell subscribers to come back soon, end their
    // streams, then let open connections finish.
    drop(listener);
    hub.shutdown(Some(Encoder::retry(shutdown_retry_ms)));
    let _ = stop_tx.send(true);
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {DRAIN:?}");
    }
    Ok(())
}

async fn connection(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    stop: watch::Receiver<bool>,
) {
    // Boxed for the same reason as the hyper branch below: its parse state
    // is needed for a moment, not for the connection's lifetime.
    let first = Box::pin(lean::read_first(&mut stream)).await;
    match first {
        First::Gone => {}
        First::Subscribe(request) => lean::serve_subscribe(stream, peer, app, request).await,
        // Boxed: hyper's connection state is several KiB, and an async
        // fn is as large as its largest branch; every idle subscriber
        // would pay for it.
        First::Hyper(prefix) => Box::pin(serve_hyper(stream, prefix, peer, app, stop)).await,
    }
}

/// Serves a connection with hyper, from the bytes already read on.
async fn serve_hyper(
    stream: tokio::net::TcpStream,
    prefix: bytes::Bytes,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let kill = Arc::new(Notify::new());
    let handle = ConnectionHandle {
        kill: Arc::clone(&kill),
    };
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(handle.clone());
        app.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(Rewind::new(prefix, stream)), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!("connection from {peer}: {err}");
            }
        }
        // Dropping the connection closes the socket.
        _ = kill.notified() => tracing::debug!("closed the stalled connection of {peer}"),
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
