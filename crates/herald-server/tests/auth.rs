//! Access-token presentation, validation and grants: every rule of
//! draft-08 "Token Validation" and "Authorization Details", and the legacy
//! mode. Tokens are minted here with `jsonwebtoken`; keys are the fixtures
//! in `tests/keys/` (test-only).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use herald_hub::matcher::Topic;
use herald_server::auth::{
    extract_token, AuthConfig, AuthError, AuthErrorKind, Authenticator, Claims, IssuerConfig,
    KeyConfig, Via, MAX_AUTHORIZATION_DETAILS, MAX_TOKEN_LEN, MAX_TOPICS_PER_DETAIL,
    MERCURE_DETAIL_TYPE,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use url::Url;

const HUB: &str = "https://hub.example.com/.well-known/mercure";
const ISS_A: &str = "https://a.example";
const ISS_B: &str = "https://b.example";
const SECRET_A: &str = "issuer-a-shared-secret-of-32-bytes-or-more";
const SECRET_LEGACY: &str = "the-legacy-issuers-secret-32-bytes-at-least";
/// 2027-01-15: a fixed clock, so expiry tests are deterministic.
const NOW: u64 = 1_800_000_000;

const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("keys/ec-private.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-public.pem");
const EC2_PRIVATE: &str = include_str!("keys/ec2-private.pem");
const EC2_PUBLIC: &str = include_str!("keys/ec2-public.pem");
const P384_PUBLIC: &str = include_str!("keys/p384-public.pem");
const ED_PRIVATE: &str = include_str!("keys/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519-public.pem");

// ------------------------------------------------------------------ helpers

fn hub() -> Url {
    Url::parse(HUB).unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secret_key(alg: &str, secret: &str) -> KeyConfig {
    KeyConfig::secret(alg, secret)
}

fn pem_key(alg: &str, pem: &str) -> KeyConfig {
    KeyConfig::public_pem(alg, pem)
}

fn issuer(id: &str, keys: Vec<KeyConfig>) -> IssuerConfig {
    IssuerConfig {
        issuer: id.into(),
        keys,
        legacy: false,
    }
}

/// Issuer A signs with HS256, RS256, ES256 (kid `ec1`) and EdDSA; issuer B
/// with its own ES256 key.
fn config() -> AuthConfig {
    let mut ec = pem_key("ES256", EC_PUBLIC);
    ec.kid = Some("ec1".into());
    AuthConfig {
        issuers: vec![
            issuer(
                ISS_A,
                vec![
                    secret_key("HS256", SECRET_A),
                    pem_key("RS256", RSA_PUBLIC),
                    ec,
                    pem_key("EdDSA", ED_PUBLIC),
                ],
            ),
            issuer(ISS_B, vec![pem_key("ES256", EC2_PUBLIC)]),
        ],
        ..AuthConfig::default()
    }
}

fn legacy_config() -> AuthConfig {
    let mut config = config();
    config.legacy = true;
    config.issuers.push(IssuerConfig {
        issuer: String::new(),
        keys: vec![secret_key("HS256", SECRET_LEGACY)],
        legacy: true,
    });
    config
}

fn authenticator(config: &AuthConfig) -> Authenticator {
    Authenticator::new(config, &hub()).expect("valid configuration")
}

/// The signing key matching `alg` for issuer A (or B's for `ES256` with
/// `issuer_b`).
fn signing_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET_A.as_bytes()),
        Algorithm::RS256 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap()
        }
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        other => panic!("no test key for {other:?}"),
    }
}

fn header(alg: Algorithm, typ: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.typ = typ.map(str::to_owned);
    header
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// A draft-08 token from issuer A, signed with `alg`.
fn mint(alg: Algorithm, claims: &Value) -> String {
    sign(&header(alg, Some("at+jwt")), claims, &signing_key(alg))
}

fn detail(actions: Value, topics: Value) -> Value {
    json!({"type": MERCURE_DETAIL_TYPE, "actions": actions, "topics": topics})
}

/// RFC 9068 claims from issuer A for this hub, with `details`.
fn claims_with(details: Value) -> Value {
    json!({
        "iss": ISS_A,
        "aud": HUB,
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        "client_id": ISS_A,
        "iat": NOW - 60,
        "exp": NOW + 600,
        "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        "authorization_details": details,
    })
}

fn claims() -> Value {
    claims_with(json!([detail(
        json!(["publish", "subscribe"]),
        json!([
            {"match": "https://example.com/books/:id", "match_type": "urlpattern"},
            {"match": "https://example.com/a"},
        ]),
    )]))
}

/// `claims()` with `key` set to `value` (or removed for `Value::Null`).
fn with(mut claims: Value, key: &str, value: Value) -> Value {
    let map = claims.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.into(), value);
    }
    claims
}

fn check(auth: &Authenticator, token: &str) -> Result<Claims, AuthError> {
    auth.authenticate_at(token, at(NOW))
}

#[track_caller]
fn assert_valid(auth: &Authenticator, token: &str) -> Claims {
    check(auth, token).unwrap_or_else(|e| panic!("expected a valid token, got {e}"))
}

#[track_caller]
fn assert_invalid(auth: &Authenticator, token: &str) {
    let err = check(auth, token).expect_err("expected an invalid token");
    assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with any header and an HS256 signature made with issuer A's
/// secret over it.
fn hand_signed(header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET_A.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn may_publish(claims: &Claims, topic: &str) -> bool {
    let hub = hub();
    claims.grants.may_publish(&Topic::new(topic, &hub))
}

fn may_read(claims: &Claims, topic: &str) -> bool {
    let hub = hub();
    claims.grants.may_read(&[Topic::new(topic, &hub)])
}

// ------------------------------------------------------------------ signatures

#[test]
fn every_default_algorithm_verifies() {
    let auth = authenticator(&config());
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::EdDSA] {
        let claims = assert_valid(&auth, &mint(alg, &claims()));
        assert!(
            may_publish(&claims, "https://example.com/books/1"),
            "{alg:?}"
        );
    }
    // The ES256 key has a kid; a token without kid may use it too.
    let claims = assert_valid(&auth, &mint(Algorithm::ES256, &claims()));
    assert!(may_publish(&claims, "https://example.com/a"));
}

#[test]
fn claims_are_reported() {
    let auth = authenticator(&config());
    let claims = assert_valid(&auth, &mint(Algorithm::HS256, &claims()));
    assert_eq!(claims.issuer.as_deref(), Some(ISS_A));
    assert_eq!(
        claims.subject.as_deref(),
        Some("urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6")
    );
    assert_eq!(claims.expires_at, Some(at(NOW + 600)));
    assert!(!claims.legacy);
}

#[test]
fn the_real_clock_is_used_by_authenticate() {
    let auth = authenticator(&config());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = mint(Algorithm::HS256, &with(claims(), "exp", json!(now + 60)));
    assert!(auth.authenticate(&fresh).is_ok());
    let stale = mint(Algorithm::HS256, &with(claims(), "exp", json!(now - 60)));
    assert_eq!(
        auth.authenticate(&stale).unwrap_err(),
        AuthError::invalid_token()
    );
}

#[test]
fn typ_must_be_at_jwt() {
    let auth = authenticator(&config());
    let key = signing_key(Algorithm::HS256);
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        assert_valid(
            &auth,
            &sign(&header(Algorithm::HS256, Some(typ)), &claims(), &key),
        );
    }
    for typ in [
        None,
        Some("JWT"),
        Some("jwt"),
        Some("application/jwt"),
        Some("at+jwt; x=1"),
    ] {
        assert_invalid(
            &auth,
            &sign(&header(Algorithm::HS256, typ), &claims(), &key),
        );
    }
    // A non-string typ.
    assert_invalid(
        &auth,
        &hand_signed(&json!({"alg": "HS256", "typ": 1}), &claims()),
    );
}

#[test]
fn alg_none_is_refused() {
    let auth = authenticator(&config());
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "at+jwt"})),
            b64(&claims())
        );
        assert_invalid(&auth, &token);
        // Even with a signature part.
        assert_invalid(&auth, &format!("{token}c2ln"));
    }
    // No alg at all.
    assert_invalid(&auth, &hand_signed(&json!({"typ": "at+jwt"}), &claims()));
}

#[test]
fn alg_must_be_allowlisted() {
    let auth = authenticator(&config());
    // PS256 is not in the default allowlist, even with a valid RSA signature.
    assert_invalid(&auth, &mint(Algorithm::PS256, &claims()));

    // An authenticator allowing only ES256 refuses HS256.
    let mut only_es = config();
    only_es.algorithms = vec!["ES256".into()];
    only_es.issuers = vec![issuer(ISS_A, vec![pem_key("ES256", EC_PUBLIC)])];
    let auth = authenticator(&only_es);
    assert_valid(&auth, &mint(Algorithm::ES256, &claims()));
    assert_invalid(&auth, &mint(Algorithm::HS256, &claims()));
}

#[test]
fn algorithm_confusion_is_refused() {
    // Issuer A trusts only an RS256 key; HS256 stays allowlisted.
    let mut config = config();
    config.issuers = vec![issuer(ISS_A, vec![pem_key("RS256", RSA_PUBLIC)])];
    let auth = authenticator(&config);
    assert_valid(&auth, &mint(Algorithm::RS256, &claims()));
    // The classic attack: HMAC keyed with the RSA public key's PEM text.
    let forged = sign(
        &header(Algorithm::HS256, Some("at+jwt")),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    assert_invalid(&auth, &forged);
    // An ES256 token against an issuer with only an RSA key.
    assert_invalid(&auth, &mint(Algorithm::ES256, &claims()));
}

#[test]
fn keys_are_bound_to_their_issuer() {
    let auth = authenticator(&config());
    let b_key = EncodingKey::from_ec_pem(EC2_PRIVATE.as_bytes()).unwrap();
    let es256 = header(Algorithm::ES256, Some("at+jwt"));
    // B's token signed with B's key: fine.
    assert_valid(
        &auth,
        &sign(&es256, &with(claims(), "iss", json!(ISS_B)), &b_key),
    );
    // A's identity with B's key: refused, though B's key is trusted.
    assert_invalid(&auth, &sign(&es256, &claims(), &b_key));
    // B's identity with A's key: refused.
    let a_key = signing_key(Algorithm::ES256);
    assert_invalid(
        &auth,
        &sign(&es256, &with(claims(), "iss", json!(ISS_B)), &a_key),
    );
    // Unknown, missing, or inexact issuers.
    for iss in [
        json!("https://c.example"),
        json!("https://a.example/"),
        json!(""),
        Value::Null,
    ] {
        assert_invalid(&auth, &mint(Algorithm::HS256, &with(claims(), "iss", iss)));
    }
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "iss", json!(["x"]))),
    );
}

#[test]
fn kid_selects_among_trusted_keys() {
    let auth = authenticator(&config());
    let key = signing_key(Algorithm::ES256);
    let mut es256 = header(Algorithm::ES256, Some("at+jwt"));
    es256.kid = Some("ec1".into());
    assert_valid(&auth, &sign(&es256, &claims(), &key));
    // A kid naming no configured key falls back to keys without a kid; the
    // ES256 key has one, so nothing verifies.
    es256.kid = Some("other".into());
    assert_invalid(&auth, &sign(&es256, &claims(), &key));
    // HS256's key has no kid: any kid falls back to it.
    let mut hs256 = header(Algorithm::HS256, Some("at+jwt"));
    hs256.kid = Some("whatever".into());
    assert_valid(
        &auth,
        &sign(&hs256, &claims(), &signing_key(Algorithm::HS256)),
    );
}

#[test]
fn key_material_in_the_token_is_ignored() {
    // A jwk header with the attacker's own key, signed with that key.
    let auth = authenticator(&config());
    let attacker = "attacker-secret-attacker-secret-attacker!";
    let mut header = header(Algorithm::HS256, Some("at+jwt"));
    header.jku = Some("https://attacker.example/jwks.json".into());
    header.x5u = Some("https://attacker.example/cert.pem".into());
    let token = sign(
        &header,
        &claims(),
        &EncodingKey::from_secret(attacker.as_bytes()),
    );
    assert_invalid(&auth, &token);
}

#[test]
fn crit_headers_are_refused() {
    let auth = authenticator(&config());
    let token = hand_signed(
        &json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"], "exp": 1}),
        &claims(),
    );
    assert_invalid(&auth, &token);
    // The same token without crit is fine: the hand-signing is right.
    assert_valid(
        &auth,
        &hand_signed(&json!({"alg": "HS256", "typ": "at+jwt"}), &claims()),
    );
}

#[test]
fn tampered_and_malformed_tokens() {
    let auth = authenticator(&config());
    let token = mint(Algorithm::HS256, &claims());
    let (message, _) = token.rsplit_once('.').unwrap();
    let (header, _) = message.split_once('.').unwrap();
    let other = b64(&with(claims(), "sub", json!("someone else")));
    assert_invalid(
        &auth,
        &format!("{header}.{other}.{}", token.rsplit('.').next().unwrap()),
    );
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        &format!("{token}."),
        &format!("{message}.!!!"),
        &format!("{message}="),
        "eyJhbGciOiJIUzI1NiJ9.e30.e30",
        &format!(
            "{}.{}.x",
            b64(&json!({"alg": "HS256", "typ": "at+jwt"})),
            "bm90IGpzb24"
        ),
        &format!(
            "{}.{}.x",
            b64(&json!(["not", "an", "object"])),
            b64(&claims())
        ),
    ] {
        assert_invalid(&auth, bad);
    }
    let huge = mint(
        Algorithm::HS256,
        &with(claims(), "padding", json!("x".repeat(MAX_TOKEN_LEN))),
    );
    assert_invalid(&auth, &huge);
}

// ------------------------------------------------------------------ claims

#[test]
fn exp_is_required_and_enforced() {
    let auth = authenticator(&config());
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", Value::Null)),
    );
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", json!(NOW - 10))),
    );
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", json!(NOW - 5))),
    );
    // Within the 5 s leeway.
    assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", json!(NOW - 4))),
    );
    // Fractional NumericDates are fine; strings and negatives are not.
    assert_valid(
        &auth,
        &mint(
            Algorithm::HS256,
            &with(claims(), "exp", json!(NOW as f64 + 0.5)),
        ),
    );
    for bad in [json!("1900000000"), json!(-1), json!(true), json!(1e300)] {
        assert_invalid(&auth, &mint(Algorithm::HS256, &with(claims(), "exp", bad)));
    }
}

#[test]
fn leeway_is_configurable() {
    let mut config = config();
    config.leeway_secs = 0;
    let auth = authenticator(&config);
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", json!(NOW))),
    );
    assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", json!(NOW + 1))),
    );
}

#[test]
fn nbf_is_enforced() {
    let auth = authenticator(&config());
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "nbf", json!(NOW + 60))),
    );
    assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "nbf", json!(NOW + 3))),
    );
    assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "nbf", json!(NOW - 60))),
    );
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "nbf", json!("soon"))),
    );
}

#[test]
fn aud_must_name_the_hub() {
    let auth = authenticator(&config());
    assert_eq!(auth.resource(), HUB);
    for aud in [
        json!("https://other-hub.example/.well-known/mercure"),
        json!("https://hub.example.com/.well-known/mercure/"),
        json!([]),
        json!(["https://other.example"]),
        json!([HUB, 1]),
        json!(1),
        Value::Null,
    ] {
        assert_invalid(&auth, &mint(Algorithm::HS256, &with(claims(), "aud", aud)));
    }
    assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "aud", json!(HUB))),
    );
    assert_valid(
        &auth,
        &mint(
            Algorithm::HS256,
            &with(claims(), "aud", json!(["https://other.example", HUB])),
        ),
    );
}

#[test]
fn the_resource_identifier_is_configurable() {
    let mut config = config();
    config.resource = "urn:herald:hub".into();
    let auth = authenticator(&config);
    assert_eq!(auth.resource(), "urn:herald:hub");
    assert_valid(
        &auth,
        &mint(
            Algorithm::HS256,
            &with(claims(), "aud", json!("urn:herald:hub")),
        ),
    );
    assert_invalid(&auth, &mint(Algorithm::HS256, &claims()));
}

#[test]
fn sub_must_be_a_string_if_present() {
    let auth = authenticator(&config());
    let claims_ = assert_valid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "sub", Value::Null)),
    );
    assert_eq!(claims_.subject, None);
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "sub", json!(42))),
    );
}

// ------------------------------------------------------------------ authorization details

fn token_with_details(details: Value) -> String {
    mint(Algorithm::HS256, &claims_with(details))
}

#[test]
fn grants_follow_the_details() {
    let auth = authenticator(&config());
    let claims = assert_valid(
        &auth,
        &token_with_details(json!([
            detail(
                json!(["publish"]),
                json!([
                    {"match": "https://example.com/a"},
                    {"match": "https://example.com/books/:id", "match_type": "urlpattern"},
                    {"match": "/relative/:x", "match_type": "urlpattern"},
                    {"match": "https://example.com/exact", "match_type": "exact"},
                ])
            ),
            detail(
                json!(["subscribe"]),
                json!([
                    {"match": "https://example.com/users/42/*", "match_type": "urlpattern"},
                ])
            ),
        ])),
    );
    assert!(may_publish(&claims, "https://example.com/a"));
    assert!(may_publish(&claims, "https://example.com/books/7"));
    assert!(may_publish(&claims, "https://hub.example.com/relative/1"));
    assert!(may_publish(&claims, "https://example.com/exact"));
    assert!(!may_publish(&claims, "https://example.com/b"));
    assert!(!may_publish(&claims, "https://example.com/users/42/x"));
    assert!(may_read(&claims, "https://example.com/users/42/x"));
    assert!(!may_read(&claims, "https://example.com/books/7"));
}

#[test]
fn wildcard_grants_everything_whatever_the_match_type() {
    let auth = authenticator(&config());
    for topic in [
        json!({"match": "*"}),
        json!({"match": "*", "match_type": "urlpattern"}),
    ] {
        let claims = assert_valid(
            &auth,
            &token_with_details(json!([detail(
                json!(["publish", "subscribe"]),
                json!([topic])
            )])),
        );
        assert!(may_publish(&claims, "anything"));
        assert!(may_publish(&claims, "https://example.com/x"));
        assert!(may_read(&claims, "anything"));
    }
}

#[test]
fn unknown_actions_are_ignored() {
    let auth = authenticator(&config());
    let claims = assert_valid(
        &auth,
        &token_with_details(json!([detail(
            json!(["delete", "publish"]),
            json!([{"match": "x"}])
        )])),
    );
    assert!(may_publish(&claims, "x"));
    assert!(!may_read(&claims, "x"));
    let claims = assert_valid(
        &auth,
        &token_with_details(json!([detail(
            json!(["future-action"]),
            json!([{"match": "x"}])
        )])),
    );
    assert!(!claims.grants.can_publish() && !claims.grants.can_subscribe());
}

#[test]
fn other_detail_types_are_ignored() {
    let auth = authenticator(&config());
    let claims = assert_valid(
        &auth,
        &token_with_details(json!([
            {"type": "payment_initiation", "actions": "not even an array"},
            {"type": "https://mercure.rocks/authorization-detail/", "actions": ["publish"], "topics": [{"match": "*"}]},
            {"type": "HTTPS://MERCURE.ROCKS/AUTHORIZATION-DETAIL", "actions": ["publish"], "topics": [{"match": "*"}]},
            detail(json!(["publish"]), json!([{"match": "x"}])),
        ])),
    );
    assert!(may_publish(&claims, "x"));
    assert!(!may_publish(&claims, "y"));
}

#[test]
fn no_details_grant_nothing() {
    let auth = authenticator(&config());
    let claims = assert_valid(
        &auth,
        &mint(
            Algorithm::HS256,
            &with(claims(), "authorization_details", Value::Null),
        ),
    );
    assert!(!claims.grants.can_publish() && !claims.grants.can_subscribe());
    let claims = assert_valid(&auth, &token_with_details(json!([])));
    assert!(!claims.grants.can_publish());
    // A legacy claim in a draft token is not read.
    let token = mint(
        Algorithm::HS256,
        &with(claims_with(json!([])), "mercure", json!({"publish": ["*"]})),
    );
    assert!(!assert_valid(&auth, &token).grants.can_publish());
}

#[test]
fn malformed_details_invalidate_the_whole_token() {
    let auth = authenticator(&config());
    let ok = detail(json!(["publish"]), json!([{"match": "x"}]));
    for bad in [
        // The claim itself.
        json!({"type": MERCURE_DETAIL_TYPE}),
        json!("publish"),
        // Entries.
        json!([ok.clone(), "not an object"]),
        json!([ok.clone(), {"actions": ["publish"]}]),
        json!([ok.clone(), {"type": 1}]),
        // actions
        json!([
            ok.clone(),
            detail(json!(["publish", 1]), json!([{"match": "x"}]))
        ]),
        json!([ok.clone(), detail(json!([null]), json!([{"match": "x"}]))]),
        json!([ok.clone(), detail(json!([]), json!([{"match": "x"}]))]),
        json!([
            ok.clone(),
            detail(json!("publish"), json!([{"match": "x"}]))
        ]),
        json!([ok.clone(), {"type": MERCURE_DETAIL_TYPE, "topics": [{"match": "x"}]}]),
        // topics
        json!([ok.clone(), {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"]}]),
        json!([ok.clone(), detail(json!(["publish"]), json!([]))]),
        json!([
            ok.clone(),
            detail(json!(["publish"]), json!({"match": "x"}))
        ]),
        json!([ok.clone(), detail(json!(["publish"]), json!(["x"]))]),
        json!([
            ok.clone(),
            detail(json!(["publish"]), json!([{"match": 1}]))
        ]),
        json!([
            ok.clone(),
            detail(json!(["publish"]), json!([{"topic": "x"}]))
        ]),
        // match_type
        json!([
            ok.clone(),
            detail(
                json!(["publish"]),
                json!([{"match": "x", "match_type": "regexp"}])
            )
        ]),
        json!([
            ok.clone(),
            detail(
                json!(["publish"]),
                json!([{"match": "x", "match_type": "Exact"}])
            )
        ]),
        json!([
            ok.clone(),
            detail(
                json!(["publish"]),
                json!([{"match": "x", "match_type": null}])
            )
        ]),
        json!([
            ok.clone(),
            detail(
                json!(["publish"]),
                json!([{"match": "https://x/(", "match_type": "urlpattern"}])
            )
        ]),
        // A matcher value breaking the text rule, or too long.
        json!([
            ok.clone(),
            detail(json!(["publish"]), json!([{"match": "a\u{200b}"}]))
        ]),
        json!([
            ok.clone(),
            detail(json!(["publish"]), json!([{"match": "x".repeat(2049)}]))
        ]),
        // payload
        json!([ok.clone(), {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "x"}], "payload": "text"}]),
        // Even a detail granting nothing recognized must parse.
        json!([
            ok.clone(),
            detail(
                json!(["future"]),
                json!([{"match": "x", "match_type": "glob"}])
            )
        ]),
    ] {
        let token = token_with_details(bad.clone());
        let err = check(&auth, &token).expect_err(&format!("{bad} should be refused"));
        assert_eq!(err, AuthError::invalid_token(), "{bad}");
    }
}

#[test]
fn detail_limits() {
    let auth = authenticator(&config());
    let one = detail(json!(["publish"]), json!([{"match": "x"}]));
    let at_limit = vec![one.clone(); MAX_AUTHORIZATION_DETAILS];
    assert_valid(&auth, &token_with_details(json!(at_limit)));
    let over = vec![one; MAX_AUTHORIZATION_DETAILS + 1];
    assert_invalid(&auth, &token_with_details(json!(over)));

    let topics: Vec<Value> = (0..MAX_TOPICS_PER_DETAIL)
        .map(|i| json!({"match": format!("t{i}")}))
        .collect();
    assert_valid(
        &auth,
        &token_with_details(json!([detail(json!(["publish"]), json!(topics))])),
    );
    let topics: Vec<Value> = (0..=MAX_TOPICS_PER_DETAIL)
        .map(|i| json!({"match": format!("t{i}")}))
        .collect();
    assert_invalid(
        &auth,
        &token_with_details(json!([detail(json!(["publish"]), json!(topics))])),
    );
}

#[test]
fn payloads_of_subscribe_details() {
    let auth = authenticator(&config());
    let claims = assert_valid(
        &auth,
        &token_with_details(json!([
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/foo"}], "payload": {"custom1": 1}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}], "payload": {"custom2": 2}},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": {"custom3": 3}},
        ])),
    );
    let hub = hub();
    let payload = |m: &str| {
        claims
            .grants
            .subscribe_payload(&Topic::new(m, &hub))
            .cloned()
    };
    assert_eq!(
        payload("https://example.com/foo"),
        Some(json!({"custom1": 1}))
    );
    assert_eq!(
        payload("https://example.com/bar/:id"),
        Some(json!({"custom2": 2}))
    );
    assert_eq!(payload("elsewhere"), Some(json!({"custom3": 3})));
}

// ------------------------------------------------------------------ legacy

fn legacy_token(claims: &Value) -> String {
    sign(
        &header(Algorithm::HS256, Some("JWT")),
        claims,
        &EncodingKey::from_secret(SECRET_LEGACY.as_bytes()),
    )
}

fn legacy_claims() -> Value {
    json!({
        "mercure": {
            "publish": ["https://example.com/books/{id}"],
            "subscribe": ["https://example.com/users/foo/{?topic}", "https://example.com/exact"],
            "payload": {"user": "https://example.com/users/foo"},
        }
    })
}

#[test]
fn legacy_tokens_need_legacy_mode() {
    let token = legacy_token(&legacy_claims());
    assert_invalid(&authenticator(&config()), &token);
    let auth = authenticator(&legacy_config());
    let claims = assert_valid(&auth, &token);
    assert!(claims.legacy);
    assert_eq!(claims.issuer, None);
    assert_eq!(claims.expires_at, None);
    assert!(may_publish(&claims, "https://example.com/books/1"));
    assert!(!may_publish(&claims, "https://example.com/books/1/x"));
    assert!(may_read(
        &claims,
        "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
    ));
    assert!(may_read(&claims, "https://example.com/exact"));
    assert!(!may_read(&claims, "https://example.com/books/1"));
    let hub = hub();
    assert_eq!(
        claims
            .grants
            .subscribe_payload(&Topic::new("https://example.com/books/{id}", &hub)),
        Some(&json!({"user": "https://example.com/users/foo"}))
    );
    // Without typ at all, too.
    let untyped = sign(
        &header(Algorithm::HS256, None),
        &legacy_claims(),
        &EncodingKey::from_secret(SECRET_LEGACY.as_bytes()),
    );
    assert_valid(&auth, &untyped);
}

#[test]
fn legacy_token_rules() {
    let auth = authenticator(&legacy_config());
    // Wildcards.
    let claims = assert_valid(
        &auth,
        &legacy_token(&json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}})),
    );
    assert!(may_publish(&claims, "anything") && may_read(&claims, "anything"));
    // No mercure claim: valid, grants nothing.
    let claims = assert_valid(&auth, &legacy_token(&json!({"sub": "x"})));
    assert!(!claims.grants.can_publish() && !claims.grants.can_subscribe());
    // exp enforced when present, nbf too; aud checked when present.
    assert_invalid(
        &auth,
        &legacy_token(&with(legacy_claims(), "exp", json!(NOW - 10))),
    );
    let claims = assert_valid(
        &auth,
        &legacy_token(&with(legacy_claims(), "exp", json!(NOW + 10))),
    );
    assert_eq!(claims.expires_at, Some(at(NOW + 10)));
    assert_invalid(
        &auth,
        &legacy_token(&with(legacy_claims(), "nbf", json!(NOW + 60))),
    );
    assert_invalid(
        &auth,
        &legacy_token(&with(
            legacy_claims(),
            "aud",
            json!("https://other.example"),
        )),
    );
    assert_valid(
        &auth,
        &legacy_token(&with(legacy_claims(), "aud", json!(HUB))),
    );
    // Malformed selector lists invalidate the token.
    for bad in [
        json!("publish everything"),
        json!({"publish": "*"}),
        json!({"subscribe": [1]}),
        json!({"publish": ["a\u{0}b"]}),
    ] {
        assert_invalid(&auth, &legacy_token(&json!({"mercure": bad})));
    }
    // Signed with another key: refused.
    let forged = sign(
        &header(Algorithm::HS256, Some("JWT")),
        &legacy_claims(),
        &EncodingKey::from_secret(b"not-the-legacy-secret-not-the-legacy-secret"),
    );
    assert_invalid(&auth, &forged);
    // alg none stays refused in legacy mode.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none"})),
        b64(&legacy_claims())
    );
    assert_invalid(&auth, &none);
}

#[test]
fn legacy_tokens_with_iss_use_that_legacy_issuer_only() {
    let mut config = legacy_config();
    config.issuers.push(IssuerConfig {
        issuer: "https://legacy.example".into(),
        keys: vec![pem_key("ES256", EC2_PUBLIC)],
        legacy: true,
    });
    let auth = authenticator(&config);
    let b_key = EncodingKey::from_ec_pem(EC2_PRIVATE.as_bytes()).unwrap();
    let legacy_es = header(Algorithm::ES256, Some("JWT"));
    let claims = with(legacy_claims(), "iss", json!("https://legacy.example"));
    assert_valid(&auth, &sign(&legacy_es, &claims, &b_key));
    // Naming a non-legacy issuer: refused even with that issuer's key.
    let a_claims = with(legacy_claims(), "iss", json!(ISS_A));
    assert_invalid(
        &auth,
        &sign(
            &header(Algorithm::HS256, Some("JWT")),
            &a_claims,
            &signing_key(Algorithm::HS256),
        ),
    );
    // Naming the legacy issuer but signed by the iss-less legacy key: refused.
    let token = sign(
        &header(Algorithm::HS256, Some("JWT")),
        &claims,
        &EncodingKey::from_secret(SECRET_LEGACY.as_bytes()),
    );
    assert_invalid(&auth, &token);
}

#[test]
fn draft_tokens_stay_strict_in_legacy_mode() {
    let auth = authenticator(&legacy_config());
    assert_valid(&auth, &mint(Algorithm::HS256, &claims()));
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "exp", Value::Null)),
    );
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "aud", Value::Null)),
    );
    assert_invalid(
        &auth,
        &mint(Algorithm::HS256, &with(claims(), "iss", Value::Null)),
    );
    // An at+jwt token signed by the iss-less legacy key is not a legacy token.
    let token = sign(
        &header(Algorithm::HS256, Some("at+jwt")),
        &with(claims(), "iss", Value::Null),
        &EncodingKey::from_secret(SECRET_LEGACY.as_bytes()),
    );
    assert_invalid(&auth, &token);
}

// ------------------------------------------------------------------ presentation

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_authorization_header_beats_the_cookie() {
    let config = AuthConfig::default();
    let h = headers(&[
        ("authorization", "Bearer header.token.sig"),
        ("cookie", "__Secure-mercure_access_token=cookie.token.sig"),
    ]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("header.token.sig")
    );
    // Scheme case-insensitive.
    let h = headers(&[("authorization", "bEaReR abc.def.ghi")]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("abc.def.ghi")
    );
}

#[test]
fn the_cookie_is_used_without_a_header() {
    let config = AuthConfig::default();
    let h = headers(&[(
        "cookie",
        "theme=dark; __Secure-mercure_access_token=cookie.token.sig; x=y",
    )]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("cookie.token.sig")
    );
    // Several Cookie headers (HTTP/2), a quoted value.
    let h = headers(&[
        ("cookie", "a=b"),
        ("cookie", "__Secure-mercure_access_token=\"q.t.s\""),
    ]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("q.t.s")
    );
    // An empty cookie is no token; other names are not read.
    let h = headers(&[(
        "cookie",
        "__Secure-mercure_access_token=; mercureAuthorization=l.t.s",
    )]);
    assert_eq!(extract_token(&h, &[], &config).unwrap(), None);
    // A configured name.
    let config = AuthConfig {
        cookie_name: "hub_token".into(),
        ..AuthConfig::default()
    };
    let h = headers(&[("cookie", "hub_token=a.b.c")]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("a.b.c")
    );
}

#[test]
fn the_presentation_says_where_the_token_was() {
    let config = AuthConfig {
        legacy: true,
        legacy_query_token: true,
        ..AuthConfig::default()
    };
    let via = |h: &HeaderMap, q: &[(String, String)]| {
        extract_token(h, q, &config).unwrap().map(|p| p.via)
    };
    let cookie = headers(&[("cookie", "__Secure-mercure_access_token=c.t.s")]);
    assert_eq!(via(&cookie, &[]), Some(Via::Cookie));
    let bearer = headers(&[("authorization", "Bearer h.t.s")]);
    assert_eq!(via(&bearer, &[]), Some(Via::Header));
    assert_eq!(
        via(&HeaderMap::new(), &query(&[("authorization", "q.t.s")])),
        Some(Via::Query)
    );
}

#[test]
fn tokens_in_the_url_are_ignored() {
    let config = AuthConfig::default();
    let q = query(&[("access_token", "a.b.c"), ("authorization", "a.b.c")]);
    assert_eq!(extract_token(&HeaderMap::new(), &q, &config).unwrap(), None);
    // Legacy mode alone does not read the query either.
    let config = AuthConfig {
        legacy: true,
        ..AuthConfig::default()
    };
    assert_eq!(extract_token(&HeaderMap::new(), &q, &config).unwrap(), None);
}

#[test]
fn legacy_presentation() {
    let config = AuthConfig {
        legacy: true,
        legacy_query_token: true,
        ..AuthConfig::default()
    };
    // The legacy cookie.
    let h = headers(&[("cookie", "mercureAuthorization=l.t.s")]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("l.t.s")
    );
    // The draft cookie first.
    let h = headers(&[(
        "cookie",
        "mercureAuthorization=l.t.s; __Secure-mercure_access_token=d.t.s",
    )]);
    assert_eq!(
        extract_token(&h, &[], &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("d.t.s")
    );
    // The query parameter beats the cookie, the header beats both.
    let q = query(&[
        ("topic", "x"),
        ("authorization", "q.t.s"),
        ("access_token", "no"),
    ]);
    assert_eq!(
        extract_token(&h, &q, &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("q.t.s")
    );
    let with_header = headers(&[
        ("authorization", "Bearer h.t.s"),
        ("cookie", "mercureAuthorization=l.t.s"),
    ]);
    assert_eq!(
        extract_token(&with_header, &q, &config)
            .unwrap()
            .map(|p| p.token)
            .as_deref(),
        Some("h.t.s")
    );
    // Two query tokens, or a malformed one: invalid_request.
    let q2 = query(&[("authorization", "a.b.c"), ("authorization", "d.e.f")]);
    assert_eq!(
        extract_token(&HeaderMap::new(), &q2, &config).unwrap_err(),
        AuthError::invalid_request()
    );
    let q3 = query(&[("authorization", "Bearer a.b.c")]);
    assert_eq!(
        extract_token(&HeaderMap::new(), &q3, &config).unwrap_err(),
        AuthError::invalid_request()
    );
}

#[test]
fn malformed_presentation_is_invalid_request() {
    let config = AuthConfig::default();
    for value in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearerabc",
        "Bearer a b",
        "Token abc",
        "Bearer a,b",
    ] {
        let h = headers(&[
            ("authorization", value),
            ("cookie", "__Secure-mercure_access_token=a.b.c"),
        ]);
        let err = extract_token(&h, &[], &config).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidRequest, "{value:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    let h = headers(&[
        ("authorization", "Bearer a.b.c"),
        ("authorization", "Bearer d.e.f"),
    ]);
    assert_eq!(
        extract_token(&h, &[], &config).unwrap_err(),
        AuthError::invalid_request()
    );
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
    );
    assert_eq!(
        extract_token(&h, &[], &config).unwrap_err(),
        AuthError::invalid_request()
    );
}

// ------------------------------------------------------------------ challenges

#[test]
fn www_authenticate_challenges() {
    let metadata =
        "https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure";
    let cases = [
        (
            AuthError::missing_token(),
            StatusCode::UNAUTHORIZED,
            "Bearer",
            format!("Bearer resource_metadata=\"{metadata}\""),
        ),
        (
            AuthError::invalid_token(),
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\"",
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{metadata}\""),
        ),
        (
            AuthError::insufficient_scope(),
            StatusCode::FORBIDDEN,
            "Bearer error=\"insufficient_scope\"",
            format!("Bearer error=\"insufficient_scope\", resource_metadata=\"{metadata}\""),
        ),
        (
            AuthError::invalid_request(),
            StatusCode::BAD_REQUEST,
            "Bearer error=\"invalid_request\"",
            format!("Bearer error=\"invalid_request\", resource_metadata=\"{metadata}\""),
        ),
    ];
    for (err, status, bare, with_metadata) in cases {
        assert_eq!(err.status(), status);
        assert_eq!(err.www_authenticate(None), bare);
        assert_eq!(err.www_authenticate(Some(metadata)), with_metadata.as_str());
        // The message says nothing about why.
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        AuthError::missing_token().www_authenticate(Some("https://x.example/a\"b")),
        "Bearer resource_metadata=\"https://x.example/a\\\"b\""
    );
    assert_eq!(
        AuthError::missing_token().www_authenticate(Some("bad\nurl")),
        "Bearer"
    );
}

// ------------------------------------------------------------------ configuration

#[track_caller]
fn config_error(config: AuthConfig) -> String {
    Authenticator::new(&config, &hub())
        .expect_err("expected a configuration error")
        .to_string()
}

#[test]
fn configuration_errors() {
    let with_issuers = |issuers| AuthConfig {
        issuers,
        ..AuthConfig::default()
    };
    let message = config_error(AuthConfig {
        algorithms: vec!["HS256".into(), "XS999".into()],
        ..AuthConfig::default()
    });
    assert!(message.contains("unknown algorithm \"XS999\""), "{message}");
    let message = config_error(AuthConfig {
        algorithms: vec!["none".into()],
        ..AuthConfig::default()
    });
    assert!(message.contains("none"), "{message}");
    assert!(config_error(AuthConfig {
        algorithms: vec![],
        ..AuthConfig::default()
    })
    .contains("empty"));

    for (keys, expected) in [
        (vec![pem_key("HS256", RSA_PUBLIC)], "HS256 needs a secret"),
        (
            vec![KeyConfig {
                secret: Some(SECRET_A.into()),
                ..pem_key("HS256", RSA_PUBLIC)
            }],
            "HS256 needs a secret and no public key",
        ),
        (
            vec![secret_key("RS256", SECRET_A)],
            "RS256 needs a public key",
        ),
        (vec![secret_key("HS256", "short")], "at least 32 bytes"),
        (vec![secret_key("none", SECRET_A)], "none"),
        (
            vec![secret_key("HS512", &"x".repeat(64))],
            "not in auth.algorithms",
        ),
        (vec![pem_key("ES256", P384_PUBLIC)], "does not fit ES256"),
        (vec![pem_key("ES256", RSA_PUBLIC)], "not a ES256 PEM key"),
        (vec![pem_key("EdDSA", EC_PUBLIC)], "not a EdDSA PEM key"),
        (vec![pem_key("RS256", "not a pem")], "not a RS256 PEM key"),
        (
            vec![KeyConfig {
                public_key_file: Some("/nonexistent/key.pem".into()),
                ..pem_key("RS256", RSA_PUBLIC)
            }],
            "not both",
        ),
        (
            vec![KeyConfig {
                public_key_pem: None,
                public_key_file: Some("/nonexistent/key.pem".into()),
                ..pem_key("RS256", "")
            }],
            "reading /nonexistent/key.pem",
        ),
        (vec![], "no keys"),
    ] {
        let message = config_error(with_issuers(vec![issuer(ISS_A, keys)]));
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
        assert!(message.contains("auth.issuers[0]"), "{message}");
    }

    let message = config_error(with_issuers(vec![issuer(
        "",
        vec![secret_key("HS256", SECRET_A)],
    )]));
    assert!(message.contains("issuer is empty"), "{message}");
    let message = config_error(with_issuers(vec![
        issuer(ISS_A, vec![secret_key("HS256", SECRET_A)]),
        issuer(ISS_A, vec![secret_key("HS256", SECRET_A)]),
    ]));
    assert!(message.contains("listed twice"), "{message}");
    let message = config_error(AuthConfig {
        legacy_query_token: true,
        ..AuthConfig::default()
    });
    assert!(message.contains("needs auth.legacy"), "{message}");
    let message = config_error(AuthConfig {
        legacy: true,
        ..config()
    });
    assert!(
        message.contains("at least one issuer with legacy = true"),
        "{message}"
    );
    let mut legacy_issuer_only = legacy_config();
    legacy_issuer_only.legacy = false;
    assert!(config_error(legacy_issuer_only).contains("legacy issuers need auth.legacy"));
    let message = config_error(AuthConfig {
        cookie_name: "bad name;".into(),
        ..AuthConfig::default()
    });
    assert!(message.contains("not a valid cookie name"), "{message}");
}

#[test]
fn keys_load_from_files() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/ed25519-public.pem");
    let key = KeyConfig {
        alg: "EdDSA".into(),
        kid: None,
        secret: None,
        public_key_pem: None,
        public_key_file: Some(path),
    };
    let config = AuthConfig {
        issuers: vec![issuer(ISS_A, vec![key])],
        ..AuthConfig::default()
    };
    let auth = authenticator(&config);
    assert_valid(&auth, &mint(Algorithm::EdDSA, &claims()));
}

#[test]
fn defaults_and_deserialization() {
    let config = AuthConfig::default();
    assert_eq!(config.algorithms, ["HS256", "RS256", "ES256", "EdDSA"]);
    assert_eq!(config.cookie_name, "__Secure-mercure_access_token");
    assert_eq!(config.legacy_cookie_name, "mercureAuthorization");
    assert_eq!(config.leeway_secs, 5);
    assert!(!config.legacy && !config.legacy_query_token);
    assert!(config.resource.is_empty() && config.issuers.is_empty());

    let config: AuthConfig = serde_json::from_value(json!({
        "issuers": [{"issuer": ISS_A, "keys": [{"alg": "HS256", "secret": SECRET_A, "kid": "k1"}]}],
        "leeway_secs": 1,
    }))
    .unwrap();
    assert_eq!(config.issuers[0].keys[0].kid.as_deref(), Some("k1"));
    assert_eq!(config.cookie_name, "__Secure-mercure_access_token");
    let auth = authenticator(&config);
    assert_valid(&auth, &mint(Algorithm::HS256, &claims()));
    // Typos are errors, not silently ignored settings.
    assert!(serde_json::from_value::<AuthConfig>(json!({"legasy": true})).is_err());
    // Secrets never reach the debug output.
    let debug = format!("{config:?} {auth:?}");
    assert!(!debug.contains(SECRET_A), "{debug}");
}

#[test]
fn validate_checks_without_building() {
    assert!(config().validate(&hub()).is_ok());
    let bad = AuthConfig {
        algorithms: vec!["none".into()],
        ..AuthConfig::default()
    };
    assert!(bad.validate(&hub()).is_err());
}

#[test]
fn no_issuers_refuse_every_token() {
    let auth = authenticator(&AuthConfig::default());
    assert_invalid(&auth, &mint(Algorithm::HS256, &claims()));
}
