//! Live fan-out: matching, privacy, lagging subscribers, cleanup.

use std::time::Duration;

use futures_util::StreamExt;
use herald_hub::matcher::Topic;
use herald_hub::{CloseReason, SubscribeRequest, Update};

use crate::{events, exact, hub, hub_with, publish, subscribe};

#[tokio::test]
async fn a_published_update_reaches_every_matching_subscriber_once() {
    let hub = hub().await;
    let mut books = subscribe(&hub, "/books/1", None).await;
    let mut both = hub
        .subscribe(SubscribeRequest::new(vec![
            exact(&hub, "/books/1"),
            exact(&hub, "/books/alt"),
        ]))
        .await
        .unwrap();
    let mut other = subscribe(&hub, "/books/2", None).await;

    let mut update = Update::new("/books/1", "first");
    update.topics.push("/books/alt".into());
    let published = publish(&hub, update).await.unwrap();
    publish(&hub, Update::new("/books/2", "second"))
        .await
        .unwrap();

    let got = events(&mut books, 1).await;
    assert_eq!(got[0].data(), "first");
    assert_eq!(got[0].last_event_id(), &*published.id);
    let got = events(&mut both, 1).await;
    assert_eq!(got[0].data(), "first");
    let got = events(&mut other, 1).await;
    assert_eq!(got[0].data(), "second");

    // `both` matched the update through two topics but got it once.
    publish(&hub, Update::new("/books/1", "third"))
        .await
        .unwrap();
    let got = events(&mut both, 1).await;
    assert_eq!(got[0].data(), "third");
}

#[tokio::test]
async fn private_updates_reach_only_granted_subscribers() {
    let hub = hub().await;
    let mut anonymous = subscribe(&hub, "/secret", None).await;
    let grant = herald_hub::grant::Grants::new(Vec::new(), vec![exact(&hub, "/secret")]);
    let mut request = SubscribeRequest::new(vec![exact(&hub, "/secret")]);
    request.grants = Some(grant.clone());
    let mut granted = hub.subscribe(request).await.unwrap();
    let base = hub.url().clone();
    assert!(grant.may_read(&[Topic::new("/secret", &base)]));

    let mut update = Update::new("/secret", "for your eyes only");
    update.private = true;
    publish(&hub, update).await.unwrap();
    publish(&hub, Update::new("/secret", "public"))
        .await
        .unwrap();

    let got = events(&mut granted, 2).await;
    assert_eq!(got[0].data(), "for your eyes only");
    assert_eq!(got[1].data(), "public");
    let got = events(&mut anonymous, 1).await;
    assert_eq!(
        got[0].data(),
        "public",
        "the anonymous subscriber skipped the private update"
    );
}

#[tokio::test]
async fn a_subscriber_that_reads_nothing_is_closed_and_the_others_get_everything() {
    let hub = hub_with(|config| config.max_pending_bytes = 64 * 1024).await;
    let mut slow = subscribe(&hub, "/feed", None).await;
    let mut readers = Vec::new();
    for _ in 0..100 {
        let mut subscription = subscribe(&hub, "/feed", None).await;
        readers.push(tokio::spawn(async move {
            let got = events(&mut subscription, 10_000).await;
            got.iter()
                .map(|e| e.data().parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        }));
    }
    for i in 0..10_000 {
        publish(&hub, Update::new("/feed", i.to_string()))
            .await
            .unwrap();
        if i % 20 == 0 {
            // Let the readers run, as their own connections would.
            tokio::task::yield_now().await;
        }
    }
    for reader in readers {
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 10_000, "a reader lost events");
        assert!(got.iter().enumerate().all(|(i, n)| i == *n), "out of order");
    }
    // The slow one was cut off, not buffered without bound.
    assert!(hub.stats().lagged >= 1);
    let mut got = 0;
    while let Some(frames) = slow.next().await {
        got += frames.len();
    }
    assert_eq!(slow.close_reason(), Some(CloseReason::Lagged));
    assert_eq!(
        got, 0,
        "a lagging subscriber's queue is dropped, not delivered"
    );
}

#[tokio::test]
async fn a_dropped_subscription_frees_its_registration_at_once() {
    let hub = hub().await;
    let subscription = subscribe(&hub, "/x", None).await;
    assert_eq!(hub.subscriber_count(), 1);
    drop(subscription);
    assert_eq!(hub.subscriber_count(), 0);
    assert_eq!(hub.stats().subscribers, 0);
}

#[tokio::test]
async fn shutdown_sends_last_words_and_ends_every_stream() {
    let hub = hub().await;
    let mut subscription = subscribe(&hub, "/x", None).await;
    hub.shutdown(Some(herald_proto::Encoder::retry(500)));
    let frame = subscription.next().await.unwrap();
    assert_eq!(&frame[..], b"retry: 500\n");
    assert!(subscription.next().await.is_none());
    assert_eq!(subscription.close_reason(), Some(CloseReason::Shutdown));
    assert!(publish(&hub, Update::new("/x", "late")).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn idle_subscribers_get_heartbeats() {
    let hub = hub_with(|config| config.heartbeat = Some(Duration::from_secs(15))).await;
    let mut subscription = subscribe(&hub, "/x", None).await;
    let frame = tokio::time::timeout(Duration::from_secs(16), subscription.next())
        .await
        .expect("a heartbeat within the period")
        .unwrap();
    assert_eq!(&frame[..], b":\n");
}

#[tokio::test]
async fn the_largest_accepted_updates_reach_an_idle_subscriber_whole() {
    // Default limits: 1 MiB of data is accepted, and so is a smaller body
    // whose line breaks make a frame above `max_pending_bytes` (1 MiB).
    let hub = hub().await;
    assert_eq!(hub.config().max_pending_bytes, 1 << 20);
    let mut subscription = subscribe(&hub, "/big", None).await;
    let megabyte = "x".repeat(hub.config().publish_limits.max_data_len);
    let line_breaks = "\n".repeat(150_000);
    for data in [&megabyte, &line_breaks] {
        publish(&hub, Update::new("/big", data.as_str()))
            .await
            .unwrap();
        let got = events(&mut subscription, 1).await;
        assert_eq!(got.len(), 1, "the subscriber was cut off");
        assert!(got[0].data() == data.as_str(), "the data arrived changed");
    }
    assert_eq!(subscription.close_reason(), None);
    assert_eq!(hub.stats().lagged, 0);
}

#[tokio::test]
async fn what_waits_behind_the_head_of_the_queue_is_still_bounded() {
    let hub = hub_with(|config| config.max_pending_bytes = 64 * 1024).await;
    let mut subscription = subscribe(&hub, "/big", None).await;
    // One frame above the bound goes in whole; a second one behind it,
    // unread, is lag.
    let big = "x".repeat(100 * 1024);
    publish(&hub, Update::new("/big", big.as_str()))
        .await
        .unwrap();
    publish(&hub, Update::new("/big", big.as_str()))
        .await
        .unwrap();
    while subscription.next().await.is_some() {}
    assert_eq!(subscription.close_reason(), Some(CloseReason::Lagged));
    assert_eq!(hub.stats().lagged, 1);
}

#[tokio::test(start_paused = true)]
async fn a_queued_heartbeat_does_not_turn_a_large_update_into_lag() {
    let hub = hub_with(|config| config.heartbeat = Some(Duration::from_secs(1))).await;
    let mut subscription = subscribe(&hub, "/big", None).await;
    // A heartbeat is queued and not yet written when the update comes.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let data = "x".repeat(hub.config().publish_limits.max_data_len);
    publish(&hub, Update::new("/big", data.as_str()))
        .await
        .unwrap();
    let got = events(&mut subscription, 1).await;
    assert_eq!(got.len(), 1, "the subscriber was cut off");
    assert_eq!(got[0].data().len(), data.len());
}

#[tokio::test(start_paused = true)]
async fn heartbeats_go_out_in_slices_not_all_at_once() {
    use futures_util::FutureExt as _;
    let hub = hub_with(|config| config.heartbeat = Some(Duration::from_millis(1_600))).await;
    let mut subscriptions = Vec::new();
    for _ in 0..32 {
        subscriptions.push(subscribe(&hub, "/x", None).await);
    }
    let mut heard = [false; 32];
    let mut per_tick = Vec::new();
    for _ in 0..17 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut now = 0;
        for (i, subscription) in subscriptions.iter_mut().enumerate() {
            if let Some(Some(frame)) = subscription.next().now_or_never() {
                assert_eq!(&frame[..], b":\n");
                heard[i] = true;
                now += 1;
            }
        }
        per_tick.push(now);
    }
    assert!(
        heard.iter().all(|h| *h),
        "every subscriber heard one within the period: {per_tick:?}"
    );
    assert!(
        per_tick.iter().all(|&n| n <= 4),
        "never all at once: {per_tick:?}"
    );
}
