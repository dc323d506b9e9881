//! The publish rules that do not depend on the token, and what each
//! refusal says: these texts are the 400 and 413 bodies over HTTP, so a
//! publisher must be able to tell from them which rule failed.

use herald_hub::field_rules::{EventIdError, EventTypeError, TopicError};
use herald_hub::{
    HubConfig, InvalidUpdate, PublishError, PublishLimits, SizeLimit, Update, EARLIEST,
    HUB_EVENT_TYPE,
};

use crate::{hub_with, publish};

fn update(configure: impl FnOnce(&mut Update)) -> Update {
    let mut update = Update::new("/t", "x");
    configure(&mut update);
    update
}

/// Each refused update with the error's text.
fn refusals() -> Vec<(Update, &'static str)> {
    vec![
        (
            update(|u| u.topics.clear()),
            "invalid update: at least one topic is required",
        ),
        (
            update(|u| u.topics = vec!["/a\u{7}".into()]),
            "invalid update: topic \"/a\\u{7}\": contains U+0007 (a control character) at byte 2",
        ),
        (
            update(|u| u.topics.push("*".into())),
            "invalid update: the topic \"*\" is reserved for the wildcard matcher",
        ),
        (
            update(|u| u.topics.push("/.well-known/mercure/x".into())),
            "invalid update: topic \"/.well-known/mercure/x\" addresses the hub's reserved namespace",
        ),
        (
            update(|u| u.id = Some("#x".into())),
            "invalid update: id: it must not start with `#` (reserved for hub-generated ids)",
        ),
        (
            update(|u| u.id = Some("earliest".into())),
            "invalid update: id: `earliest` is reserved for replaying all history",
        ),
        (
            update(|u| u.id = Some("a\u{200B}".into())),
            "invalid update: id: contains U+200B (a format character) at byte 1",
        ),
        (
            update(|u| u.event_type = Some("mercure".into())),
            "invalid update: type: `mercure` is reserved for the hub's own events",
        ),
        (
            update(|u| u.event_type = Some("a\nb".into())),
            "invalid update: type: contains U+000A (a control character) at byte 1",
        ),
        (
            update(|u| u.topics = (0..3).map(|i| format!("/{i}")).collect()),
            "update too large: 3 topics (at most 2)",
        ),
        (
            update(|u| u.topics = vec!["/".repeat(33)]),
            "update too large: a topic of 33 bytes (at most 32)",
        ),
        (
            update(|u| u.data = "x".repeat(17)),
            "update too large: 17 bytes of data (at most 16)",
        ),
    ]
}

fn small_limits(config: &mut HubConfig) {
    config.publish_limits = PublishLimits {
        max_topics: 2,
        max_topic_len: 32,
        max_data_len: 16,
        max_field_len: 16,
    };
}

#[tokio::test]
async fn every_refusal_names_its_rule() {
    let hub = hub_with(small_limits).await;
    for (update, expected) in refusals() {
        let error = publish(&hub, update.clone()).await.unwrap_err();
        match &error {
            PublishError::Invalid(_) | PublishError::TooLarge(_) => {}
            other => panic!("{update:?}: not a validation error: {other:?}"),
        }
        assert_eq!(error.to_string(), expected, "{update:?}");
    }
    assert_eq!(hub.stats().published, 0);
}

#[tokio::test]
async fn long_ids_and_types_are_too_large() {
    let hub = hub_with(small_limits).await;
    for update in [
        update(|u| u.id = Some("x".repeat(17))),
        update(|u| u.event_type = Some("x".repeat(17))),
    ] {
        let error = publish(&hub, update.clone()).await.unwrap_err();
        assert!(
            matches!(error, PublishError::TooLarge(_)),
            "{update:?}: {error:?}"
        );
        assert!(error.to_string().contains("of 17 bytes"), "{error}");
    }
    // At the limit is fine.
    let at_limit = update(|u| {
        u.id = Some("x".repeat(16));
        u.event_type = Some("x".repeat(16));
    });
    publish(&hub, at_limit).await.unwrap();
}

#[tokio::test]
async fn refusals_carry_the_rule_and_the_limit_as_data() {
    let hub = hub_with(small_limits).await;
    let refuse = |update: Update| hub.validate(update).unwrap_err();
    assert!(matches!(
        refuse(update(|u| u.topics.clear())),
        PublishError::Invalid(InvalidUpdate::NoTopic)
    ));
    match refuse(update(|u| u.topics.push("*".into()))) {
        PublishError::Invalid(InvalidUpdate::Topic { topic, rule }) => {
            assert_eq!((topic.as_str(), rule), ("*", TopicError::Wildcard))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        refuse(update(|u| u.topics.push("/.well-known/mercure".into()))),
        PublishError::Invalid(InvalidUpdate::Topic {
            rule: TopicError::ReservedNamespace,
            ..
        })
    ));
    assert!(matches!(
        refuse(update(|u| u.id = Some(EARLIEST.into()))),
        PublishError::Invalid(InvalidUpdate::Id(EventIdError::Earliest))
    ));
    assert!(matches!(
        refuse(update(|u| u.event_type = Some(HUB_EVENT_TYPE.into()))),
        PublishError::Invalid(InvalidUpdate::Type(EventTypeError::Reserved))
    ));
    match refuse(update(|u| u.data = "x".repeat(17))) {
        PublishError::TooLarge(too_large) => assert_eq!(
            (too_large.limit, too_large.size, too_large.max),
            (SizeLimit::DataLen, 17, 16)
        ),
        other => panic!("{other:?}"),
    }
    match refuse(update(|u| u.event_type = Some("x".repeat(17)))) {
        PublishError::TooLarge(too_large) => assert_eq!(too_large.limit, SizeLimit::TypeLen),
        other => panic!("{other:?}"),
    }
}
