//! The HTTP side of the Herald hub: the Mercure routes in front of a
//! [`herald_hub::Hub`], with authorization, CORS, connection limits and the
//! event-stream responses.
//!
//! [`router`] returns an axum [`Router`] you can serve as it is or nest in
//! your own app; [`serve`] runs it with graceful shutdown.
//!
//! ```no_run
//! use std::sync::Arc;
//! use herald_hub::{Hub, HubConfig};
//! use herald_server::{router, ServerConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "http://localhost:8080/.well-known/mercure".parse()?;
//! let hub = Hub::start(Arc::new(herald_store::MemoryStore::new()), HubConfig::new(url)).await?;
//! let config = ServerConfig::default();
//! let app = router(hub.clone(), config.clone())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! herald_server::serve(listener, app, hub, &config, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! | route | what |
//! | --- | --- |
//! | `GET /.well-known/mercure` | subscribe (`match`, `match_urlpattern`, legacy `topic`; `Last-Event-ID`) |
//! | `POST /.well-known/mercure` | publish (form-encoded or JSON) |
//! | `GET /healthz` | liveness: `ok` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /` | a page saying what this is |

pub mod auth;
mod config;
mod cors;
mod csrf;
mod error;
mod lean;
mod limits;
mod listener;
mod rewind;
mod routes;
mod shared_socket;
mod sse;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use herald_hub::Hub;

pub use config::ServerConfig;
pub use error::ApiError;
pub use listener::ConnectionHandle;
pub use routes::publish::{parse_update, UNAUTHORIZED_BODY_BYTES};
pub use routes::subscribe::{parse_matchers, MAX_TEMPLATE_EXPRESSIONS_PER_SUBSCRIPTION};
pub use sse::EventStreamBody;

use crate::auth::Authenticator;
use crate::csrf::PublishOrigins;
use crate::limits::Slots;

/// The path of the Mercure endpoint.
pub const MERCURE_PATH: &str = "/.well-known/mercure";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    hub: Hub,
    config: Arc<ServerConfig>,
    auth: Arc<Authenticator>,
    /// Open subscriptions, per address and in total.
    subscriptions: Slots,
    /// Who may publish with the token cookie.
    publish_origins: Arc<PublishOrigins>,
}

/// An invalid [`ServerConfig`].
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The hub's routes, ready to serve or to nest in another axum app.
///
/// [`serve`] runs them with everything they can use: the client address
/// (per-address limits) and a kill switch for stalled connections. Served
/// any other way, use `into_make_service_with_connect_info::<SocketAddr>()`
/// for per-address limits; a lagging subscriber's connection is then closed
/// only once it drains or the kernel gives up on it.
///
/// # Errors
///
/// [`ConfigError`] when the authorization settings are invalid (an unknown
/// algorithm, a key that does not fit its algorithm, …).
pub fn router(hub: Hub, config: ServerConfig) -> Result<Router, ConfigError> {
    config.validate().map_err(ConfigError)?;
    let auth =
        Authenticator::new(&config.auth, hub.url()).map_err(|err| ConfigError(err.to_string()))?;
    let subscriptions = Slots::new(config.max_subscriptions_per_ip, config.max_subscriptions);
    let publish_origins =
        PublishOrigins::new(hub.url(), &config.publish_origins).map_err(ConfigError)?;
    let state = AppState {
        publish_origins: Arc::new(publish_origins),
        hub,
        config: Arc::new(config),
        auth: Arc::new(auth),
        subscriptions,
    };
    let mercure = get(routes::subscribe::handle)
        .post(routes::publish::handle)
        .options(routes::preflight);
    Ok(Router::new()
        .route(MERCURE_PATH, mercure)
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/", get(routes::index))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::apply,
        ))
        .with_state(state))
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, tells every subscriber to reconnect soon (a `retry:` of
/// `config.shutdown_retry_ms`), closes their streams, and returns once open
/// connections are done (or after a few seconds).
///
/// `config` is the one given to [`router`]: its connection caps
/// (`max_connections`, `max_connections_per_ip`) and `head_timeout_secs`
/// apply here, to every connection. Connections whose subscriber the hub
/// cut off for lagging are closed at once, even when they are too stalled
/// to notice by themselves.
///
/// # Errors
///
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    hub: Hub,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve(listener, app, hub, config, shutdown).await
}
