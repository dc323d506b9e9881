//! `GET /herald.js`: the browser client, served by the hub it talks to.
//!
//! The file is the npm package's own (`clients/js/herald.js`), embedded at
//! build time, so there is one copy of the source and the hub always
//! serves the client of its own version. The same URL is also the
//! client's `SharedWorker` script (the module detects a worker scope), so
//! no second route is needed.
//!
//! It is a public static file: `Access-Control-Allow-Origin: *` lets a page
//! on any origin import it as a module (module scripts are fetched in CORS
//! mode). Caching: `Cache-Control: public, max-age=3600` and a strong
//! `ETag` computed once from the content, so a revalidation after an hour
//! costs a `304` without a body. Rejected: a content hash in the URL
//! (`/herald.3f2a.js`) with an immutable cache; pages import `/herald.js`
//! by name and should get a new hub's client within the hour.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};

/// The client, as the package ships it.
pub const HERALD_JS: &str = include_str!("../../../../clients/js/herald.js");

/// How long browsers and caches may use the file without asking again.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The module's `ETag`, computed on first use.
static ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(HERALD_JS.as_bytes()));

/// `GET /herald.js` (and `HEAD`): the module, or `304 Not Modified` when
/// `If-None-Match` names its `ETag`.
pub async fn herald_js(request_headers: HeaderMap) -> Response {
    embedded(
        HERALD_JS.as_bytes(),
        "text/javascript; charset=utf-8",
        &ETAG,
        CACHE_CONTROL,
        &request_headers,
        |headers| {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        },
    )
}

/// A strong `ETag` for an embedded file: `"<crc32>-<length>"`, quoted.
pub(crate) fn etag(body: &[u8]) -> HeaderValue {
    let crc = crc32fast::hash(body);
    HeaderValue::from_str(&format!("\"{crc:08x}-{:x}\"", body.len()))
        .expect("hex digits are a valid header value")
}

/// An embedded file with its caching headers (`cache_control`, its `etag`,
/// `nosniff`, and what `extra` adds), or `304 Not Modified` without a body
/// when `If-None-Match` names the `etag`. The one way the hub serves its
/// static files (`/herald.js`, `/ui`).
pub(crate) fn embedded(
    body: &'static [u8],
    content_type: &'static str,
    etag: &HeaderValue,
    cache_control: &'static str,
    request_headers: &HeaderMap,
    extra: impl FnOnce(&mut HeaderMap),
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    extra(&mut headers);
    if matches(request_headers, etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (headers, body).into_response()
}

/// Whether `If-None-Match` holds `*` or `etag`, compared weakly (a `W/`
/// prefix is ignored) as RFC 9110 asks for this header.
fn matches(request_headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag)
}
