//! Where a request carries its access token (draft-08 "Presenting the
//! Access Token"; legacy "Authorization").
//!
//! In order: the `Authorization: Bearer` header, which wins over anything
//! else (cookies are ambient credentials, so a cookie beside a header is not
//! an error); in legacy mode with `legacy_query_token`, the `authorization`
//! query parameter (the legacy protocol ranks it above the cookie); then the
//! cookie. The RFC 6750 `access_token` query parameter is never read:
//! draft-08 forbids tokens in URLs.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

use super::config::AuthConfig;
use super::error::AuthError;

/// The legacy query parameter carrying a token.
pub const LEGACY_QUERY_PARAMETER: &str = "authorization";

/// A token and where the request carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// The compact JWT.
    pub token: String,
    /// Where it came from.
    pub via: Via,
}

/// Where a request carried its token.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Via {
    /// The `Authorization: Bearer` header, which a browser sends only when
    /// a script set it: not forgeable across sites.
    Header,
    /// The legacy `authorization` query parameter.
    Query,
    /// A cookie: an ambient credential the browser attaches to requests
    /// other sites make, so state-changing requests need a CSRF check.
    Cookie,
}

impl Presented {
    fn new(token: &str, via: Via) -> Self {
        Presented {
            token: token.to_owned(),
            via,
        }
    }
}

/// Finds the request's access token, if any, and where it was.
///
/// `query_pairs` are the request's decoded query parameters (only read for
/// the legacy `authorization` parameter).
///
/// # Errors
///
/// [`AuthError::invalid_request`] (400) when the presentation is malformed:
/// several `Authorization` headers, a scheme other than `Bearer`, `Bearer`
/// without a token or with characters RFC 6750 does not allow, several
/// legacy `authorization` parameters.
pub fn extract_token(
    headers: &HeaderMap,
    query_pairs: &[(String, String)],
    config: &AuthConfig,
) -> Result<Option<Presented>, AuthError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(malformed("several Authorization headers"));
        }
        let value = value
            .to_str()
            .map_err(|_| malformed("Authorization is not ASCII"))?;
        return bearer(value).map(|token| Some(Presented::new(token, Via::Header)));
    }

    if config.legacy && config.legacy_query_token {
        let mut tokens = query_pairs
            .iter()
            .filter(|(name, _)| name == LEGACY_QUERY_PARAMETER)
            .map(|(_, value)| value);
        if let Some(token) = tokens.next() {
            if tokens.next().is_some() {
                return Err(malformed("several authorization query parameters"));
            }
            if !is_b64token(token) {
                return Err(malformed(
                    "the authorization query parameter is not a token",
                ));
            }
            return Ok(Some(Presented::new(token, Via::Query)));
        }
    }

    let mut names = vec![config.cookie_name.as_str()];
    if config.legacy {
        names.push(config.legacy_cookie_name.as_str());
    }
    for name in names {
        if let Some(token) = cookie(headers, name) {
            return Ok(Some(Presented::new(token, Via::Cookie)));
        }
    }
    Ok(None)
}

/// `Bearer 1*SP b64token`, the scheme case-insensitive (RFC 9110 §11.1).
fn bearer(value: &str) -> Result<&str, AuthError> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed("Authorization scheme is not Bearer"));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(malformed("Bearer without a token"));
    }
    if !is_b64token(token) {
        return Err(malformed("the Bearer token has invalid characters"));
    }
    Ok(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The first non-empty cookie called `name` (several `Cookie` headers are
/// allowed in HTTP/2); an empty one counts as absent, as a cleared cookie.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
        .find(|v| !v.is_empty())
}

fn malformed(why: &str) -> AuthError {
    tracing::debug!(reason = why, "malformed token presentation");
    AuthError::invalid_request()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64tokens() {
        assert!(is_b64token("abc.DEF-_~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token(""));
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer("bearer  abc").unwrap(), "abc");
        assert_eq!(bearer("BEARER abc ").unwrap(), "abc");
        assert!(bearer("Bearer").is_err());
        assert!(bearer("Bearer ").is_err());
        assert!(bearer("Basic abc").is_err());
        assert!(bearer("Bearerabc").is_err());
        assert!(bearer("Bearer a b").is_err());
    }
}
