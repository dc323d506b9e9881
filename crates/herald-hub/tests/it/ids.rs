//! Custom ids must come back unchanged through a `Last-Event-ID` header:
//! HTTP strips leading and trailing spaces and tabs from header values, so
//! such ids are refused at publish.

use herald_hub::field_rules::{check_event_id, EventIdError};
use herald_hub::{InvalidUpdate, PublishError, ResumePoint, Update};

use crate::{events, hub, publish, subscribe};

#[test]
fn padded_and_empty_ids_are_refused_by_the_id_rule() {
    for padded in [
        " earliest",
        "earliest ",
        " a",
        "a ",
        "\ta",
        "a\t",
        " ",
        "  a b  ",
    ] {
        assert_eq!(
            check_event_id(padded),
            Err(EventIdError::Padded),
            "{padded:?}"
        );
    }
    assert_eq!(check_event_id(""), Err(EventIdError::Empty));
    // Inside an id, a space survives a header round trip.
    assert_eq!(check_event_id("a b"), Ok(()));
    assert!(EventIdError::Padded.to_string().contains("space"));
}

#[tokio::test]
async fn a_padded_id_is_refused_at_publish_with_a_clear_message() {
    let hub = hub().await;
    for padded in [" earliest", "earliest\t", " urn:uuid:1", "1 "] {
        let mut update = Update::new("/t", "x");
        update.id = Some(padded.into());
        match publish(&hub, update).await {
            Err(PublishError::Invalid(why @ InvalidUpdate::Id(EventIdError::Padded))) => {
                assert!(why.to_string().contains("space or a tab"), "{why}")
            }
            other => panic!("{padded:?}: expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(hub.stats().published, 0);
}

#[tokio::test]
async fn an_empty_id_gets_a_generated_one() {
    // An empty `id` field means "none", as with the reference hub: as an
    // SSE id it would reset the client's last event id instead.
    let hub = hub().await;
    let mut update = Update::new("/t", "x");
    update.id = Some(String::new());
    let published = publish(&hub, update).await.unwrap();
    assert!(published.id.starts_with("urn:uuid:"), "{}", published.id);
}

#[tokio::test]
async fn an_id_with_inner_spaces_resumes_exactly() {
    let hub = hub().await;
    let mut update = Update::new("/t", "1");
    update.id = Some("a b".into());
    publish(&hub, update).await.unwrap();
    publish(&hub, Update::new("/t", "2")).await.unwrap();
    let mut subscription = subscribe(&hub, "/t", Some("a b")).await;
    assert_eq!(
        subscription.resume_point(),
        &ResumePoint::After("a b".into())
    );
    assert_eq!(events(&mut subscription, 1).await[0].data(), "2");
}
