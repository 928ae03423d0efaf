//! Connections: backend selection from the URL, r2d2 pools, SQLite pragmas, embedded migrations,
//! and the backend seam: the two crate-private macros through which every repository reaches a
//! concrete diesel connection.
//!
//! Repositories are written once. `with_conn!` (a read, or anything outside a transaction) and
//! `write_tx!` (one write transaction) run the same body once per compiled-in backend, behind
//! one `match` on the pool, with `conn` bound to that backend's connection type. Anything the
//! body shares between repositories is an ordinary function generic over the connection (see
//! `repo::usage::apply_increment`), so it is type-checked once. Macros remain only here,
//! because a closure cannot be generic over the connection type it receives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

#[cfg(feature = "postgres")]
use diesel::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::SqliteConnection;
#[cfg(feature = "postgres")]
use diesel::r2d2::PooledConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use orgusage_domain::{DatabaseErrorKind, Error, Result};

use crate::error::TxError;

mod checkout;
pub(crate) use checkout::checkout;
#[cfg(feature = "postgres")]
use checkout::checkout_checked_if_idle;
#[cfg(feature = "postgres")]
pub(crate) use checkout::discard_if_dead;
use checkout::pool_error;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("orgusage-db needs at least one backend feature: `sqlite` or `postgres`");

/// Embedded SQLite migrations, applied by [`Database::connect`].
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Embedded PostgreSQL migrations, applied by [`Database::connect`].
#[cfg(feature = "postgres")]
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// PostgreSQL, default checkout rule: a pooled connection unused for this long is pinged before
/// it is handed out (see [`DbConfig::test_on_checkout`]). Short enough that a connection idle
/// across a server restart (which takes seconds) is checked, long enough that a busy instance's
/// connections never are.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(2);

/// Advisory-lock key that serialises migrations of many instances starting at once on PostgreSQL.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK_KEY: i64 = 0x6f72_6775_7361_6765; // "orgusage"

/// The database engine behind a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (bundled), the embedded default.
    Sqlite,
    /// PostgreSQL, the multi-instance production backend.
    Postgres,
}

impl Backend {
    /// Picks the backend from a URL scheme: `postgres://` / `postgresql://` is PostgreSQL;
    /// `sqlite://`, `sqlite:`, `file:`, `:memory:` or a plain path is SQLite.
    pub fn from_url(url: &str) -> Result<Self> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
            Err(Error::database(
                DatabaseErrorKind::Configuration,
                "the MariaDB/MySQL backend is not implemented yet",
            ))
        } else if url.trim().is_empty() {
            Err(Error::invalid("database_url", "must not be empty"))
        } else {
            Ok(Self::Sqlite)
        }
    }

    /// A short lower-case name (`sqlite`, `postgres`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// SQLite's `synchronous` level, which decides when an acknowledged commit is on stable
/// storage. The database runs in WAL mode; these are the WAL-mode promises.
///
/// ```
/// use orgusage_db::conn::SqliteSynchronous;
/// assert_eq!(SqliteSynchronous::default(), SqliteSynchronous::Full);
/// assert_eq!(SqliteSynchronous::Normal.pragma(), "NORMAL");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteSynchronous {
    /// `NORMAL`: the WAL is synced only at checkpoints. A commit survives a crash of the
    /// process (its pages are in the operating system's cache), but a power loss or an
    /// operating-system crash may roll back the last acknowledged transactions. The database
    /// itself is never corrupted.
    Normal,
    /// `FULL` (the default): the WAL is synced at every commit, so an acknowledged commit
    /// survives a power loss too (on storage that honours `fsync`).
    #[default]
    Full,
}

impl SqliteSynchronous {
    /// The value of `PRAGMA synchronous`.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Database URL; the scheme picks the backend (see [`Backend::from_url`]).
    pub url: String,
    /// Pool size; default 8 for SQLite files, 1 for SQLite `:memory:`,
    /// [`DEFAULT_POSTGRES_POOL`](crate::budget::DEFAULT_POSTGRES_POOL) (4) for PostgreSQL.
    /// Pools open one connection up front and grow on demand up to this size.
    pub max_connections: Option<u32>,
    /// How long an operation waits for a free pooled connection (default 30 s) before it fails
    /// with `DatabaseErrorKind::PoolTimeout` (all connections busy) or `Connection` (the
    /// server could not be reached or refused).
    pub connection_timeout: Duration,
    /// Pooled connections idle this long are closed, so a pool shrinks back after a burst
    /// (default 60 s; `None` keeps them). One connection always stays open. Ignored, like
    /// `max_lifetime`, for in-memory SQLite, whose connection is the database.
    pub idle_timeout: Option<Duration>,
    /// Pooled connections are replaced after this long (default 30 min; `None`: never).
    pub max_lifetime: Option<Duration>,
    /// PostgreSQL: how many instances (processes with a store) share the server. At connect
    /// the server's `max_connections` is checked against `expected_instances × max_connections`
    /// and a `tracing` warning is emitted when it cannot hold them (see [`crate::budget`]).
    /// Default [`DEFAULT_EXPECTED_INSTANCES`](crate::budget::DEFAULT_EXPECTED_INSTANCES) (20).
    pub expected_instances: u32,
    /// PostgreSQL: the URL points at PgBouncer in transaction pooling mode. Prepared-statement
    /// caching is then off (every statement is sent unnamed, parse and execute in one round
    /// trip), and the connection-budget check is skipped because PgBouncer's own pool, not
    /// ours, bounds the server connections. Default off.
    pub pgbouncer: bool,
    /// SQLite durability of an acknowledged commit (default [`SqliteSynchronous::Full`]).
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite `busy_timeout`: how long a writer waits for another process's write lock
    /// (default 30 s).
    pub sqlite_busy_timeout: Duration,
    /// Ping each connection (`SELECT 1`) when it is taken from the pool: `Some(true)` every
    /// time, `Some(false)` never. Default (`None`): never for SQLite (a file connection cannot
    /// go stale); for PostgreSQL only a connection that sat unused in the pool for at least
    /// [`IDLE_CHECK_AFTER`] or was never handed out, because diesel cannot otherwise tell that a
    /// pooled connection died with a server restart, while a connection used a moment ago is
    /// almost surely alive. A busy instance so pays no ping (it cost one round trip per
    /// operation, about 80-150 µs measured here); a connection that dies while in use still
    /// fails its call once with a transient `Connection` error and is then dropped.
    pub test_on_checkout: Option<bool>,
}

impl DbConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: None,
            connection_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            expected_instances: crate::budget::DEFAULT_EXPECTED_INSTANCES,
            pgbouncer: false,
            sqlite_synchronous: SqliteSynchronous::default(),
            sqlite_busy_timeout: Duration::from_secs(30),
            test_on_checkout: None,
        }
    }

    /// Whether the URL names an in-memory SQLite database (`:memory:`, `file::memory:…` or
    /// `mode=memory`), whose data lives and dies with its connections and whose commits never
    /// reach a disk.
    pub fn is_sqlite_in_memory(&self) -> bool {
        let path = sqlite_path(&self.url);
        path == ":memory:" || path.starts_with("file::memory:") || path.contains("mode=memory")
    }
}

/// The pool of the backend in use.
#[derive(Clone)]
pub(crate) enum PoolKind {
    /// SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    /// PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

/// A connected, migrated database: a pool plus the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: PoolKind,
    /// PostgreSQL's default checkout rule: ping connections idle at least this long.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    idle_check: Option<Duration>,
    /// SQLite only: writers of this process queue here before `BEGIN IMMEDIATE`. SQLite's busy
    /// handler polls with sleeps and is unfair, so under many writer threads one of them could
    /// starve past `busy_timeout`; a mutex hands the lock over promptly. Other processes are
    /// still arbitrated by `busy_timeout`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    write_gate: Option<Arc<Mutex<()>>>,
}

/// One gate per SQLite database file in this process, shared by every pool on that file.
fn sqlite_write_gate(path: &str) -> Arc<Mutex<()>> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string());
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    gates.entry(key).or_default().clone()
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so only the backend is shown.
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish()
    }
}

#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u64,
    synchronous: SqliteSynchronous,
}

#[cfg(feature = "sqlite")]
impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(
        &self,
        conn: &mut SqliteConnection,
    ) -> std::result::Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        // busy_timeout first, so that switching to WAL waits for other processes instead of failing.
        let sql = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            self.busy_timeout_ms,
            self.synchronous.pragma()
        );
        conn.batch_execute(&sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Per-connection setup on PostgreSQL.
#[cfg(feature = "postgres")]
#[derive(Debug)]
struct PgSetup {
    pgbouncer: bool,
}

#[cfg(feature = "postgres")]
impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for PgSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        use diesel::Connection;
        if self.pgbouncer {
            // Transaction pooling gives each transaction whichever server connection is free,
            // so a statement name prepared through one is unknown to the next, or names another
            // statement there (seen: "bind message supplies 2 parameters, but prepared
            // statement __diesel_stmt_5 requires 11"). With the cache
            // off diesel sends every statement unnamed (PQsendQueryParams: parse, bind and
            // execute in one round trip), which PgBouncer 1.18 handles in transaction mode.
            conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        }
        Ok(())
    }
}

impl Database {
    /// Connects, checks the connection, refuses a database that holds the original mAI tables
    /// ([`Error::ForeignSchema`], nothing written), applies pending embedded migrations and, on
    /// PostgreSQL, checks the connection budget (see [`crate::budget`]).
    pub fn connect(config: &DbConfig) -> Result<Self> {
        let db = Self::connect_without_migrations(config)?;
        // Before any migration: never create, alter or write over the original mAI tables.
        crate::detect::refuse_original_schema(&db)?;
        db.run_pending_migrations()?;
        db.check_connection_budget(config)?;
        Ok(db)
    }

    /// Warns through `tracing` when `expected_instances` pools of this size cannot fit in the
    /// server's connections; PostgreSQL only, and skipped behind PgBouncer.
    fn check_connection_budget(&self, config: &DbConfig) -> Result<()> {
        match &self.pool {
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) if !config.pgbouncer => {
                let mut conn = checkout(pool)?;
                let server = crate::budget::server_limits(&mut conn)
                    .map_err(|e| Error::database(DatabaseErrorKind::Query, e))?;
                let budget = crate::budget::connection_budget(
                    config.expected_instances,
                    pool.max_size(),
                    server,
                );
                crate::budget::report(&budget, &server);
                Ok(())
            }
            // SQLite has no server to share; behind PgBouncer its own pool bounds the server.
            _ => {
                let _ = config; // unused when built without `postgres`
                Ok(())
            }
        }
    }

    /// Connects without touching the schema (for migration tests and tools).
    pub fn connect_without_migrations(config: &DbConfig) -> Result<Self> {
        let backend = Backend::from_url(&config.url)?;
        let _span = tracing::info_span!("orgusage.db.connect", backend = backend.name()).entered();
        let (pool, write_gate) = match backend {
            Backend::Sqlite => (
                Self::sqlite_pool(config)?,
                Some(sqlite_write_gate(sqlite_path(&config.url))),
            ),
            Backend::Postgres => (Self::postgres_pool(config)?, None),
        };
        let idle_check = (backend == Backend::Postgres && config.test_on_checkout.is_none())
            .then_some(IDLE_CHECK_AFTER);
        Ok(Self {
            pool,
            idle_check,
            write_gate,
        })
    }

    #[cfg(feature = "sqlite")]
    fn sqlite_pool(config: &DbConfig) -> Result<PoolKind> {
        let path = sqlite_path(&config.url);
        let in_memory = config.is_sqlite_in_memory();
        let size = config
            .max_connections
            .unwrap_or(if in_memory { 1 } else { 8 });
        if in_memory && size != 1 && !path.contains("cache=shared") {
            return Err(Error::invalid(
                "max_connections",
                "a private :memory: SQLite database needs a pool of 1",
            ));
        }
        let manager = ConnectionManager::<SqliteConnection>::new(path);
        let mut builder = pool_builder(config, size);
        if in_memory {
            // An in-memory database lives and dies with its connections: a connection the pool
            // retired for idleness or age would take every row with it, and its replacement
            // would open an empty database. So these pools never retire connections.
            builder = builder.idle_timeout(None).max_lifetime(None);
        }
        let pool = builder
            .test_on_check_out(config.test_on_checkout.unwrap_or(false))
            .connection_customizer(Box::new(SqlitePragmas {
                busy_timeout_ms: u64::try_from(config.sqlite_busy_timeout.as_millis())
                    .unwrap_or(u64::MAX),
                synchronous: config.sqlite_synchronous,
            }))
            .build(manager)
            .map_err(|e| pool_error(size, config.connection_timeout, &e))?;
        Ok(PoolKind::Sqlite(pool))
    }

    #[cfg(not(feature = "sqlite"))]
    fn sqlite_pool(_config: &DbConfig) -> Result<PoolKind> {
        Err(Error::database(
            DatabaseErrorKind::Configuration,
            "orgusage was built without the `sqlite` feature",
        ))
    }

    #[cfg(feature = "postgres")]
    fn postgres_pool(config: &DbConfig) -> Result<PoolKind> {
        let manager = ConnectionManager::<PgConnection>::new(config.url.clone());
        let size = config
            .max_connections
            .unwrap_or(crate::budget::DEFAULT_POSTGRES_POOL);
        // build() waits up to connection_timeout for the first connection and retries a
        // refused one (with backoff) meanwhile, so a server that is saturated for a moment
        // does not fail the open; one that stays saturated is a typed `Connection` error.
        let pool = pool_builder(config, size)
            // By default the idle rule of `Database::checkout_pg` decides, not r2d2.
            .test_on_check_out(config.test_on_checkout.unwrap_or(false))
            .connection_customizer(Box::new(PgSetup {
                pgbouncer: config.pgbouncer,
            }))
            .build(manager)
            .map_err(|e| pool_error(size, config.connection_timeout, &e))?;
        Ok(PoolKind::Postgres(pool))
    }

    #[cfg(not(feature = "postgres"))]
    fn postgres_pool(_config: &DbConfig) -> Result<PoolKind> {
        Err(Error::database(
            DatabaseErrorKind::Configuration,
            "orgusage was built without the `postgres` feature",
        ))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(_) => Backend::Postgres,
        }
    }

    /// Waits for this process's turn to write (SQLite); a no-op on PostgreSQL.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        self.write_gate
            .as_ref()
            .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes a PostgreSQL connection for an operation, applying the default idle rule of
    /// [`DbConfig::test_on_checkout`].
    #[cfg(feature = "postgres")]
    pub(crate) fn checkout_pg(
        &self,
        pool: &Pool<ConnectionManager<PgConnection>>,
    ) -> Result<PooledConnection<ConnectionManager<PgConnection>>> {
        match self.idle_check {
            Some(idle) => checkout_checked_if_idle(pool, idle),
            None => checkout(pool),
        }
    }

    /// The pool, for the dispatch macros.
    pub(crate) fn pool(&self) -> &PoolKind {
        &self.pool
    }

    /// Applies every pending embedded migration; safe when many instances start at once.
    pub fn run_pending_migrations(&self) -> Result<usize> {
        let _span =
            tracing::info_span!("orgusage.db.migrate", backend = self.backend().name()).entered();
        let applied = match &self.pool {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let _turn = self.write_turn();
                let mut conn = checkout(pool)?;
                // BEGIN IMMEDIATE takes SQLite's write lock, so a second process waits and then
                // finds nothing pending; diesel turns each migration's own transaction into a savepoint.
                conn.immediate_transaction(|c| {
                    c.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|v| v.len())
                        .map_err(TxError::migration)
                })
                .map_err(Error::from)?
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                use diesel::{Connection, RunQueryDsl};
                let mut conn = checkout(pool)?;
                // One transaction holding a transaction-level advisory lock: instances starting
                // at once queue on the lock and then find nothing pending. Nothing is session
                // state (a session lock would be taken and released on different server
                // connections behind PgBouncer), and diesel turns each migration's own
                // transaction into a savepoint, so a failed migration rolls back all of them.
                conn.transaction(|c| {
                    diesel::sql_query(format!(
                        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                    ))
                    .execute(c)?;
                    c.run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map(|v| v.len())
                        .map_err(TxError::migration)
                })
                .map_err(Error::from)?
            }
        };
        if applied > 0 {
            tracing::info!(applied, "applied orgusage migrations");
        }
        Ok(applied)
    }

    /// Reverts every applied migration (newest first); for migration tests only.
    pub fn revert_all_migrations(&self) -> Result<usize> {
        let mig = |e| Error::database(DatabaseErrorKind::Migration, e);
        match &self.pool {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => checkout(pool)?
                .revert_all_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len())
                .map_err(mig),
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => checkout(pool)?
                .revert_all_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len())
                .map_err(mig),
        }
    }
}

/// Strips the optional `sqlite://` / `sqlite:` prefix that diesel does not understand.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// The pool settings both backends share.
fn pool_builder<C>(config: &DbConfig, size: u32) -> diesel::r2d2::Builder<ConnectionManager<C>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    // One connection stays open (a warm start for the next operation); the rest are opened on
    // demand and closed again after `idle_timeout`, so idle instances hold one server slot.
    Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .idle_timeout(config.idle_timeout)
        .max_lifetime(config.max_lifetime)
        .connection_timeout(config.connection_timeout)
}

/// Runs `$body` with `$conn: &mut <concrete connection>` for whichever backend `$db` uses.
/// The body returns `Result<T, TxError>`; the macro yields `orgusage_domain::Result<T>`.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match $db.pool() {
            #[cfg(feature = "sqlite")]
            $crate::conn::PoolKind::Sqlite(pool) => {
                let mut guard = $crate::conn::checkout(pool)?;
                let $conn = &mut *guard;
                let r: ::std::result::Result<_, $crate::error::TxError> = (|| $body)();
                r.map_err(::orgusage_domain::Error::from)
            }
            #[cfg(feature = "postgres")]
            $crate::conn::PoolKind::Postgres(pool) => {
                let mut guard = $db.checkout_pg(pool)?;
                let $conn = &mut *guard;
                let r: ::std::result::Result<_, $crate::error::TxError> = (|| $body)();
                let r = r.map_err(::orgusage_domain::Error::from);
                $crate::conn::discard_if_dead(&mut guard, &r);
                r
            }
        }
    }};
}

/// Runs `$body` in one write transaction: `BEGIN IMMEDIATE` on SQLite (so a transaction that reads
/// before it writes cannot fail to upgrade its lock), a plain transaction on PostgreSQL.
///
/// The macro remembers whether the body finished: a connection lost after that was lost during
/// `COMMIT`, and the error says the outcome is unknown ([`crate::error::tx_result`]).
macro_rules! write_tx {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let mut body_ok = false;
        match $db.pool() {
            #[cfg(feature = "sqlite")]
            $crate::conn::PoolKind::Sqlite(pool) => {
                let _turn = $db.write_turn();
                let mut guard = $crate::conn::checkout(pool)?;
                let result = guard.immediate_transaction(
                    |$conn| -> ::std::result::Result<_, $crate::error::TxError> {
                        let r: ::std::result::Result<_, $crate::error::TxError> = (|| $body)();
                        body_ok = r.is_ok();
                        r
                    },
                );
                $crate::error::tx_result(result, body_ok)
            }
            #[cfg(feature = "postgres")]
            $crate::conn::PoolKind::Postgres(pool) => {
                use ::diesel::Connection as _;
                let mut guard = $db.checkout_pg(pool)?;
                let result = guard.transaction(
                    |$conn| -> ::std::result::Result<_, $crate::error::TxError> {
                        let r: ::std::result::Result<_, $crate::error::TxError> = (|| $body)();
                        body_ok = r.is_ok();
                        r
                    },
                );
                let result = $crate::error::tx_result(result, body_ok);
                $crate::conn::discard_if_dead(&mut guard, &result);
                result
            }
        }
    }};
}

pub(crate) use {with_conn, write_tx};

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    fn lifetimes(url: &str) -> (Option<Duration>, Option<Duration>) {
        let db = Database::connect(&DbConfig::new(url)).expect("connect");
        match db.pool() {
            PoolKind::Sqlite(pool) => (pool.idle_timeout(), pool.max_lifetime()),
            #[allow(unreachable_patterns)]
            _ => unreachable!("a SQLite URL"),
        }
    }

    #[test]
    fn in_memory_urls_are_recognised_in_every_form() {
        for url in [
            ":memory:",
            "sqlite://:memory:",
            "file::memory:?cache=shared",
            "file:db?mode=memory&cache=shared",
        ] {
            assert!(DbConfig::new(url).is_sqlite_in_memory(), "{url}");
        }
        for url in [
            "orgusage.db",
            "sqlite:///tmp/memory.db",
            "postgres://localhost/test",
        ] {
            assert!(!DbConfig::new(url).is_sqlite_in_memory(), "{url}");
        }
    }

    #[test]
    fn in_memory_pools_never_retire_their_connection() {
        // Retiring it would silently swap the database for an empty one.
        assert_eq!(lifetimes(":memory:"), (None, None));
    }

    #[test]
    fn file_pools_shrink_when_idle() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        assert_eq!(
            lifetimes(&url),
            (
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(1800))
            )
        );
    }
}
