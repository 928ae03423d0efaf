//! Administrative helpers outside the pool (test databases, tooling).

use orgusage_domain::{DatabaseErrorKind, Error, Result};

/// Runs `sql` (one or more statements) on a fresh PostgreSQL connection to `url`.
#[cfg(feature = "postgres")]
pub fn pg_batch_execute(url: &str, sql: &str) -> Result<()> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::PgConnection::establish(url)
        .map_err(|e| Error::database(DatabaseErrorKind::Connection, e))?;
    conn.batch_execute(sql)
        .map_err(|e| Error::database(DatabaseErrorKind::Query, e))
}

/// Without the `postgres` feature there is no PostgreSQL to talk to.
#[cfg(not(feature = "postgres"))]
pub fn pg_batch_execute(_url: &str, _sql: &str) -> Result<()> {
    Err(Error::database(
        DatabaseErrorKind::Configuration,
        "orgusage was built without the `postgres` feature",
    ))
}

/// Runs raw SQL statements on a pooled connection of `db` (tests and tooling; not for
/// application writes, which must go through the repositories).
pub fn batch_execute(db: &crate::Database, sql: &str) -> Result<()> {
    use diesel::connection::SimpleConnection;
    crate::with_conn!(db, |conn| Ok(conn.batch_execute(sql)?))
}

/// Runs `f` while one pooled connection of `db` is checked out and left idle, e.g. to test
/// what callers get when the pool is exhausted.
pub fn while_holding_connection<T>(db: &crate::Database, f: impl FnOnce() -> T) -> Result<T> {
    use crate::conn::{PoolKind, checkout};
    match db.pool() {
        #[cfg(feature = "sqlite")]
        PoolKind::Sqlite(pool) => {
            let _held = checkout(pool)?;
            Ok(f())
        }
        #[cfg(feature = "postgres")]
        PoolKind::Postgres(pool) => {
            let _held = checkout(pool)?;
            Ok(f())
        }
    }
}
