//! `GET /.well-known/mercure`: open an event stream.
//!
//! Matchers come from `match` / `match_exact` / `match_urlpattern` (and, in
//! legacy mode only, `topic`, a URI template selector); every other name in the
//! reserved `match` namespace is refused, as are values breaking the text
//! rules or the size limits. The cursor comes from `Last-Event-ID`, else
//! `last_event_id`, else the legacy `lastEventID`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use herald_hub::matcher::{Matcher, MatcherKind};
use herald_hub::{SubscribeError, SubscribeRequest};
use herald_proto::Encoder;
use http::{header, HeaderValue, StatusCode};
use tokio::sync::Notify;

use crate::auth::{self, AuthError};
use crate::config::Compression;
use crate::gzip;
use crate::lean::DirectSocket;
use crate::listener::ConnectionHandle;
use crate::metrics::StoreOp;
use crate::routes::form_pairs;
use crate::sse::EventStreamBody;
use crate::{ApiError, AppState, ServerConfig};
use url::Url;

/// The most URI template expressions (legacy `topic=` selectors) one
/// subscription may hold. The dispatcher evaluates a template subscriber's
/// matchers for every update, at about one pass over the topic per
/// expression: 128 templates of 16 expressions against a 2 KB topic took
/// 41 ms per update (release build), 64 expressions in all about 1 ms.
pub const MAX_TEMPLATE_EXPRESSIONS_PER_SUBSCRIPTION: usize = 64;

/// The parsed subscribe query.
struct Query {
    matchers: Vec<Matcher>,
    last_event_id: Option<String>,
    legacy: bool,
    pairs: Vec<(String, String)>,
}

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match subscribe(state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// What the connection under a stream request says of it.
pub(crate) struct StreamConnection {
    /// The client's address, for the per-address caps (`None` when the
    /// router is served without connect info).
    pub peer: Option<IpAddr>,
    /// How the hub closes the connection of a subscriber that fell too far
    /// behind (`None` outside Herald's own accept loop).
    pub on_lag: Option<Arc<Notify>>,
    /// The lean path's plain socket, which the hub may write live frames
    /// to directly.
    pub direct: Option<DirectSocket>,
}

impl StreamConnection {
    pub(crate) fn of(request: &Request) -> Self {
        StreamConnection {
            peer: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
            on_lag: request
                .extensions()
                .get::<ConnectionHandle>()
                .map(|handle| Arc::clone(&handle.kill)),
            direct: request.extensions().get::<DirectSocket>().cloned(),
        }
    }
}

async fn subscribe(state: AppState, request: Request) -> Result<Response, ApiError> {
    let StreamConnection {
        peer,
        on_lag,
        direct,
    } = StreamConnection::of(&request);
    let headers = request.headers();
    let compressible = state.config.compression == Compression::Gzip;
    let gzip = compressible && gzip::accepts_gzip(headers);
    let query = parse_query(
        request.uri().query().unwrap_or(""),
        state.hub.url(),
        &state.config,
    )?;

    let token = auth::extract_token(headers, &query.pairs, &state.config.auth)?;
    let claims = match token {
        Some(presented) => Some(state.auth.authenticate(&presented.token)?),
        None if state.config.allow_anonymous => None,
        None => return Err(AuthError::missing_token().into()),
    };

    // The header wins over the query (draft-08 and legacy alike). Browsers
    // send the id they last received as UTF-8, whatever its characters; a
    // value that is not UTF-8 cannot name an event and resumes with a gap
    // report like any unknown id (a 400 would end an EventSource for good).
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        None => query.last_event_id,
    };

    let guard = state.subscriptions.acquire(peer)?;

    let expires_at = claims.as_ref().and_then(|c| c.expires_at);
    // A compressed stream's frames go through its compressor: the hub
    // cannot write them itself.
    let direct = direct
        .filter(|_| !gzip)
        .map(|socket| socket.writer(expires_at));
    let subscription = state
        .hub
        .subscribe(SubscribeRequest {
            matchers: query.matchers,
            grants: claims.map(|c| c.grants),
            last_event_id,
            on_lag,
            direct,
        })
        .await
        .inspect_err(|err| {
            if let SubscribeError::Store(_) = err {
                state.metrics.store_failed(StoreOp::Read);
            }
        })?;

    let resume_header = subscription
        .resume_point()
        .header_value()
        .map(str::to_owned);
    tracing::debug!(
        ?peer,
        resume = ?subscription.resume_point(),
        "subscription opened"
    );
    let mut body = EventStreamBody::new(
        Encoder::retry(state.config.retry_ms),
        subscription,
        expires_at,
        state.metrics.bytes_written(),
        Some(guard),
    );
    if gzip {
        body = body.gzip();
    }
    let mut response = Response::new(axum::body::Body::new(body));
    *response.status_mut() = StatusCode::OK;
    stream_headers(&mut response, resume_header.as_deref(), query.legacy);
    let headers = response.headers_mut();
    if compressible {
        // Caches must not serve one client's encoding to another.
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// The topic matchers of a subscribe query string, as the route compiles
/// them for a hub at `base` under `config`'s limits (exposed for fuzzing and
/// for front ends that check a query before they connect).
///
/// # Errors
///
/// [`ApiError::BadRequest`]: no matcher, too many, one too long or too
/// complex, an unsupported `match…` parameter, `topic` outside legacy mode.
pub fn parse_matchers(
    raw: &str,
    base: &Url,
    config: &ServerConfig,
) -> Result<Vec<Matcher>, ApiError> {
    parse_query(raw, base, config).map(|query| query.matchers)
}

fn parse_query(raw: &str, base: &Url, config: &ServerConfig) -> Result<Query, ApiError> {
    let pairs = form_pairs(raw.as_bytes())?;
    let mut matchers = Vec::new();
    let mut expressions = 0;
    let mut pattern_bytes = 0;
    let mut last_event_id = None;
    let mut legacy_last_event_id = None;
    let mut legacy = false;
    for (name, value) in &pairs {
        let kind = match name.as_str() {
            "match" | "match_exact" => MatcherKind::Exact,
            "match_urlpattern" => MatcherKind::UrlPattern,
            "topic" if config.legacy() => {
                legacy = true;
                MatcherKind::LegacySelector
            }
            "topic" => {
                return Err(ApiError::BadRequest(
                    "topic= is the legacy protocol's selector, accepted only in legacy mode: use match=TOPIC (or match_urlpattern=PATTERN)".into(),
                ));
            }
            "last_event_id" => {
                last_event_id.get_or_insert_with(|| value.clone());
                continue;
            }
            "lastEventID" => {
                legacy_last_event_id.get_or_insert_with(|| value.clone());
                continue;
            }
            other
                if other
                    .as_bytes()
                    .get(..5)
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"match")) =>
            {
                return Err(ApiError::BadRequest(format!(
                    "unsupported matcher parameter {other:?} (this hub supports match, match_exact and match_urlpattern)"
                )));
            }
            _ => continue,
        };
        if matchers.len() == config.max_matchers {
            return Err(ApiError::BadRequest(format!(
                "too many matchers (at most {})",
                config.max_matchers
            )));
        }
        // Checked before compiling: the compiled pattern is the cost.
        if kind == MatcherKind::UrlPattern && value != "*" {
            pattern_bytes += value.len();
            if pattern_bytes > config.max_pattern_bytes {
                return Err(ApiError::BadRequest(format!(
                    "URL patterns too large: more than {} bytes of them in one subscription (max_pattern_bytes)",
                    config.max_pattern_bytes
                )));
            }
        }
        let matcher = Matcher::with_max_len(kind, value, base, config.max_matcher_len)
            .map_err(|err| ApiError::BadRequest(format!("{name}={value:?}: {err}")))?;
        expressions += matcher.template_expressions();
        if expressions > MAX_TEMPLATE_EXPRESSIONS_PER_SUBSCRIPTION {
            return Err(ApiError::BadRequest(format!(
                "URI templates too complex: more than {MAX_TEMPLATE_EXPRESSIONS_PER_SUBSCRIPTION} expressions in one subscription"
            )));
        }
        matchers.push(matcher);
    }
    if matchers.is_empty() {
        return Err(ApiError::BadRequest(
            "no topic matcher: add match=TOPIC (or match_urlpattern=PATTERN)".into(),
        ));
    }
    if last_event_id.is_none() {
        if let Some(id) = legacy_last_event_id {
            legacy = true;
            last_event_id = Some(id);
        }
    }
    Ok(Query {
        matchers,
        last_event_id,
        legacy,
        pairs,
    })
}

/// The headers every event stream carries.
pub(crate) fn stream_headers(response: &mut Response, resume_header: Option<&str>, legacy: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(id) = resume_header.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
        headers.insert("mercure-last-event-id", id.clone());
        if legacy {
            // The legacy protocol named the response header like the request one.
            headers.insert("last-event-id", id);
        }
    }
}
