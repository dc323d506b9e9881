//! [`HubApp`]: the hub's routes together with what serving them needs (the
//! hub, for its shutdown, and the connection settings), so that
//! [`serve`](crate::serve) takes one value, as `axum::serve` does.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use herald_hub::Hub;

use crate::auth::{AuthConfigError, Authenticator};
use crate::csrf::PublishOrigins;
use crate::limits::Slots;
use crate::metrics::Metrics;
use crate::{cors, routes, AppState, ServerConfig, MERCURE_PATH};

/// The hub's HTTP application.
///
/// Serve it with [`serve`](crate::serve), which applies its connection
/// settings (caps, deadlines) to every connection; or take its routes with
/// [`HubApp::into_router`] to nest them in a larger axum app, served however
/// that app is.
#[derive(Clone)]
pub struct HubApp {
    pub(crate) router: Router,
    pub(crate) hub: Hub,
    pub(crate) config: Arc<ServerConfig>,
    /// Shared with the routes' state: [`serve`](crate::serve) counts
    /// connections into the same registry `/metrics` reads.
    pub(crate) metrics: Metrics,
}

/// An invalid [`ServerConfig`].
#[derive(Debug)]
pub struct ConfigError {
    message: String,
    source: Option<AuthConfigError>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

impl ConfigError {
    fn new(message: String) -> Self {
        ConfigError {
            message,
            source: None,
        }
    }
}

impl From<AuthConfigError> for ConfigError {
    fn from(err: AuthConfigError) -> Self {
        ConfigError {
            message: format!("invalid authorization settings: {err}"),
            source: Some(err),
        }
    }
}

impl HubApp {
    /// The Mercure routes in front of `hub`, configured by `config`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the settings are invalid: a zero timeout, an
    /// unknown algorithm, a key that does not fit its algorithm, a
    /// `publish_origins` entry that is not an origin, ….
    pub fn new(hub: Hub, config: ServerConfig) -> Result<Self, ConfigError> {
        config.validate().map_err(ConfigError::new)?;
        let auth = Authenticator::new(&config.auth, hub.url())?;
        let subscriptions = Slots::new(config.max_subscriptions_per_ip, config.max_subscriptions);
        let publish_origins =
            PublishOrigins::new(hub.url(), &config.publish_origins).map_err(ConfigError::new)?;
        let metadata = Arc::new(routes::metadata::ResourceMetadata::new(
            &hub, &config, &auth,
        ));
        let config = Arc::new(config);
        let metrics = Metrics::new(hub.clone());
        let state = AppState {
            metadata: Arc::clone(&metadata),
            metrics: metrics.clone(),
            publish_origins: Arc::new(publish_origins),
            hub: hub.clone(),
            config: Arc::clone(&config),
            auth: Arc::new(auth),
            subscriptions,
        };
        let mercure = get(routes::subscribe::handle)
            .post(routes::publish::handle)
            .options(routes::preflight);
        let router = Router::new()
            .route(MERCURE_PATH, mercure)
            .route("/healthz", get(routes::healthz))
            .route("/metrics", get(routes::metrics))
            .route("/", get(routes::index))
            .route("/herald.js", get(routes::assets::herald_js))
            .route("/ui", get(routes::ui::tester))
            .route("/ui/", get(routes::ui::tester))
            .route("/ui/dashboard", get(routes::ui::dashboard))
            .route("/ui/stats", get(routes::ui::stats::handle))
            .route("/ui/assets/{*name}", get(routes::ui::asset))
            .route(metadata.path(), get(routes::metadata::document))
            // OPTIONS too: a page on another origin that reads the API with
            // an `Authorization` header is preflighted first, and a 405
            // would fail the preflight.
            .route(
                &format!("{MERCURE_PATH}/subscriptions"),
                get(routes::subscriptions::handle).options(routes::preflight),
            )
            .route(
                &format!("{MERCURE_PATH}/subscriptions/{{*rest}}"),
                get(routes::subscriptions::handle).options(routes::preflight),
            )
            .layer(axum::middleware::map_response_with_state(
                Arc::clone(&metadata),
                routes::metadata::point_challenges,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                cors::apply,
            ))
            .with_state(state);
        Ok(HubApp {
            router,
            hub,
            config,
            metrics,
        })
    }

    /// The routes alone, to nest or merge into another axum app. Served by
    /// another server, per-address limits need
    /// `into_make_service_with_connect_info::<SocketAddr>()`, and a lagging
    /// subscriber's connection is closed only once it drains or the kernel
    /// gives up on it.
    pub fn into_router(self) -> Router {
        self.router
    }

    /// Changes the routes (adds some, wraps them in a layer) and keeps the
    /// rest, so the result is still served with the hub's connection
    /// settings by [`serve`](crate::serve).
    pub fn map_router(mut self, change: impl FnOnce(Router) -> Router) -> Self {
        self.router = change(self.router);
        self
    }

    /// The hub behind the routes.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}
