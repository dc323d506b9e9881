//! The contract suite every [`Store`] backend must pass (cargo feature
//! `testkit`).
//!
//! Each check is an async function taking a fresh, empty store and panicking
//! with a message naming the check on the first violation; [`run_all`] runs
//! them all, each on a new store from a factory. Call it from a
//! `#[tokio::test]` (the default current-thread runtime is enough):
//!
//! ```no_run
//! use herald_store::MemoryStore;
//!
//! #[tokio::test]
//! async fn memory_store_passes_the_contract() {
//!     herald_store::testkit::run_all(|| async { MemoryStore::new() }).await;
//! }
//! ```
//!
//! The checks use real time only where the contract is about time
//! (`trim_by_age`, with wide margins) and generous timeouts elsewhere, so a
//! hung follower fails the test instead of hanging it. A few spawn tasks, so
//! they need a Tokio runtime.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::{Bounds, Cursor, ErrorKind, NewRecord, Record, Retention, Store, StoreError};

/// How long a follower may take to yield a record that is already appended
/// before the check fails (generous: a failure here means "hung").
const YIELD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caught-up follower is watched to make sure it yields nothing.
const QUIET_PERIOD: Duration = Duration::from_millis(50);

/// A follow stream, as [`Store::follow`] returns it.
type Follow = BoxStream<'static, Result<Record, StoreError>>;

/// Runs every check of the contract, each on a fresh, empty store made by
/// `make`, and panics on the first failure. Each check's name is printed to
/// stderr before it runs (shown by the test harness when a test fails).
///
/// `make` must return a new, empty store on every call (for a durable
/// backend: a new directory, a new key prefix, ...).
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$(
            eprintln!("herald-store testkit: {}", stringify!($check));
            $check(make().await).await;
        )*};
    }
    run!(
        empty_store,
        cursors_strictly_increase,
        fields_round_trip,
        read_after_returns_later_records,
        read_after_respects_limit,
        append_batch_preserves_order,
        published_at_is_set_and_non_decreasing,
        resolve_finds_retained_ids,
        duplicate_ids_are_refused,
        concurrent_appends_of_one_id_store_it_once,
        trimmed_ids_may_be_reused,
        bounds_track_appends_and_trims,
        trim_by_count,
        trim_by_age,
        expired_records_leave_quietly,
        cursors_not_reused_after_trimming_everything,
        follow_replays_then_goes_live,
        follow_from_the_middle,
        follow_reports_trimmed,
        follow_never_skips_when_trimmed_meanwhile,
        follow_slow_consumer_gets_everything,
        concurrent_appenders_form_one_log,
        follow_ends_when_store_dropped,
    );
}

/// Runs the checks about two handles on one log (two nodes of a cluster,
/// or two processes), each on a fresh, empty log: `make_pair` returns two
/// handles to the same new log, as separate as the backend allows (for a
/// network store, two separate connections). What one appends, the other
/// reads, resolves and follows; ids are unique across both; a trim through
/// one is seen through the other.
pub async fn run_two_handles<S, F, Fut>(make_pair: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = (S, S)>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$(
            eprintln!("herald-store testkit: {}", stringify!($check));
            let (a, b) = make_pair().await;
            $check(a, b).await;
        )*};
    }
    run!(
        appended_through_one_is_read_through_the_other,
        followed_through_the_other,
        ids_are_unique_across_handles,
        trimmed_through_one_is_seen_through_the_other,
    );
}

/// What handle A appends, handle B reads, resolves and bounds.
pub async fn appended_through_one_is_read_through_the_other<S: Store>(a: S, b: S) {
    let check = "appended_through_one_is_read_through_the_other";
    let appended = append_n(check, &a, "two", 3).await;
    assert_eq!(
        ok(check, b.read_after(Cursor::ZERO, 10).await),
        appended,
        "{check}: B reads what A appended"
    );
    for record in &appended {
        assert_eq!(
            ok(check, b.resolve(&record.id).await),
            Some(record.cursor),
            "{check}: B resolves {}",
            record.id
        );
    }
    assert_eq!(
        ok(check, b.bounds().await).head,
        appended[2].cursor,
        "{check}: B's head"
    );
    // And the other way, continuing the same sequence of cursors.
    let more = append_n(check, &b, "owt", 1).await;
    assert!(more[0].cursor > appended[2].cursor, "{check}: one log");
    assert_eq!(
        ok(check, a.read_after(appended[2].cursor, 10).await),
        more,
        "{check}: A reads what B appended"
    );
}

/// A follow through handle B yields what handle A appends, live, in order.
pub async fn followed_through_the_other<S: Store>(a: S, b: S) {
    let check = "followed_through_the_other";
    let before = append_n(check, &a, "old", 2).await;
    let mut follower = b.follow(Cursor::ZERO);
    assert_eq!(
        take(check, &mut follower, 2).await,
        before,
        "{check}: replay"
    );
    expect_quiet(check, &mut follower).await;
    let live = append_n(check, &a, "new", 3).await;
    assert_eq!(take(check, &mut follower, 3).await, live, "{check}: live");
}

/// An id appended through one handle is refused through the other.
pub async fn ids_are_unique_across_handles<S: Store>(a: S, b: S) {
    let check = "ids_are_unique_across_handles";
    ok(check, a.append(sample("shared-id")).await);
    expect_duplicate(check, "through B", b.append(sample("shared-id")).await);
}

/// A trim through handle A is what handle B reads and follows.
pub async fn trimmed_through_one_is_seen_through_the_other<S: Store>(a: S, b: S) {
    let check = "trimmed_through_one_is_seen_through_the_other";
    let appended = append_n(check, &a, "t", 4).await;
    assert_eq!(ok(check, a.trim(&keep(1)).await), 3, "{check}: trim to 1");
    assert_eq!(
        ok(check, b.read_after(Cursor::ZERO, 10).await),
        appended[3..],
        "{check}: B reads what is retained"
    );
    assert_eq!(
        ok(check, b.resolve(&appended[0].id).await),
        None,
        "{check}: trimmed id"
    );
    let mut follower = b.follow(Cursor::ZERO);
    expect_trimmed(check, &mut follower).await;
}

/// A small, valid record with id `id`: one topic derived from the id, and an
/// SSE frame carrying it. Handy for backends' own tests too.
pub fn sample(id: &str) -> NewRecord {
    NewRecord {
        id: id.into(),
        topics: vec![format!("https://example.com/items/{id}")].into(),
        private: false,
        frame: Bytes::from(format!("id: {id}\ndata: payload of {id}\n\n")),
        keep_for: None,
    }
}

/// An empty store: no records, head at ZERO, nothing to resolve, trim and
/// follow find nothing.
pub async fn empty_store<S: Store>(store: S) {
    let check = "empty_store";
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        [],
        "{check}: read_after(ZERO) on an empty store must be empty"
    );
    assert_eq!(
        ok(check, store.bounds().await),
        Bounds {
            oldest: None,
            head: Cursor::ZERO
        },
        "{check}: bounds of an empty store"
    );
    assert_eq!(
        ok(check, store.resolve("nope").await),
        None,
        "{check}: resolve on an empty store"
    );
    let everything = Retention {
        max_events: Some(0),
        max_age: Some(Duration::ZERO),
    };
    assert_eq!(
        ok(check, store.trim(&everything).await),
        0,
        "{check}: trim on an empty store removes nothing"
    );
    assert_eq!(
        ok(check, store.append_batch(Vec::new()).await),
        [],
        "{check}: an empty batch appends nothing"
    );
    let mut follower = store.follow(Cursor::ZERO);
    expect_quiet(check, &mut follower).await;
}

/// Cursors start above ZERO, strictly increase in append order, and are
/// what reads return.
pub async fn cursors_strictly_increase<S: Store>(store: S) {
    let check = "cursors_strictly_increase";
    let appended = append_n(check, &store, "c", 50).await;
    let mut previous = Cursor::ZERO;
    for record in &appended {
        assert!(
            record.cursor > previous,
            "{check}: cursor {} after {} is not greater",
            record.cursor,
            previous
        );
        previous = record.cursor;
    }
    let read = ok(check, store.read_after(Cursor::ZERO, 1000).await);
    assert_eq!(
        read, appended,
        "{check}: reads must return the appended records"
    );
}

/// Every field round-trips exactly: id (any Unicode), topics (order kept),
/// `private`, and the frame bytes (any bytes, large frames).
pub async fn fields_round_trip<S: Store>(store: S) {
    let check = "fields_round_trip";
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let large = "x".repeat(256 * 1024);
    let inputs = vec![
        NewRecord {
            id: "urn:uuid:0f6c2b1e-7a3d-4d8e-9c55-1b2a3c4d5e6f".into(),
            topics: vec![
                "https://example.com/books/1".to_owned(),
                "urn:isbn:0451450523".to_owned(),
                "https://example.com/a b?c=d&e=ünï,cödé".to_owned(),
            ]
            .into(),
            private: true,
            frame: Bytes::from_static(b"id: x\nevent: update\ndata: line 1\ndata: line 2\n\n"),
            keep_for: None,
        },
        NewRecord {
            id: "ünïcödé ✓ 🎉".into(),
            topics: vec!["t".to_owned()].into(),
            private: false,
            frame: Bytes::from(all_bytes),
            keep_for: None,
        },
        NewRecord {
            id: "large".into(),
            topics: vec!["https://example.com/large".to_owned()].into(),
            private: false,
            frame: Bytes::from(format!("data: {large}\n\n")),
            keep_for: None,
        },
    ];
    let mut appended = Vec::new();
    for input in &inputs {
        let record = ok(check, store.append(input.clone()).await);
        assert_fields(check, input, &record);
        appended.push(record);
    }
    let read = ok(check, store.read_after(Cursor::ZERO, 10).await);
    assert_eq!(read.len(), inputs.len(), "{check}: record count");
    for ((input, record), stored) in inputs.iter().zip(&appended).zip(&read) {
        assert_fields(check, input, stored);
        assert_eq!(
            stored, record,
            "{check}: read differs from what append returned"
        );
        assert_eq!(
            ok(check, store.resolve(&input.id).await),
            Some(record.cursor),
            "{check}: resolve({:?})",
            input.id
        );
    }
}

/// `read_after(c)` returns exactly the records after `c`, in order, for
/// every `c`, including the head and cursors past it.
pub async fn read_after_returns_later_records<S: Store>(store: S) {
    let check = "read_after_returns_later_records";
    let appended = append_n(check, &store, "r", 20).await;
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 100).await),
        appended,
        "{check}: read_after(ZERO)"
    );
    for (i, record) in appended.iter().enumerate() {
        assert_eq!(
            ok(check, store.read_after(record.cursor, 100).await),
            appended[i + 1..],
            "{check}: read_after({})",
            record.cursor
        );
    }
    let head = appended[appended.len() - 1].cursor;
    assert_eq!(
        ok(check, store.read_after(head, 100).await),
        [],
        "{check}: read_after(head)"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::new(u64::MAX), 100).await),
        [],
        "{check}: read_after(u64::MAX)"
    );
}

/// `read_after` returns at most `limit` records: the first ones after the
/// cursor.
pub async fn read_after_respects_limit<S: Store>(store: S) {
    let check = "read_after_respects_limit";
    let appended = append_n(check, &store, "l", 10).await;
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 0).await),
        [],
        "{check}: limit 0"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 3).await),
        appended[..3],
        "{check}: limit 3 from ZERO"
    );
    assert_eq!(
        ok(check, store.read_after(appended[4].cursor, 2).await),
        appended[5..7],
        "{check}: limit 2 from the middle"
    );
    assert_eq!(
        ok(check, store.read_after(appended[7].cursor, 10).await),
        appended[8..],
        "{check}: limit above what is left"
    );
}

/// `append_batch` appends in order with increasing cursors, and its records
/// read back exactly; interleaves correctly with single appends.
pub async fn append_batch_preserves_order<S: Store>(store: S) {
    let check = "append_batch_preserves_order";
    let before = ok(check, store.append(sample("single-0")).await);
    let inputs: Vec<NewRecord> = (0..100).map(|i| sample(&format!("batch-{i}"))).collect();
    let batch = ok(check, store.append_batch(inputs.clone()).await);
    assert_eq!(batch.len(), inputs.len(), "{check}: batch length");
    let mut previous = before.cursor;
    for (input, record) in inputs.iter().zip(&batch) {
        assert_fields(check, input, record);
        assert!(record.cursor > previous, "{check}: cursors must increase");
        previous = record.cursor;
    }
    let after = ok(check, store.append(sample("single-1")).await);
    assert!(after.cursor > previous, "{check}: append after a batch");
    let mut expected = vec![before];
    expected.extend(batch);
    expected.push(after);
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 1000).await),
        expected,
        "{check}: read back"
    );
}

/// `published_at` is set by the store near the current time and never
/// decreases along the log.
pub async fn published_at_is_set_and_non_decreasing<S: Store>(store: S) {
    let check = "published_at_is_set_and_non_decreasing";
    // Wide slack: a remote backend may stamp with its own clock.
    let slack = Duration::from_secs(300);
    let start = SystemTime::now();
    let mut appended = append_n(check, &store, "p", 5).await;
    appended.extend(ok(
        check,
        store
            .append_batch(vec![sample("p-batch-0"), sample("p-batch-1")])
            .await,
    ));
    let end = SystemTime::now();
    let mut previous = SystemTime::UNIX_EPOCH;
    for record in ok(check, store.read_after(Cursor::ZERO, 100).await) {
        assert!(
            record.published_at >= start - slack && record.published_at <= end + slack,
            "{check}: published_at {:?} is not near now ({:?}..{:?})",
            record.published_at,
            start,
            end
        );
        assert!(
            record.published_at >= previous,
            "{check}: published_at went back at cursor {}",
            record.cursor
        );
        previous = record.published_at;
    }
}

/// `resolve` and `resolve_record` find each retained id's record; unknown,
/// empty and differently cased ids are `None`.
pub async fn resolve_finds_retained_ids<S: Store>(store: S) {
    let check = "resolve_finds_retained_ids";
    let a = ok(check, store.append(sample("a")).await);
    let mut private = sample("b");
    private.private = true;
    let b = ok(check, store.append(private).await);
    let c = ok(check, store.append(sample("c")).await);
    for record in [&a, &b, &c] {
        assert_eq!(
            ok(check, store.resolve(&record.id).await),
            Some(record.cursor),
            "{check}: resolve({:?})",
            record.id
        );
        assert_eq!(
            ok(check, store.resolve_record(&record.id).await).as_ref(),
            Some(record),
            "{check}: resolve_record({:?})",
            record.id
        );
    }
    for unknown in ["d", "", "A"] {
        assert_eq!(
            ok(check, store.resolve(unknown).await),
            None,
            "{check}: resolve({unknown:?}) (unknown; ids are case-sensitive)"
        );
        assert_eq!(
            ok(check, store.resolve_record(unknown).await),
            None,
            "{check}: resolve_record({unknown:?})"
        );
    }
    assert_eq!(ok(check, store.trim(&keep(2)).await), 1, "{check}: trim");
    assert_eq!(
        ok(check, store.resolve_record("a").await),
        None,
        "{check}: resolve_record of a trimmed id"
    );
}

/// An append whose id is retained is refused with `DuplicateId` and stores
/// nothing; a batch holding a retained id, or one id twice, is refused
/// whole. Refusals hand out no cursor that a later append could collide with.
pub async fn duplicate_ids_are_refused<S: Store>(store: S) {
    let check = "duplicate_ids_are_refused";
    let a = ok(check, store.append(sample("a")).await);
    expect_duplicate(
        check,
        "a second append of a",
        store.append(sample("a")).await,
    );

    let retained_inside = vec![sample("x"), sample("a"), sample("y")];
    expect_duplicate(
        check,
        "a batch holding a retained id",
        store.append_batch(retained_inside).await,
    );
    let repeated_inside = vec![sample("x"), sample("y"), sample("x")];
    expect_duplicate(
        check,
        "a batch holding one id twice",
        store.append_batch(repeated_inside).await,
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        std::slice::from_ref(&a),
        "{check}: a refused append or batch stores nothing"
    );
    for id in ["x", "y"] {
        assert_eq!(
            ok(check, store.resolve(id).await),
            None,
            "{check}: {id} of a refused batch is not indexed"
        );
    }
    assert_eq!(
        ok(check, store.resolve("a").await),
        Some(a.cursor),
        "{check}: the first a still resolves"
    );

    let batch = ok(
        check,
        store.append_batch(vec![sample("x"), sample("y")]).await,
    );
    assert!(
        batch[0].cursor > a.cursor && batch[1].cursor > batch[0].cursor,
        "{check}: cursors after refusals"
    );
    let mut expected = vec![a];
    expected.extend(batch);
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        expected,
        "{check}: the log after refusals"
    );
}

/// Concurrent appends of one id (8 tasks, each appending the same id and a
/// unique one per round, so batching backends see them in one commit):
/// exactly one of each round's same-id appends succeeds, and every unique
/// one does.
pub async fn concurrent_appends_of_one_id_store_it_once<S: Store>(store: S) {
    let check = "concurrent_appends_of_one_id_store_it_once";
    const TASKS: usize = 8;
    const ROUNDS: usize = 20;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut won = Vec::new();
                for round in 0..ROUNDS {
                    let (shared, own) = tokio::join!(
                        store.append(sample(&format!("race-{round}"))),
                        store.append(sample(&format!("own-{task}-{round}"))),
                    );
                    ok(check, own);
                    match shared {
                        Ok(record) => won.push(record),
                        Err(error) if error.kind() == ErrorKind::DuplicateId => {}
                        Err(error) => panic!("{check}: unexpected error: {error}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut winners: HashMap<Arc<str>, Record> = HashMap::new();
    for task in tasks {
        for record in task.await.expect("appender task panicked") {
            let id = Arc::clone(&record.id);
            assert!(
                winners.insert(id, record).is_none(),
                "{check}: two appends of one id both succeeded"
            );
        }
    }
    assert_eq!(winners.len(), ROUNDS, "{check}: one append of each id won");
    let log = ok(
        check,
        store.read_after(Cursor::ZERO, 10 * TASKS * ROUNDS).await,
    );
    assert_eq!(log.len(), ROUNDS + TASKS * ROUNDS, "{check}: log length");
    for record in log.iter().filter(|record| record.id.starts_with("race-")) {
        assert_eq!(
            winners.get(&record.id),
            Some(record),
            "{check}: the stored record is the one whose append succeeded"
        );
    }
}

/// Once its record is trimmed, an id is free again (the store keeps no
/// memory of trimmed ids); a retained id stays taken.
pub async fn trimmed_ids_may_be_reused<S: Store>(store: S) {
    let check = "trimmed_ids_may_be_reused";
    ok(check, store.append(sample("reused")).await);
    let kept = ok(check, store.append(sample("kept")).await);
    assert_eq!(ok(check, store.trim(&keep(1)).await), 1, "{check}: trim");
    assert_eq!(
        ok(check, store.resolve("reused").await),
        None,
        "{check}: trimmed id"
    );
    let again = ok(check, store.append(sample("reused")).await);
    assert!(again.cursor > kept.cursor, "{check}: a new cursor");
    assert_eq!(
        ok(check, store.resolve("reused").await),
        Some(again.cursor),
        "{check}: the id names its new record"
    );
    expect_duplicate(check, "a retained id", store.append(sample("kept")).await);
}

/// `bounds` reports the oldest retained cursor and the head, before and
/// after appends and trims.
pub async fn bounds_track_appends_and_trims<S: Store>(store: S) {
    let check = "bounds_track_appends_and_trims";
    let empty = Bounds {
        oldest: None,
        head: Cursor::ZERO,
    };
    assert_eq!(ok(check, store.bounds().await), empty, "{check}: empty");
    let appended = append_n(check, &store, "b", 5).await;
    let head = appended[4].cursor;
    assert_eq!(
        ok(check, store.bounds().await),
        Bounds {
            oldest: Some(appended[0].cursor),
            head
        },
        "{check}: after 5 appends"
    );
    ok(check, store.trim(&keep(2)).await);
    let bounds = ok(check, store.bounds().await);
    assert_eq!(
        bounds,
        Bounds {
            oldest: Some(appended[3].cursor),
            head
        },
        "{check}: after trimming to 2"
    );
    assert_eq!(
        ok(check, store.read_after(bounds.before_oldest(), 10).await),
        appended[3..],
        "{check}: before_oldest replays everything retained"
    );
    ok(check, store.trim(&keep(0)).await);
    assert_eq!(
        ok(check, store.bounds().await),
        Bounds { oldest: None, head },
        "{check}: after trimming everything the head stays"
    );
}

/// Trimming by count removes the oldest records beyond `max_events` and
/// reports how many.
pub async fn trim_by_count<S: Store>(store: S) {
    let check = "trim_by_count";
    let appended = append_n(check, &store, "n", 10).await;
    assert_eq!(
        ok(check, store.trim(&Retention::default()).await),
        0,
        "{check}: unlimited retention removes nothing"
    );
    assert_eq!(
        ok(check, store.trim(&keep(10)).await),
        0,
        "{check}: at the limit"
    );
    assert_eq!(
        ok(check, store.trim(&keep(4)).await),
        6,
        "{check}: removed count"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 100).await),
        appended[6..],
        "{check}: the newest 4 remain"
    );
    assert_eq!(
        ok(check, store.trim(&keep(4)).await),
        0,
        "{check}: idempotent"
    );
    let both = Retention {
        max_events: Some(1),
        max_age: Some(Duration::from_secs(3600)),
    };
    assert_eq!(
        ok(check, store.trim(&both).await),
        3,
        "{check}: count with a lax age"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 100).await),
        appended[9..],
        "{check}: the newest remains"
    );
}

/// Trimming by age removes exactly the records older than `max_age`.
pub async fn trim_by_age<S: Store>(store: S) {
    let check = "trim_by_age";
    // The old record is 300 ms old at trim time, the young one a few ms: a
    // 150 ms limit separates them with wide margins on a loaded machine.
    let gap = Duration::from_millis(300);
    let max_age = Duration::from_millis(150);
    let old = ok(check, store.append(sample("old")).await);
    tokio::time::sleep(gap).await;
    let young = ok(check, store.append(sample("young")).await);
    let lax = Retention {
        max_events: None,
        max_age: Some(Duration::from_secs(3600)),
    };
    assert_eq!(
        ok(check, store.trim(&lax).await),
        0,
        "{check}: nothing is an hour old"
    );
    let strict = Retention {
        max_events: None,
        max_age: Some(max_age),
    };
    assert_eq!(
        ok(check, store.trim(&strict).await),
        1,
        "{check}: exactly the old record"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        std::slice::from_ref(&young),
        "{check}: the young record remains"
    );
    assert_eq!(
        ok(check, store.resolve("old").await),
        None,
        "{check}: old id gone"
    );
    assert_eq!(
        ok(check, store.bounds().await),
        Bounds {
            oldest: Some(young.cursor),
            head: young.cursor
        },
        "{check}: bounds"
    );
    assert!(old.cursor < young.cursor, "{check}: cursor order");
}

/// Records appended with a [`NewRecord::keep_for`] are removed by any
/// trim once it has run out (even with unlimited log-wide retention),
/// wherever they are in the log; they leave quietly: reads, resolves and
/// follows skip them without reporting a gap, their ids are free again, and
/// the bounds move past them when they were the oldest.
pub async fn expired_records_leave_quietly<S: Store>(store: S) {
    let check = "expired_records_leave_quietly";
    // 200 ms to live, trimmed 600 ms later; the long-lived record's hour
    // cannot run out during the check.
    let brief = Some(Duration::from_millis(200));
    let with = |id: &str, keep_for: Option<Duration>| NewRecord {
        keep_for,
        ..sample(id)
    };
    let a = ok(check, store.append(with("a", brief)).await);
    let b = ok(check, store.append(with("b", None)).await);
    let c = ok(check, store.append(with("c", brief)).await);
    let d = ok(
        check,
        store
            .append(with("d", Some(Duration::from_secs(3600))))
            .await,
    );
    let e = ok(check, store.append(with("e", None)).await);
    let mut live = store.follow(e.cursor);
    assert_eq!(
        ok(check, store.trim(&Retention::default()).await),
        0,
        "{check}: nothing has run out yet"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ok(check, store.trim(&Retention::default()).await),
        2,
        "{check}: exactly the two brief records, with unlimited retention"
    );
    assert_eq!(
        ok(check, store.trim(&Retention::default()).await),
        0,
        "{check}: a second trim finds nothing"
    );
    let kept = vec![b.clone(), d.clone(), e.clone()];
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        kept,
        "{check}: read_after skips the expired"
    );
    assert_eq!(
        ok(check, store.read_after(b.cursor, 1).await),
        std::slice::from_ref(&d),
        "{check}: a limit counts retained records"
    );
    for id in ["a", "c"] {
        assert_eq!(
            ok(check, store.resolve(id).await),
            None,
            "{check}: {id} resolves"
        );
        assert_eq!(
            ok(check, store.resolve_record(id).await),
            None,
            "{check}: {id} resolves to a record"
        );
    }
    assert_eq!(
        ok(check, store.resolve("d").await),
        Some(d.cursor),
        "{check}: d"
    );
    assert_eq!(
        ok(check, store.bounds().await),
        Bounds {
            oldest: Some(b.cursor),
            head: e.cursor
        },
        "{check}: the oldest expired: bounds move past it"
    );
    // Followers from before the expired records are not told of a gap.
    let mut from_a = store.follow(a.cursor);
    assert_eq!(
        take(check, &mut from_a, 3).await,
        kept,
        "{check}: follow after a"
    );
    let mut from_b = store.follow(b.cursor);
    assert_eq!(
        take(check, &mut from_b, 2).await,
        [d, e.clone()],
        "{check}: follow across the hole"
    );
    // Their ids are free again; the live follower sees what comes next.
    let again = ok(check, store.append(sample("a")).await);
    assert!(again.cursor > e.cursor, "{check}: cursors move on");
    assert_eq!(
        take(check, &mut live, 1).await,
        std::slice::from_ref(&again),
        "{check}: a live follower over the expiry"
    );
    assert_eq!(
        take(check, &mut from_a, 1).await,
        [again],
        "{check}: a follower that crossed the hole goes live"
    );
    assert!(a.cursor < c.cursor, "{check}: cursor order");
}

/// Cursors are never reused, even once everything has been trimmed.
pub async fn cursors_not_reused_after_trimming_everything<S: Store>(store: S) {
    let check = "cursors_not_reused_after_trimming_everything";
    let appended = append_n(check, &store, "z", 3).await;
    let head = appended[2].cursor;
    assert_eq!(
        ok(check, store.trim(&keep(0)).await),
        3,
        "{check}: trim everything"
    );
    assert_eq!(
        ok(check, store.read_after(Cursor::ZERO, 10).await),
        [],
        "{check}: nothing retained"
    );
    let next = ok(check, store.append(sample("z-next")).await);
    assert!(
        next.cursor > head,
        "{check}: cursor {} reused (head was {})",
        next.cursor,
        head
    );
    assert_eq!(
        ok(check, store.resolve("z-0").await),
        None,
        "{check}: trimmed id"
    );
    assert_eq!(
        ok(check, store.read_after(head, 10).await),
        [next],
        "{check}: the new record is after the old head"
    );
}

/// Following from ZERO yields the existing records, then live ones appended
/// later, in order, without duplicates.
pub async fn follow_replays_then_goes_live<S: Store>(store: S) {
    let check = "follow_replays_then_goes_live";
    let history = append_n(check, &store, "h", 5).await;
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(
        take(check, &mut follower, 5).await,
        history,
        "{check}: history"
    );
    expect_quiet(check, &mut follower).await;
    for i in 0..5 {
        let live = ok(check, store.append(sample(&format!("live-{i}"))).await);
        assert_eq!(
            take(check, &mut follower, 1).await,
            [live],
            "{check}: live record {i}"
        );
    }
    let batch = ok(
        check,
        store
            .append_batch(vec![sample("batch-0"), sample("batch-1")])
            .await,
    );
    assert_eq!(
        take(check, &mut follower, 2).await,
        batch,
        "{check}: live batch"
    );
    expect_quiet(check, &mut follower).await;
}

/// Following from a cursor in the middle yields exactly what follows it.
pub async fn follow_from_the_middle<S: Store>(store: S) {
    let check = "follow_from_the_middle";
    let history = append_n(check, &store, "m", 10).await;
    let mut follower = store.follow(history[4].cursor);
    assert_eq!(
        take(check, &mut follower, 5).await,
        history[5..],
        "{check}: rest of history"
    );
    expect_quiet(check, &mut follower).await;
    let live = ok(check, store.append(sample("m-live")).await);
    assert_eq!(take(check, &mut follower, 1).await, [live], "{check}: live");

    let mut from_head = store.follow(history[9].cursor);
    let next = take(check, &mut from_head, 1).await;
    assert_eq!(
        next[0].id.as_ref(),
        "m-live",
        "{check}: follow from the old head"
    );
}

/// Following from a cursor whose successors were trimmed yields a `Trimmed`
/// error (then ends) instead of skipping; following from just before the
/// oldest retained record works.
pub async fn follow_reports_trimmed<S: Store>(store: S) {
    let check = "follow_reports_trimmed";
    let appended = append_n(check, &store, "t", 10).await;
    assert_eq!(
        ok(check, store.trim(&keep(5)).await),
        5,
        "{check}: trim to 5"
    );

    for after in [Cursor::ZERO, appended[2].cursor] {
        let mut follower = store.follow(after);
        expect_trimmed(check, &mut follower).await;
    }

    let bounds = ok(check, store.bounds().await);
    let mut follower = store.follow(bounds.before_oldest());
    assert_eq!(
        take(check, &mut follower, 5).await,
        appended[5..],
        "{check}: follow from before_oldest"
    );
    let mut follower = store.follow(appended[6].cursor);
    assert_eq!(
        take(check, &mut follower, 3).await,
        appended[7..],
        "{check}: follow from a retained cursor"
    );
}

/// A follower whose next records are trimmed while it follows never skips:
/// it either still yields them (it had already read them) or yields a
/// `Trimmed` error and ends.
pub async fn follow_never_skips_when_trimmed_meanwhile<S: Store>(store: S) {
    let check = "follow_never_skips_when_trimmed_meanwhile";
    let appended = append_n(check, &store, "s", 10).await;
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(
        take(check, &mut follower, 1).await,
        appended[..1],
        "{check}: first"
    );
    assert_eq!(
        ok(check, store.trim(&keep(1)).await),
        9,
        "{check}: trim to 1"
    );
    for expected in &appended[1..] {
        match next_within(check, &mut follower).await {
            Some(Ok(record)) => assert_eq!(
                &record, expected,
                "{check}: follower skipped to a later record after trimming"
            ),
            Some(Err(error)) if error.kind() == ErrorKind::Trimmed => {
                expect_end(check, &mut follower).await;
                return;
            }
            Some(Err(error)) => panic!("{check}: unexpected error: {error}"),
            None => panic!("{check}: follow ended without reporting Trimmed"),
        }
    }
}

/// A follower that reads nothing while 5,000 records are appended then gets
/// all of them, in order.
pub async fn follow_slow_consumer_gets_everything<S: Store>(store: S) {
    let check = "follow_slow_consumer_gets_everything";
    const COUNT: usize = 5_000;
    let mut follower = store.follow(Cursor::ZERO);
    // Go live first, so the follower is parked waiting for appends.
    let first = ok(check, store.append(sample("slow-first")).await);
    assert_eq!(
        take(check, &mut follower, 1).await,
        [first],
        "{check}: first"
    );
    expect_quiet(check, &mut follower).await;
    let mut appended = Vec::with_capacity(COUNT);
    // Batches of 100 keep a durable backend from paying one commit per record.
    for chunk in 0..COUNT / 100 {
        let batch = (0..100)
            .map(|i| sample(&format!("slow-{chunk}-{i}")))
            .collect();
        appended.extend(ok(check, store.append_batch(batch).await));
    }
    let got = take(check, &mut follower, COUNT).await;
    assert!(
        got == appended,
        "{check}: the slow follower's records differ from the log"
    );
    expect_quiet(check, &mut follower).await;
}

/// Many concurrent appenders (8 tasks × 200 appends) produce one strictly
/// increasing, duplicate-free log, and a live follower sees all of it in the
/// same order.
pub async fn concurrent_appenders_form_one_log<S: Store>(store: S) {
    let check = "concurrent_appenders_form_one_log";
    const TASKS: usize = 8;
    const PER_TASK: usize = 200;
    const TOTAL: usize = TASKS * PER_TASK;
    let store = Arc::new(store);
    let mut follower = store.follow(Cursor::ZERO);
    let following = tokio::spawn(async move { take(check, &mut follower, TOTAL).await });
    let appenders: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut appended = Vec::with_capacity(PER_TASK);
                for i in 0..PER_TASK {
                    let record = store.append(sample(&format!("task{task}-{i}"))).await;
                    appended.push(ok(check, record));
                }
                appended
            })
        })
        .collect();

    let mut by_cursor: HashMap<Cursor, Record> = HashMap::with_capacity(TOTAL);
    for appender in appenders {
        let appended = appender.await.expect("appender task panicked");
        for pair in appended.windows(2) {
            assert!(
                pair[0].cursor < pair[1].cursor,
                "{check}: one task's sequential appends got decreasing cursors"
            );
        }
        for record in appended {
            let cursor = record.cursor;
            assert!(
                by_cursor.insert(cursor, record).is_none(),
                "{check}: cursor {cursor} handed out twice"
            );
        }
    }

    let log = ok(check, store.read_after(Cursor::ZERO, TOTAL + 10).await);
    assert_eq!(log.len(), TOTAL, "{check}: log length");
    let mut ids = HashSet::with_capacity(TOTAL);
    for (i, record) in log.iter().enumerate() {
        if i > 0 {
            assert!(
                log[i - 1].cursor < record.cursor,
                "{check}: log not ascending"
            );
        }
        assert_eq!(
            by_cursor.get(&record.cursor),
            Some(record),
            "{check}: log record differs from what append returned"
        );
        assert!(
            ids.insert(record.id.clone()),
            "{check}: duplicate id {}",
            record.id
        );
    }

    let followed = following.await.expect("follower task panicked");
    assert!(
        followed == log,
        "{check}: the follower's order differs from the log"
    );
}

/// When the store is dropped, a caught-up follower's stream ends (possibly
/// after a `Closed` error) instead of hanging.
pub async fn follow_ends_when_store_dropped<S: Store>(store: S) {
    let check = "follow_ends_when_store_dropped";
    let first = ok(check, store.append(sample("d")).await);
    let mut follower = store.follow(Cursor::ZERO);
    assert_eq!(
        take(check, &mut follower, 1).await,
        [first],
        "{check}: first"
    );
    expect_quiet(check, &mut follower).await;
    drop(store);
    match next_within(check, &mut follower).await {
        None => {}
        Some(Err(error)) if error.kind() == ErrorKind::Closed => {
            expect_end(check, &mut follower).await;
        }
        Some(other) => panic!("{check}: expected the end of the stream, got {other:?}"),
    }
}

// ---- helpers ---------------------------------------------------------------

fn keep(max_events: u64) -> Retention {
    Retention {
        max_events: Some(max_events),
        max_age: None,
    }
}

#[track_caller]
fn ok<T>(check: &str, result: Result<T, StoreError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{check}: store call failed: {error} ({error:?})"),
    }
}

#[track_caller]
fn assert_fields(check: &str, input: &NewRecord, record: &Record) {
    assert_eq!(record.id, input.id, "{check}: id");
    assert_eq!(record.topics, input.topics, "{check}: topics");
    assert_eq!(record.private, input.private, "{check}: private");
    assert!(
        record.frame == input.frame,
        "{check}: frame bytes of {:?} differ",
        input.id
    );
}

#[track_caller]
fn expect_duplicate<T: std::fmt::Debug>(check: &str, what: &str, result: Result<T, StoreError>) {
    match result {
        Err(error) if error.kind() == ErrorKind::DuplicateId => {}
        Err(error) => panic!("{check}: {what}: expected a DuplicateId error, got {error}"),
        Ok(value) => panic!("{check}: {what}: expected a DuplicateId error, got {value:?}"),
    }
}

async fn append_n<S: Store>(check: &str, store: &S, prefix: &str, n: usize) -> Vec<Record> {
    let mut appended = Vec::with_capacity(n);
    for i in 0..n {
        appended.push(ok(
            check,
            store.append(sample(&format!("{prefix}-{i}"))).await,
        ));
    }
    appended
}

async fn next_within(check: &str, follower: &mut Follow) -> Option<Result<Record, StoreError>> {
    match tokio::time::timeout(YIELD_TIMEOUT, follower.next()).await {
        Ok(item) => item,
        Err(_) => panic!("{check}: follow yielded nothing within {YIELD_TIMEOUT:?}"),
    }
}

async fn take(check: &str, follower: &mut Follow, n: usize) -> Vec<Record> {
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        match next_within(check, follower).await {
            Some(Ok(record)) => records.push(record),
            Some(Err(error)) => panic!(
                "{check}: follow failed after {} of {n} records: {error}",
                records.len()
            ),
            None => panic!(
                "{check}: follow ended after {} of {n} records",
                records.len()
            ),
        }
    }
    records
}

async fn expect_quiet(check: &str, follower: &mut Follow) {
    if let Ok(item) = tokio::time::timeout(QUIET_PERIOD, follower.next()).await {
        panic!("{check}: a caught-up follower yielded {item:?}");
    }
}

async fn expect_trimmed(check: &str, follower: &mut Follow) {
    match next_within(check, follower).await {
        Some(Err(error)) if error.kind() == ErrorKind::Trimmed => {
            expect_end(check, follower).await;
        }
        Some(Err(error)) => panic!("{check}: expected a Trimmed error, got {error}"),
        Some(Ok(record)) => panic!(
            "{check}: expected a Trimmed error, got record {} (a silent gap)",
            record.cursor
        ),
        None => panic!("{check}: expected a Trimmed error, the stream ended"),
    }
}

async fn expect_end(check: &str, follower: &mut Follow) {
    if let Some(item) = next_within(check, follower).await {
        panic!("{check}: the stream must end after an error, got {item:?}");
    }
}
