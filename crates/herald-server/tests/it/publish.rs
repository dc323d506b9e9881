//! `POST /.well-known/mercure`: every 200/400/401/403/413 rule.

use serde_json::json;

use crate::{details, read_events, start, start_with, token};

#[tokio::test]
async fn a_publish_answers_200_text_plain_with_the_generated_id() {
    let hub = start().await;
    let response = hub.publish(&[("topic", "/a"), ("data", "x")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let id = response.text().await.unwrap();
    assert!(id.starts_with("urn:uuid:"), "{id}");
}

#[tokio::test]
async fn a_custom_id_type_and_retry_reach_the_subscriber() {
    let hub = start().await;
    let subscriber = hub.subscribe_request("match=/a").send().await.unwrap();
    let id = hub
        .publish_ok(&[
            ("topic", "/a"),
            ("data", "x"),
            ("id", "my-id"),
            ("type", "t"),
            ("retry", "1500"),
        ])
        .await;
    assert_eq!(id, "my-id");
    let events = read_events(subscriber, 1).await;
    assert_eq!(
        (events[0].last_event_id(), events[0].event_type()),
        ("my-id", "t")
    );
}

#[tokio::test]
async fn json_bodies_are_accepted() {
    let hub = start().await;
    let subscriber = hub.subscribe_request("match=/j").send().await.unwrap();
    let response = hub
        .http
        .post(&hub.url)
        .bearer_auth(hub.admin_token())
        .json(&json!({"topic": ["/j", "/alt"], "data": "from json", "retry": "10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(read_events(subscriber, 1).await[0].data(), "from json");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let hub = start().await;
    let response = hub.publish(&[("topic", "/a"), ("future", "x")]).await;
    assert_eq!(response.status(), 200);
}

async fn status_of(fields: &[(&str, &str)]) -> u16 {
    let hub = start().await;
    hub.publish(fields).await.status().as_u16()
}

#[tokio::test]
async fn a_publish_without_topic_is_400() {
    assert_eq!(status_of(&[("data", "x")]).await, 400);
}

#[tokio::test]
async fn the_wildcard_topic_is_400() {
    assert_eq!(status_of(&[("topic", "*")]).await, 400);
    assert_eq!(status_of(&[("topic", "/a"), ("topic", "*")]).await, 400);
}

#[tokio::test]
async fn topics_in_the_reserved_namespace_are_400_even_without_a_token() {
    let hub = start().await;
    for topic in [
        "/.well-known/mercure",
        "/.well-known/mercure/subscriptions/x",
        "https://elsewhere.example/.well-known/mercure/subscriptions/x",
        "/.well-known/%6Dercure/x",
        "/.well-known/mercure/../mercure/x",
    ] {
        let response = hub.publish_as(None, &[("topic", topic)]).await;
        assert_eq!(response.status(), 400, "{topic}");
        let response = hub.publish(&[("topic", "/ok"), ("topic", topic)]).await;
        assert_eq!(response.status(), 400, "alternate {topic}");
    }
}

#[tokio::test]
async fn the_mercure_type_is_400() {
    assert_eq!(
        status_of(&[("topic", "/a"), ("type", "mercure")]).await,
        400
    );
}

#[tokio::test]
async fn bad_ids_are_400() {
    for id in [
        "#frag",
        "earliest",
        "a\nb",
        "a\u{0}b",
        "a\u{200B}b",
        "a\u{85}b",
    ] {
        assert_eq!(
            status_of(&[("topic", "/a"), ("id", id)]).await,
            400,
            "{id:?}"
        );
    }
}

#[tokio::test]
async fn control_characters_in_topics_and_types_are_400() {
    assert_eq!(status_of(&[("topic", "/a\u{7}")]).await, 400);
    assert_eq!(status_of(&[("topic", "/a"), ("type", "t\u{0}")]).await, 400);
    assert_eq!(
        status_of(&[("topic", "/a"), ("type", "t\u{202E}")]).await,
        400
    );
}

#[tokio::test]
async fn a_non_digit_retry_is_400() {
    for retry in ["-1", "1.5", "3s", " 1", ""] {
        assert_eq!(
            status_of(&[("topic", "/a"), ("retry", retry)]).await,
            400,
            "{retry:?}"
        );
    }
}

#[tokio::test]
async fn the_private_field_needs_no_value() {
    let hub = start().await;
    let anonymous = hub.subscribe_request("match=/p").send().await.unwrap();
    hub.publish_ok(&[("topic", "/p"), ("data", "secret"), ("private", "")])
        .await;
    hub.publish_ok(&[("topic", "/p"), ("data", "public")]).await;
    assert_eq!(read_events(anonymous, 1).await[0].data(), "public");
}

#[tokio::test]
async fn oversized_requests_are_413() {
    let hub = start_with(|config| config.max_body_bytes = 1024).await;
    let data = "x".repeat(2000);
    let response = hub.publish(&[("topic", "/a"), ("data", &data)]).await;
    assert_eq!(response.status(), 413);
    let hub = start().await;
    let topics: Vec<(&str, String)> = (0..65).map(|i| ("topic", format!("/t{i}"))).collect();
    let fields: Vec<(&str, &str)> = topics.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(hub.publish(&fields).await.status(), 413);
}

#[tokio::test]
async fn a_refusal_says_which_rule_or_limit() {
    let hub = start().await;
    let response = hub.publish(&[("topic", "/.well-known/mercure/x")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.text().await.unwrap(),
        "topic \"/.well-known/mercure/x\" addresses the hub's reserved namespace\n"
    );
    let topics: Vec<(&str, String)> = (0..65).map(|i| ("topic", format!("/t{i}"))).collect();
    let fields: Vec<(&str, &str)> = topics.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = hub.publish(&fields).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.text().await.unwrap(), "65 topics (at most 64)\n");
}

#[tokio::test]
async fn a_publish_without_token_is_401_with_a_bare_bearer_challenge() {
    let hub = start().await;
    let response = hub.publish_as(None, &[("topic", "/a")]).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
}

#[tokio::test]
async fn an_invalid_token_is_401_invalid_token() {
    let hub = start().await;
    let wrong_audience = token(
        "https://other.hub/",
        json!({"authorization_details": details(&["*"], &[])}),
    );
    for bad in ["not-a-jwt", wrong_audience.as_str()] {
        let response = hub.publish_as(Some(bad), &[("topic", "/a")]).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            hub.challenge(Some("invalid_token")).as_str()
        );
    }
}

#[tokio::test]
async fn a_token_without_publish_on_every_topic_is_403_insufficient_scope() {
    let hub = start().await;
    let narrow = token(
        &hub.url,
        json!({"authorization_details": details(&["/allowed"], &[])}),
    );
    let response = hub
        .publish_as(Some(&narrow), &[("topic", "/allowed"), ("topic", "/other")])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        hub.challenge(Some("insufficient_scope")).as_str()
    );
    let response = hub
        .publish_as(Some(&narrow), &[("topic", "/allowed")])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn anonymous_publishing_can_be_enabled_for_trusted_networks() {
    let hub = start_with(|config| config.allow_anonymous_publish = true).await;
    let response = hub.publish_as(None, &[("topic", "/a")]).await;
    assert_eq!(response.status(), 200);
}

/// draft-08 §Publication and §"Server-Sent Events Field Injection": a
/// line break of any kind (CR, LF, CRLF) in `data` starts a new `data:`
/// line, so a value cannot slip an `id:` or `event:` field into the stream.
#[tokio::test]
async fn every_kind_of_line_break_in_data_becomes_a_data_line() {
    use futures_util::StreamExt as _;
    let hub = start().await;
    let subscriber = hub.subscribe_request("match=/lines").send().await.unwrap();
    hub.publish_ok(&[
        ("topic", "/lines"),
        ("id", "real"),
        ("data", "a\rid: forged\r\nevent: forged\nb"),
    ])
    .await;
    let mut body = subscriber.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("data: b\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("the event in time")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        seen.ends_with("id: real\ndata: a\ndata: id: forged\ndata: event: forged\ndata: b\n\n"),
        "{seen:?}"
    );
}

/// draft-08 §Publication: field names and values MUST be UTF-8.
#[tokio::test]
async fn a_body_that_is_not_utf8_is_400() {
    let hub = start().await;
    let response = hub
        .http
        .post(&hub.url)
        .bearer_auth(hub.admin_token())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"topic=/a&data=\xff\xfe".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// Bytes that are not UTF-8 once percent-decoded are refused too, not
/// turned into U+FFFD (draft-08: values MUST be UTF-8).
#[tokio::test]
async fn percent_encoded_bytes_that_are_not_utf8_are_400() {
    let hub = start().await;
    for body in [
        "topic=%FF&data=x",
        "topic=/a&data=%C3",
        "topic=/a&data=x&%FE=1",
    ] {
        let response = hub
            .http
            .post(&hub.url)
            .bearer_auth(hub.admin_token())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert!(response.text().await.unwrap().contains("UTF-8"), "{body}");
    }
}
