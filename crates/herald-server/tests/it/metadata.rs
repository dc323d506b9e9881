//! The protected resource metadata (RFC 9728, draft-08 §"Protected
//! Resource Metadata") and the `resource_metadata` parameter of every
//! Bearer challenge.

use herald_server::auth::{IssuerConfig, KeyConfig};
use serde_json::{json, Value};

use crate::{start, start_with, token, SECRET};

const PATH: &str = "/.well-known/oauth-protected-resource/.well-known/mercure";

#[tokio::test]
async fn the_document_names_the_resource_the_detail_type_and_the_ways_to_present_a_token() {
    let hub = start().await;
    let response = hub
        .http
        .get(format!("{}{PATH}", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let document: Value = response.json().await.unwrap();
    // The resource is what tokens' `aud` must name: the hub's URL here.
    assert_eq!(document["resource"], hub.url);
    assert_eq!(
        document["authorization_details_types_supported"],
        json!(["https://mercure.rocks/authorization-detail"])
    );
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    assert_eq!(document["mercure_cookie"], "__Secure-mercure_access_token");
    // The test issuer is an https URL: an authorization server.
    assert_eq!(document["authorization_servers"], json!([crate::ISSUER]));
    // It names nothing the hub does not do.
    assert!(document.get("mercure_subscriptions").is_none());
}

#[tokio::test]
async fn a_self_issuing_key_is_no_authorization_server() {
    let hub = start_with(|config| {
        config.auth.issuers = vec![IssuerConfig {
            issuer: "herald-local".into(),
            keys: vec![KeyConfig::secret("HS256", SECRET)],
            legacy: false,
        }];
    })
    .await;
    let document: Value = hub
        .http
        .get(format!("{}{PATH}", hub.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document.get("authorization_servers").is_none(),
        "{document}"
    );
}

#[tokio::test]
async fn every_bearer_challenge_points_to_the_document() {
    let hub = start_with(|config| config.allow_anonymous = false).await;
    let expected = format!("resource_metadata=\"{}{PATH}\"", hub.base);
    // No token, a bad one, one without the grant, a malformed header: each
    // challenge carries it, not only the first.
    let narrow = token(
        &hub.url,
        json!({ "authorization_details": crate::details(&["/x"], &[]) }),
    );
    let cases = [
        hub.subscribe_request("match=/a"),
        hub.subscribe_request("match=/a").bearer_auth("garbage"),
        hub.subscribe_request("match=/a")
            .header("authorization", "Basic dXNlcjpwYXNz"),
        hub.http
            .post(&hub.url)
            .bearer_auth(&narrow)
            .form(&[("topic", "/a"), ("data", "x")]),
    ];
    for request in cases {
        let response = request.send().await.unwrap();
        assert!([400, 401, 403].contains(&response.status().as_u16()));
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(challenge.ends_with(&expected), "{challenge}");
    }
}
