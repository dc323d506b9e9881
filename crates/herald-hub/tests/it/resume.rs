//! Resume: replay after a cursor, then live, with an exact seam.

use std::collections::HashSet;
use std::sync::Arc;

use herald_hub::{PublishError, ResumePoint, SubscribeRequest, Update, HUB_EVENT_TYPE};
use rand_like::Rng;

use crate::{events, hub, publish, subscribe};

#[tokio::test]
async fn resuming_after_an_id_replays_exactly_what_followed_then_goes_live() {
    let hub = hub().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            publish(&hub, Update::new("/t", format!("{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    publish(&hub, Update::new("/other", "not mine"))
        .await
        .unwrap();
    let mut subscription = subscribe(&hub, "/t", Some(&ids[1])).await;
    assert_eq!(
        subscription.resume_point(),
        &ResumePoint::After(ids[1].clone())
    );
    publish(&hub, Update::new("/t", "live")).await.unwrap();
    let got = events(&mut subscription, 4).await;
    let data: Vec<&str> = got.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["2", "3", "4", "live"]);
}

#[tokio::test]
async fn earliest_replays_everything_retained() {
    let hub = hub().await;
    for i in 0..3 {
        publish(&hub, Update::new("/t", format!("{i}")))
            .await
            .unwrap();
    }
    let mut subscription = subscribe(&hub, "/t", Some("earliest")).await;
    assert_eq!(subscription.resume_point().header_value(), Some("earliest"));
    let got = events(&mut subscription, 3).await;
    assert_eq!(
        got.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
}

#[tokio::test]
async fn an_unknown_id_is_reported_in_band_then_everything_retained_is_replayed() {
    let hub = hub().await;
    publish(&hub, Update::new("/t", "kept")).await.unwrap();
    let mut subscription = subscribe(&hub, "/t", Some("urn:uuid:gone")).await;
    assert_eq!(subscription.resume_point().header_value(), Some("earliest"));
    let got = events(&mut subscription, 2).await;
    assert_eq!(got[0].event_type(), HUB_EVENT_TYPE);
    assert_eq!(
        got[0].data(),
        r#"{"type": "gap", "last_event_id": "urn:uuid:gone", "resumed_from": "earliest"}"#
    );
    assert_eq!(got[1].data(), "kept");
    assert_eq!(hub.stats().gaps, 1);
}

#[tokio::test]
async fn a_private_cursor_is_treated_like_an_unknown_one_without_a_grant() {
    let hub = hub().await;
    let mut secret = Update::new("/secret", "for your eyes only");
    secret.id = Some("private-1".into());
    secret.private = true;
    publish(&hub, secret).await.unwrap();
    publish(&hub, Update::new("/secret", "public"))
        .await
        .unwrap();

    let unknown = subscribe(&hub, "/secret", Some("never-was")).await;
    let mut anonymous = subscribe(&hub, "/secret", Some("private-1")).await;
    // The same answer as for an id that never existed: the private id is
    // neither confirmed nor used as a position.
    assert_eq!(
        anonymous.resume_point(),
        &ResumePoint::Gap("private-1".into())
    );
    assert_eq!(
        anonymous.resume_point().header_value(),
        unknown.resume_point().header_value()
    );
    let got = events(&mut anonymous, 2).await;
    assert_eq!(got[0].event_type(), HUB_EVENT_TYPE);
    assert_eq!(
        got[0].data(),
        r#"{"type": "gap", "last_event_id": "private-1", "resumed_from": "earliest"}"#
    );
    assert_eq!(got[1].data(), "public", "the private update stays hidden");

    // A grant on another topic does not help; one on the update's does.
    let grants =
        |topic: &str| herald_hub::grant::Grants::new(Vec::new(), vec![crate::exact(&hub, topic)]);
    for (topic, expected) in [
        ("/other", ResumePoint::Gap("private-1".into())),
        ("/secret", ResumePoint::After("private-1".into())),
    ] {
        let mut request = SubscribeRequest::new(vec![crate::exact(&hub, "/secret")]);
        request.grants = Some(grants(topic));
        request.last_event_id = Some("private-1".into());
        let subscription = hub.subscribe(request).await.unwrap();
        assert_eq!(subscription.resume_point(), &expected, "granted {topic}");
    }
}

#[tokio::test]
async fn a_retained_custom_id_cannot_be_published_again() {
    // Were it accepted, a client resuming from "a" would get "3" twice
    // over: once replayed after the first "a", and it had it already.
    let hub = hub().await;
    for (id, data) in [("a", "1"), ("b", "2")] {
        let mut update = Update::new("/t", data);
        update.id = Some(id.into());
        publish(&hub, update).await.unwrap();
    }
    let mut again = Update::new("/t", "3");
    again.id = Some("a".into());
    match publish(&hub, again).await {
        Err(PublishError::DuplicateId(id)) => assert_eq!(id, "a"),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert_eq!(hub.stats().published, 2);
    let mut subscription = subscribe(&hub, "/t", Some("a")).await;
    publish(&hub, Update::new("/t", "live")).await.unwrap();
    let got = events(&mut subscription, 2).await;
    assert_eq!(
        got.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["2", "live"]
    );
}

#[tokio::test]
async fn a_custom_id_is_free_again_once_retention_removed_it() {
    let store = Arc::new(herald_store::MemoryStore::with_retention(
        herald_store::Retention {
            max_events: Some(1),
            max_age: None,
        },
    ));
    let hub = herald_hub::Hub::start(store, crate::config())
        .await
        .unwrap();
    let mut first = Update::new("/t", "1");
    first.id = Some("a".into());
    publish(&hub, first.clone()).await.unwrap();
    publish(&hub, Update::new("/t", "2")).await.unwrap();
    // "a" was trimmed: a client resuming from it is told of a gap, so
    // reusing the id misleads no one.
    publish(&hub, first).await.unwrap();
}

/// The seam under a race: publishes run while subscribers connect and
/// reconnect at random points; each must see exactly the published
/// sequence after its cursor, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_under_a_publish_race_has_no_gap_and_no_duplicate() {
    const EVENTS: usize = 10_000;
    let hub = hub().await;
    let published = Arc::new(std::sync::Mutex::new(Vec::<Arc<str>>::new()));

    let publisher = {
        let hub = hub.clone();
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            for i in 0..EVENTS {
                let id = publish(&hub, Update::new("/race", i.to_string()))
                    .await
                    .unwrap()
                    .id;
                published.lock().unwrap().push(id);
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    let mut checkers = Vec::new();
    for seed in 0..20u64 {
        let hub = hub.clone();
        let published = Arc::clone(&published);
        checkers.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            // Connect at a random point, read a random number of events,
            // drop the connection, reconnect with the last id; repeat.
            let mut cursor: Option<Arc<str>> = None;
            let mut seen: Vec<usize> = Vec::new();
            loop {
                // A first connection without a cursor starts live, with
                // whatever comes next; later ones resume after the last id.
                let mut subscription = subscribe(&hub, "/race", cursor.as_deref()).await;
                let want = 1 + rng.below(700) as usize;
                let mut decoder = herald_proto::Decoder::new();
                let mut read = 0;
                'connection: while read < want {
                    let Some(frames) = futures_util::StreamExt::next(&mut subscription).await
                    else {
                        break;
                    };
                    decoder.feed(&frames).unwrap();
                    while let Some(event) = decoder.next_event() {
                        let n: usize = event.data().parse().unwrap();
                        seen.push(n);
                        cursor = Some(event.last_event_id().into());
                        read += 1;
                        if n == EVENTS - 1 {
                            break 'connection;
                        }
                    }
                }
                drop(subscription);
                if rng.below(4) == 0 {
                    tokio::task::yield_now().await;
                }
                if seen.last() == Some(&(EVENTS - 1)) {
                    break;
                }
            }
            // Exactly consecutive from the first event seen to the end.
            let first = seen[0];
            if let Some(at) = seen.iter().enumerate().position(|(i, n)| *n != first + i) {
                panic!(
                    "subscriber {seed}: after {} came {} (gap or duplicate at the seam)",
                    seen[at - 1],
                    seen[at]
                );
            }
            assert_eq!(
                seen.len(),
                EVENTS - first,
                "subscriber {seed} stopped early"
            );
            // And the ids are the published ones.
            let published = published.lock().unwrap();
            assert_eq!(published.len(), EVENTS);
            let unique: HashSet<_> = published.iter().collect();
            assert_eq!(unique.len(), EVENTS);
            seed
        }));
    }
    publisher.await.unwrap();
    for checker in checkers {
        checker.await.unwrap();
    }
}

/// A tiny deterministic generator, so the race test is reproducible by seed.
mod rand_like {
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407))
        }

        pub fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }
}
