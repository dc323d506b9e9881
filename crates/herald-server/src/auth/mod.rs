//! Authorization: finding a request's access token, validating it, and
//! turning it into [`Grants`](herald_hub::grant::Grants).
//!
//! Draft-08 tokens are RFC 9068 JWT access tokens (`typ: at+jwt`) whose
//! `authorization_details` grant `publish`/`subscribe` on topic matchers.
//! Each is checked against the configuration only: an allowlist of
//! algorithms (never `none`, never taken from the token), keys bound to one
//! algorithm and one issuer (a token is verified only with the keys of the
//! issuer its `iss` names), a required `exp`, `nbf` if present, and an `aud`
//! naming this hub. In legacy mode, pre-standardization tokens (any signed
//! JWT with a `mercure` claim) are also accepted from issuers marked
//! `legacy`.
//!
//! A request handler does three things:
//!
//! ```
//! use herald_server::auth::{extract_token, AuthConfig, AuthError, Authenticator};
//! # fn handler(headers: &http::HeaderMap, query: &[(String, String)]) -> Result<(), AuthError> {
//! let hub_url = url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
//! let config = AuthConfig::default();
//! let auth = Authenticator::new(&config, &hub_url).expect("valid configuration");
//!
//! // 1. Where is the token? (400 invalid_request if malformed)
//! match extract_token(headers, query, &config)? {
//!     // 2. Is it valid? (401 invalid_token otherwise)
//!     Some(presented) => {
//!         let claims = auth.authenticate(&presented.token)?;
//!         // 3. Does it grant the operation? (403 insufficient_scope otherwise)
//!         if !claims.grants.can_publish() {
//!             return Err(AuthError::insufficient_scope());
//!         }
//!     }
//!     // No token where one is required: 401 with a bare challenge.
//!     None => return Err(AuthError::missing_token()),
//! }
//! # Ok(())
//! # }
//! # handler(&http::HeaderMap::new(), &[]).unwrap_err();
//! ```
//!
//! and answers an [`AuthError`] with its [`status`](AuthError::status) and
//! [`www_authenticate`](AuthError::www_authenticate) challenge.
//!
//! # Limits
//!
//! Tokens longer than [`MAX_TOKEN_LEN`] bytes, with more than
//! [`MAX_AUTHORIZATION_DETAILS`] Mercure authorization details, more than
//! [`MAX_TOPICS_PER_DETAIL`] topics in one, or a matcher longer than
//! [`herald_hub::matcher::MAX_MATCHER_LEN`] are invalid tokens.

mod admin;
mod authenticator;
mod cache;
mod config;
mod details;
mod error;
mod presentation;

pub use admin::{admin_path, admin_topic, is_admin, ADMIN_TOPIC};
pub use authenticator::{Authenticator, Claims, MAX_TOKEN_LEN};
pub use config::{
    AuthConfig, AuthConfigError, IssuerConfig, KeyConfig, DEFAULT_ALGORITHMS, DEFAULT_COOKIE_NAME,
    DEFAULT_LEEWAY_SECS, DEFAULT_LEGACY_COOKIE_NAME,
};
pub use details::{
    MAX_AUTHORIZATION_DETAILS, MAX_AUTHORIZATION_DETAIL_ENTRIES, MAX_TOPICS_PER_DETAIL,
    MERCURE_DETAIL_TYPE,
};
pub use error::{AuthError, AuthErrorKind};
pub use presentation::{extract_token, Presented, Via, LEGACY_QUERY_PARAMETER};
