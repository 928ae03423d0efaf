//! Test support for orgusage: a fresh database per test on every backend, a manual clock, and a
//! macro that runs one test body on SQLite (always) and PostgreSQL (when reachable).
//!
//! PostgreSQL is found at `ORGUSAGE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. Each test gets its own schema (`CREATE SCHEMA
//! t_<random>`, dropped afterwards) and a URL whose `search_path` points at it, so tests run in
//! parallel with real commits. When the server cannot be reached a single `SKIP postgres: …` line
//! is printed per test and the test passes, except under `CI=true`, where it fails.
#![deny(missing_docs)]

use std::sync::{Arc, OnceLock};

pub mod cluster;

use chrono::{DateTime, TimeZone, Utc};
pub use orgusage::{ManualClock, Store, StoreConfig};

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
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
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
    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Runs raw SQL on the test database, e.g. to simulate a writer that bypasses the library.
    pub fn execute_sql(&self, sql: &str) {
        orgusage_db::admin::batch_execute(self.store.database(), sql).expect("raw SQL");
    }

    /// Opens another, independent store (own pool) on the same database, as a second app
    /// instance would.
    pub fn second_instance(&self) -> Store {
        Store::open(StoreConfig::new(self.url.clone()).clock(self.clock.clone()))
            .expect("open second instance")
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
pub fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir
        .path()
        .join("orgusage.db")
        .to_string_lossy()
        .into_owned();
    let clock = Arc::new(ManualClock::new(default_start()));
    let store = Store::open(StoreConfig::new(url.clone()).clock(clock.clone()))
        .expect("open sqlite test store");
    TestStore {
        store,
        clock,
        url,
        backend: "sqlite",
        _guard: Guard::Sqlite(dir),
    }
}

/// The PostgreSQL URL the tests use.
pub fn postgres_url() -> String {
    std::env::var("ORGUSAGE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

fn with_param(url: &str, param: &str) -> String {
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

/// A store on a fresh PostgreSQL schema, or `None` (after printing `SKIP postgres: …`) when no
/// server answers. Under `CI=true` an unreachable server panics instead: CI must run them.
pub fn postgres() -> Option<TestStore> {
    if let Err(reason) = postgres_reachable() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but PostgreSQL is not reachable at {}: {reason}",
                postgres_url()
            );
        }
        eprintln!("SKIP postgres: {reason} (set ORGUSAGE_TEST_POSTGRES_URL)");
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
    let store = Store::open(
        StoreConfig::new(url.clone())
            .clock(clock.clone())
            .max_connections(8),
    )
    .expect("open postgres test store");
    Some(TestStore {
        store,
        clock,
        url,
        backend: "postgres",
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
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* fn $name:ident($t:ident) $body:block )*) => {
        $(
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
            }
        )*
    };
}
