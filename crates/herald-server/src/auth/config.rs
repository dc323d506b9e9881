//! Authorization settings: trusted issuers and their keys, the accepted
//! algorithms, the resource identifier, legacy support. One typed struct,
//! defaults in one place ([`AuthConfig::default`]), checked once at start-up
//! by [`Authenticator::new`](super::Authenticator::new).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The algorithms accepted when [`AuthConfig::algorithms`] is not given:
/// draft-08's recommended minimum (`EdDSA`, `ES256`, `RS256`) plus `HS256`
/// for self-issued tokens signed with a shared secret.
pub const DEFAULT_ALGORITHMS: [&str; 4] = ["HS256", "RS256", "ES256", "EdDSA"];

/// The draft-08 cookie name (`__Secure-` makes browsers send it only over
/// HTTPS).
pub const DEFAULT_COOKIE_NAME: &str = "__Secure-mercure_access_token";

/// The legacy protocol's cookie name.
pub const DEFAULT_LEGACY_COOKIE_NAME: &str = "mercureAuthorization";

/// Clock skew tolerated on `exp` and `nbf`, in seconds, by default.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;

/// How the hub validates access tokens.
// `Serialize` lets a test hold `docs/configuration.md` to these types.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The hub's resource identifier: every draft-08 token's `aud` must
    /// contain it (a legacy token's `aud` too, if it has one). Empty (the
    /// default) means the hub's URL, e.g.
    /// `https://hub.example.com/.well-known/mercure`.
    pub resource: String,
    /// The trusted token issuers, each with its verification keys. A token
    /// is verified only with the keys of the issuer its `iss` names. None
    /// (the default): every presented token is refused.
    pub issuers: Vec<IssuerConfig>,
    /// The signature algorithms accepted (`HS256`, `HS384`, `HS512`,
    /// `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`,
    /// `ES384`, `EdDSA`). `none` is never accepted. Default: `HS256`,
    /// `RS256`, `ES256`, `EdDSA`.
    pub algorithms: Vec<String>,
    /// Also accept pre-standardization tokens: any signed JWT (no `at+jwt`
    /// type) whose `mercure` claim lists `publish`/`subscribe` selectors,
    /// from issuers marked `legacy`, and the `mercureAuthorization` cookie.
    /// Default: off.
    pub legacy: bool,
    /// With `legacy`, also read the token from the legacy `authorization`
    /// query parameter. Tokens in URLs end up in logs and browser history:
    /// only for clients that can neither set a header nor a cookie.
    /// Default: off.
    pub legacy_query_token: bool,
    /// The cookie carrying the token. Default:
    /// `__Secure-mercure_access_token`.
    pub cookie_name: String,
    /// The cookie carrying a token in legacy mode (read when `cookie_name`
    /// is absent). Default: `mercureAuthorization`.
    pub legacy_cookie_name: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds. Default: 5.
    pub leeway_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            resource: String::new(),
            issuers: Vec::new(),
            algorithms: DEFAULT_ALGORITHMS.iter().map(|&a| a.to_owned()).collect(),
            legacy: false,
            legacy_query_token: false,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            legacy_cookie_name: DEFAULT_LEGACY_COOKIE_NAME.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

impl AuthConfig {
    /// Checks the settings and loads the keys, as
    /// [`Authenticator::new`](super::Authenticator::new) does at start-up
    /// (for a `--check`-style validation that builds nothing).
    pub fn validate(&self, hub_url: &url::Url) -> Result<(), AuthConfigError> {
        super::Authenticator::new(self, hub_url).map(drop)
    }
}

/// One trusted token issuer: an authorization server or a self-issuing
/// publisher, and the keys it signs with.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier a token's `iss` must equal exactly (e.g.
    /// `https://app.example.com`). May be empty only for a `legacy` issuer
    /// whose tokens carry no `iss`.
    #[serde(default)]
    pub issuer: String,
    /// Its verification keys (at least one); a token's `kid` picks among
    /// them.
    pub keys: Vec<KeyConfig>,
    /// This issuer signs legacy tokens (needs [`AuthConfig::legacy`]):
    /// legacy tokens naming it in `iss`, and legacy tokens with no `iss` at
    /// all, are verified with its keys. Default: off.
    #[serde(default)]
    pub legacy: bool,
}

/// One verification key, bound to one algorithm.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The algorithm this key verifies (`HS256`, `RS256`, `ES256`, `EdDSA`,
    /// …); tokens with another `alg` are never verified with it, which is
    /// what stops algorithm-confusion attacks.
    pub alg: String,
    /// The key id: a token whose `kid` header names it is verified with it
    /// (and with the issuer's keys that have no `kid`). Optional.
    #[serde(default)]
    pub kid: Option<String>,
    /// For `HS*`: the shared secret, as UTF-8 text, at least as many bytes
    /// as the hash (32 for `HS256`). Never serialized.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    /// For `RS*`, `PS*`, `ES*`, `EdDSA`: the public key, PEM text (`-----BEGIN
    /// PUBLIC KEY-----`; `RSA PUBLIC KEY` also works for RSA).
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Like `public_key_pem`, read from this file at start-up.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

impl KeyConfig {
    /// A shared-secret key (`HS256`, `HS384`, `HS512`).
    pub fn secret(alg: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            alg: alg.to_owned(),
            kid: None,
            secret: Some(secret.to_owned()),
            public_key_pem: None,
            public_key_file: None,
        }
    }

    /// A public key given as PEM text (`RS*`, `PS*`, `ES*`, `EdDSA`).
    pub fn public_pem(alg: &str, pem: &str) -> KeyConfig {
        KeyConfig {
            alg: alg.to_owned(),
            kid: None,
            secret: None,
            public_key_pem: Some(pem.to_owned()),
            public_key_file: None,
        }
    }
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a shared secret (configs get logged).
        f.debug_struct("KeyConfig")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("public_key_pem", &self.public_key_pem.as_ref().map(|_| "…"))
            .field("public_key_file", &self.public_key_file)
            .finish()
    }
}

/// An invalid [`AuthConfig`], with a message naming the setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfigError(pub(super) String);

impl fmt::Display for AuthConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthConfigError {}
