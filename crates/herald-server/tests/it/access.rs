//! Who sees what: private updates, token presentation, expiry, CORS,
//! connection limits.

use std::time::Duration;

use serde_json::json;

use crate::{details, read_events, start, start_with, token};

#[tokio::test]
async fn private_updates_reach_only_subscribers_granted_one_of_their_topics() {
    let hub = start().await;
    let reader = token(
        &hub.url,
        json!({"authorization_details": details(&[], &["/users/42/books/1"])}),
    );
    let granted = hub
        .subscribe_request("match=/books/1")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    let anonymous = hub
        .subscribe_request("match=/books/1")
        .send()
        .await
        .unwrap();
    // Canonical topic not granted, alternate granted: delivered (draft-08 example).
    hub.publish_ok(&[
        ("topic", "/books/1"),
        ("topic", "/users/42/books/1"),
        ("data", "private"),
        ("private", "on"),
    ])
    .await;
    hub.publish_ok(&[("topic", "/books/1"), ("data", "public")])
        .await;
    let got = read_events(granted, 2).await;
    assert_eq!(
        got.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["private", "public"]
    );
    assert_eq!(read_events(anonymous, 1).await[0].data(), "public");
}

#[tokio::test]
async fn private_updates_are_filtered_on_replay_too() {
    let hub = start().await;
    hub.publish_ok(&[("topic", "/s"), ("data", "private"), ("private", "on")])
        .await;
    hub.publish_ok(&[("topic", "/s"), ("data", "public")]).await;
    let anonymous = hub
        .subscribe_request("match=/s&last_event_id=earliest")
        .send()
        .await
        .unwrap();
    assert_eq!(read_events(anonymous, 1).await[0].data(), "public");
}

#[tokio::test]
async fn the_cookie_carries_the_token_when_there_is_no_header() {
    let hub = start().await;
    let reader = token(
        &hub.url,
        json!({"authorization_details": details(&[], &["/c"])}),
    );
    let subscriber = hub
        .subscribe_request("match=/c")
        .header("cookie", format!("__Secure-mercure_access_token={reader}"))
        .send()
        .await
        .unwrap();
    assert_eq!(subscriber.status(), 200);
    hub.publish_ok(&[("topic", "/c"), ("data", "via cookie"), ("private", "on")])
        .await;
    assert_eq!(read_events(subscriber, 1).await[0].data(), "via cookie");
}

#[tokio::test]
async fn the_access_token_query_parameter_is_not_honoured() {
    let hub = start_with(|config| config.allow_anonymous = false).await;
    let reader = token(
        &hub.url,
        json!({"authorization_details": details(&[], &["/q"])}),
    );
    let response = hub
        .subscribe_request(&format!("match=/q&access_token={reader}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn anonymous_subscribers_can_be_refused() {
    let hub = start_with(|config| config.allow_anonymous = false).await;
    let response = hub.subscribe_request("match=/a").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="));
    let reader = token(
        &hub.url,
        json!({"authorization_details": details(&[], &["/a"])}),
    );
    let response = hub
        .subscribe_request("match=/a")
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_invalid_subscriber_token_is_401_even_when_anonymous_is_allowed() {
    let hub = start().await;
    let response = hub
        .subscribe_request("match=/a")
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        hub.challenge(Some("invalid_token")).as_str()
    );
}

#[tokio::test]
async fn a_malformed_authorization_header_is_400_invalid_request() {
    let hub = start().await;
    let response = hub
        .subscribe_request("match=/a")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["www-authenticate"],
        hub.challenge(Some("invalid_request")).as_str()
    );
}

#[tokio::test]
async fn the_stream_ends_when_the_token_expires() {
    let hub = start().await;
    let now = crate::unix_time();
    let short = token(
        &hub.url,
        json!({"exp": now + 2, "authorization_details": details(&[], &["*"])}),
    );
    let response = hub
        .subscribe_request("match=/e")
        .bearer_auth(short)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(8), response.bytes()).await;
    assert!(
        ended.is_ok(),
        "the hub closed the stream at the token's exp"
    );
}

#[tokio::test]
async fn cors_allows_listed_origins_with_credentials_and_nobody_else() {
    let hub = start_with(|config| config.cors_origins = vec!["https://app.example".into()]).await;
    let listed = hub
        .subscribe_request("match=/a")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");
    let other = hub
        .subscribe_request("match=/a")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, &hub.url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
}

#[tokio::test]
async fn a_wildcard_cors_origin_never_allows_credentials() {
    let hub = start_with(|config| config.cors_origins = vec!["*".into()]).await;
    let response = hub
        .subscribe_request("match=/a")
        .header("origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}

#[tokio::test]
async fn connection_limits_answer_429() {
    let hub = start_with(|config| config.max_subscriptions_per_ip = 2).await;
    let first = hub.subscribe_request("match=/a").send().await.unwrap();
    let second = hub.subscribe_request("match=/a").send().await.unwrap();
    let third = hub.subscribe_request("match=/a").send().await.unwrap();
    assert_eq!(
        (first.status(), second.status(), third.status().as_u16()),
        (200.try_into().unwrap(), 200.try_into().unwrap(), 429)
    );
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let retry = hub.subscribe_request("match=/a").send().await.unwrap();
        if retry.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
