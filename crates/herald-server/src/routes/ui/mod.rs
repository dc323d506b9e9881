//! `/ui`: the web pages the hub serves about itself: the tester (`GET
//! /ui`: subscribe to a topic or any SSE URL, watch the events, publish)
//! and the dashboard (`GET /ui/dashboard`: live plots of the hub's
//! statistics, from the `GET /ui/stats` event stream, [`stats`]).
//!
//! Every file is in the binary (`include_bytes!` of
//! `crates/herald-server/assets/ui/`): no build step, nothing read from
//! disk or fetched from elsewhere at run time. The pages are plain HTML;
//! their scripts and styles are files of their own, so the
//! `Content-Security-Policy` can forbid inline code (`script-src 'self'`,
//! `style-src 'self'`): an event's data shown in the tester can never run
//! as script, whatever a publisher put in it.
//!
//! The two pages differ in one directive, `connect-src`: the tester's is
//! `*`, because watching "any other SSE URL" is its job (a cross-origin
//! `fetch` that the other server must allow by CORS); the dashboard's is
//! `'self'`, since it only reads this hub.
//!
//! Caching: pages are `no-cache` with an `ETag` (revalidated on every
//! load, `304` when unchanged, so a new hub version is seen at once);
//! scripts, styles and the vendored chart library are `public,
//! max-age=3600` with an `ETag`, as `/herald.js` is.

pub mod stats;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::routes::assets::{embedded, etag};

/// One embedded file.
struct File {
    /// Its name below `/ui/assets/` (pages: their own route).
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

macro_rules! file {
    ($name:literal, $type:literal) => {
        File {
            name: $name,
            body: include_bytes!(concat!("../../../assets/ui/", $name)),
            content_type: $type,
        }
    };
}

/// Every file of the UI: the pages first, then `/ui/assets/…`.
static FILES: [File; 10] = [
    file!("tester.html", "text/html; charset=utf-8"),
    file!("dashboard.html", "text/html; charset=utf-8"),
    file!("ui.css", "text/css; charset=utf-8"),
    file!("common.js", "text/javascript; charset=utf-8"),
    file!("tester.js", "text/javascript; charset=utf-8"),
    file!("dashboard.js", "text/javascript; charset=utf-8"),
    file!("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    file!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    file!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
    file!("favicon.svg", "image/svg+xml"),
];

const TESTER: usize = 0;
const DASHBOARD: usize = 1;

/// `"<crc32>-<length>"` of each file, quoted, in [`FILES`] order.
static ETAGS: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| FILES.iter().map(|file| etag(file.body)).collect());

/// The tester's policy: scripts, styles and images from the hub only, no
/// inline code, no frames, no plugins, no form posts; connections to any
/// `http(s)` URL (the SSE URL under test, which must allow it by CORS).
pub const TESTER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src *; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The dashboard's: the same, but it connects to this hub only.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `GET /ui`: the tester.
pub async fn tester(request_headers: HeaderMap) -> Response {
    page(TESTER, TESTER_CSP, &request_headers)
}

/// `GET /ui/dashboard`: the dashboard (its data needs the admin grant;
/// the page itself is public code).
pub async fn dashboard(request_headers: HeaderMap) -> Response {
    page(DASHBOARD, DASHBOARD_CSP, &request_headers)
}

/// `GET /ui/assets/{*name}`: a script, style sheet or vendored file.
pub async fn asset(Path(name): Path<String>, request_headers: HeaderMap) -> Response {
    match FILES
        .iter()
        .enumerate()
        .skip(DASHBOARD + 1)
        .find(|(_, file)| file.name == name)
    {
        Some((index, _)) => serve(index, "public, max-age=3600", &request_headers, |_| {}),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file in the hub's UI\n",
        )
            .into_response(),
    }
}

fn page(index: usize, csp: &'static str, request_headers: &HeaderMap) -> Response {
    serve(index, "no-cache", request_headers, |headers| {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // The tester's URL can hold a topic; another site need not see it.
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    })
}

/// One file with its caching headers, or `304` when `If-None-Match` names
/// its `ETag`.
fn serve(
    index: usize,
    cache_control: &'static str,
    request_headers: &HeaderMap,
    extra: impl FnOnce(&mut HeaderMap),
) -> Response {
    let file = &FILES[index];
    embedded(
        file.body,
        file.content_type,
        &ETAGS[index],
        cache_control,
        request_headers,
        extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    const HTML: &str = "text/html; charset=utf-8";

    #[test]
    fn content_types_follow_the_extension() {
        for file in &FILES {
            let expected = match file.name.rsplit('.').next() {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                Some("svg") => "image/svg+xml",
                _ => "text/plain; charset=utf-8",
            };
            assert_eq!(file.content_type, expected, "{}", file.name);
        }
        assert_eq!(FILES[TESTER].name, "tester.html");
        assert_eq!(FILES[DASHBOARD].name, "dashboard.html");
    }
}
