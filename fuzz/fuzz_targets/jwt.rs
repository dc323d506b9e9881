//! Fuzzes the token path: finding a token in the headers, then validating
//! it (header, algorithm, issuer, signature, claims). Untrusted bytes
//! until the signature checks: never a panic.
#![no_main]

use std::sync::OnceLock;

use herald_server::auth::{extract_token, AuthConfig, Authenticator, IssuerConfig, KeyConfig};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "a-fuzzing-secret-that-is-long-enough-for-hs256";

fn authenticator() -> &'static (AuthConfig, Authenticator) {
    static AUTH: OnceLock<(AuthConfig, Authenticator)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let hub = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
        let mut config = AuthConfig::default();
        config.legacy = true;
        config.issuers.push(IssuerConfig {
            issuer: "https://issuer.example".into(),
            keys: vec![KeyConfig::secret("HS256", SECRET)],
            legacy: true,
        });
        let auth = Authenticator::new(&config, &hub).unwrap();
        (config, auth)
    })
}

fuzz_target!(|input: &[u8]| {
    let (config, auth) = authenticator();
    // As a token directly, the way a bearer header's value reaches it.
    let _ = auth.authenticate(&String::from_utf8_lossy(input));
    // As an Authorization header and as a cookie.
    for name in ["authorization", "cookie"] {
        let Ok(value) = HeaderValue::from_bytes(input) else {
            return;
        };
        let mut headers = HeaderMap::new();
        headers.insert(name, value);
        if let Ok(Some(presented)) = extract_token(&headers, &[], config) {
            let _ = auth.authenticate(&presented.token);
        }
    }
});
