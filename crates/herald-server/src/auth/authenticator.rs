//! Access-token validation: draft-08 "Token Validation" step by step, and
//! the legacy mode's looser rules.
//!
//! Why we parse the JWS ourselves and call `jsonwebtoken` only to check the
//! signature: `jsonwebtoken::decode` needs the key before it reads the
//! claims, but the key depends on the token's `iss` (keys are bound to
//! issuers, never pooled), and its claim checks cannot express `typ`, the
//! `crit` header, an injectable clock, or `exp` required for one kind of
//! token and optional for another. So: decode the header and payload
//! (untrusted), pick candidate keys from configuration only (by `iss`, the
//! configured algorithm of each key, then `kid`), verify the signature with
//! `jsonwebtoken::crypto::verify`, and only then trust and check the claims.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use herald_hub::grant::Grants;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use url::Url;

use super::cache::TokenCache;
use super::config::{AuthConfig, AuthConfigError, IssuerConfig, KeyConfig};
use super::details;
use super::error::{AuthError, RefusalReason};

/// The longest token accepted, in bytes (longer: invalid token).
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// What a valid token says about its bearer.
#[derive(Clone, Debug)]
pub struct Claims {
    /// The `iss` claim (always set for draft-08 tokens).
    pub issuer: Option<String>,
    /// The `sub` claim: who the bearer is.
    pub subject: Option<String>,
    /// The `exp` claim: a subscription must be closed by then. Always set
    /// for draft-08 tokens.
    pub expires_at: Option<SystemTime>,
    /// What the token permits.
    pub grants: Grants,
    /// Whether this was a legacy (`mercure` claim) token.
    pub legacy: bool,
}

/// Validates access tokens against the configured issuers and keys. Build
/// it once at start-up ([`Authenticator::new`]) and share it.
pub struct Authenticator {
    resource: String,
    hub_url: Url,
    algorithms: Vec<Algorithm>,
    issuers: Vec<Issuer>,
    legacy: bool,
    leeway_secs: u64,
    cache: TokenCache,
}

struct Issuer {
    id: String,
    legacy: bool,
    keys: Vec<Key>,
}

struct Key {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

/// A compact JWS split into its three base64url parts; nothing decoded.
struct Jws<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// `header.payload`: what the signature covers.
    signed: &'t str,
}

impl<'t> Jws<'t> {
    /// Checks the length and the three parts.
    fn split(token: &'t str) -> Result<Jws<'t>, RefusalReason> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!("longer than {MAX_TOKEN_LEN} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS (three parts)".into());
        };
        Ok(Jws {
            header,
            payload,
            signature,
            signed: &token[..header.len() + 1 + payload.len()],
        })
    }
}

/// What a token's header says, once checked against the configuration.
struct Header {
    alg: Algorithm,
    /// `typ` is `at+jwt`: a draft-08 access token (else a legacy one).
    draft: bool,
    kid: Option<String>,
}

/// A token whose signature a configured key verified.
struct Verified {
    /// The payload, trusted.
    claims: Map<String, Value>,
    /// Its `iss` claim.
    issuer: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("resource", &self.resource)
            .field("algorithms", &self.algorithms)
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| (&i.id, i.keys.len()))
                    .collect::<Vec<_>>(),
            )
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks `config` and loads its keys. `hub_url` is the hub's URL: the
    /// resource identifier when [`AuthConfig::resource`] is empty, and the
    /// base of relative URL patterns in tokens.
    ///
    /// # Errors
    ///
    /// An unknown algorithm or `none`; an empty algorithm list; a key whose
    /// algorithm is not allowed, that does not fit its algorithm (a PEM for
    /// `HS256`, a P-384 key for `ES256`, an unreadable PEM), or a too short
    /// HMAC secret; an issuer without keys, without an identifier (unless
    /// legacy) or listed twice; legacy settings without `legacy`; an invalid
    /// cookie name.
    pub fn new(config: &AuthConfig, hub_url: &Url) -> Result<Authenticator, AuthConfigError> {
        let err = |msg: String| Err(AuthConfigError(msg));
        if config.algorithms.is_empty() {
            return err("auth.algorithms is empty: no token could be accepted".into());
        }
        let mut algorithms = Vec::with_capacity(config.algorithms.len());
        for name in &config.algorithms {
            let alg = parse_algorithm(name)
                .map_err(|msg| AuthConfigError(format!("auth.algorithms: {msg}")))?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if config.legacy_query_token && !config.legacy {
            return err("auth.legacy_query_token needs auth.legacy".into());
        }
        for (setting, name) in [
            ("cookie_name", &config.cookie_name),
            ("legacy_cookie_name", &config.legacy_cookie_name),
        ] {
            if !is_cookie_name(name) {
                return err(format!(
                    "auth.{setting} {name:?} is not a valid cookie name"
                ));
            }
        }

        let mut issuers: Vec<Issuer> = Vec::with_capacity(config.issuers.len());
        for (i, issuer) in config.issuers.iter().enumerate() {
            let where_ = format!("auth.issuers[{i}] ({:?})", issuer.issuer);
            let loaded = load_issuer(issuer, &algorithms)
                .map_err(|msg| AuthConfigError(format!("{where_}: {msg}")))?;
            if issuer.legacy && !config.legacy {
                return err(format!("{where_}: legacy issuers need auth.legacy"));
            }
            if issuers.iter().any(|other| other.id == loaded.id) {
                return err(format!("{where_}: listed twice"));
            }
            issuers.push(loaded);
        }
        if config.legacy && !issuers.iter().any(|i| i.legacy) {
            return err("auth.legacy needs at least one issuer with legacy = true".into());
        }

        let resource = if config.resource.is_empty() {
            hub_url.as_str().to_owned()
        } else {
            config.resource.clone()
        };
        Ok(Authenticator {
            resource,
            hub_url: hub_url.clone(),
            algorithms,
            issuers,
            legacy: config.legacy,
            leeway_secs: config.leeway_secs,
            cache: TokenCache::default(),
        })
    }

    /// The resource identifier tokens' `aud` must contain.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Validates `token` now. Every failure is the same
    /// [`AuthError::invalid_token`]; the reason is logged at `debug`.
    ///
    /// A token that passed before is answered from a cache until its `exp`
    /// (a publisher reuses one token for many publishes; the signature
    /// check is the costly part).
    pub fn authenticate(&self, token: &str) -> Result<Claims, AuthError> {
        let now = SystemTime::now();
        if let Some(claims) = self.cache.get(token, now) {
            return Ok(claims);
        }
        let claims = self.authenticate_at(token, now)?;
        self.cache.insert(
            token,
            &claims,
            std::time::Duration::from_secs(self.leeway_secs),
        );
        Ok(claims)
    }

    /// Validates `token` as of `now` (for tests and replays).
    pub fn authenticate_at(&self, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
        self.validate(token, now).map_err(|why| {
            tracing::debug!(reason = %why, "access token refused");
            AuthError::invalid_token()
        })
    }

    /// Draft-08 "Token Validation", one phase after the other: split the
    /// compact JWS, check its header against the configuration, verify the
    /// signature with the keys of the issuer it names, then check the now
    /// trusted claims and read the grants. The first failure is the reason.
    fn validate(&self, token: &str, now: SystemTime) -> Result<Claims, RefusalReason> {
        let jws = Jws::split(token)?;
        let header = self.check_header(jws.header)?;
        let Verified { claims, issuer } = self.verify(&jws, &header)?;
        let expires_at = self.check_lifetime(&claims, header.draft, now)?;
        self.check_audience(&claims, header.draft)?;
        let subject = string_claim(&claims, "sub")?.map(str::to_owned);
        let grants = if header.draft {
            details::from_authorization_details(claims.get("authorization_details"), &self.hub_url)?
        } else {
            details::from_legacy_claim(claims.get("mercure"), &self.hub_url)?
        };
        Ok(Claims {
            issuer,
            subject,
            expires_at,
            grants,
            legacy: !header.draft,
        })
    }

    /// The protected header, checked against the configuration only.
    fn check_header(&self, encoded: &str) -> Result<Header, RefusalReason> {
        let header = decode_json(encoded).map_err(|e| format!("header: {e}"))?;
        // The algorithm: named by the token, but accepted only from the
        // configured allowlist, and only ever used with keys configured for
        // exactly that algorithm.
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("no string alg")?;
        let alg = parse_algorithm(alg_name)?;
        if !self.algorithms.contains(&alg) {
            return Err(format!("alg {alg_name} is not allowed"));
        }
        // RFC 7515 §4.1.11: extensions we do not understand must be refused,
        // and we understand none.
        if header.contains_key("crit") {
            return Err("crit header".into());
        }
        let draft = match header.get("typ") {
            None => false,
            Some(Value::String(typ)) => is_access_token_type(typ),
            Some(_) => return Err("typ is not a string".into()),
        };
        if !draft && !self.legacy {
            return Err("typ is not at+jwt".into());
        }
        let kid = string_claim(&header, "kid")?.map(str::to_owned);
        Ok(Header { alg, draft, kid })
    }

    /// Verifies the signature with the keys of the issuer the payload
    /// names, and returns the payload, trusted from then on.
    fn verify(&self, jws: &Jws<'_>, header: &Header) -> Result<Verified, RefusalReason> {
        // Untrusted until the signature is verified: read only to find the
        // issuer, hence the keys.
        let claims = decode_json(jws.payload).map_err(|e| format!("payload: {e}"))?;
        let issuer = string_claim(&claims, "iss")?;
        let keys = self.candidate_keys(header.draft, issuer, header.alg, header.kid.as_deref())?;
        let verified = keys.iter().any(|key| {
            jsonwebtoken::crypto::verify(jws.signature, jws.signed.as_bytes(), &key.key, header.alg)
                .unwrap_or(false)
        });
        if !verified {
            return Err("signature not verified by any key of the issuer".into());
        }
        let issuer = issuer.map(str::to_owned);
        Ok(Verified { claims, issuer })
    }

    /// `exp` (required for draft-08 tokens) and `nbf`, with the configured
    /// leeway. Returns when the token expires.
    fn check_lifetime(
        &self,
        claims: &Map<String, Value>,
        draft: bool,
        now: SystemTime,
    ) -> Result<Option<SystemTime>, RefusalReason> {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let leeway = self.leeway_secs as f64;
        let expires_at = match numeric_date(claims, "exp")? {
            Some(exp) => {
                if now_secs >= exp + leeway {
                    return Err("expired".into());
                }
                Some(
                    UNIX_EPOCH
                        .checked_add(Duration::from_secs_f64(exp))
                        .ok_or("exp out of range")?,
                )
            }
            None if draft => return Err("no exp".into()),
            None => None,
        };
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now_secs + leeway < nbf {
                return Err("not yet valid (nbf)".into());
            }
        }
        Ok(expires_at)
    }

    /// `aud` names this hub's resource identifier (required for draft-08
    /// tokens).
    fn check_audience(
        &self,
        claims: &Map<String, Value>,
        draft: bool,
    ) -> Result<(), RefusalReason> {
        match claims.get("aud") {
            None if draft => Err("no aud".into()),
            None => Ok(()),
            Some(Value::String(aud)) if *aud == self.resource => Ok(()),
            Some(Value::Array(auds)) => {
                if auds.iter().any(|a| !a.is_string()) {
                    return Err("aud holds a non-string".into());
                }
                if !auds.iter().any(|a| a.as_str() == Some(&self.resource)) {
                    return Err("aud does not name this hub".into());
                }
                Ok(())
            }
            Some(_) => Err("aud does not name this hub".into()),
        }
    }

    /// The configured keys that may verify this token: those of the issuer
    /// its `iss` names (exactly), for its algorithm, narrowed by `kid`.
    fn candidate_keys(
        &self,
        draft: bool,
        issuer: Option<&str>,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<&Key>, RefusalReason> {
        let keys: Vec<&Key> = match (draft, issuer) {
            (true, None) => return Err("no iss".into()),
            (true, Some(iss)) => self
                .issuers
                .iter()
                .find(|i| !i.id.is_empty() && i.id == iss)
                .ok_or_else(|| format!("unknown issuer {iss:?}"))?
                .keys
                .iter()
                .collect(),
            (false, Some(iss)) => self
                .issuers
                .iter()
                .find(|i| i.legacy && i.id == iss)
                .ok_or_else(|| format!("unknown legacy issuer {iss:?}"))?
                .keys
                .iter()
                .collect(),
            // A legacy token without `iss` claims no identity that another
            // issuer's key could usurp: any legacy issuer's key may verify it.
            (false, None) => self
                .issuers
                .iter()
                .filter(|i| i.legacy)
                .flat_map(|i| &i.keys)
                .collect(),
        };
        let keys: Vec<&Key> = keys.into_iter().filter(|k| k.alg == alg).collect();
        // `kid` is a hint among trusted keys: keys with that id, else the
        // keys that have none. It can never bring in a key of its own.
        let keys = match kid {
            Some(kid) if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => keys
                .into_iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            Some(_) => keys.into_iter().filter(|k| k.kid.is_none()).collect(),
            None => keys,
        };
        if keys.is_empty() {
            return Err(format!("no configured key for alg {alg:?} and kid {kid:?}"));
        }
        Ok(keys)
    }
}

/// `typ` is `at+jwt` or `application/at+jwt`, case-insensitively (RFC 7515
/// §4.1.9, RFC 9068).
fn is_access_token_type(typ: &str) -> bool {
    // `split_at_checked`, not `typ[..12]`: the header is untrusted until
    // the signature is verified, and a multi-byte character across byte 12
    // would make a slice panic.
    let media = match typ.split_at_checked("application/".len()) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case("application/") => rest,
        _ => typ,
    };
    media.eq_ignore_ascii_case("at+jwt")
}

/// An algorithm name as JWA spells it; `none` and unknown names refused.
fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("alg none is never accepted".into());
    }
    Algorithm::from_str(name).map_err(|_| {
        format!(
            "unknown algorithm {name:?} (known: HS256, HS384, HS512, RS256, RS384, RS512, \
             PS256, PS384, PS512, ES256, ES384, EdDSA)"
        )
    })
}

fn decode_json(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "not base64url".to_owned())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(_) => Err("not JSON".into()),
    }
}

/// An optional string member of a header or payload (`kid`, `iss`, `sub`).
fn string_claim<'m>(
    object: &'m Map<String, Value>,
    name: &str,
) -> Result<Option<&'m str>, RefusalReason> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, RefusalReason> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            // Bounded so the `SystemTime` conversion cannot overflow.
            Some(secs) if (0.0..1e15).contains(&secs) => Ok(Some(secs)),
            _ => Err(format!("{name} is not a NumericDate")),
        },
    }
}

fn load_issuer(config: &IssuerConfig, allowed: &[Algorithm]) -> Result<Issuer, String> {
    if config.issuer.is_empty() && !config.legacy {
        return Err("issuer is empty (only a legacy issuer may have none)".into());
    }
    if config.keys.is_empty() {
        return Err("no keys".into());
    }
    let keys = config
        .keys
        .iter()
        .enumerate()
        .map(|(k, key)| load_key(key, allowed).map_err(|msg| format!("keys[{k}]: {msg}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Issuer {
        id: config.issuer.clone(),
        legacy: config.legacy,
        keys,
    })
}

fn load_key(config: &KeyConfig, allowed: &[Algorithm]) -> Result<Key, String> {
    let alg = parse_algorithm(&config.alg)?;
    if !allowed.contains(&alg) {
        return Err(format!("alg {} is not in auth.algorithms", config.alg));
    }
    let pem = match (&config.public_key_pem, &config.public_key_file) {
        (Some(_), Some(_)) => {
            return Err("give public_key_pem or public_key_file, not both".into());
        }
        (Some(pem), None) => Some(pem.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?,
        ),
        (None, None) => None,
    };
    let key = match (alg, &config.secret, pem) {
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, Some(secret), None) => {
            // RFC 7518 §3.2: a key at least as long as the hash output.
            let min = match alg {
                Algorithm::HS256 => 32,
                Algorithm::HS384 => 48,
                _ => 64,
            };
            if secret.len() < min {
                return Err(format!(
                    "the {} secret must be at least {min} bytes (RFC 7518 §3.2)",
                    config.alg
                ));
            }
            DecodingKey::from_secret(secret.as_bytes())
        }
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, _, _) => {
            return Err(format!("{} needs a secret and no public key", config.alg));
        }
        (_, Some(_), _) | (_, None, None) => {
            return Err(format!(
                "{} needs a public key (public_key_pem or public_key_file) and no secret",
                config.alg
            ));
        }
        (alg, None, Some(pem)) => {
            let key = match alg {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
            }
            .map_err(|e| format!("the public key is not a {} PEM key: {e}", config.alg))?;
            // Build a verifier once: it fails when the key does not fit the
            // algorithm (a P-384 key for ES256, a malformed Ed25519 key).
            jsonwebtoken::crypto::verify("AA", b"probe", &key, alg)
                .map_err(|e| format!("the public key does not fit {}: {e}", config.alg))?;
            key
        }
    };
    Ok(Key {
        alg,
        kid: config.kid.clone(),
        key,
    })
}

/// RFC 6265 cookie-name: an RFC 9110 token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_types() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(is_access_token_type(typ), "{typ}");
        }
        for typ in [
            "JWT",
            "jwt",
            "at+jwt ",
            "application/jwt",
            "x/at+jwt",
            "applicationat+jwt",
            "",
            // Multi-byte characters across the prefix's end (issue 9: a
            // byte slice here panicked before the signature was checked).
            "applicationé",
            "applicatioé/at+jwt",
            "é",
        ] {
            assert!(!is_access_token_type(typ), "{typ}");
        }
    }

    #[test]
    fn algorithms() {
        assert_eq!(parse_algorithm("ES256"), Ok(Algorithm::ES256));
        assert!(parse_algorithm("none").is_err());
        assert!(parse_algorithm("NONE").is_err());
        assert!(parse_algorithm("es256").is_err());
        assert!(parse_algorithm("HS1").is_err());
    }
}
