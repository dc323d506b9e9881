//! `ApiError`: every HTTP error the hub answers, in one `IntoResponse`.
//!
//! Token failures carry an RFC 6750 `WWW-Authenticate: Bearer` challenge;
//! other errors are a one-line `text/plain` reason.
//!
//! The conversions from the hub's errors only choose the status and the
//! text; a 503 is logged once, where it is answered (`into_response`), so
//! a `?` never logs as a side effect. Every 503 and 429 says when to try
//! again ([`RETRY_AFTER_SECS`]): a publisher that retries then, during a
//! store outage or while a node restarts, gets its update stored instead
//! of hammering.

use axum::response::{IntoResponse, Response};
use herald_hub::{PublishError, SubscribeError};
use http::{header, HeaderValue, StatusCode};

use crate::auth::AuthError;

/// The `Retry-After` of every 503 and 429, in seconds: long enough for a
/// store to come back or a load balancer to notice a node is gone, short
/// enough that a publisher's retry is not a noticeable delay.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// An error response.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request breaks a protocol rule.
    BadRequest(String),
    /// 413: the request exceeds a size limit.
    TooLarge(String),
    /// 409: the request conflicts with the hub's state (a custom id that a
    /// retained update already has).
    Conflict(String),
    /// 401/403/400 with a Bearer challenge.
    Auth(AuthError),
    /// 403 without a challenge: a credential that may not be used this way
    /// (a cookie on a cross-site publish).
    Forbidden(String),
    /// 404: the resource does not exist.
    NotFound(String),
    /// 408: the client took too long to send its request.
    Timeout(String),
    /// 429: connection limits.
    TooManyConnections(&'static str),
    /// 503: the store failed or the hub is shutting down.
    Unavailable(String),
}

impl ApiError {
    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Auth(err) => err.status(),
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ApiError {
    /// The reason, as the response's text says it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::BadRequest(why)
            | ApiError::TooLarge(why)
            | ApiError::Conflict(why)
            | ApiError::Forbidden(why)
            | ApiError::NotFound(why)
            | ApiError::Timeout(why)
            | ApiError::Unavailable(why) => f.write_str(why),
            ApiError::TooManyConnections(why) => f.write_str(why),
            ApiError::Auth(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::Auth(err)
    }
}

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::Invalid(rule) => ApiError::BadRequest(rule.to_string()),
            PublishError::TooLarge(limit) => ApiError::TooLarge(limit.to_string()),
            err @ PublishError::DuplicateId(_) => ApiError::Conflict(err.to_string()),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl From<SubscribeError> for ApiError {
    fn from(err: SubscribeError) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Auth(err) => {
                let mut response = (status, err.to_string()).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, err.www_authenticate(None));
                // The hub's routes add the metadata URL to the challenge
                // (`routes::metadata`), from this.
                response.extensions_mut().insert(err.clone());
                return response;
            }
            // The hub cannot serve (its store failed, or it is closing):
            // the operator needs to know, the client only gets the text.
            ApiError::Unavailable(why) => tracing::warn!("answering 503: {why}"),
            _ => {}
        }
        let retry_later = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        );
        let text = self.to_string();
        let mut response = (status, format!("{text}\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if retry_later {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
