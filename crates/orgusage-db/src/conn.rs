//! Connections: backend selection from the URL, r2d2 pools, SQLite pragmas, embedded migrations,
//! and the two macros through which every repository reaches a concrete diesel connection.
//!
//! Repositories are written once; [`with_conn!`](crate::with_conn) and
//! [`write_tx!`](crate::write_tx) expand the same diesel DSL for each compiled-in backend, so
//! backend-specific upsert syntax stays exact and the backend choice sits behind one `match`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

#[cfg(feature = "postgres")]
use diesel::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::SqliteConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use orgusage_domain::{DatabaseErrorKind, Error, Result};

use crate::error::TxError;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("orgusage-db needs at least one backend feature: `sqlite` or `postgres`");

/// Embedded SQLite migrations, applied by [`Database::connect`].
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Embedded PostgreSQL migrations, applied by [`Database::connect`].
#[cfg(feature = "postgres")]
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Database URL; the scheme picks the backend (see [`Backend::from_url`]).
    pub url: String,
    /// Pool size; default 8 for SQLite files, 1 for SQLite `:memory:`, 10 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long to wait for a free pooled connection (default 30 s).
    pub connection_timeout: Duration,
    /// SQLite `busy_timeout`: how long a writer waits for another process's write lock
    /// (default 30 s).
    pub sqlite_busy_timeout: Duration,
    /// Ping each connection (`SELECT 1`) when it is taken from the pool. Default: off for
    /// SQLite (a file connection cannot go stale), on for PostgreSQL, because diesel cannot
    /// otherwise tell that a pooled connection died with a server restart. The ping costs one
    /// round trip per operation (about 80-150 µs measured here); turn it off only when the
    /// pool is recycled some other way.
    pub test_on_checkout: Option<bool>,
}

impl DbConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: None,
            connection_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(30),
            test_on_checkout: None,
        }
    }
}

/// The pool of the backend in use.
#[derive(Clone)]
#[doc(hidden)]
pub enum PoolKind {
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
    /// SQLite only: writers of this process queue here before `BEGIN IMMEDIATE`. SQLite's busy
    /// handler polls with sleeps and is unfair, so under many writer threads one of them could
    /// starve past `busy_timeout`; a mutex hands the lock over promptly. Other processes are
    /// still arbitrated by `busy_timeout`.
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
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            self.busy_timeout_ms
        );
        conn.batch_execute(&sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Connects, checks the connection, refuses a database that holds the original mAI tables
    /// ([`Error::ForeignSchema`], nothing written) and applies pending embedded migrations.
    pub fn connect(config: &DbConfig) -> Result<Self> {
        let db = Self::connect_without_migrations(config)?;
        // Before any migration: never create, alter or write over the original mAI tables.
        crate::detect::refuse_original_schema(&db)?;
        db.run_pending_migrations()?;
        Ok(db)
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
        Ok(Self { pool, write_gate })
    }

    #[cfg(feature = "sqlite")]
    fn sqlite_pool(config: &DbConfig) -> Result<PoolKind> {
        let path = sqlite_path(&config.url);
        let in_memory = path == ":memory:" || path.contains("mode=memory");
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
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .test_on_check_out(config.test_on_checkout.unwrap_or(false))
            .connection_timeout(config.connection_timeout)
            .connection_customizer(Box::new(SqlitePragmas {
                busy_timeout_ms: u64::try_from(config.sqlite_busy_timeout.as_millis())
                    .unwrap_or(u64::MAX),
            }))
            .build(manager)
            .map_err(|e| Error::database(DatabaseErrorKind::Connection, e))?;
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
        let pool = Pool::builder()
            .max_size(config.max_connections.unwrap_or(10))
            .min_idle(Some(1))
            .test_on_check_out(config.test_on_checkout.unwrap_or(true))
            .connection_timeout(config.connection_timeout)
            .build(manager)
            .map_err(|e| Error::database(DatabaseErrorKind::Connection, e))?;
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
    #[doc(hidden)]
    pub fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        self.write_gate
            .as_ref()
            .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()))
    }

    #[doc(hidden)]
    pub fn pool(&self) -> &PoolKind {
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
                use diesel::RunQueryDsl;
                let mut conn = checkout(pool)?;
                let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})");
                diesel::sql_query(lock)
                    .execute(&mut *conn)
                    .map_err(TxError::from)
                    .map_err(Error::from)?;
                let result = conn
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len());
                let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})");
                diesel::sql_query(unlock)
                    .execute(&mut *conn)
                    .map_err(TxError::from)
                    .map_err(Error::from)?;
                result.map_err(|e| Error::database(DatabaseErrorKind::Migration, e))?
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

/// Takes a connection from a pool, mapping a pool timeout to a connection error.
#[doc(hidden)]
pub fn checkout<C>(
    pool: &Pool<ConnectionManager<C>>,
) -> Result<PooledConnection<ConnectionManager<C>>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    pool.get()
        .map_err(|e| Error::database(DatabaseErrorKind::Connection, e))
}

/// Runs `$body` with `$conn: &mut <concrete connection>` for whichever backend `$db` uses.
/// The body returns `Result<T, TxError>`; the macro yields `orgusage_domain::Result<T>`.
#[macro_export]
#[doc(hidden)]
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
                let mut guard = $crate::conn::checkout(pool)?;
                let $conn = &mut *guard;
                let r: ::std::result::Result<_, $crate::error::TxError> = (|| $body)();
                r.map_err(::orgusage_domain::Error::from)
            }
        }
    }};
}

/// Runs `$body` in one write transaction: `BEGIN IMMEDIATE` on SQLite (so a transaction that reads
/// before it writes cannot fail to upgrade its lock), a plain transaction on PostgreSQL.
#[macro_export]
#[doc(hidden)]
macro_rules! write_tx {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match $db.pool() {
            #[cfg(feature = "sqlite")]
            $crate::conn::PoolKind::Sqlite(pool) => {
                let _turn = $db.write_turn();
                let mut guard = $crate::conn::checkout(pool)?;
                guard
                    .immediate_transaction(
                        |$conn| -> ::std::result::Result<_, $crate::error::TxError> { $body },
                    )
                    .map_err(::orgusage_domain::Error::from)
            }
            #[cfg(feature = "postgres")]
            $crate::conn::PoolKind::Postgres(pool) => {
                use ::diesel::Connection as _;
                let mut guard = $crate::conn::checkout(pool)?;
                guard
                    .transaction(
                        |$conn| -> ::std::result::Result<_, $crate::error::TxError> { $body },
                    )
                    .map_err(::orgusage_domain::Error::from)
            }
        }
    }};
}
