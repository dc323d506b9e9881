//! The route handlers, one module per Mercure operation, and the small
//! operational routes.

pub mod publish;
pub mod subscribe;

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

/// `GET /metrics`: the hub's counters in the Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.hub.stats();
    let body = format!(
        "# HELP herald_subscribers Subscribers connected now.\n\
         # TYPE herald_subscribers gauge\n\
         herald_subscribers {}\n\
         # HELP herald_subscriptions_total Subscriptions opened since start.\n\
         # TYPE herald_subscriptions_total counter\n\
         herald_subscriptions_total {}\n\
         # HELP herald_published_total Updates published since start.\n\
         # TYPE herald_published_total counter\n\
         herald_published_total {}\n\
         # HELP herald_delivered_total Frames queued to subscribers (live fan-out).\n\
         # TYPE herald_delivered_total counter\n\
         herald_delivered_total {}\n\
         # HELP herald_lagged_total Subscribers closed for falling too far behind.\n\
         # TYPE herald_lagged_total counter\n\
         herald_lagged_total {}\n\
         # HELP herald_gaps_total Resumes from an unknown or trimmed id.\n\
         # TYPE herald_gaps_total counter\n\
         herald_gaps_total {}\n\
         # HELP herald_store_follow_retries_total Times the live log was followed again after a store error.\n\
         # TYPE herald_store_follow_retries_total counter\n\
         herald_store_follow_retries_total {}\n",
        stats.subscribers,
        stats.subscriptions_total,
        stats.published,
        stats.delivered,
        stats.lagged,
        stats.gaps,
        stats.follow_retries
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
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
