//! `GET /.well-known/mercure/subscriptions[/{match_type}/{match}[/{subscriber}]]`:
//! the subscriptions API of draft-08 ("Active Subscriptions"), when the hub
//! runs with subscription events on (404 otherwise, as for any unknown
//! path).
//!
//! Authorization is the draft's: a token must grant `subscribe` on the
//! requested path, taken as a topic (what the path names are the topics of
//! the subscription events it lists, so one grant covers both). The answer
//! is JSON, with the cursor to follow the changes from in the `Link`
//! header's `last-event-id` (see `herald_hub::Hub::active_subscriptions`
//! for why subscribing from it has no gap and no duplicate).
//!
//! Every byte of the path is the client's: segments are split before they
//! are percent-decoded (a matcher holds `/`, encoded), a segment that does
//! not decode to UTF-8 is a 404 like any path naming nothing, and the
//! decoded values only ever look up the table.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use herald_hub::matcher::Topic;
use herald_hub::{Snapshot, SubscriptionsScope};
use http::{header, HeaderValue, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::json;

use crate::auth::{self, AuthError};
use crate::routes::form_pairs;
use crate::{ApiError, AppState, MERCURE_PATH};

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match answer(&state, &request) {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

fn answer(state: &AppState, request: &Request) -> Result<Response, ApiError> {
    let hub = &state.hub;
    let Some(root) = hub.subscriptions_path() else {
        return Err(ApiError::NotFound(
            "the hub does not publish active subscriptions (run it with subscriptions on)".into(),
        ));
    };
    // The route is `MERCURE_PATH/subscriptions…`; the topic is the same
    // under the hub URL's own path (they differ behind a rewriting proxy).
    let rest = request
        .uri()
        .path()
        .strip_prefix(MERCURE_PATH)
        .and_then(|rest| rest.strip_prefix("/subscriptions"))
        .unwrap_or_default();
    let topic = format!("{root}{rest}");
    let segments = decode_segments(rest).ok_or_else(not_found)?;
    let scope = match segments.as_slice() {
        [] => SubscriptionsScope::All,
        [match_type, matcher] => SubscriptionsScope::Matcher {
            match_type,
            matcher,
        },
        [match_type, matcher, subscriber] => SubscriptionsScope::One {
            match_type,
            matcher,
            subscriber,
        },
        _ => return Err(not_found()),
    };

    let pairs = form_pairs(request.uri().query().unwrap_or("").as_bytes())?;
    let token = auth::extract_token(request.headers(), &pairs, &state.config.auth)?
        .ok_or_else(AuthError::missing_token)?;
    let claims = state.auth.authenticate(&token.token)?;
    if !claims.grants.may_read(&[Topic::new(&topic, hub.url())]) {
        return Err(AuthError::insufficient_scope().into());
    }

    let snapshot = hub.active_subscriptions(scope).ok_or_else(not_found)?;
    let body = match scope {
        SubscriptionsScope::One { .. } => match snapshot.subscriptions.first() {
            Some(doc) => serde_json::to_value(&**doc),
            None => return Err(not_found()),
        },
        _ => serde_json::to_value(
            snapshot
                .subscriptions
                .iter()
                .map(|doc| &**doc)
                .collect::<Vec<_>>(),
        )
        .map(|subscriptions| {
            json!({
                "id": topic,
                "type": "subscriptions",
                "subscriptions": subscriptions,
            })
        }),
    }
    .map_err(|error| ApiError::Unavailable(format!("cannot encode the subscriptions: {error}")))?;
    let if_none_match = request.headers().get(header::IF_NONE_MATCH);
    Ok(respond(state, &snapshot, body, if_none_match))
}

/// The path after `…/subscriptions`, split at `/` and each segment
/// percent-decoded: `None` if it is not `""` or `/seg…` with non-empty
/// UTF-8 segments.
fn decode_segments(rest: &str) -> Option<Vec<String>> {
    if rest.is_empty() || rest == "/" {
        return Some(Vec::new());
    }
    rest.strip_prefix('/')?
        .split('/')
        .map(|segment| {
            let decoded = percent_decode_str(segment).decode_utf8().ok()?;
            (!decoded.is_empty()).then(|| decoded.into_owned())
        })
        .collect()
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such subscription".into())
}

/// The JSON answer with its headers: the cursor on the `rel="mercure"`
/// link, and an `ETag` of it (the table changes only with an event, and
/// every event moves the cursor); `304 Not Modified` without the body when
/// `If-None-Match` names that tag.
fn respond(
    state: &AppState,
    snapshot: &Snapshot,
    body: serde_json::Value,
    if_none_match: Option<&HeaderValue>,
) -> Response {
    let cursor = snapshot
        .last_event_id
        .as_deref()
        .unwrap_or(herald_hub::EARLIEST);
    let link = format!(
        "<{}>; rel=\"mercure\"; {}; type=\"mercure\"; content-type=\"application/json\"",
        state.hub.url(),
        link_param("last-event-id", cursor)
    );
    let etag = format!("\"{}\"", utf8_percent_encode(cursor, NON_ALPHANUMERIC));
    let mut response = if if_none_match.is_some_and(|tags| matches_tag(tags, &etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = (StatusCode::OK, format!("{body}\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("must-revalidate"),
    );
    // Both are built from visible ASCII only (below), so they are valid
    // header values; should one not be, the answer goes without it.
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// Whether an `If-None-Match` value names `etag` (RFC 9110 §13.1.2: `*`,
/// or a list of tags compared weakly, `W/` ignored).
fn matches_tag(if_none_match: &HeaderValue, etag: &str) -> bool {
    let Ok(tags) = if_none_match.to_str() else {
        return false;
    };
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// A link parameter: a quoted string when the value is printable ASCII
/// (with `"` and `\` escaped), else the RFC 8187 form `name*=UTF-8''…`, so
/// any event id can travel in a header.
fn link_param(name: &str, value: &str) -> String {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{name}=\"{escaped}\"")
    } else {
        format!(
            "{name}*=UTF-8''{}",
            utf8_percent_encode(value, NON_ALPHANUMERIC)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_split_then_decoded() {
        assert_eq!(decode_segments(""), Some(vec![]));
        assert_eq!(
            decode_segments("/exact/https%3A%2F%2Fa.example%2Fb"),
            Some(vec!["exact".into(), "https://a.example/b".into()])
        );
        assert_eq!(decode_segments("/exact//x"), None, "an empty segment");
        assert_eq!(decode_segments("/exact/%FF"), None, "not UTF-8");
        assert_eq!(decode_segments("exact"), None);
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let tag = "\"urn%3Auuid%3A1\"";
        for (header, expected) in [
            ("\"urn%3Auuid%3A1\"", true),
            ("W/\"urn%3Auuid%3A1\"", true),
            ("\"x\", \"urn%3Auuid%3A1\"", true),
            ("*", true),
            ("\"urn%3Auuid%3A2\"", false),
            ("", false),
        ] {
            let value = HeaderValue::from_str(header).unwrap();
            assert_eq!(matches_tag(&value, tag), expected, "{header}");
        }
    }

    #[test]
    fn link_parameters_carry_any_id() {
        assert_eq!(
            link_param("last-event-id", "urn:uuid:1"),
            "last-event-id=\"urn:uuid:1\""
        );
        assert_eq!(
            link_param("last-event-id", "a\"b\\"),
            "last-event-id=\"a\\\"b\\\\\""
        );
        assert_eq!(
            link_param("last-event-id", "é"),
            "last-event-id*=UTF-8''%C3%A9"
        );
    }
}
