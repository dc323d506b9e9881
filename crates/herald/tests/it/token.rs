//! `herald token`: tokens a real `herald serve` accepts, for exactly what
//! they grant.

use base64::Engine as _;
use serde_json::Value;

use crate::herald;
use crate::tail::{json_line, Hub};

/// `herald token ARGS…` for `hub`, signed with its key.
fn mint(hub: &Hub, args: &[&str]) -> String {
    let out = herald()
        .args(["token", "--hub", &hub.url, "--data"])
        .arg(&hub.dir)
        .args(args)
        .env_remove("HERALD_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// A JWT's header and claims, unverified.
fn decode(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let b64 = token.split('.').nth(i).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    };
    (part(0), part(1))
}

#[test]
fn a_subscribe_token_reads_private_updates_and_cannot_publish() {
    let hub = Hub::start();
    let secret = "https://example.com/secret";
    let private = hub.publish(secret, "for granted eyes", &["--private"]);
    let public = hub.publish(secret, "for everyone", &[]);
    let token = mint(&hub, &["--subscribe", secret]);

    // `herald tail` of the topic's history, the first `n` events.
    let replay = |n: &str, extra: &[&str]| {
        hub.tail()
            .args(["--topic", secret, "--json", "--last-event-id", "earliest"])
            .args(["-n", n, "--timeout", "20"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = replay("2", &["--token", &token]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        json_line("message", "for granted eyes", &private)
            + &json_line("message", "for everyone", &public)
    );

    // Without the token, the private update is skipped.
    let out = replay("1", &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        json_line("message", "for everyone", &public)
    );

    // It grants no publishing: 403, with the hub's reason.
    let out = herald()
        .args(["publish", "--hub", &hub.url, "--token", &token, secret, "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .starts_with("herald: 403 Forbidden: the access token does not grant this operation ("),
        "{stderr}"
    );
}

#[test]
fn a_url_pattern_publish_token_covers_its_topics_only() {
    let hub = Hub::start();
    let token = mint(
        &hub,
        &[
            "--publish",
            "https://example.com/books/:id",
            "--match-type",
            "urlpattern",
        ],
    );
    let publish = |topic: &str| {
        herald()
            .args(["publish", "--hub", &hub.url, "--token", &token, topic, "x"])
            .output()
            .unwrap()
    };
    let out = publish("https://example.com/books/42");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("urn:uuid:"));
    let out = publish("https://example.com/authors/42");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("403 Forbidden"));
}

#[test]
fn claims_say_what_was_asked() {
    let hub = Hub::start();
    let token = mint(
        &hub,
        &[
            "--publish",
            "*",
            "--ttl",
            "30d",
            "--subject",
            "ci",
            "--kid",
            "k1",
        ],
    );
    let (header, claims) = decode(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], "k1");
    assert_eq!(claims["iss"], "herald-local");
    assert_eq!(claims["aud"], hub.url.as_str());
    assert_eq!(claims["sub"], "ci");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        30 * 86_400
    );
    assert_eq!(
        claims["authorization_details"][0]["topics"][0],
        serde_json::json!({"match": "*", "match_type": "exact"})
    );

    let legacy = mint(&hub, &["--legacy", "--subscribe", "*", "--audience", "x"]);
    let (header, claims) = decode(&legacy);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["aud"], "x");
    assert_eq!(
        claims["mercure"],
        serde_json::json!({"publish": [], "subscribe": ["*"]})
    );
}

#[test]
fn mistakes_are_explained() {
    let missing = std::env::temp_dir().join(format!("herald-it-nokey-{}", std::process::id()));
    let out = herald()
        .args(["token", "--publish", "*", "--data"])
        .arg(&missing)
        .env_remove("HERALD_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("herald: no key at "), "{stderr}");
    assert!(!missing.exists(), "herald token must not create a key");

    for bad in [
        &["token"][..],
        &["token", "--publish", "*", "--ttl", "5x"],
        &["token", "--publish", "*", "--alg", "none"],
    ] {
        let out = herald().args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }

    let out = herald()
        .args(["token", "--publish", "*", "--secret", "short"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "herald: the secret is 5 bytes: HS256 needs at least 32\n"
    );
}

#[test]
fn the_audience_is_the_hub_recorded_in_the_data_directory() {
    // A hub on a port the OS picked: `--data DIR` alone names it, so the
    // token's audience is that hub's URL and it accepts the token.
    let hub = Hub::start();
    let out = herald()
        .args(["token", "--publish", "*", "--data"])
        .arg(&hub.dir)
        .env_remove("HERALD_HUB")
        .env_remove("HERALD_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    assert_eq!(decode(&token).1["aud"], hub.url.as_str());
    let out = herald()
        .args(["publish", "--hub", &hub.url, "--token", &token, "/t", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
