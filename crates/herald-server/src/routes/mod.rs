//! The route handlers, one module per Mercure operation, and the small
//! operational routes.

pub mod assets;
pub mod metadata;
pub mod publish;
pub mod publish_stream;
pub mod subscribe;
pub mod subscriptions;
pub mod ui;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

use crate::error::ApiError;
use crate::AppState;

/// Form-decodes a query string or body the way `URLSearchParams` does.
pub(crate) fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(input)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// `GET /healthz`: `200 ok` while the hub is open and its store answers;
/// `503` with the reason (and `Retry-After`) otherwise, so a load balancer
/// takes a node whose store is unreachable out of rotation.
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.hub.health().await {
        Ok(()) => Ok("ok\n"),
        Err(why) => Err(ApiError::Unavailable(why.to_string())),
    }
}

/// `GET /metrics`: every metric (`crate::metrics`), in the Prometheus
/// text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            )],
            body,
        )
            .into_response(),
        // Only a collector can fail, and none of ours does.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /`: what this server is, and where to go next.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// `OPTIONS /.well-known/mercure`: a CORS preflight (the CORS layer adds
/// the headers for allowed origins).
pub async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}
