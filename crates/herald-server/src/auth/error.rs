//! Authorization failures and their RFC 6750 `WWW-Authenticate` challenges.
//!
//! Draft-08 "Error Responses" maps every token failure onto four answers;
//! [`AuthError`] is exactly those four, with nothing said about *why* a
//! token failed (so a client learns nothing by probing: an expired token
//! and a forged one look the same). The reason goes to the log at `debug`.

use std::fmt;

use http::{HeaderValue, StatusCode};

/// Why a presented token was refused, in a few words (`"expired"`,
/// `"unknown issuer \"…\""`). Logged at `debug` and never sent: every
/// refusal is answered as [`AuthError::invalid_token`].
pub(super) type RefusalReason = String;

/// Which of the four authorization failures this is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// No token was presented and the operation needs one: 401, a bare
    /// `Bearer` challenge (no error code).
    MissingToken,
    /// A token was presented and failed validation: 401,
    /// `error="invalid_token"`.
    InvalidToken,
    /// A valid token does not grant the operation: 403,
    /// `error="insufficient_scope"`.
    InsufficientScope,
    /// The token's presentation is malformed (e.g. `Authorization: Bearer`
    /// without a token, another scheme): 400, `error="invalid_request"`.
    InvalidRequest,
}

/// An authorization failure, answered with [`AuthError::status`] and the
/// [`AuthError::www_authenticate`] challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    kind: AuthErrorKind,
}

impl AuthError {
    /// No token, and the operation requires one.
    pub fn missing_token() -> AuthError {
        AuthError {
            kind: AuthErrorKind::MissingToken,
        }
    }

    /// The presented token is not valid (for any reason).
    pub fn invalid_token() -> AuthError {
        AuthError {
            kind: AuthErrorKind::InvalidToken,
        }
    }

    /// The token is valid but does not grant the operation.
    pub fn insufficient_scope() -> AuthError {
        AuthError {
            kind: AuthErrorKind::InsufficientScope,
        }
    }

    /// The token's presentation is malformed.
    pub fn invalid_request() -> AuthError {
        AuthError {
            kind: AuthErrorKind::InvalidRequest,
        }
    }

    /// Which failure this is.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The response status: 401, 403 or 400.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            AuthErrorKind::MissingToken | AuthErrorKind::InvalidToken => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        }
    }

    /// The RFC 6750 error code, `None` for a missing token (RFC 6750 §3.1:
    /// a request without credentials gets no error code).
    pub fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            AuthErrorKind::MissingToken => None,
            AuthErrorKind::InvalidToken => Some("invalid_token"),
            AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
            AuthErrorKind::InvalidRequest => Some("invalid_request"),
        }
    }

    /// The `WWW-Authenticate` value: `Bearer`, or `Bearer error="…"`, with
    /// `resource_metadata="…"` (RFC 9728) appended when the URL of the hub's
    /// protected resource metadata is given:
    ///
    /// ```
    /// use herald_server::auth::AuthError;
    /// assert_eq!(AuthError::missing_token().www_authenticate(None), "Bearer");
    /// assert_eq!(
    ///     AuthError::invalid_token().www_authenticate(Some("https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure")),
    ///     "Bearer error=\"invalid_token\", resource_metadata=\"https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure\"",
    /// );
    /// ```
    ///
    /// A metadata URL that cannot be carried in a header (control
    /// characters) is left out rather than failing the response.
    pub fn www_authenticate(&self, resource_metadata_url: Option<&str>) -> HeaderValue {
        let mut params = Vec::with_capacity(2);
        if let Some(code) = self.error_code() {
            params.push(format!("error=\"{code}\""));
        }
        let base = challenge(&params);
        if let Some(url) = resource_metadata_url {
            params.push(format!("resource_metadata={}", quoted_string(url)));
            if let Ok(value) = HeaderValue::from_str(&challenge(&params)) {
                return value;
            }
        }
        HeaderValue::from_str(&base).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

fn challenge(params: &[String]) -> String {
    if params.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", params.join(", "))
    }
}

/// An RFC 9110 quoted-string: `"` and `\` escaped.
fn quoted_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            AuthErrorKind::MissingToken => "an access token is required",
            AuthErrorKind::InvalidToken => "the access token is not valid",
            AuthErrorKind::InsufficientScope => "the access token does not grant this operation",
            AuthErrorKind::InvalidRequest => "the access token is not presented correctly",
        })
    }
}

impl std::error::Error for AuthError {}
