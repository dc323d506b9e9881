//! The HTTP side of the Herald hub: the Mercure routes in front of a
//! [`herald_hub::Hub`], with authorization, CORS, connection limits and the
//! event-stream responses.
//!
//! [`HubApp::new`] builds the application; [`serve`] runs it, in the shape
//! of `axum::serve`; [`HubApp::into_router`] (or [`router`]) gives its axum
//! [`Router`] to nest in your own app.
//!
//! ```no_run
//! use std::sync::Arc;
//! use herald_hub::{Hub, HubConfig};
//! use herald_server::{serve, HubApp, ServerConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "http://localhost:8080/.well-known/mercure".parse()?;
//! let hub = Hub::start(Arc::new(herald_store::MemoryStore::new()), HubConfig::new(url)).await?;
//! let app = HubApp::new(hub, ServerConfig::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
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
//! | `GET /.well-known/oauth-protected-resource/.well-known/mercure` | the protected resource metadata (RFC 9728): the token audience, the issuers, how to present a token |
//! | `GET /healthz` | `ok`, or 503 while the hub is closing or its store is unreachable |
//! | `GET /metrics` | the metrics, in the Prometheus text format (docs/operations.md) |
//! | `GET /` | a page saying what this is |
//! | `GET /herald.js` | the browser client (`clients/js/`), cacheable, `Access-Control-Allow-Origin: *` |
//! | `GET /ui` | the tester page: subscribe, watch events, publish (docs/ui.md) |
//! | `GET /ui/dashboard` | the dashboard page: live plots of the hub's statistics |
//! | `GET /ui/stats` | the statistics as an event stream, one JSON `stats` event a second; needs the admin grant |
//! | `GET /ui/assets/…` | the pages' scripts, styles and the vendored uPlot, cacheable |

mod app;
pub mod auth;
mod config;
mod cors;
mod csrf;
mod error;
pub mod gzip;
mod lean;
mod limits;
mod listener;
mod metrics;
mod publish_order;
mod rewind;
mod routes;
mod serve;
mod shared_socket;
mod sse;
mod tls;

use std::sync::Arc;

use axum::Router;
use herald_hub::Hub;

pub use app::{ConfigError, HubApp};
pub use config::{Compression, ServerConfig};
pub use error::ApiError;
pub use routes::publish::{parse_update, UNAUTHORIZED_BODY_BYTES};
pub use routes::subscribe::{parse_matchers, MAX_TEMPLATE_EXPRESSIONS_PER_SUBSCRIPTION};
pub use serve::{serve, Serve, WithGracefulShutdown};
pub use tls::{Tls, TlsError};

use crate::auth::Authenticator;
use crate::csrf::PublishOrigins;
use crate::limits::Slots;
use crate::metrics::Metrics;

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
    /// What `/metrics` serves, and the handles the routes count with.
    metrics: Metrics,
    /// The protected resource metadata document (RFC 9728).
    metadata: Arc<routes::metadata::ResourceMetadata>,
}

/// The hub's routes as an axum [`Router`], to nest in another app:
/// `HubApp::new(hub, config)?.into_router()`.
///
/// # Errors
///
/// [`ConfigError`] when the settings are invalid.
pub fn router(hub: Hub, config: ServerConfig) -> Result<Router, ConfigError> {
    Ok(HubApp::new(hub, config)?.into_router())
}
