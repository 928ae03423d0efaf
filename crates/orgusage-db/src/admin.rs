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

/// One client row's stored key columns, exactly as they are in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClientKey {
    /// The client id.
    pub id: String,
    /// `openrouter_api_key` as stored: plaintext, or `enc:v1:<key-id>:<base64>`.
    pub openrouter_api_key: String,
    /// `openrouter_api_key_lookup` as stored: `None` for plaintext rows.
    pub openrouter_api_key_lookup: Option<String>,
}

/// The stored key columns of every client, by id (audits, e.g. "is anything still plaintext?",
/// and tests). The values may be plaintext secrets: do not log them.
pub fn stored_client_keys(db: &crate::Database) -> Result<Vec<StoredClientKey>> {
    use crate::schema::client_organizations::dsl as co;
    use diesel::prelude::*;
    let rows: Vec<(String, String, Option<String>)> = crate::with_conn!(db, |conn| {
        Ok(co::client_organizations
            .order(co::id.asc())
            .select((
                co::id,
                co::openrouter_api_key,
                co::openrouter_api_key_lookup,
            ))
            .load(conn)?)
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, key, lookup)| StoredClientKey {
            id,
            openrouter_api_key: key,
            openrouter_api_key_lookup: lookup,
        })
        .collect())
}

/// The provisioning key column as stored (`None`: no settings row or no key).
pub fn stored_provisioning_key(db: &crate::Database) -> Result<Option<String>> {
    use crate::schema::global_settings::dsl as gs;
    use diesel::prelude::*;
    let v: Option<Option<String>> = crate::with_conn!(db, |conn| {
        Ok(gs::global_settings
            .filter(gs::id.eq(orgusage_domain::GLOBAL_SETTINGS_ID))
            .select(gs::openrouter_provisioning_key)
            .first(conn)
            .optional()?)
    })?;
    Ok(v.flatten())
}

/// True when any client key or the provisioning key is stored encrypted (one probe of the lookup
/// index plus the settings row). `Store::open` uses it to warn when such a database is opened
/// without a key ring.
pub fn encrypted_keys_present(db: &crate::Database) -> Result<bool> {
    use crate::schema::client_organizations::dsl as co;
    use diesel::prelude::*;
    let client: Option<String> = crate::with_conn!(db, |conn| {
        Ok(co::client_organizations
            .filter(co::openrouter_api_key_lookup.ge(""))
            .select(co::id)
            .first(conn)
            .optional()?)
    })?;
    if client.is_some() {
        return Ok(true);
    }
    Ok(stored_provisioning_key(db)?
        .is_some_and(|k| orgusage_crypto::StoredSecret::is_encrypted(&k)))
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
