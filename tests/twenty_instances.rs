//! The deployment the library exists for: 20 instances (processes) × 10 threads recording usage
//! through a **default** `Store` on one PostgreSQL server, directly and through PgBouncer in
//! transaction mode. No call may fail, the totals must be exact, and the server connections
//! the instances open together must stay within `20 × DEFAULT_POSTGRES_POOL`.
//!
//! The test binary re-runs itself as the 20 children (the `child_process` test acts only when
//! `ORGUSAGE_TWENTY_CHILD` is set). It is a test binary of its own because it takes up to 80
//! of the server's 100 default connections: cargo runs test binaries one after another, so no
//! other test of the suite is connected meanwhile; the two variants here take turns on a lock.
//! Each run uses a fresh database, so `pg_stat_activity` counts only this run's connections.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage_testkit::child_test;
use orgusage_testkit::start_day as day;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use orgusage::{ClientOrganizationForm, Decimal, Store, StoreConfig, UsageRecord};
use orgusage_db::budget::DEFAULT_POSTGRES_POOL;
use rust_decimal_macros::dec;

const INSTANCES: usize = 20;
const THREADS: usize = 10;
const PER_THREAD: usize = 50;
/// Instances share these clients, so the hot client-day rows are contended across processes.
const CLIENTS: usize = 4;
const COST: Decimal = dec!(0.000012345);

/// One variant at a time: together they would need the server's connections twice.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A child: `ORGUSAGE_TWENTY_CHILD=<url>;<pgbouncer 0|1>;<client>;<index>`. Any failed call
/// panics, so the process exits non-zero and the parent fails.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var("ORGUSAGE_TWENTY_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(4, ';').collect();
    let (url, bouncer, client, index) = (parts[0], parts[1] == "1", parts[2], parts[3]);
    // The defaults under test: no pool size, no timeout override.
    let store = Store::open(StoreConfig::new(url).pgbouncer(bouncer)).unwrap();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let store = store.clone();
            s.spawn(move || {
                let user = format!("p{index}-t{thread}");
                for i in 0..PER_THREAD {
                    let model = if i % 2 == 0 {
                        "openai/gpt-4.1"
                    } else {
                        "anthropic/claude-sonnet-4"
                    };
                    let rec = UsageRecord::new(client, &user, format!("or-{user}"), model)
                        .on(day())
                        .tokens(3, 2)
                        .raw_cost(COST);
                    store.usage().record_usage(&rec).unwrap();
                }
            });
        }
    });
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs the 20 children against `url` while polling the server's connections to `database`
/// from a connection to another database (so the poller is not counted); returns the peak.
fn run_children(url: &str, bouncer: bool, clients: &[String], database: &str) -> i64 {
    let peak = AtomicI64::new(0);
    let done = AtomicBool::new(false);
    let mut conn = PgConnection::establish(&orgusage_testkit::postgres_url()).unwrap();
    // Client backends only: autovacuum workers visit the database too (10 000 updates of a
    // few hot rows invite them) and are not connections of ours.
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = '{database}' AND backend_type = 'client backend'"
    );
    if !bouncer {
        // A closed connection's server process leaves pg_stat_activity a moment after the
        // client hung up; wait until the parent's are gone, so only the children are counted.
        // (Behind PgBouncer its pooled server connections stay; the bound there is its pool.)
        let give_up = Instant::now() + Duration::from_secs(20);
        while diesel::sql_query(&sql)
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
            > 0
        {
            assert!(
                Instant::now() < give_up,
                "the parent's connections did not go away"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let n = diesel::sql_query(&sql)
                    .get_result::<Count>(&mut conn)
                    .unwrap()
                    .n;
                peak.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let children: Vec<_> = (0..INSTANCES)
            .map(|i| {
                let spec = format!("{url};{};{};{i}", u8::from(bouncer), clients[i % CLIENTS]);
                child_test("child_process")
                    .env("ORGUSAGE_TWENTY_CHILD", spec)
                    // The children's harness summaries would confuse the parent's report.
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let failed = children
            .into_iter()
            .map(|mut c| c.wait().unwrap())
            .filter(|status| !status.success())
            .count();
        done.store(true, Ordering::Relaxed);
        assert_eq!(
            failed, 0,
            "{failed} of {INSTANCES} instances failed (see their stderr above)"
        );
    });
    peak.load(Ordering::Relaxed)
}

fn twenty_by_ten(bouncer: bool) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let label = if bouncer { "pgbouncer" } else { "direct" };
    // PgBouncer first, so a machine without it creates no database (this prints the SKIP line).
    if bouncer && orgusage_testkit::pgbouncer_url_for("probe").is_none() {
        return;
    }
    let Some(db) = orgusage_testkit::postgres_database() else {
        return;
    };
    let url = if bouncer {
        let Some(url) = orgusage_testkit::pgbouncer_url_for(&db.name) else {
            return;
        };
        url
    } else {
        db.url.clone()
    };
    let clients: Vec<String> = {
        let store = Store::open(StoreConfig::new(url.clone()).pgbouncer(bouncer)).unwrap();
        (0..CLIENTS)
            .map(|i| {
                let key = format!("sk-or-v1-twenty-{i}-0123456789");
                store
                    .clients()
                    .create_client(
                        &ClientOrganizationForm::new(format!("c{i}")),
                        &key.as_str().into(),
                        None,
                    )
                    .unwrap()
                    .id
            })
            .collect()
        // The parent's store closes here, so the peak counts the 20 instances only.
    };
    let started = Instant::now();
    let peak = run_children(&url, bouncer, &clients, &db.name);
    let elapsed = started.elapsed();

    let store = Store::open(StoreConfig::new(url).pgbouncer(bouncer)).unwrap();
    let mut requests = 0;
    for (i, c) in clients.iter().enumerate() {
        let instances = (0..INSTANCES).filter(|p| p % CLIENTS == i).count();
        let n = (instances * THREADS * PER_THREAD) as i64;
        let d = store
            .usage()
            .get_daily_usage(c, day(), day())
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(
            (d.total_requests, d.total_tokens, d.input_tokens),
            (n, 5 * n, 3 * n),
            "client {i}"
        );
        assert_eq!(d.raw_cost, COST * Decimal::from(n), "client {i}");
        assert_eq!(d.unique_users, (instances * THREADS) as i64, "client {i}");
        let by_model = store
            .usage()
            .get_usage_by_model(c, Some(day()), Some(day()))
            .unwrap();
        assert_eq!(by_model.iter().map(|m| m.total_requests).sum::<i64>(), n);
        let health = store.usage().create_month_total_health_check(c).unwrap();
        assert_eq!(health.overall_status, "healthy", "client {i}");
        requests += n;
    }
    assert_eq!(requests, (INSTANCES * THREADS * PER_THREAD) as i64);
    // Not a timing assertion: the figures are printed for the operations docs.
    eprintln!(
        "twenty_instances {label}: {INSTANCES} instances x {THREADS} threads, {requests} records, \
         peak server connections to the database {peak} (limit {}), {elapsed:.1?}",
        INSTANCES as u32 * DEFAULT_POSTGRES_POOL
    );
    assert!(peak > 0, "the poller saw no connection at all");
    assert!(
        peak <= i64::from(INSTANCES as u32 * DEFAULT_POSTGRES_POOL),
        "{label}: {peak} server connections exceed {INSTANCES} x {DEFAULT_POSTGRES_POOL}"
    );
}

mod twenty_instances_ten_threads {
    use super::twenty_by_ten;

    #[test]
    fn postgres() {
        twenty_by_ten(false);
    }

    #[test]
    fn pgbouncer() {
        twenty_by_ten(true);
    }
}
