//! Test support for orgusage: a fresh database per test on every backend, a manual clock, a
//! macro that runs one test body on SQLite (always) and PostgreSQL (when reachable),
//! [`race`], which releases threads together for the concurrency tests, and [`child_test`],
//! which starts the multi-process tests' children.
//!
//! PostgreSQL is found at `ORGUSAGE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. Each test gets its own schema (`CREATE SCHEMA
//! t_<random>`, dropped afterwards) and a URL whose `search_path` points at it, so tests run in
//! parallel with real commits. When the server cannot be reached a single `SKIP postgres: …` line
//! is printed per test and the test passes, except under `CI=true`, where it fails.
//!
//! PgBouncer (transaction pooling) is found at `ORGUSAGE_TEST_PGBOUNCER_URL`, e.g.
//! `postgres://postgres@127.0.0.1:6432/test`, in front of the same server. PgBouncer does not
//! pass the `options` startup parameter that selects a schema, so [`pgbouncer`] creates a fresh
//! *database* per test instead (directly on the server) and connects to it through PgBouncer.
//! Without the variable it prints `SKIP pgbouncer: …` and the test passes, also under CI; a
//! variable that is set but unreachable fails under `CI=true`.
#![deny(missing_docs)]

use std::sync::{Arc, OnceLock};

mod child;
pub mod cluster;
mod fixtures;
mod race;

pub use child::child_test;
pub use fixtures::{client, client_key, client_with, date, start_day};
pub use race::race;

use chrono::{DateTime, TimeZone, Utc};
pub use orgusage::clock::ManualClock;
pub use orgusage::{Store, StoreConfig};

/// The default PostgreSQL URL of the test suite.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store on a fresh database, its manual clock, and whatever keeps the database alive.
pub struct TestStore {
    /// The store under test.
    pub store: Store,
    /// The clock the store reads; move it to test time-dependent behaviour.
    pub clock: Arc<ManualClock>,
    /// The URL of the fresh database (another process or pool may open it too).
    pub url: String,
    backend: &'static str,
    /// The config the store was opened with, minus the clock: what [`TestStore::config`] returns.
    config: StoreConfig,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
    Database(#[allow(dead_code)] TestDatabase),
}

/// A fresh, empty PostgreSQL database on the test server, dropped (`WITH (FORCE)`, so lingering
/// sessions such as PgBouncer's server connections do not block it) when this value drops.
pub struct TestDatabase {
    /// The database name (`t_<random>`).
    pub name: String,
    /// A direct URL to it (not through PgBouncer).
    pub url: String,
    admin_url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = orgusage_db::admin::pg_batch_execute(&self.admin_url, &sql) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, schema } = self {
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            if let Err(e) = orgusage_db::admin::pg_batch_execute(admin_url, &sql) {
                eprintln!("warning: could not drop test schema {schema}: {e}");
            }
        }
    }
}

impl TestStore {
    /// `sqlite`, `postgres` or `pgbouncer` (PostgreSQL through PgBouncer).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// A config for another store on the same database with this one's settings (e.g.
    /// `pgbouncer(true)` behind PgBouncer, the SQLite durability level) and the system clock.
    pub fn config(&self) -> StoreConfig {
        self.config.clone()
    }

    /// Runs raw SQL on the test database, e.g. to simulate a writer that bypasses the library.
    pub fn execute_sql(&self, sql: &str) {
        orgusage_db::admin::batch_execute(self.store.database(), sql).expect("raw SQL");
    }

    /// Opens another, independent store (own pool) on the same database, as a second app
    /// instance would.
    pub fn second_instance(&self) -> Store {
        Store::open(self.config().clock(self.clock.clone())).expect("open second instance")
    }
}

impl TestStore {
    /// Opens another store on the same database with a configuration built from this test's
    /// URL and clock, e.g. `t.open_with(|c| c.encryption(ring))`.
    pub fn open_with(&self, configure: impl FnOnce(StoreConfig) -> StoreConfig) -> Store {
        Store::open(configure(
            StoreConfig::new(self.url.clone()).clock(self.clock.clone()),
        ))
        .expect("open configured instance")
    }
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("backend", &self.backend)
            .finish()
    }
}

/// The instant every test clock starts at: 2025-07-24T10:00:00Z (a Thursday, CEST).
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 7, 24, 10, 0, 0)
        .single()
        .expect("valid instant")
}

/// A store on a new SQLite file in a temporary directory (WAL, several pooled connections).
///
/// It runs with `synchronous = NORMAL`, not the library's default `FULL`: the level only
/// decides whether a commit survives a power loss, which no test can cause, and an fsync per
/// commit (about 4 ms on the CI disk) would make the suite many times slower.
pub fn sqlite() -> TestStore {
    sqlite_with(|config| config.sqlite_synchronous(orgusage::db::SqliteSynchronous::Normal))
}

/// Like [`sqlite`], with `configure` applied to the store's config (e.g. a durability level).
pub fn sqlite_with(configure: impl FnOnce(StoreConfig) -> StoreConfig) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir
        .path()
        .join("orgusage.db")
        .to_string_lossy()
        .into_owned();
    let clock = Arc::new(ManualClock::new(default_start()));
    let config = configure(base_config(&url));
    let store = Store::open(config.clone().clock(clock.clone())).expect("open sqlite test store");
    TestStore {
        store,
        clock,
        url,
        backend: "sqlite",
        config,
        _guard: Guard::Sqlite(dir),
    }
}

/// The config every test store starts from. `ORGUSAGE_TEST_GROUP_COMMIT=1` turns group commit on
/// for every store a test does not configure itself, so the whole suite can be run through the
/// grouped write path (`ORGUSAGE_TEST_GROUP_COMMIT=1 cargo test --workspace --all-features`).
fn base_config(url: &str) -> StoreConfig {
    let config = StoreConfig::new(url);
    match std::env::var("ORGUSAGE_TEST_GROUP_COMMIT").as_deref() {
        Ok("1") | Ok("true") => config.group_commit(true),
        _ => config,
    }
}

/// The PostgreSQL URL the tests use.
pub fn postgres_url() -> String {
    std::env::var("ORGUSAGE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// Adds a query parameter to a URL.
pub fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn postgres_reachable() -> &'static Result<(), String> {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    REACHABLE.get_or_init(|| {
        let url = with_param(&postgres_url(), "connect_timeout=3");
        orgusage_db::admin::pg_batch_execute(&url, "SELECT 1").map_err(|e| e.to_string())
    })
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// False (after printing `SKIP postgres: …`) when no server answers; panics under `CI=true`.
/// Also false when this crate was built without its `postgres` feature (a single-backend
/// build such as `--no-default-features --features sqlite`), under CI too: such a build cannot
/// open PostgreSQL at all. For tests that set up PostgreSQL themselves (e.g. the importer's
/// source and target schemas); [`postgres`] and [`postgres_database`] call it.
pub fn postgres_available() -> bool {
    if !cfg!(feature = "postgres") {
        eprintln!("SKIP postgres: built without the `postgres` feature");
        return false;
    }
    if let Err(reason) = postgres_reachable() {
        if under_ci() {
            panic!(
                "CI=true but PostgreSQL is not reachable at {}: {reason}",
                postgres_url()
            );
        }
        eprintln!("SKIP postgres: {reason} (set ORGUSAGE_TEST_POSTGRES_URL)");
        return false;
    }
    true
}

/// Replaces the database name of a `postgres://…/<name>[?…]` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // The database is the path after the authority; a URL without one gets it appended.
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A fresh PostgreSQL database (not a schema) for tests that need a whole database, e.g. to
/// count its server connections in `pg_stat_activity` or to reach it through PgBouncer; `None`
/// (after `SKIP postgres: …`) when no server answers.
pub fn postgres_database() -> Option<TestDatabase> {
    if !postgres_available() {
        return None;
    }
    let admin_url = postgres_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    orgusage_db::admin::pg_batch_execute(&admin_url, &format!("CREATE DATABASE {name}"))
        .expect("create test database");
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
    })
}

/// The PgBouncer URL the tests use, when `ORGUSAGE_TEST_PGBOUNCER_URL` is set.
pub fn pgbouncer_url() -> Option<String> {
    std::env::var("ORGUSAGE_TEST_PGBOUNCER_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn pgbouncer_reachable(url: &str) -> &'static Result<(), String> {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    REACHABLE.get_or_init(|| {
        let url = with_param(url, "connect_timeout=3");
        orgusage_db::admin::pg_batch_execute(&url, "SELECT 1").map_err(|e| e.to_string())
    })
}

/// The URL through PgBouncer of database `name`, or `None` (after printing
/// `SKIP pgbouncer: …`) when `ORGUSAGE_TEST_PGBOUNCER_URL` is unset or, outside CI,
/// unreachable. Set and unreachable under `CI=true` panics.
pub fn pgbouncer_url_for(name: &str) -> Option<String> {
    pgbouncer_base().map(|url| with_database(&url, name))
}

fn pgbouncer_base() -> Option<String> {
    if !cfg!(feature = "postgres") {
        eprintln!("SKIP pgbouncer: built without the `postgres` feature");
        return None;
    }
    let Some(url) = pgbouncer_url() else {
        eprintln!("SKIP pgbouncer: ORGUSAGE_TEST_PGBOUNCER_URL is not set");
        return None;
    };
    if let Err(reason) = pgbouncer_reachable(&url) {
        if under_ci() {
            panic!(
                "CI=true and ORGUSAGE_TEST_PGBOUNCER_URL={url} is set but not reachable: {reason}"
            );
        }
        eprintln!("SKIP pgbouncer: {reason} (ORGUSAGE_TEST_PGBOUNCER_URL={url})");
        return None;
    }
    Some(url)
}

/// A store on a fresh PostgreSQL database reached through PgBouncer in transaction mode
/// (`StoreConfig::pgbouncer(true)`), or `None` when PgBouncer or PostgreSQL is not available
/// (see the crate docs).
pub fn pgbouncer() -> Option<TestStore> {
    // PgBouncer first, so a machine without it creates no database.
    let base = pgbouncer_base()?;
    let db = postgres_database()?;
    let url = with_database(&base, &db.name);
    let clock = Arc::new(ManualClock::new(default_start()));
    let config = base_config(&url).pgbouncer(true);
    let store = Store::open(config.clone().clock(clock.clone()))
        .expect("open test store through pgbouncer");
    Some(TestStore {
        store,
        clock,
        url,
        backend: "pgbouncer",
        config,
        _guard: Guard::Database(db),
    })
}

/// A store on a fresh PostgreSQL schema, or `None` (after printing `SKIP postgres: …`) when no
/// server answers. Under `CI=true` an unreachable server panics instead: CI must run them.
pub fn postgres() -> Option<TestStore> {
    postgres_with(|config| config)
}

/// Like [`postgres`], with `configure` applied to the store's config (e.g. a bigger pool for
/// the eight-writer benches).
pub fn postgres_with(configure: impl FnOnce(StoreConfig) -> StoreConfig) -> Option<TestStore> {
    if !postgres_available() {
        return None;
    }
    let admin_url = postgres_url();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    orgusage_db::admin::pg_batch_execute(&admin_url, &format!("CREATE SCHEMA {schema}"))
        .expect("create test schema");
    let guard = Guard::Postgres {
        admin_url: admin_url.clone(),
        schema: schema.clone(),
    };
    let url = with_param(&admin_url, &format!("options=-c%20search_path%3D{schema}"));
    let clock = Arc::new(ManualClock::new(default_start()));
    // The library's default pool (4): the suite runs many of these at once on one server, and
    // the tests should exercise the defaults hosts get.
    let config = configure(base_config(&url));
    let store = Store::open(config.clone().clock(clock.clone())).expect("open postgres test store");
    Some(TestStore {
        store,
        clock,
        url,
        backend: "postgres",
        config,
        _guard: guard,
    })
}

/// Defines each test once and runs it on every backend: `mod <name> { fn sqlite(); fn postgres(); }`.
///
/// ```ignore
/// orgusage_testkit::backend_tests! {
///     fn settings_start_empty(t) {
///         assert!(t.store.settings().get_settings().unwrap().is_none());
///     }
/// }
/// ```
///
/// With a leading `pgbouncer;` each test also gets a third function, `pgbouncer`, that runs it
/// through PgBouncer in transaction mode on a fresh database (see [`pgbouncer`]); it costs a
/// `CREATE DATABASE` per test, so it is meant for a representative set, not the whole suite.
///
/// ```ignore
/// orgusage_testkit::backend_tests! { pgbouncer;
///     fn record_and_read(t) { /* … */ }
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    (pgbouncer; $( $(#[$meta:meta])* fn $name:ident($t:ident) $body:block )*) => {
        $( $crate::backend_tests!(@one [pgbouncer] $(#[$meta])* fn $name($t) $body); )*
    };
    ($( $(#[$meta:meta])* fn $name:ident($t:ident) $body:block )*) => {
        $( $crate::backend_tests!(@one [] $(#[$meta])* fn $name($t) $body); )*
    };
    // One test: `mod $name` with a test function per backend (and `pgbouncer` when asked).
    (@one [$($pgbouncer:ident)?] $(#[$meta:meta])* fn $name:ident($t:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[allow(clippy::unwrap_used, clippy::expect_used)]
            fn run($t: &$crate::TestStore) $body

            #[test]
            fn sqlite() {
                let t = $crate::sqlite();
                run(&t);
            }

            #[test]
            fn postgres() {
                if let Some(t) = $crate::postgres() {
                    run(&t);
                }
            }

            $(
                #[test]
                fn $pgbouncer() {
                    if let Some(t) = $crate::pgbouncer() {
                        run(&t);
                    }
                }
            )?
        }
    };
}
