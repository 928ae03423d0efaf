//! The target side: orgusage's tables written in batches, each batch one transaction that also
//! records its progress in `orgusage_import_state`, so a killed import resumes after the last
//! committed batch and never writes a row twice.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use orgusage_db::Database;
use orgusage_db::bulk::{self, Rows, Then, Value};

use crate::error::Result;

pub(crate) use orgusage_db::bulk::{
    NewCleanup, NewClient, NewDaily, NewLedger, NewMapping, NewModelDay, NewSettings, NewUserDay,
};

/// The importer's own bookkeeping table in the target. It is kept after the import as the
/// record of what was imported with which options.
pub(crate) const STATE_TABLE: &str = "orgusage_import_state";

/// Everything one transaction writes: rows of any table plus state entries.
#[derive(Default)]
pub(crate) struct Batch {
    /// Rows of orgusage's tables.
    pub rows: Rows,
    /// Statements run after the inserts (the `unique_users` recount).
    pub statements: Vec<String>,
    /// `orgusage_import_state` entries to upsert.
    pub state: Vec<(String, String)>,
}

/// Writes `batch` in one transaction (`BEGIN IMMEDIATE` on SQLite): its rows, its statements,
/// then its state entries, so progress is recorded exactly when the rows are.
pub(crate) fn write(db: &Database, batch: &Batch, now: i64) -> Result<()> {
    let upsert = format!(
        "INSERT INTO {STATE_TABLE} (key, value, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
    );
    let statements = batch.statements.iter().map(|s| Then {
        sql: s.clone(),
        binds: Vec::new(),
    });
    let state = batch.state.iter().map(|(k, v)| Then {
        sql: upsert.clone(),
        binds: vec![Value::Text(k), Value::Text(v), Value::Int(now)],
    });
    let then: Vec<Then<'_>> = statements.chain(state).collect();
    bulk::write(db, &batch.rows, &then)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Entry {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// Creates the state table if needed and reads it.
pub(crate) fn load(db: &Database) -> Result<BTreeMap<String, String>> {
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key TEXT PRIMARY KEY NOT NULL, \
         value TEXT NOT NULL, updated_at BIGINT NOT NULL)"
    );
    orgusage_db::admin::batch_execute(db, &ddl)?;
    let sql = format!("SELECT key, value FROM {STATE_TABLE}");
    let rows: Vec<Entry> = bulk::query(db, &sql, &[])?;
    Ok(rows.into_iter().map(|e| (e.key, e.value)).collect())
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs a `SELECT CAST(… AS BIGINT) AS n` on the target.
pub(crate) fn count(db: &Database, sql: &str) -> Result<i64> {
    let rows: Vec<N> = bulk::query(db, sql, &[])?;
    Ok(rows.first().map_or(0, |r| r.n))
}
