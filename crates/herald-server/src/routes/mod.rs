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

/// Form-decodes a query string or body the way `URLSearchParams` does
/// (`&`-separated, the first `=` splits, `+` is a space, `%XX` a byte, an
/// invalid escape stays as it is), except that a name or value whose bytes
/// are not UTF-8 once decoded is refused with a 400, as draft-08 requires,
/// where `URLSearchParams` would put U+FFFD in their place.
pub(crate) fn form_pairs(input: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    fn decode(part: &[u8]) -> Result<String, ApiError> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).map_err(|_| {
            ApiError::BadRequest("a parameter is not valid UTF-8 once percent-decoded".to_owned())
        })
    }
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
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

#[cfg(test)]
mod tests {
    use super::form_pairs;

    fn pairs(input: &str) -> Vec<(String, String)> {
        form_pairs(input.as_bytes()).unwrap()
    }

    #[test]
    fn decodes_as_url_search_params_does() {
        // The oracle: the WHATWG parser, for every input it decodes to UTF-8.
        for input in [
            "a=1&b=2",
            "a+b=c+d&&e",
            "match=https%3A%2F%2Fx%2F%7Bid%7D&x=%zz&y=%4",
            "=v&k=&k2",
            "t=%C3%A9%E2%9C%93",
            "a=b=c",
        ] {
            let whatwg: Vec<(String, String)> = url::form_urlencoded::parse(input.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(pairs(input), whatwg, "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_utf8_once_decoded() {
        for input in ["match=%FF", "topic=%C3", "%FE=x", "a=1&b=%ED%A0%80"] {
            assert!(form_pairs(input.as_bytes()).is_err(), "{input}");
        }
    }
}
