//! The contract suite has teeth: backends that break one rule fail the check
//! written for that rule (each is `MemoryStore` with one fault injected).

use futures_util::stream::{self, BoxStream, StreamExt};
use herald_store::testkit;
use herald_store::{Bounds, Cursor, MemoryStore, NewRecord, Record, Retention, Store, StoreError};

#[derive(Clone, Copy)]
enum Fault {
    /// `resolve` answers with the latest record of an id.
    ResolveLatest,
    /// `read_after` ignores `limit`.
    ReadIgnoresLimit,
    /// `trim` works but reports 0.
    TrimReportsZero,
    /// `follow` swallows errors, hiding trimmed records.
    FollowHidesTrimmed,
    /// `follow` replays history and never goes live.
    FollowNeverGoesLive,
}

struct Faulty {
    inner: MemoryStore,
    fault: Fault,
}

#[async_trait::async_trait]
impl Store for Faulty {
    async fn append(&self, record: NewRecord) -> Result<Record, StoreError> {
        self.inner.append(record).await
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        match self.fault {
            Fault::ReadIgnoresLimit => self.inner.read_after(after, usize::MAX).await,
            _ => self.inner.read_after(after, limit).await,
        }
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        match self.fault {
            Fault::ResolveLatest => {
                let all = self.inner.read_after(Cursor::ZERO, usize::MAX).await?;
                Ok(all.iter().rev().find(|r| &*r.id == id).map(|r| r.cursor))
            }
            _ => self.inner.resolve(id).await,
        }
    }

    async fn bounds(&self) -> Result<Bounds, StoreError> {
        self.inner.bounds().await
    }

    fn follow(&self, after: Cursor) -> BoxStream<'static, Result<Record, StoreError>> {
        match self.fault {
            Fault::FollowHidesTrimmed => self
                .inner
                .follow(after)
                .filter(|item| std::future::ready(item.is_ok()))
                .boxed(),
            Fault::FollowNeverGoesLive => {
                let inner = self.inner.clone();
                stream::once(async move { inner.read_after(after, usize::MAX).await })
                    .flat_map(|result| match result {
                        Ok(records) => stream::iter(records.into_iter().map(Ok)).boxed(),
                        Err(error) => stream::iter([Err(error)]).boxed(),
                    })
                    .boxed()
            }
            _ => self.inner.follow(after),
        }
    }

    async fn trim(&self, retention: &Retention) -> Result<u64, StoreError> {
        let removed = self.inner.trim(retention).await?;
        match self.fault {
            Fault::TrimReportsZero => Ok(0),
            _ => Ok(removed),
        }
    }
}

fn faulty(fault: Fault) -> Faulty {
    Faulty {
        inner: MemoryStore::new(),
        fault,
    }
}

#[tokio::test]
#[should_panic(expected = "resolve_finds_earliest_duplicate: earliest of a duplicated id")]
async fn catches_resolve_to_the_latest_duplicate() {
    testkit::resolve_finds_earliest_duplicate(faulty(Fault::ResolveLatest)).await;
}

#[tokio::test]
#[should_panic(expected = "read_after_respects_limit")]
async fn catches_an_ignored_limit() {
    testkit::read_after_respects_limit(faulty(Fault::ReadIgnoresLimit)).await;
}

#[tokio::test]
#[should_panic(expected = "trim_by_count: removed count")]
async fn catches_a_wrong_trim_count() {
    testkit::trim_by_count(faulty(Fault::TrimReportsZero)).await;
}

#[tokio::test]
#[should_panic(expected = "follow_reports_trimmed: expected a Trimmed error")]
async fn catches_a_follower_that_hides_trimming() {
    testkit::follow_reports_trimmed(faulty(Fault::FollowHidesTrimmed)).await;
}

#[tokio::test]
#[should_panic(expected = "follow_replays_then_goes_live")]
async fn catches_a_follower_that_never_goes_live() {
    testkit::follow_replays_then_goes_live(faulty(Fault::FollowNeverGoesLive)).await;
}
