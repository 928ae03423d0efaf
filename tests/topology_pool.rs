//! Production topology, in-process: the pool's typed timeout, the connection-budget warning,
//! PgBouncer's transaction mode (no named prepared statements, no session state) and a
//! representative set of operations through PgBouncer. The 20-process run is in
//! `tests/twenty_instances.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use chrono::Duration as Days;
use orgusage::error::DatabaseErrorKind;
use orgusage::{Error, Store, StoreConfig, UsageRecord};
use orgusage_db::admin;
use orgusage_testkit::backend_tests;
use orgusage_testkit::{client, start_day as day};
use rust_decimal_macros::dec;

fn rec(c: &str, user: &str) -> UsageRecord {
    UsageRecord::new(c, user, format!("or-{user}"), "openai/gpt-4.1")
        .on(day())
        .tokens(10, 5)
        .raw_cost(dec!(0.000123456))
        .provider("openai")
}

fn kind(e: &Error) -> Option<DatabaseErrorKind> {
    match e {
        Error::Database { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// Fails (with the names) when the session behind `store`'s single pooled connection holds a
/// named prepared statement. A `DO` block is sent as a simple query, so it prepares nothing.
fn named_statements(store: &Store) -> Result<(), Error> {
    admin::batch_execute(
        store.database(),
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_prepared_statements) THEN \
         RAISE EXCEPTION 'named prepared statements: %', \
         (SELECT string_agg(name, ', ') FROM pg_prepared_statements); END IF; END $$",
    )
}

/// Every hot path once: the three usage upserts (fixed SQL with static query ids), the ledger,
/// reports, limits, health and cleanup.
fn exercise(store: &Store, name: &str) {
    let c = client(store, name);
    store.usage().record_usage(&rec(&c, "u1")).unwrap();
    store.usage().record_usage(&rec(&c, "u1")).unwrap();
    assert!(
        store
            .usage()
            .record_generation("gen-1", &rec(&c, "u2"))
            .unwrap()
            .is_recorded()
    );
    store.usage().get_daily_usage(&c, day(), day()).unwrap();
    store.usage().get_usage_by_user(&c, None, None).unwrap();
    store.usage().get_monthly_limit_status(&c).unwrap();
    store.usage().create_month_total_health_check(&c).unwrap();
    store
        .generations()
        .cleanup_old_processed_generations(None)
        .unwrap();
}

backend_tests! { pgbouncer;
    fn exhausted_pool_is_a_typed_pool_timeout(t) {
        let store = Store::open(
            t.config()
                .max_connections(1)
                .connection_timeout(Duration::from_millis(300)),
        )
        .unwrap();
        let c = client(&store, "pool");
        let err = admin::while_holding_connection(store.database(), || {
            store.usage().record_usage(&rec(&c, "u1")).unwrap_err()
        })
        .unwrap();
        assert_eq!(kind(&err), Some(DatabaseErrorKind::PoolTimeout), "{err}");
        let text = err.to_string();
        assert!(text.contains("no connection could be had within 300ms"), "{text}");
        assert!(text.contains("max_connections"), "{text}");
        // Nothing was sent: once the connection is free the same call succeeds, exactly once.
        store.usage().record_usage(&rec(&c, "u1")).unwrap();
        let d = store.usage().get_daily_usage(&c, day(), day()).unwrap();
        assert_eq!(d[0].total_requests, 1);
    }

    fn record_report_ledger_health_cleanup(t) {
        let c = client(&t.store, "rep");
        let threads = 4;
        let per_thread = 25;
        let barrier = Arc::new(Barrier::new(threads));
        std::thread::scope(|s| {
            for i in 0..threads {
                let (store, barrier, c) = (t.store.clone(), barrier.clone(), c.clone());
                s.spawn(move || {
                    barrier.wait();
                    for n in 0..per_thread {
                        store.usage().record_usage(&rec(&c, &format!("u{}", n % 3))).unwrap();
                        // Every id twice: once recorded, once a duplicate.
                        let id = format!("gen-{}", n % 10 + 10 * i);
                        store.usage().record_generation(&id, &rec(&c, "g")).unwrap();
                    }
                });
            }
        });
        let n = (threads * per_thread) as i64;
        let generations = (threads * 10) as i64;
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!((d.total_requests, d.total_tokens), (n + generations, 15 * (n + generations)));
        assert_eq!(d.raw_cost, dec!(0.000123456) * rust_decimal::Decimal::from(n + generations));
        assert_eq!(d.unique_users, 4);
        let users = t.store.usage().get_usage_by_user(&c, Some(day()), Some(day())).unwrap();
        assert_eq!(users.iter().map(|u| u.total_requests).sum::<i64>(), n + generations);
        let health = t.store.usage().create_month_total_health_check(&c).unwrap();
        assert_eq!(health.overall_status, "healthy");
        assert!(t.store.usage().validate_no_double_counting(&c, day()).unwrap().valid);
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(stats.total_processed, generations);
        t.clock.advance(Days::days(61));
        let r = t.store.generations().cleanup_old_processed_generations(None).unwrap();
        assert!(r.success, "{r:?}");
        assert_eq!(r.records_deleted, generations);
    }

    fn instances_opening_at_once_migrate_once(t) {
        // The test store migrated its database already; the others queue on the migration
        // lock (a transaction-level lock, so it holds behind PgBouncer) and find nothing to do.
        let barrier = Arc::new(Barrier::new(6));
        let stores: Vec<Store> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let (config, barrier) = (t.config(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        Store::open(config).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for store in &stores {
            assert_eq!(store.database().run_pending_migrations().unwrap(), 0);
        }
        let c = client(&stores[0], "mig");
        stores[5].usage().record_usage(&rec(&c, "u1")).unwrap();
    }
}

/// Fresh databases migrated by several instances at once, directly and through PgBouncer:
/// exactly one applies the migrations, and every store works afterwards.
#[test]
fn concurrent_first_migration_on_an_empty_database() {
    let Some(db) = orgusage_testkit::postgres_database() else {
        return;
    };
    let mut urls = vec![(db.url.clone(), false)];
    let bouncer_db =
        orgusage_testkit::pgbouncer_url().and_then(|_| orgusage_testkit::postgres_database());
    if let Some(b) = &bouncer_db {
        if let Some(url) = orgusage_testkit::pgbouncer_url_for(&b.name) {
            urls.push((url, true));
        }
    }
    for (url, bouncer) in urls {
        let barrier = Arc::new(Barrier::new(5));
        let applied = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            for _ in 0..5 {
                let (url, barrier, applied) = (url.clone(), barrier.clone(), applied.clone());
                s.spawn(move || {
                    let mut config = orgusage_db::DbConfig::new(url);
                    config.pgbouncer = bouncer;
                    let db = orgusage_db::Database::connect_without_migrations(&config).unwrap();
                    barrier.wait();
                    applied
                        .lock()
                        .unwrap()
                        .push(db.run_pending_migrations().unwrap());
                });
            }
        });
        let mut applied = applied.lock().unwrap().clone();
        applied.sort_unstable();
        assert_eq!(applied[..4], [0, 0, 0, 0], "bouncer={bouncer}: {applied:?}");
        assert!(applied[4] > 0, "bouncer={bouncer}: {applied:?}");
        let store = Store::open(StoreConfig::new(url).pgbouncer(bouncer)).unwrap();
        let c = client(&store, "first");
        store.usage().record_usage(&rec(&c, "u1")).unwrap();
    }
}

/// With `pgbouncer(true)` no statement is prepared under a name, so none can be missing when
/// PgBouncer hands the next transaction a different server connection. Without it, the hot
/// paths are prepared and cached (which the test checks too, so it cannot pass vacuously).
#[test]
fn pgbouncer_mode_prepares_no_named_statements() {
    let Some(t) = orgusage_testkit::postgres() else {
        return;
    };
    let bouncer = Store::open(
        StoreConfig::new(t.url.clone())
            .pgbouncer(true)
            .max_connections(1),
    )
    .unwrap();
    exercise(&bouncer, "bouncer");
    named_statements(&bouncer).unwrap();

    let cached = Store::open(StoreConfig::new(t.url.clone()).max_connections(1)).unwrap();
    exercise(&cached, "cached");
    let err = named_statements(&cached).unwrap_err();
    assert!(err.to_string().contains("__diesel_stmt_"), "{err}");
}

/// A server that does not answer is a `Connection` error at open, not a pool timeout.
#[cfg(feature = "postgres")]
#[test]
fn unreachable_server_is_a_connection_error() {
    // Port 1 on loopback: nothing listens, the connect is refused at once.
    let err = Store::open(
        StoreConfig::new("postgres://postgres@127.0.0.1:1/none")
            .connection_timeout(Duration::from_millis(500)),
    )
    .unwrap_err();
    assert_eq!(kind(&err), Some(DatabaseErrorKind::Connection), "{err}");
    assert!(
        err.to_string().contains("could not connect within 500ms"),
        "{err}"
    );
}

/// Captures the messages of `WARN` events (a minimal `tracing` subscriber, so the test needs
/// no subscriber crate).
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The warnings `Store::open` emits for `config`.
fn open_warnings(config: StoreConfig) -> Vec<String> {
    let warnings = Arc::new(Warnings::default());
    let store =
        tracing::subscriber::with_default(warnings.clone(), || Store::open(config).unwrap());
    drop(store);
    warnings.0.lock().unwrap().clone()
}

/// `open` on PostgreSQL checks the budget with the server's real `max_connections`: 1,000
/// instances of the default pool cannot fit any default server, one instance always does.
#[test]
fn open_warns_when_the_pools_cannot_fit_the_server() {
    let Some(t) = orgusage_testkit::postgres() else {
        return;
    };
    let too_many = open_warnings(t.config().expected_instances(1000));
    assert_eq!(too_many.len(), 1, "{too_many:?}");
    let w = &too_many[0];
    assert!(
        w.contains("connection budget exceeded: 1000 instances × a pool of 4 = 4000"),
        "{w}"
    );
    assert!(w.contains("max_connections"), "{w}");
    assert!(open_warnings(t.config().expected_instances(1)).is_empty());
    // Behind PgBouncer the check is skipped: PgBouncer's pool bounds the server connections.
    assert!(open_warnings(t.config().expected_instances(1000).pgbouncer(true)).is_empty());
}
