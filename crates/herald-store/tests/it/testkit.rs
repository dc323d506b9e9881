//! The contract suite has teeth: backends that break one rule fail the check
//! written for that rule (each is `MemoryStore` with one fault injected).

use futures_util::stream::{self, BoxStream, StreamExt};
use herald_store::testkit;
use herald_store::{Bounds, Cursor, MemoryStore, NewRecord, Record, Retention, Store, StoreError};

#[derive(Clone, Copy)]
enum Fault {
    /// `append_batch` loops over `append`, so a refused batch is half
    /// appended.
    BatchNotAtomic,
    /// `resolve_record` answers with the record after the id's.
    ResolveRecordNext,
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

    async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        match self.fault {
            Fault::BatchNotAtomic => {
                let mut appended = Vec::new();
                for record in records {
                    appended.push(self.inner.append(record).await?);
                }
                Ok(appended)
            }
            _ => self.inner.append_batch(records).await,
        }
    }

    async fn read_after(&self, after: Cursor, limit: usize) -> Result<Vec<Record>, StoreError> {
        match self.fault {
            Fault::ReadIgnoresLimit => self.inner.read_after(after, usize::MAX).await,
            _ => self.inner.read_after(after, limit).await,
        }
    }

    async fn resolve(&self, id: &str) -> Result<Option<Cursor>, StoreError> {
        self.inner.resolve(id).await
    }

    async fn resolve_record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        match self.fault {
            Fault::ResolveRecordNext => match self.inner.resolve(id).await? {
                Some(cursor) => Ok(self.inner.read_after(cursor, 1).await?.pop()),
                None => Ok(None),
            },
            _ => self.inner.resolve_record(id).await,
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
#[should_panic(expected = "duplicate_ids_are_refused: a refused append or batch stores nothing")]
async fn catches_a_batch_that_is_not_all_or_nothing() {
    testkit::duplicate_ids_are_refused(faulty(Fault::BatchNotAtomic)).await;
}

#[tokio::test]
#[should_panic(expected = "resolve_finds_retained_ids: resolve_record")]
async fn catches_resolve_record_reading_the_wrong_record() {
    testkit::resolve_finds_retained_ids(faulty(Fault::ResolveRecordNext)).await;
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
