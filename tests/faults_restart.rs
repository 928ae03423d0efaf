//! A PostgreSQL server restart, fast and immediate, under concurrent writers: every error is
//! typed and transient, the same `Store` recovers without being re-opened (the pool pings
//! connections before handing them out, always or when they were idle, and replaces dead
//! ones), and replaying the failed
//! generation ids leaves exact totals.
//!
//! The restart needs a server of its own: the test builds a private cluster from the installed
//! binaries ([`orgusage_testkit::cluster::PrivateCluster`]) and never touches the shared one.
//! Without the binaries it prints `SKIP restart: …` and passes.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orgusage::clock::ManualClock;
use orgusage::error::DatabaseErrorKind;
use orgusage::{ClientOrganizationForm, Error, GenerationOutcome, Store, StoreConfig, UsageRecord};
use orgusage_testkit::cluster::{PrivateCluster, ShutdownMode};
use orgusage_testkit::start_day as day;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const WRITERS: usize = 4;
/// Successful records wanted before the first restart and after each one (proof of recovery).
const PROGRESS: u64 = 100;
/// An upper bound, not a timing assertion: a writer set that makes no progress for this long
/// means the store did not recover, and the test must fail rather than hang.
const STALL: Duration = Duration::from_secs(60);
/// More failed calls than this is a store that does not recover (each dead connection should
/// fail at most once); the writers stop instead of filling memory for `STALL`.
const RUNAWAY: usize = 10_000;

fn record(client: &str, writer: usize) -> UsageRecord {
    let user = format!("u{writer}");
    UsageRecord::new(client, &user, format!("or-{user}"), "openai/gpt-4.1")
        .on(day())
        .tokens(10, 5)
        .raw_cost(dec!(0.0015))
}

/// A failed call: which id, in which phase, and the error.
struct Failure {
    id: String,
    phase: usize,
    kind: Option<DatabaseErrorKind>,
    message: String,
}

/// Shared state of the writer threads.
#[derive(Default)]
struct Run {
    stop: AtomicBool,
    recorded: AtomicU64,
    /// 0 before the first restart, 1 during/after the fast one, 2 during/after the immediate one.
    phase: AtomicUsize,
    failures: Mutex<Vec<Failure>>,
}

/// One writer: unique ids `w<writer>-<n>` until told to stop; returns how many ids it tried.
fn writer(store: &Store, client: &str, w: usize, run: &Run) -> usize {
    let rec = record(client, w);
    let mut n = 0;
    while !run.stop.load(Ordering::SeqCst) {
        let id = format!("w{w}-{n}");
        n += 1;
        match store.usage().record_generation(&id, &rec) {
            Ok(GenerationOutcome::Recorded(_)) => {
                run.recorded.fetch_add(1, Ordering::SeqCst);
            }
            Ok(GenerationOutcome::Duplicate) => panic!("{id} was tried once, yet is a duplicate"),
            Err(e) => {
                assert!(
                    e.is_transient(),
                    "an error during a restart is not transient: {e:?}"
                );
                assert!(matches!(e, Error::Database { .. }), "{e:?}");
                let mut failures = run.failures.lock().unwrap();
                failures.push(Failure {
                    id,
                    phase: run.phase.load(Ordering::SeqCst),
                    kind: e.database_kind(),
                    message: e.to_string(),
                });
                if failures.len() > RUNAWAY {
                    run.stop.store(true, Ordering::SeqCst);
                    panic!("{RUNAWAY} failed calls, the store does not recover; last: {e:?}");
                }
            }
        }
    }
    n
}

/// Waits until the writers have recorded `more` records beyond `from`; panics after `STALL`
/// without progress.
fn wait_for_progress(run: &Run, from: u64, more: u64) -> u64 {
    let mut last = (run.recorded.load(Ordering::SeqCst), Instant::now());
    loop {
        let now = run.recorded.load(Ordering::SeqCst);
        if now >= from + more {
            return now;
        }
        assert!(
            !run.stop.load(Ordering::SeqCst),
            "a writer gave up (see its panic)"
        );
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < STALL,
            "writers made no progress for {STALL:?} ({now} recorded): the store did not recover"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `record_generation` again until it is not a transient error: the retry loop a host writes.
fn replay(store: &Store, id: &str, rec: &UsageRecord) -> GenerationOutcome {
    let mut attempt = 0;
    loop {
        match store.usage().record_generation(id, rec) {
            Err(e) if e.is_transient() && attempt < 20 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100 * attempt));
            }
            other => return other.unwrap(),
        }
    }
}

/// `test_connections_on_checkout(true)`: the pool pings every connection before handing it out
/// and replaces a dead one, so only calls in flight during the restart fail.
#[test]
fn restart_fast_and_immediate_under_concurrent_writers() {
    restart_under_writers(Some(true));
}

/// Without the ping (e.g. behind a pooler that recycles server connections itself) the store
/// still recovers: a call on a dead connection fails once, transiently, and diesel marks that
/// connection broken, so the pool drops it instead of handing it out again. The pool is larger
/// than the writer count here, so idle connections die with the server too.
#[test]
fn restart_without_checkout_ping_recovers_too() {
    restart_under_writers(Some(false));
}

/// The default: PostgreSQL connections are pinged only when they sat idle in the pool for
/// `IDLE_CHECK_AFTER` or were never used, so busy writers send no ping and the pool's idle
/// connections, which die with the server, are replaced before a caller gets one.
#[test]
fn restart_with_the_default_idle_check_recovers() {
    restart_under_writers(None);
}

fn restart_under_writers(ping: Option<bool>) {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(orgusage_testkit::default_start()));
    let pool = if ping == Some(true) {
        WRITERS
    } else {
        2 * WRITERS
    };
    let config = StoreConfig::new(cluster.url())
        .clock(clock)
        .max_connections(u32::try_from(pool).unwrap())
        .connection_timeout(Duration::from_secs(20));
    let config = match ping {
        Some(ping) => config.test_connections_on_checkout(ping),
        None => config,
    };
    let store = Store::open(config).unwrap();
    let client = store
        .clients()
        .create_client(
            &ClientOrganizationForm::new("restart"),
            &"sk-or-v1-restart".into(),
            None,
        )
        .unwrap()
        .id;
    let run = Run::default();
    let tried: usize = std::thread::scope(|s| {
        // Tells the writers to stop however this scope ends: a panic below (no progress)
        // must not leave the scope waiting for writers that never finish.
        let _stop = StopOnDrop(&run.stop);
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, client, run) = (&store, &client, &run);
                s.spawn(move || writer(store, client, w, run))
            })
            .collect();
        let mut at = wait_for_progress(&run, 0, PROGRESS);
        for (phase, mode) in [(1, ShutdownMode::Fast), (2, ShutdownMode::Immediate)] {
            run.phase.store(phase, Ordering::SeqCst);
            let restarted = cluster.restart(mode);
            if restarted.is_err() {
                run.stop.store(true, Ordering::SeqCst);
            }
            restarted.unwrap();
            // The same store, not re-opened: progress after the restart is the recovery.
            at = wait_for_progress(&run, at, PROGRESS);
        }
        run.stop.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });

    let failures = run.failures.into_inner().unwrap();
    let mut classes: BTreeMap<(usize, String, String), usize> = BTreeMap::new();
    for f in &failures {
        let first_line = f.message.lines().next().unwrap_or_default().to_string();
        let kind = f.kind.map(|k| k.to_string()).unwrap_or_default();
        *classes.entry((f.phase, kind, first_line)).or_default() += 1;
    }
    for ((phase, kind, message), n) in &classes {
        eprintln!("restart (ping {ping:?}) phase {phase}: {n} x Database({kind}): {message}");
    }

    // Replay every failed id. A connection lost before COMMIT wrote nothing, so its replay
    // records; only an unknown commit outcome may turn out to be a duplicate.
    for f in &failures {
        let w: usize = f.id[1..f.id.find('-').unwrap()].parse().unwrap();
        let outcome = replay(&store, &f.id, &record(&client, w));
        if !f.may_have_committed() {
            assert!(
                outcome.is_recorded(),
                "{} failed with {:?} yet was written",
                f.id,
                f.kind
            );
        }
    }
    let n = i64::try_from(tried).unwrap();
    let ledger = store
        .generations()
        .get_processed_generations_stats(&client, None, None)
        .unwrap();
    assert_eq!(ledger.total_processed, n);
    let d = store
        .usage()
        .get_daily_usage(&client, day(), day())
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!((d.total_requests, d.total_tokens), (n, 15 * n));
    assert_eq!(d.raw_cost, dec!(0.0015) * Decimal::from(n));
    let health = store
        .usage()
        .create_month_total_health_check(&client)
        .unwrap();
    assert_eq!(health.overall_status, "healthy");
    eprintln!(
        "restart (ping {ping:?}): {tried} ids tried, {} failed and replayed",
        failures.len()
    );
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Failure {
    fn may_have_committed(&self) -> bool {
        self.kind == Some(DatabaseErrorKind::CommitUnknown)
    }
}
