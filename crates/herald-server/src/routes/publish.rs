//! `POST /.well-known/mercure`: publish an update.
//!
//! The body is `application/x-www-form-urlencoded` as the protocol says, or
//! JSON with the same fields as a convenience. Checks run in the order the
//! protocol implies: malformed requests are 400/413 whatever the token
//! (the reserved-namespace and `*` rules say so explicitly), then a missing
//! or invalid token is 401, then a token without `publish` on every topic
//! is 403.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use herald_hub::matcher::Topic;
use herald_hub::Update;
use http::{header, HeaderValue};
use serde::Deserialize;

use crate::auth::{self, AuthError};
use crate::routes::form_pairs;
use crate::{ApiError, AppState};

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match publish(state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn publish(state: AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("request body over {limit} bytes")))?;
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        });
    let update = if is_json {
        parse_json(&body)?
    } else {
        parse_form(&body)?
    };
    update.validate(state.hub.url(), &state.hub.config().publish_limits)?;

    let query = form_pairs(parts.uri.query().unwrap_or("").as_bytes());
    let token = auth::extract_token(&parts.headers, &query, &state.config.auth)?;
    match token {
        Some(token) => {
            let claims = state.auth.authenticate(&token)?;
            let base = state.hub.url();
            let topics: Vec<Topic<'_>> =
                update.topics.iter().map(|t| Topic::new(t, base)).collect();
            if !claims.grants.may_publish_all(&topics) {
                return Err(AuthError::insufficient_scope().into());
            }
        }
        None if state.config.allow_anonymous_publish => {}
        None => return Err(AuthError::missing_token().into()),
    }

    let published = state.hub.publish(update).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        published.id.to_string(),
    )
        .into_response())
}

fn parse_form(body: &Bytes) -> Result<Update, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::BadRequest("the body is not valid UTF-8".into()));
    }
    let mut update = Update::default();
    for (name, value) in form_pairs(body) {
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

fn parse_json(body: &Bytes) -> Result<Update, ApiError> {
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
