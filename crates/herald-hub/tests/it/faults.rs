//! A store that fails under the hub: a follow error is retried from the same
//! cursor (subscribers keep their streams and miss nothing), and a live log
//! that ends closes the hub instead of leaving it accepting subscribers
//! that would never receive anything.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use herald_hub::{
    CloseReason, Hub, PublishError, SubscribeError, SubscribeRequest, Unhealthy, Update,
};
use herald_store::{Bounds, Cursor, MemoryStore, NewRecord, Record, Retention, Store, StoreError};
use tokio::sync::watch;

use crate::{config, events, exact, publish, subscribe};

/// What the live follows of a [`Faulty`] store do next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Fault {
    /// Nothing: they follow the log.
    None,
    /// Every follow open now fails with a backend error (later ones work,
    /// unless `failing_follows` says otherwise).
    Fail,
    /// Every follow, open now or later, ends, as when the store is closed.
    End,
}

/// `MemoryStore` whose follow streams fail or end on command.
struct Faulty {
    inner: MemoryStore,
    /// Changing it breaks every open follow stream the given way.
    fault: watch::Sender<Fault>,
    /// New follows that fail at once before one works again.
    failing_follows: AtomicUsize,
    /// Follows opened so far.
    follows: AtomicUsize,
    /// While set, reading the bounds fails as a store that cannot be
    /// reached does.
    unreachable: AtomicBool,
    /// Bounds reads so far.
    bounds_reads: AtomicUsize,
}

impl Faulty {
    fn new() -> Arc<Self> {
        Arc::new(Faulty {
            inner: MemoryStore::new(),
            fault: watch::Sender::new(Fault::None),
            failing_follows: AtomicUsize::new(0),
            follows: AtomicUsize::new(0),
            unreachable: AtomicBool::new(false),
            bounds_reads: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Store for Faulty {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        self.inner.append(record).await
    }

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        self.inner.append_batch(records).await
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.read_after(after, limit).await
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        self.inner.resolve(id).await
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.resolve_record(id).await
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        self.bounds_reads.fetch_add(1, Ordering::SeqCst);
        if self.unreachable.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected: connection refused"));
        }
        self.inner.bounds().await
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        self.follows.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failing_follows
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return stream::iter([Err(StoreError::backend("injected: follow refused"))]).boxed();
        }
        let mut fault = self.fault.subscribe();
        if *fault.borrow_and_update() == Fault::End {
            // Closed: a follow opened now ends at once.
            return stream::empty().boxed();
        }
        let log = self.inner.follow(after);
        stream::unfold(Some((log, fault)), |state| async move {
            let (mut log, mut fault) = state?;
            tokio::select! {
                // A fault set before records were appended strikes first.
                biased;
                Ok(()) = fault.changed() => match *fault.borrow_and_update() {
                    Fault::Fail => Some((
                        Err(StoreError::backend("injected: follow broke off")),
                        None,
                    )),
                    Fault::End => None,
                    Fault::None => Some((
                        Err(StoreError::backend("injected: unexpected reset")),
                        None,
                    )),
                },
                item = log.next() => item.map(|item| (item, Some((log, fault)))),
            }
        })
        .boxed()
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        self.inner.trim(retention).await
    }
}

async fn hub_on(store: &Arc<Faulty>) -> Hub {
    Hub::start(Arc::clone(store) as Arc<dyn Store>, config())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_follow_error_is_retried_and_subscribers_keep_their_streams() {
    let store = Faulty::new();
    let hub = hub_on(&store).await;
    let mut subscription = subscribe(&hub, "/t", None).await;
    publish(&hub, Update::new("/t", "before")).await.unwrap();
    assert_eq!(events(&mut subscription, 1).await[0].data(), "before");

    // The live follow breaks, and the next three attempts fail at once:
    // the dispatcher backs off and retries from where it was.
    store.failing_follows.store(3, Ordering::SeqCst);
    store.fault.send_replace(Fault::Fail);
    publish(&hub, Update::new("/t", "during 1")).await.unwrap();
    publish(&hub, Update::new("/t", "during 2")).await.unwrap();

    let got = tokio::time::timeout(Duration::from_secs(10), events(&mut subscription, 2))
        .await
        .expect("delivery resumes once the store answers again");
    let data: Vec<&str> = got.iter().map(|e| e.data()).collect();
    assert_eq!(
        data,
        ["during 1", "during 2"],
        "nothing missed, nothing twice"
    );
    assert_eq!(subscription.close_reason(), None, "the stream goes on");
    assert_eq!(hub.stats().follow_retries, 4);
    assert_eq!(store.follows.load(Ordering::SeqCst), 5);

    publish(&hub, Update::new("/t", "after")).await.unwrap();
    assert_eq!(events(&mut subscription, 1).await[0].data(), "after");
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_up_to_a_cap() {
    let store = Faulty::new();
    let hub = hub_on(&store).await;
    store.failing_follows.store(usize::MAX, Ordering::SeqCst);
    store.fault.send_replace(Fault::Fail);
    // 10 ms doubling to the 2 s cap: 10+20+...+1280 ms is about 2.5 s for
    // the first 8 retries, then one every 2 s: about 14 in 15 s, not the
    // 1,500 a fixed 10 ms pause would make.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let retries = hub.stats().follow_retries;
    assert!((10..=16).contains(&retries), "{retries} retries in 15 s");
}

#[tokio::test]
async fn a_live_log_that_ends_closes_the_hub() {
    let store = Faulty::new();
    let hub = hub_on(&store).await;
    let mut subscription = subscribe(&hub, "/t", None).await;
    store.fault.send_replace(Fault::End);

    let end = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("the stream ends");
    assert!(end.is_none());
    assert_eq!(subscription.close_reason(), Some(CloseReason::Shutdown));
    // Nothing would ever reach a new subscriber, nor a new publish anyone.
    let refused = hub
        .subscribe(SubscribeRequest::new(vec![exact(&hub, "/t")]))
        .await;
    assert!(
        matches!(refused, Err(SubscribeError::Closed)),
        "{refused:?}"
    );
    let refused = publish(&hub, Update::new("/t", "lost")).await;
    assert!(matches!(refused, Err(PublishError::Closed)), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn health_follows_the_store_and_asks_it_at_most_once_a_second() {
    let store = Faulty::new();
    let hub = hub_on(&store).await;
    assert_eq!(hub.health().await, Ok(()));

    store.unreachable.store(true, Ordering::SeqCst);
    // The answer of a second ago still stands: a burst of checks costs
    // the store one read a second.
    assert_eq!(hub.health().await, Ok(()));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let Err(Unhealthy::Store(why)) = hub.health().await else {
        panic!("unhealthy while the store cannot be reached");
    };
    assert!(why.contains("connection refused"), "{why}");

    store.unreachable.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(hub.health().await, Ok(()));

    hub.shutdown(None);
    assert_eq!(hub.health().await, Err(Unhealthy::Closed));
}

/// The statistics read the store's bounds through the health probe: any
/// number of readers cost the store one read a second, and a failed read
/// leaves the last good bounds in place.
#[tokio::test(start_paused = true)]
async fn bounds_are_read_at_most_once_a_second_and_kept_when_the_store_fails() {
    let store = Faulty::new();
    let hub = hub_on(&store).await;
    assert_eq!(store.bounds_reads.load(Ordering::SeqCst), 1, "the start's");
    publish(&hub, Update::new("/t", "1")).await.unwrap();
    assert_eq!(hub.last_bounds().unwrap().0.head, Cursor::ZERO, "not yet");

    let readers: Vec<_> = (0..50)
        .map(|_| {
            let hub = hub.clone();
            tokio::spawn(async move { hub.bounds().await })
        })
        .collect();
    for reader in readers {
        let (bounds, _) = reader.await.unwrap().unwrap();
        assert_eq!(bounds.head, Cursor::new(1));
    }
    assert_eq!(hub.health().await, Ok(()));
    assert_eq!(store.bounds_reads.load(Ordering::SeqCst), 2, "one probe");
    let (kept, read_at) = hub.last_bounds().unwrap();
    assert_eq!(kept.head, Cursor::new(1));

    publish(&hub, Update::new("/t", "2")).await.unwrap();
    store.unreachable.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(matches!(hub.bounds().await, Err(Unhealthy::Store(_))));
    assert_eq!(hub.last_bounds(), Some((kept, read_at)), "the last good");
    assert_eq!(store.bounds_reads.load(Ordering::SeqCst), 3);
}
