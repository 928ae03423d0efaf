//! Group commit (`StoreConfig::group_commit(true)`) on SQLite and PostgreSQL: 16 threads with exact
//! totals to the nano-dollar, own errors for invalid records, generation ids billed once, one
//! `limit_crossed` per month, and two grouped stores on one database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use orgusage::{ClientOrganizationForm, Error, GenerationOutcome, Store, StoreConfig, UsageRecord};
use orgusage_testkit::{TestStore, backend_tests};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const THREADS: usize = 16;
const PER_THREAD: usize = 25;

fn grouped(t: &TestStore) -> Store {
    Store::open(
        StoreConfig::new(t.url.clone())
            .clock(t.clock.clone())
            .group_commit(true),
    )
    .unwrap()
}

fn limited_client(store: &Store, name: &str, limit: Decimal) -> String {
    let key = format!("sk-or-v1-{name}-0123456789");
    let form = ClientOrganizationForm {
        monthly_limit: Some(limit),
        ..ClientOrganizationForm::new(name)
    };
    store
        .clients()
        .create_client(&form, &key.as_str().into(), None)
        .unwrap()
        .id
}

/// Thread `k`'s `i`-th record: odd nano-dollar costs, so any lost or doubled record shows.
fn rec(c: &str, k: usize, i: usize) -> UsageRecord {
    UsageRecord::new(
        c,
        format!("u{}", (k + i) % 9),
        "or",
        ["m/a", "m/b", "m/c"][i % 3],
    )
    .tokens(10 + i as i64, 3)
    .raw_cost(Decimal::new(1_000_003 + 7 * (k * PER_THREAD + i) as i64, 9))
}

/// Runs `THREADS` threads over `stores` (round robin); thread `k` records usage for even `i`,
/// generation `gen-{i}` (the same ids in every thread) for odd `i`, and one invalid record.
/// Returns (recorded usage, recorded generations, duplicates, crossings).
fn hammer(stores: &[Store], c: &str) -> (usize, usize, usize, usize) {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let s = stores[k % stores.len()].clone();
            let (c, barrier) = (c.to_string(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (mut usage, mut gens, mut dups, mut crossed) = (0, 0, 0, 0);
                for i in 0..PER_THREAD {
                    if i == 7 {
                        let bad = s.usage().record_usage(&rec(&c, k, i).tokens(-1, 0));
                        assert!(matches!(bad, Err(Error::InvalidInput { .. })), "{bad:?}");
                    }
                    if i % 2 == 0 {
                        let done = s.usage().record_usage(&rec(&c, k, i)).unwrap();
                        usage += 1;
                        crossed += usize::from(done.limit_crossed);
                    } else {
                        match s
                            .usage()
                            .record_generation(&format!("gen-{i}"), &rec(&c, 0, i))
                            .unwrap()
                        {
                            GenerationOutcome::Recorded(done) => {
                                gens += 1;
                                crossed += usize::from(done.limit_crossed);
                            }
                            GenerationOutcome::Duplicate => dups += 1,
                        }
                    }
                }
                (usage, gens, dups, crossed)
            })
        })
        .collect();
    handles.into_iter().fold((0, 0, 0, 0), |acc, h| {
        let r = h.join().unwrap();
        (acc.0 + r.0, acc.1 + r.1, acc.2 + r.2, acc.3 + r.3)
    })
}

/// The raw cost every thread's records add up to: all usage records, each generation once.
fn expected_raw(c: &str) -> Decimal {
    let usage: Decimal = (0..THREADS)
        .flat_map(|k| (0..PER_THREAD).step_by(2).map(move |i| (k, i)))
        .map(|(k, i)| rec(c, k, i).raw_cost)
        .sum();
    let gens: Decimal = (1..PER_THREAD)
        .step_by(2)
        .map(|i| rec(c, 0, i).raw_cost)
        .sum();
    usage + gens
}

fn check(t: &TestStore, c: &str, result: (usize, usize, usize, usize)) {
    let (usage, gens, dups, crossed) = result;
    let n_usage = THREADS * PER_THREAD.div_ceil(2);
    let n_gens = PER_THREAD / 2;
    assert_eq!(
        (usage, gens, dups),
        (n_usage, n_gens, n_gens * (THREADS - 1))
    );
    assert_eq!(crossed, 1, "exactly one record reports the crossing");
    let status = t.store.usage().get_monthly_limit_status(c).unwrap();
    let day = status.month_start;
    let days = t
        .store
        .usage()
        .get_daily_usage(c, day, day + chrono::Days::new(31))
        .unwrap();
    assert_eq!(
        days.iter().map(|d| d.total_requests).sum::<i64>(),
        (n_usage + n_gens) as i64
    );
    assert_eq!(
        days.iter().map(|d| d.raw_cost).sum::<Decimal>(),
        expected_raw(c)
    );
    assert_eq!(days.iter().map(|d| d.unique_users).sum::<i64>(), 9);
    let stats = t
        .store
        .generations()
        .get_processed_generations_stats(c, None, None)
        .unwrap();
    assert_eq!(stats.total_processed, n_gens as i64);
}

backend_tests! {
    fn sixteen_threads_on_one_grouped_store_are_exact(t) {
        let store = grouped(t);
        let c = limited_client(&store, "g16", dec!(0.2));
        let result = hammer(&[store], &c);
        check(t, &c, result);
    }

    fn two_grouped_stores_on_one_database_are_exact(t) {
        let (a, b) = (grouped(t), grouped(t));
        let c = limited_client(&a, "g2", dec!(0.2));
        let result = hammer(&[a, b], &c);
        check(t, &c, result);
    }

    fn a_lone_grouped_caller_behaves_as_before(t) {
        let store = grouped(t);
        let c = limited_client(&store, "lone", dec!(100));
        let done = store.usage().record_usage(&rec(&c, 0, 0)).unwrap();
        assert_eq!(done.raw_cost, rec(&c, 0, 0).raw_cost);
        assert!(store.usage().record_generation("g", &rec(&c, 0, 1)).unwrap().is_recorded());
        assert_eq!(store.usage().record_generation("g", &rec(&c, 0, 1)).unwrap(), GenerationOutcome::Duplicate);
        let missing = store.usage().record_usage(&UsageRecord::new("nobody", "u", "o", "m"));
        assert!(matches!(missing, Err(Error::NotFound { .. })));
    }
}

/// The default follows the measurements in docs/performance.md: on where each commit is an
/// fsync (a SQLite file at `synchronous = FULL`, the library's default), off elsewhere, and an
/// explicit choice always wins.
#[test]
fn group_commit_default_is_on_only_for_sqlite_files_at_full() {
    use orgusage::db::SqliteSynchronous;
    let full = orgusage_testkit::sqlite_with(|c| c.sqlite_synchronous(SqliteSynchronous::Full));
    let normal = orgusage_testkit::sqlite_with(|c| c.sqlite_synchronous(SqliteSynchronous::Normal));
    let forced_off = orgusage_testkit::sqlite_with(|c| {
        c.sqlite_synchronous(SqliteSynchronous::Full)
            .group_commit(false)
    });
    let fresh = |t: &TestStore| Store::open(StoreConfig::new(t.url.clone())).unwrap();
    assert!(fresh(&full).group_commit_enabled(), "SQLite file, FULL");
    let normal_store = Store::open(
        StoreConfig::new(normal.url.clone()).sqlite_synchronous(SqliteSynchronous::Normal),
    )
    .unwrap();
    assert!(!normal_store.group_commit_enabled(), "SQLite file, NORMAL");
    assert!(!forced_off.store.group_commit_enabled(), "explicitly off");
    assert!(
        !Store::open(":memory:").unwrap().group_commit_enabled(),
        "in memory"
    );
    assert!(
        Store::open(StoreConfig::new(":memory:").group_commit(true))
            .unwrap()
            .group_commit_enabled(),
        "explicitly on"
    );
    if let Some(pg) = orgusage_testkit::postgres() {
        let store = Store::open(StoreConfig::new(pg.url.clone())).unwrap();
        assert!(!store.group_commit_enabled(), "PostgreSQL");
    }
}
