//! The hub's OAuth 2.0 Protected Resource Metadata (RFC 9728), as
//! draft-08 §"Protected Resource Metadata" describes it, and the
//! `resource_metadata` parameter every `WWW-Authenticate: Bearer`
//! challenge carries so a client can find it without configuration.
//!
//! The document is built once, at start: it says what the settings say
//! (the resource identifier tokens must name, the issuers that are
//! authorization servers, how a token may be presented), and changes only
//! with them.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue};
use serde_json::json;
use url::Url;

use crate::auth::{AuthError, Authenticator};
use crate::{AppState, ServerConfig};

/// The `authorization_details` type the hub understands (draft-08).
const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The document, and where it is served.
pub(crate) struct ResourceMetadata {
    /// Its path on the hub: `/.well-known/oauth-protected-resource` then
    /// the hub URL's path (RFC 9728 §3.1).
    path: String,
    /// Its absolute URL, for the challenges.
    url: String,
    document: Bytes,
}

impl ResourceMetadata {
    pub(crate) fn new(hub: &herald_hub::Hub, config: &ServerConfig, auth: &Authenticator) -> Self {
        let hub_url = hub.url();
        let path = format!(
            "/.well-known/oauth-protected-resource{}",
            hub_url.path().trim_end_matches('/')
        );
        let mut origin = hub_url.clone();
        origin.set_path("");
        origin.set_query(None);
        origin.set_fragment(None);
        let url = format!("{}{path}", origin.as_str().trim_end_matches('/'));
        // Authorization servers are named by https URLs (RFC 8414); a
        // self-issuing key (herald serve's local one, a shared secret
        // named otherwise) is not one.
        let servers: Vec<&str> = config
            .auth
            .issuers
            .iter()
            .map(|issuer| issuer.issuer.as_str())
            .filter(|issuer| Url::parse(issuer).is_ok_and(|url| url.scheme() == "https"))
            .collect();
        let mut document = json!({
            "resource": auth.resource(),
            "authorization_details_types_supported": [DETAIL_TYPE],
            "bearer_methods_supported": ["header"],
            "mercure_cookie": config.auth.cookie_name,
        });
        if !servers.is_empty() {
            document["authorization_servers"] = json!(servers);
        }
        if hub.subscriptions_path().is_some() {
            document["mercure_subscriptions"] = json!(true);
        }
        ResourceMetadata {
            path,
            url,
            document: Bytes::from(format!("{document}\n")),
        }
    }

    /// Where the document is served.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

/// `GET /.well-known/oauth-protected-resource/.well-known/mercure`.
pub(crate) async fn document(State(state): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            // Public by definition: any origin may read it.
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        state.metadata.document.clone(),
    )
        .into_response()
}

/// Gives every `WWW-Authenticate: Bearer` challenge its
/// `resource_metadata="…"`: each route's 401, 403 and 400 with a challenge
/// points to the document (draft-08 §"Error Responses" asks it of every
/// challenge, not only when no token came). The challenge is made again
/// from the [`AuthError`] the error response carries, with the URL.
pub(crate) async fn point_challenges(
    State(metadata): State<Arc<ResourceMetadata>>,
    mut response: Response,
) -> Response {
    if let Some(err) = response.extensions_mut().remove::<AuthError>() {
        let challenge = err.www_authenticate(Some(&metadata.url));
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}
