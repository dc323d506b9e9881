//! Two hubs on one store: what a cluster of nodes sharing a log does on one
//! machine. Each node follows the shared log, so a publish through either
//! reaches the subscribers of both, and an id one node assigned resumes on
//! the other with no gap and no duplicate.

use std::sync::Arc;

use herald_hub::{Hub, Update};
use herald_store::{MemoryStore, Store};

use crate::{config, events, publish, subscribe};

async fn two_hubs() -> (Hub, Hub) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = Hub::start(Arc::clone(&store), config()).await.unwrap();
    let b = Hub::start(store, config()).await.unwrap();
    (a, b)
}

#[tokio::test]
async fn a_publish_through_one_node_reaches_the_subscribers_of_both() {
    let (a, b) = two_hubs().await;
    let mut on_a = subscribe(&a, "/news", None).await;
    let mut on_b = subscribe(&b, "/news", None).await;
    let first = publish(&a, Update::new("/news", "via a")).await.unwrap();
    let second = publish(&b, Update::new("/news", "via b")).await.unwrap();
    assert!(second.cursor > first.cursor, "one log, one order");
    for subscription in [&mut on_a, &mut on_b] {
        let got = events(subscription, 2).await;
        let data: Vec<&str> = got.iter().map(|e| e.data()).collect();
        assert_eq!(data, ["via a", "via b"]);
    }
}

#[tokio::test]
async fn an_id_from_one_node_resumes_on_the_other() {
    let (a, b) = two_hubs().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let published = publish(&a, Update::new("/r", format!("{i}")))
            .await
            .unwrap();
        ids.push(published.id.to_string());
    }
    // A client got the first two from node A, then reconnects to node B.
    let mut resumed = subscribe(&b, "/r", Some(&ids[1])).await;
    let got = events(&mut resumed, 2).await;
    let data: Vec<&str> = got.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["2", "3"], "no gap, no duplicate");
    // And goes on live, whichever node publishes.
    publish(&a, Update::new("/r", "4")).await.unwrap();
    assert_eq!(events(&mut resumed, 1).await[0].data(), "4");
}
