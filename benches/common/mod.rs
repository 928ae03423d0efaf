//! Shared parts of the benches: backends, raw-SQL floors as plain prepared statements, criterion
//! settings.
//!
//! The floors talk to the database through diesel's *connection* layer only (no query builder,
//! no DSL): [`Stmt`] is a fixed SQL text with `?` placeholders and bound values. With `cached`
//! it has a static query id, so diesel prepares it once per connection and re-executes the
//! prepared statement (SQLite `sqlite3_stmt`, PostgreSQL named prepared statement); without, it
//! is prepared on every call, which is what diesel does for the library's statements that it
//! considers unsafe to cache (upserts, `UPDATE`, anything with `sql(..)` literals).
#![allow(dead_code, unused_macros, unused_imports)]

pub mod floor;
pub mod profile;
pub mod report_sql;

use std::marker::PhantomData;
use std::time::Duration;

use chrono::NaiveDate;
use criterion::Criterion;
use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Date, HasSqlType, Nullable, Text};
use diesel::{QueryResult, RunQueryDsl};
use orgusage_testkit::TestStore;

#[cfg(feature = "postgres")]
pub use diesel::PgConnection;
#[cfg(feature = "sqlite")]
pub use diesel::SqliteConnection;

/// The pragmas the library sets on every pooled SQLite connection (`conn.rs`, busy_timeout
/// 30 s), at the level of the test stores (`orgusage_testkit::sqlite()`): `synchronous =
/// NORMAL`. The library's default is `FULL`, whose fsync per commit (about 4 ms here) would
/// drown what these benches measure; `record_usage/sqlite/durability` compares the two.
pub const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// [`SQLITE_PRAGMAS`] with another `synchronous` level (`NORMAL`, `FULL`).
pub fn sqlite_pragmas(synchronous: &str) -> String {
    SQLITE_PRAGMAS.replace(
        "synchronous = NORMAL",
        &format!("synchronous = {synchronous}"),
    )
}

/// `true` under `cargo bench` in release; `false` in criterion's test mode (`cargo test
/// --benches`) and debug builds, where the benches seed small data and each runs once.
pub fn full_run() -> bool {
    !cfg!(debug_assertions) && std::env::args().any(|a| a == "--bench")
}

/// Short warm-up and measurement so that the whole suite finishes in a few minutes.
pub fn criterion_config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

/// The SQLite store (always) and the PostgreSQL store (when a server answers).
pub fn stores() -> Vec<TestStore> {
    let mut out = vec![orgusage_testkit::sqlite()];
    out.extend(postgres_store());
    out
}

/// A fresh PostgreSQL schema, or `None` after printing one `SKIP postgres: …` line. Reachability
/// is checked here first, so the benches never panic (the testkit does under `CI=true`).
#[cfg(feature = "postgres")]
pub fn postgres_store() -> Option<TestStore> {
    use diesel::Connection;
    let url = orgusage_testkit::postgres_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    match PgConnection::establish(&format!("{url}{sep}connect_timeout=3")) {
        // A pool of 8 (the default is 4), so the eight-writer library runs get a connection
        // per writer like the floors they are compared with.
        Ok(_) => orgusage_testkit::postgres_with(|config| config.max_connections(8)),
        Err(e) => {
            eprintln!("SKIP postgres: {e} (set ORGUSAGE_TEST_POSTGRES_URL)");
            None
        }
    }
}

/// Without the `postgres` feature there is nothing to measure there.
#[cfg(not(feature = "postgres"))]
pub fn postgres_store() -> Option<TestStore> {
    eprintln!("SKIP postgres: built without the `postgres` feature (use --all-features)");
    None
}

// ---------------------------------------------------------------------------------------------
// Raw prepared statements

/// A value bound to a `?` of a [`Stmt`].
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// TEXT.
    Text(&'a str),
    /// Nullable TEXT.
    OptText(Option<&'a str>),
    /// DATE.
    Date(NaiveDate),
    /// BIGINT.
    Int(i64),
    /// BOOLEAN.
    Bool(bool),
}

/// The query id of statement number `N`: one prepared statement per number and connection.
pub struct Id<const N: u32>;

/// Raw SQL with `?` placeholders (written as `$1`, `$2`, … on PostgreSQL by diesel), its binds,
/// and the SQL type `ST` of the rows it returns.
pub struct Stmt<'a, const N: u32, ST = ()> {
    sql: &'static str,
    binds: &'a [Val<'a>],
    cached: bool,
    _st: PhantomData<ST>,
}

/// Statement number `N` (unique per SQL text) with `binds`; `cached`: prepared once per
/// connection, or prepared on every execution.
pub fn stmt<'a, const N: u32, ST>(
    sql: &'static str,
    binds: &'a [Val<'a>],
    cached: bool,
) -> Stmt<'a, N, ST> {
    debug_assert_eq!(sql.matches('?').count(), binds.len(), "binds of {sql}");
    Stmt {
        sql,
        binds,
        cached,
        _st: PhantomData,
    }
}

impl<const N: u32, ST> QueryId for Stmt<'_, N, ST> {
    type QueryId = Id<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: u32, ST> Query for Stmt<'_, N, ST> {
    type SqlType = ST;
}

impl<const N: u32, ST, C> RunQueryDsl<C> for Stmt<'_, N, ST> {}

impl<const N: u32, ST, DB> QueryFragment<DB> for Stmt<'_, N, ST>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Date> + HasSqlType<BigInt> + HasSqlType<Bool>,
    str: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
    i64: ToSql<BigInt, DB>,
    bool: ToSql<Bool, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        for (part, val) in parts.zip(self.binds) {
            match val {
                Val::Text(s) => out.push_bind_param::<Text, str>(s)?,
                Val::OptText(s) => out.push_bind_param::<Nullable<Text>, Option<&str>>(s)?,
                Val::Date(d) => out.push_bind_param::<Date, NaiveDate>(d)?,
                Val::Int(i) => out.push_bind_param::<BigInt, i64>(i)?,
                Val::Bool(b) => out.push_bind_param::<Bool, bool>(b)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Raw connections

/// A dedicated connection of the floors (not from the library's pool).
pub enum RawConn {
    /// SQLite with the library's pragmas.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteConnection),
    /// PostgreSQL on the store's schema.
    #[cfg(feature = "postgres")]
    Pg(PgConnection),
}

/// A borrowed connection of either backend (own, or checked out of a [`RawPool`]).
pub enum RawRef<'c> {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Pg(&'c mut PgConnection),
}

/// Runs `$body` with `$c: &mut <concrete connection>` of a [`RawRef`].
macro_rules! with_raw {
    ($r:expr, |$c:ident| $body:expr) => {
        match $r {
            #[cfg(feature = "sqlite")]
            $crate::common::RawRef::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::common::RawRef::Pg($c) => $body,
        }
    };
}
pub(crate) use with_raw;

/// How each backend opens a write transaction: as the library does (`BEGIN IMMEDIATE` on SQLite).
pub trait BeginSql {
    /// The statement.
    const BEGIN: &'static str;
}
#[cfg(feature = "sqlite")]
impl BeginSql for SqliteConnection {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
}
#[cfg(feature = "postgres")]
impl BeginSql for PgConnection {
    const BEGIN: &'static str = "BEGIN";
}

/// Runs `f` between `BEGIN [IMMEDIATE]` and `COMMIT` (`ROLLBACK` on error).
pub fn in_tx<C, T>(c: &mut C, f: impl FnOnce(&mut C) -> QueryResult<T>) -> QueryResult<T>
where
    C: SimpleConnection + BeginSql,
{
    c.batch_execute(C::BEGIN)?;
    match f(c) {
        Ok(v) => {
            c.batch_execute("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

impl RawConn {
    /// A new connection to the store's database, with the library's SQLite pragmas.
    pub fn open(t: &TestStore) -> Self {
        Self::open_with(t, SQLITE_PRAGMAS)
    }

    /// Like [`RawConn::open`], with `sqlite_pragmas` instead of the library's defaults.
    pub fn open_with(t: &TestStore, sqlite_pragmas: &str) -> Self {
        use diesel::Connection;
        match t.backend() {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let mut c = SqliteConnection::establish(&t.url).expect("open raw sqlite");
                c.batch_execute(sqlite_pragmas).expect("sqlite pragmas");
                Self::Sqlite(c)
            }
            #[cfg(feature = "postgres")]
            "postgres" => Self::Pg(PgConnection::establish(&t.url).expect("open raw postgres")),
            other => panic!("backend {other} not compiled in"),
        }
    }

    /// Borrows it.
    pub fn as_ref(&mut self) -> RawRef<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(c) => RawRef::Sqlite(c),
            #[cfg(feature = "postgres")]
            Self::Pg(c) => RawRef::Pg(c),
        }
    }
}

#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct Pragmas;

#[cfg(feature = "sqlite")]
impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// An r2d2 pool built like the library's (size 8, `min_idle` 1, r2d2 defaults otherwise, which
/// include `test_on_check_out`: a `SELECT 1` on every checkout).
pub enum RawPool {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::r2d2::Pool<diesel::r2d2::ConnectionManager<SqliteConnection>>),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Pg(diesel::r2d2::Pool<diesel::r2d2::ConnectionManager<PgConnection>>),
}

impl RawPool {
    /// The pool on the store's database.
    pub fn open(t: &TestStore) -> Self {
        use diesel::r2d2::{ConnectionManager, Pool};
        match t.backend() {
            #[cfg(feature = "sqlite")]
            "sqlite" => Self::Sqlite(
                Pool::builder()
                    .max_size(8)
                    .min_idle(Some(1))
                    .connection_customizer(Box::new(Pragmas))
                    .build(ConnectionManager::new(t.url.clone()))
                    .expect("sqlite pool"),
            ),
            #[cfg(feature = "postgres")]
            "postgres" => Self::Pg(
                Pool::builder()
                    .max_size(8)
                    .min_idle(Some(1))
                    .build(ConnectionManager::new(t.url.clone()))
                    .expect("postgres pool"),
            ),
            other => panic!("backend {other} not compiled in"),
        }
    }

    /// Checks a connection out and runs `f` on it.
    pub fn with<T>(&self, f: impl FnOnce(RawRef<'_>) -> T) -> T {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => f(RawRef::Sqlite(&mut p.get().expect("checkout"))),
            #[cfg(feature = "postgres")]
            Self::Pg(p) => f(RawRef::Pg(&mut p.get().expect("checkout"))),
        }
    }
}

/// Runs `work(thread, i)` for `i in 0..per_thread` on each of `threads` threads, all released at
/// once; returns the wall time from the release until the last thread finished.
pub fn run_parallel(
    threads: usize,
    per_thread: u64,
    work: &(dyn Fn(usize, u64) + Sync),
) -> Duration {
    let barrier = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..per_thread {
                        work(t, i);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = std::time::Instant::now();
        for h in handles {
            h.join().expect("writer thread");
        }
        start.elapsed()
    })
}

/// Twelve model ids and their providers (the Python baseline's model count).
pub const MODELS: [(&str, &str); 12] = [
    ("anthropic/claude-sonnet-4", "anthropic"),
    ("anthropic/claude-opus-4", "anthropic"),
    ("anthropic/claude-haiku-4", "anthropic"),
    ("openai/gpt-4o", "openai"),
    ("openai/gpt-4o-mini", "openai"),
    ("openai/o3", "openai"),
    ("google/gemini-2.5-pro", "google"),
    ("google/gemini-2.5-flash", "google"),
    ("meta-llama/llama-4-maverick", "meta-llama"),
    ("mistralai/mistral-large", "mistralai"),
    ("deepseek/deepseek-r1", "deepseek"),
    ("x-ai/grok-4", "x-ai"),
];

/// Creates an active client without a monthly limit (markup 1.3, Europe/Warsaw); returns its id.
pub fn create_client(store: &orgusage::Store, name: &str) -> String {
    let key = format!("sk-or-v1-bench-{name}-0123456789");
    store
        .clients()
        .create_client(
            &orgusage::ClientOrganizationForm::new(name),
            &key.as_str().into(),
            None,
        )
        .expect("create bench client")
        .id
}

/// The client-local "today" of the test clock (Europe/Warsaw) and the clock's Unix seconds.
pub fn today_and_now(t: &TestStore) -> (NaiveDate, i64) {
    use orgusage::clock::Clock;
    let now = t.clock.now();
    let tz = orgusage::timezone::parse_timezone("Europe/Warsaw").expect("zone");
    (orgusage::timezone::local_date_at(tz, now), now.timestamp())
}
