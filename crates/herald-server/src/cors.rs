//! CORS for browser subscribers and publishers on other origins.
//!
//! Only origins on the configured allow-list get CORS headers, and only
//! they may send credentials (the token cookie). `*` on the list allows any
//! origin without credentials; an arbitrary origin is never reflected with
//! credentials, as draft-08 requires.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, Method};

use crate::AppState;

pub(crate) async fn apply(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        add_headers(
            response.headers_mut(),
            &origin,
            &state.config.cors_origins,
            preflight,
        );
    }
    response
}

fn add_headers(headers: &mut HeaderMap, origin: &HeaderValue, allowed: &[String], preflight: bool) {
    let listed = origin
        .to_str()
        .is_ok_and(|origin| allowed.iter().any(|a| a == origin));
    if listed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    } else if allowed.iter().any(|a| a == "*") {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else {
        return;
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mercure-Last-Event-ID, Last-Event-ID, WWW-Authenticate, Link"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Last-Event-ID, Cache-Control"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}
