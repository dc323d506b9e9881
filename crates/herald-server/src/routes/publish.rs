//! `POST /.well-known/mercure`: publish an update.
//!
//! The body is `application/x-www-form-urlencoded` as the protocol says, or
//! JSON with the same fields as a convenience; a body of many events
//! (`text/event-stream`, `application/x-ndjson`) is a streaming publish
//! ([`publish_stream`]).
//!
//! What a request costs is decided from its headers, before a byte of the
//! body is read: the token is found and validated (and, when it came from
//! the cookie, the request's origin checked against CSRF); a
//! `Content-Length` over the limit is refused at once with 413; a caller
//! without a valid credential may make the hub read at most
//! [`UNAUTHORIZED_BODY_BYTES`]; and the whole body must arrive within
//! `body_timeout_secs` (else 408). The answers then follow the order the
//! protocol implies: malformed updates are 400/413 whatever the token (the
//! reserved-namespace and `*` rules say so explicitly), then a missing or
//! invalid token is 401 (a cross-site cookie 403), then a token without
//! `publish` on every topic is 403.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use herald_hub::matcher::Topic;
use herald_hub::{PublishError, Update};
use http::{header, HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::auth::{self, AuthError, Claims, Via};
use crate::metrics::StoreOp;
use crate::publish_order::Turn;
use crate::routes::{form_pairs, publish_stream};
use crate::{ApiError, AppState};

/// The most body bytes the hub reads from a publish without a valid
/// credential: enough to answer a malformed update with the 400 the
/// protocol requires, too little to make holding many such bodies costly.
pub const UNAUTHORIZED_BODY_BYTES: usize = 16 * 1024;

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    // The request's head has just been read: its arrival, as near as the
    // route can tell (`herald_publish_duration_seconds` starts here).
    let arrived = Instant::now();
    match publish(state, request, arrived).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// Who is publishing, as the headers say.
pub(crate) enum Publisher {
    Token(Claims),
    Anonymous,
}

async fn publish(
    state: AppState,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // Held to the end: a request that ends before it publishes lets the
    // ones after it on its connection go.
    let turn = parts.extensions.get::<Turn>().and_then(Turn::take);
    let query = form_pairs(parts.uri.query().unwrap_or("").as_bytes())?;
    let publisher = publisher(&state, &parts.headers, &query);
    if let Some(format) = publish_stream::Format::of(&parts.headers) {
        return publish_stream::publish(state, format, query, publisher, body).await;
    }

    let max = state.config.max_body_bytes;
    let limit = match publisher {
        Ok(_) => max,
        Err(_) => UNAUTHORIZED_BODY_BYTES.min(max),
    };
    if let Some(length) = content_length(&parts.headers) {
        if length > max as u64 {
            return Err(ApiError::TooLarge(format!(
                "a body of {length} bytes (at most {max})"
            )));
        }
        if length > limit as u64 {
            return Err(refused(publisher));
        }
    }
    let timeout = state.config.body_timeout();
    let body = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) if limit < max => return Err(refused(publisher)),
        // Over the limit (chunked, or a lying Content-Length) or cut off.
        Ok(Err(_)) => return Err(ApiError::TooLarge(format!("a body over {max} bytes"))),
        Err(_) => {
            return Err(ApiError::Timeout(format!(
                "the body did not arrive within {}s",
                timeout.as_secs()
            )))
        }
    };

    let update = parse_update(parts.headers.get(header::CONTENT_TYPE), &body)?;
    let update = state.hub.validate(update)?;

    match publisher? {
        Publisher::Token(claims) => {
            let base = state.hub.url();
            let topics: Vec<Topic<'_>> = update
                .topics()
                .iter()
                .map(|t| Topic::new(t, base))
                .collect();
            if !claims.grants.may_publish_all(&topics) {
                return Err(AuthError::insufficient_scope().into());
            }
        }
        Publisher::Anonymous => {}
    }

    let publishing = match turn {
        Some(turn) => turn.publish(&state.hub, update).await,
        None => state.hub.publish(update).await,
    };
    let published = match publishing {
        Ok(published) => published,
        Err(err) => {
            if let PublishError::Store(_) = err {
                state.metrics.store_failed(StoreOp::Append);
            }
            return Err(err.into());
        }
    };
    state.metrics.publish_acknowledged(arrived);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        published.id.to_string(),
    )
        .into_response())
}

/// The publisher the headers name, or why they name none that may publish.
fn publisher(
    state: &AppState,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Publisher, ApiError> {
    match auth::extract_token(headers, query, &state.config.auth)? {
        Some(presented) => {
            let claims = state.auth.authenticate(&presented.token)?;
            if presented.via == Via::Cookie {
                state
                    .publish_origins
                    .check(headers)
                    .map_err(ApiError::Forbidden)?;
            }
            Ok(Publisher::Token(claims))
        }
        None if state.config.allow_anonymous_publish => Ok(Publisher::Anonymous),
        None => Err(AuthError::missing_token().into()),
    }
}

/// The error of a publisher refused before its body was read.
fn refused(publisher: Result<Publisher, ApiError>) -> ApiError {
    publisher
        .err()
        .unwrap_or_else(|| AuthError::missing_token().into())
}

/// The declared body length; `None` when absent or not a number (hyper
/// refuses a malformed `Content-Length` before the route runs).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Parses a publish body: JSON when the content type says so, else a form.
/// Checks the shape only; [`Update::validate`] checks the protocol rules.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for a body that is not a valid form or JSON
/// update.
pub fn parse_update(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<Update, ApiError> {
    let is_json = content_type.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        parse_json(body)
    } else {
        parse_form(body)
    }
}

fn parse_form(body: &[u8]) -> Result<Update, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::BadRequest("the body is not valid UTF-8".into()));
    }
    let mut update = Update::default();
    for (name, value) in form_pairs(body)? {
        match name.as_str() {
            "topic" => update.topics.push(value),
            "data" => update.data = value,
            "id" => update.id = Some(value),
            "type" => update.event_type = Some(value),
            "retry" => update.retry = Some(parse_retry(&value)?),
            // Presence alone makes an update private, whatever the value.
            "private" => update.private = true,
            // Unknown fields are ignored, for future extensions.
            _ => {}
        }
    }
    Ok(update)
}

/// The JSON form: `{"topic": "…" | ["…", …], "data": "…", "id": "…",
/// "type": "…", "retry": 3000 | "3000", "private": true}`.
#[derive(Deserialize)]
struct JsonUpdate {
    topic: OneOrMany,
    #[serde(default)]
    data: String,
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    retry: Option<JsonRetry>,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonRetry {
    Number(u64),
    Text(String),
}

fn parse_json(body: &[u8]) -> Result<Update, ApiError> {
    let json: JsonUpdate = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("invalid JSON body: {err}")))?;
    Ok(Update {
        topics: match json.topic {
            OneOrMany::One(topic) => vec![topic],
            OneOrMany::Many(topics) => topics,
        },
        data: json.data,
        id: json.id,
        event_type: json.event_type,
        retry: match json.retry {
            None => None,
            Some(JsonRetry::Number(n)) => Some(n),
            Some(JsonRetry::Text(text)) => Some(parse_retry(&text)?),
        },
        private: json.private,
    })
}

fn parse_retry(text: &str) -> Result<u64, ApiError> {
    herald_proto::parse_retry(text).map_err(|err| ApiError::BadRequest(err.to_string()))
}
