//! Access tokens the hub accepts: the local key `herald serve` generates
//! when none is configured, and minting tokens with it.
//!
//! The key is an HS256 secret stored in the data directory (`hub.key`, mode
//! 0600), so `herald serve` then `herald publish` works with no setup, and
//! restarting keeps earlier tokens valid.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::json;

/// The issuer name of tokens signed with the local key.
pub const LOCAL_ISSUER: &str = "herald-local";

/// The hub URL of a `herald serve` with the default settings: the default
/// `--hub` of the client commands, and so the default audience of tokens.
pub const LOCAL_HUB_URL: &str = "http://127.0.0.1:8080/.well-known/mercure";

/// The data directory `herald serve` uses by default, relative to where it
/// runs: where the client commands look for its key and publisher token.
pub const LOCAL_DATA_DIR: &str = "herald-data";

/// The local signing key.
pub struct LocalKey {
    /// The HS256 secret.
    pub secret: String,
    /// Where it is stored.
    pub path: PathBuf,
}

/// The key file in a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hub.key")
}

/// The publisher token file in a data directory.
pub fn publisher_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("publisher.token")
}

/// Reads the data directory's key, creating one on first use. Returns the
/// key and whether it was just created.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<(LocalKey, bool)> {
    let path = key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(secret) => {
            let secret = secret.trim().to_owned();
            anyhow::ensure!(
                secret.len() >= 32,
                "the key in {} is too short",
                path.display()
            );
            Ok((LocalKey { secret, path }, false))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
            let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write_private(&path, &secret)?;
            Ok((LocalKey { secret, path }, true))
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

/// What a token grants and for how long.
pub struct TokenSpec<'a> {
    /// Topic matchers (`*` for all) the bearer may publish to.
    pub publish: &'a [String],
    /// Topic matchers the bearer may read private updates of.
    pub subscribe: &'a [String],
    /// Match type of the matchers: `exact` or `urlpattern`.
    pub match_type: &'a str,
    /// The hub's resource identifier (`aud`).
    pub audience: &'a str,
    /// `iss`.
    pub issuer: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// Lifetime.
    pub ttl: Duration,
    /// Legacy claims (`mercure.publish` / `mercure.subscribe`) instead of
    /// draft-08 `authorization_details`.
    pub legacy: bool,
}

/// Mints an HS256 token with a shared secret (the local key).
pub fn mint_hs256(secret: &str, spec: &TokenSpec<'_>) -> anyhow::Result<String> {
    let key = SigningKey::secret(jsonwebtoken::Algorithm::HS256, secret.as_bytes())?;
    mint(&key, spec)
}

/// A key to sign tokens with, bound to its algorithm, as the hub binds
/// each verification key to one algorithm.
pub struct SigningKey {
    alg: jsonwebtoken::Algorithm,
    key: jsonwebtoken::EncodingKey,
    /// The `kid` header, for hubs that hold several keys for one issuer.
    kid: Option<String>,
}

impl SigningKey {
    /// An HMAC key (`HS256`, `HS384`, `HS512`). The secret must be at least
    /// as long as the hash, as the hub requires.
    pub fn secret(alg: jsonwebtoken::Algorithm, secret: &[u8]) -> anyhow::Result<SigningKey> {
        use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
        let min = match alg {
            HS256 => 32,
            HS384 => 48,
            HS512 => 64,
            other => anyhow::bail!("{other:?} signs with a private key, not a shared secret"),
        };
        anyhow::ensure!(
            secret.len() >= min,
            "the secret is {} bytes: {alg:?} needs at least {min}",
            secret.len()
        );
        Ok(SigningKey {
            alg,
            key: jsonwebtoken::EncodingKey::from_secret(secret),
            kid: None,
        })
    }

    /// A private key in PEM. `alg` may be left out: it is then read from
    /// the key (RSA: `RS256`, P-256: `ES256`, Ed25519: `EdDSA`).
    ///
    /// RSA keys may be PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN
    /// PRIVATE KEY`); EC and Ed25519 keys must be PKCS#8, which is what
    /// the signing library reads.
    pub fn pem(alg: Option<jsonwebtoken::Algorithm>, pem: &[u8]) -> anyhow::Result<SigningKey> {
        use jsonwebtoken::Algorithm::*;
        use jsonwebtoken::EncodingKey;
        let text = String::from_utf8_lossy(pem);
        // The RSA reader also takes public keys (signing would fail later,
        // with a vaguer message).
        if text.contains("BEGIN PUBLIC KEY") || text.contains("BEGIN RSA PUBLIC KEY") {
            anyhow::bail!("this is a public key: tokens are signed with the private key");
        }
        if text.contains("BEGIN EC PRIVATE KEY") {
            anyhow::bail!(
                "EC keys must be PKCS#8 (BEGIN PRIVATE KEY): convert with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`"
            );
        }
        // Each reader accepts only its own kind of key, so trying them in
        // turn both loads the key and tells its kind.
        let (family, key) = if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            (EdDSA, key)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (ES256, key)
        } else if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            (RS256, key)
        } else {
            anyhow::bail!("not a PEM private key (RSA, EC P-256/P-384 or Ed25519)");
        };
        let alg = match (alg, family) {
            (None, family) => family,
            (Some(alg @ (RS256 | RS384 | RS512 | PS256 | PS384 | PS512)), RS256)
            | (Some(alg @ (ES256 | ES384)), ES256)
            | (Some(alg @ EdDSA), EdDSA) => alg,
            (Some(alg), family) => {
                let kind = match family {
                    EdDSA => "an Ed25519",
                    ES256 => "an EC",
                    _ => "an RSA",
                };
                anyhow::bail!("{alg:?} cannot sign with {kind} key");
            }
        };
        Ok(SigningKey {
            alg,
            key,
            kid: None,
        })
    }

    /// Names the key in the token's `kid` header.
    pub fn with_kid(mut self, kid: Option<String>) -> SigningKey {
        self.kid = kid;
        self
    }
}

/// Mints a token for `spec`, signed with `key`.
pub fn mint(key: &SigningKey, spec: &TokenSpec<'_>) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid.clone_from(&key.kid);
    // RFC 9068 tokens say what they are (`at+jwt`), and the hub refuses a
    // draft-08 token without it; legacy hubs expect a plain `JWT`.
    header.typ = Some(if spec.legacy { "JWT" } else { "at+jwt" }.into());
    let claims = claims(spec, now);
    jsonwebtoken::encode(&header, &claims, &key.key).context("cannot sign the token")
}

/// The claims of a token minted at `now` (seconds since the epoch).
pub fn claims(spec: &TokenSpec<'_>, now: u64) -> serde_json::Value {
    let exp = now.saturating_add(spec.ttl.as_secs());
    if spec.legacy {
        return json!({
            "iss": spec.issuer,
            "aud": spec.audience,
            "sub": spec.subject,
            "iat": now,
            "exp": exp,
            "mercure": { "publish": spec.publish, "subscribe": spec.subscribe },
        });
    }
    let detail = |action: &str, topics: &[String]| {
        json!({
            "type": "https://mercure.rocks/authorization-detail",
            "actions": [action],
            "topics": topics
                .iter()
                .map(|t| json!({ "match": t, "match_type": spec.match_type }))
                .collect::<Vec<_>>(),
        })
    };
    let mut details = Vec::new();
    if !spec.publish.is_empty() {
        details.push(detail("publish", spec.publish));
    }
    if !spec.subscribe.is_empty() {
        details.push(detail("subscribe", spec.subscribe));
    }
    json!({
        "iss": spec.issuer,
        "aud": spec.audience,
        "sub": spec.subject,
        "client_id": spec.subject,
        "iat": now,
        "exp": exp,
        "jti": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "authorization_details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_server::auth::{AuthConfig, Authenticator, IssuerConfig, KeyConfig};

    // Keys generated for these tests only (`openssl genpkey`), never used
    // anywhere else.
    const RSA_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCiFgONqDrHYsxX
I/iA/IShHldsoAndJkkdzMuIFNEgLe5GbEoyCTdnMtokOOrKYCy74PxRN86zvQO0
tzmm3Kuw2sP8MkxMlL1LTR0aLlW0i7kcBG1cA2zJRCeLCC0S4gTKon0ic8UghbmD
ZPKXTxhJ8hXYUHn0pcZNwqs65Hlb2fI5mQVun+hsKwCOsJcKER8mmwse30ZJQVwh
BqtKZJWhggqteY5QWj+W/gke+qoGnRpwXJnYgkD6Irtualo/6FeDLTBDz2wDC7gM
U5YHMLkpEF1DHK2GtmhSHqf71up1RTbcGR1/beIdMwm0SZTREc7YGpb6UjmBDS4D
8rZlF3HDAgMBAAECggEACrllJnVtNNhbHSA3/CTOYQYBEngA9Ge+P7asosYp019m
nAnkhiyo70Q56Fqht558ZzlAHd7mPMCH+GgvwX6+l2F/b8t40+T6z1AnWZ5GNRS8
5yx90IWOKD+WVDMddFni/PCaUfIR/BBiUV4XqkjlRQM7ocfVVzQJYQdnzT+Prggs
bmKGpBmyGEt2SEzzjRbk00ZfOOfBeFvQZIdTZMAVw4pzQHqnr6IuGn9bbSLmBQDf
aXXkqRnRY+uMSs06E6q8wLylyemnFPlZBdDy5zcOqvYtO1QeZ5/jEQqBJ/j9Ij3a
GRlRVri+SjlYUH1896pFuDvabIHcj75hdu0WQ0iPmQKBgQDTunpJr8YGfVssV4wE
ZP/DAXc9BX75+JJU7G2f88YHsGzabv6tn2B50qO2gYX2ZI/CeutxhZ0vxL9fOQPM
aQYJ46YHj8G9hRWiDzZNrbXbHRrNX8g2ctp6lwU087HkqTh3aCZsu3K9Vf2G3w3O
/blfqHPOqSpunTBQdDKXULY9CwKBgQDD+j87gb8JwTiWgT3otd4SDUbYMCqPl6kW
/OHc4WtyNLphTJsBJTXZhka/BQd9xC7BIrJRnxhIkotdpOxA5igIPqvwOENtLadU
NxyDErmQKgnhJ2jyj8DjPHK7sI1+mHYDR/CeNJyIuN1VxtmBh2Npk78lazlDidy8
L89ms2PhKQKBgEGUUco/Clv6OeIrH7BAxENXUeJxsFmml1R8gpv3eo/pIl4p4PJQ
GibBinm99otRrIF1ZzWbSAuCqi/JThbjNL6dZ1CSQ1T7Qq8WfSBkPJ6ojiOslivf
OTKdUjyLer8zdsztUnF9QdXJK6S5s+I4DlHFsFEDbqQiRdO1mfHqSvfvAoGBALMR
9zM9g7y7FCTZpSL9AxRFk2U45brdHkEGAq9cPlxVd7QuVjf+syy2t/AU/Vpap0oM
lRlloL+3P6bqaoGGjC+0bFEMZ/fbzlhyHxhZRLtI3kwgQZHZ7qrz8fY0BaYWU0b+
NgupERsQqBWXo+jqN9khinf7eJCQ6OP/X6h85Be5AoGBALrOovaicqXtey0StcpF
NO+PZduuzpm8bn8eIqfGbqH/zp2y8UH0bgf29FCZWWs9iSZrgncKgfR2BYUBd2fz
uuw3mlLJ+TzJGWHc3kszVzfRo1s2wkWWh7qm34HF1CLAhUkysJsJBlTOnZsJ0gPM
wWKkb2sbdIrykMMSvy445KxD
-----END PRIVATE KEY-----
";
    const RSA_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAohYDjag6x2LMVyP4gPyE
oR5XbKAJ3SZJHczLiBTRIC3uRmxKMgk3ZzLaJDjqymAsu+D8UTfOs70DtLc5ptyr
sNrD/DJMTJS9S00dGi5VtIu5HARtXANsyUQniwgtEuIEyqJ9InPFIIW5g2Tyl08Y
SfIV2FB59KXGTcKrOuR5W9nyOZkFbp/obCsAjrCXChEfJpsLHt9GSUFcIQarSmSV
oYIKrXmOUFo/lv4JHvqqBp0acFyZ2IJA+iK7bmpaP+hXgy0wQ89sAwu4DFOWBzC5
KRBdQxythrZoUh6n+9bqdUU23Bkdf23iHTMJtEmU0RHO2BqW+lI5gQ0uA/K2ZRdx
wwIDAQAB
-----END PUBLIC KEY-----
";
    const EC_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKBDWUtYWbXSdRKyg
EvxHZ+Ey7Zy1s3VIwAHHy6f9kfihRANCAAQCOKrtXRyi8+suW51AEsoRPM7RXudi
3V/ONnPlaLyB5W775nI2JquJfYRQuzYXLMY2HT62S4k353XavHp0Sw0N
-----END PRIVATE KEY-----
";
    const EC_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAjiq7V0covPrLludQBLKETzO0V7n
Yt1fzjZz5Wi8geVu++ZyNiariX2EULs2FyzGNh0+tkuJN+d12rx6dEsNDQ==
-----END PUBLIC KEY-----
";
    const ED_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICl+mliq5mYytaHHWFJKFkOjS833Ft1LQd44ZqqBn3iY
-----END PRIVATE KEY-----
";
    const ED_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAdeBHP9Pe4JTYLoMse9pLcvWggIUthMDDshQtaAD3LeY=
-----END PUBLIC KEY-----
";

    const HUB: &str = "http://127.0.0.1:8080/.well-known/mercure";

    fn spec<'a>(publish: &'a [String], subscribe: &'a [String], legacy: bool) -> TokenSpec<'a> {
        TokenSpec {
            publish,
            subscribe,
            match_type: "exact",
            audience: HUB,
            issuer: "https://auth.example",
            subject: "tester",
            ttl: Duration::from_secs(3600),
            legacy,
        }
    }

    /// The hub's own validator, configured with one issuer and one key.
    fn hub_accepting(key: KeyConfig, legacy: bool) -> Authenticator {
        let config = AuthConfig {
            issuers: vec![IssuerConfig {
                issuer: "https://auth.example".into(),
                keys: vec![key],
                legacy,
            }],
            legacy,
            ..AuthConfig::default()
        };
        Authenticator::new(&config, &url::Url::parse(HUB).unwrap()).unwrap()
    }

    #[test]
    fn the_hub_accepts_tokens_signed_with_each_kind_of_key() {
        let publish = vec!["https://example.com/books/1".to_owned()];
        let subscribe = vec!["*".to_owned()];
        let secret = "0123456789abcdef0123456789abcdef";
        let cases = [
            (
                SigningKey::secret(jsonwebtoken::Algorithm::HS256, secret.as_bytes()).unwrap(),
                KeyConfig::secret("HS256", secret),
            ),
            (
                SigningKey::pem(None, RSA_PRIVATE.as_bytes()).unwrap(),
                KeyConfig::public_pem("RS256", RSA_PUBLIC),
            ),
            (
                SigningKey::pem(None, EC_PRIVATE.as_bytes()).unwrap(),
                KeyConfig::public_pem("ES256", EC_PUBLIC),
            ),
            (
                SigningKey::pem(None, ED_PRIVATE.as_bytes()).unwrap(),
                KeyConfig::public_pem("EdDSA", ED_PUBLIC),
            ),
        ];
        for (key, verifier) in cases {
            let alg = key.alg;
            let token = mint(&key, &spec(&publish, &subscribe, false)).unwrap();
            let claims = hub_accepting(verifier, false)
                .authenticate(&token)
                .unwrap_or_else(|err| panic!("{alg:?}: {err}"));
            assert_eq!(claims.subject.as_deref(), Some("tester"));
            assert!(claims.grants.can_publish(), "{alg:?}");
            assert!(claims.grants.can_subscribe(), "{alg:?}");
            assert!(!claims.legacy);
        }
    }

    #[test]
    fn legacy_tokens_carry_the_mercure_claim() {
        let all = vec!["*".to_owned()];
        let key = SigningKey::pem(None, ED_PRIVATE.as_bytes()).unwrap();
        let token = mint(&key, &spec(&all, &[], true)).unwrap();
        let claims = hub_accepting(KeyConfig::public_pem("EdDSA", ED_PUBLIC), true)
            .authenticate(&token)
            .unwrap();
        assert!(claims.legacy);
        assert!(claims.grants.can_publish());
        assert!(!claims.grants.can_subscribe());
        // A hub not in legacy mode refuses it: it is not an `at+jwt`.
        assert!(
            hub_accepting(KeyConfig::public_pem("EdDSA", ED_PUBLIC), false)
                .authenticate(&token)
                .is_err()
        );
    }

    #[test]
    fn claims_follow_draft_08() {
        let publish = vec!["/books/:id".to_owned()];
        let spec = TokenSpec {
            match_type: "urlpattern",
            ..spec(&publish, &[], false)
        };
        let claims = claims(&spec, 1000);
        assert_eq!(claims["exp"], 4600);
        assert_eq!(claims["aud"], HUB);
        assert_eq!(
            claims["authorization_details"],
            json!([{
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["publish"],
                "topics": [{"match": "/books/:id", "match_type": "urlpattern"}],
            }])
        );
    }

    #[test]
    fn keys_are_checked_against_their_algorithm() {
        use jsonwebtoken::Algorithm::*;
        let short = SigningKey::secret(HS256, b"too short").err().unwrap();
        assert_eq!(
            short.to_string(),
            "the secret is 9 bytes: HS256 needs at least 32"
        );
        assert!(SigningKey::secret(RS256, &[0; 64]).is_err());
        let wrong = SigningKey::pem(Some(RS256), EC_PRIVATE.as_bytes())
            .err()
            .unwrap();
        assert_eq!(wrong.to_string(), "RS256 cannot sign with an EC key");
        assert_eq!(
            SigningKey::pem(Some(PS256), RSA_PRIVATE.as_bytes())
                .unwrap()
                .alg,
            PS256
        );
        assert!(SigningKey::pem(None, b"not a key").is_err());
        assert!(SigningKey::pem(None, RSA_PUBLIC.as_bytes()).is_err());
    }
}
