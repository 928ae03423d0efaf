//! The target side: orgusage's tables written in batches, each batch one transaction that also
//! records its progress in `orgusage_import_state`, so a killed import resumes after the last
//! committed batch and never writes a row twice.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use orgusage_db::schema;
use orgusage_db::{Backend, Database};

use crate::error::Result;

/// The importer's own bookkeeping table in the target. It is kept after the import as the
/// record of what was imported with which options.
pub(crate) const STATE_TABLE: &str = "orgusage_import_state";

/// Rows per `INSERT` statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const INSERT_CHUNK: usize = 500;

#[derive(Insertable)]
#[diesel(table_name = schema::global_settings)]
pub(crate) struct NewSettings {
    pub id: String,
    pub openrouter_provisioning_key: Option<String>,
    pub default_markup_rate: i64,
    pub billing_currency: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::client_organizations)]
pub(crate) struct NewClient {
    pub id: String,
    pub name: String,
    pub openrouter_api_key: String,
    pub openrouter_key_hash: Option<String>,
    pub markup_rate: i64,
    pub monthly_limit: Option<i64>,
    pub billing_email: Option<String>,
    pub timezone: String,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::user_client_mapping)]
pub(crate) struct NewMapping {
    pub id: String,
    pub user_id: String,
    pub client_org_id: String,
    pub openrouter_user_id: String,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The original has no prompt/completion split: `input_tokens`/`output_tokens` stay 0 and
/// `total_tokens` keeps the original's figure.
#[derive(Insertable)]
#[diesel(table_name = schema::client_daily_usage)]
pub(crate) struct NewDaily {
    pub client_org_id: String,
    pub usage_date: NaiveDate,
    pub total_tokens: i64,
    pub total_requests: i64,
    pub raw_cost: i64,
    pub markup_cost: i64,
    pub unique_users: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::client_user_daily_usage)]
pub(crate) struct NewUserDay {
    pub client_org_id: String,
    pub user_id: String,
    pub openrouter_user_id: String,
    pub usage_date: NaiveDate,
    pub total_tokens: i64,
    pub total_requests: i64,
    pub raw_cost: i64,
    pub markup_cost: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::client_model_daily_usage)]
pub(crate) struct NewModelDay {
    pub client_org_id: String,
    pub model_name: String,
    pub usage_date: NaiveDate,
    pub total_tokens: i64,
    pub total_requests: i64,
    pub raw_cost: i64,
    pub markup_cost: i64,
    pub provider: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::processed_generations)]
pub(crate) struct NewLedger {
    pub client_org_id: String,
    pub id: String,
    pub generation_date: NaiveDate,
    pub processed_at: i64,
    pub total_cost: i64,
    pub total_tokens: i64,
}

#[derive(Insertable)]
#[diesel(table_name = schema::processed_generation_cleanup_log)]
pub(crate) struct NewCleanup {
    pub cleanup_date: NaiveDate,
    pub cutoff_date: NaiveDate,
    pub cutoff_timestamp: i64,
    pub days_retained: i64,
    pub records_before: i64,
    pub records_deleted: i64,
    pub records_remaining: i64,
    pub old_tokens_removed: i64,
    pub old_cost_removed: i64,
    pub payload_bytes_removed: i64,
    pub cleanup_duration_ms: i64,
    pub success: bool,
    pub error_message: Option<String>,
    pub created_at: i64,
}

/// Everything one transaction writes: rows of any table plus state entries.
#[derive(Default)]
pub(crate) struct Batch {
    pub settings: Vec<NewSettings>,
    pub clients: Vec<NewClient>,
    pub mappings: Vec<NewMapping>,
    pub daily: Vec<NewDaily>,
    pub users: Vec<NewUserDay>,
    pub models: Vec<NewModelDay>,
    pub ledger: Vec<NewLedger>,
    pub cleanup: Vec<NewCleanup>,
    /// Statements run after the inserts (the `unique_users` recount).
    pub statements: Vec<String>,
    /// `orgusage_import_state` entries to upsert.
    pub state: Vec<(String, String)>,
}

macro_rules! insert_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(INSERT_CHUNK) {
            diesel::insert_into($table).values(chunk).execute($conn)?;
        }
    };
}

fn upsert_sql(backend: Backend) -> String {
    let sql = format!(
        "INSERT INTO {STATE_TABLE} (key, value, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
    );
    match backend {
        Backend::Sqlite => sql,
        Backend::Postgres => crate::source::dollar_placeholders(&sql),
    }
}

/// Writes `batch` in one transaction (`BEGIN IMMEDIATE` on SQLite).
pub(crate) fn write(db: &Database, batch: &Batch, now: i64) -> Result<()> {
    use orgusage_db::schema::*;
    let upsert = upsert_sql(db.backend());
    let sqlite = db.backend() == Backend::Sqlite;
    orgusage_db::write_tx!(db, |conn| {
        if sqlite {
            // The importer's own pool only: a 64 MiB page cache instead of SQLite's 2 MiB keeps
            // the growing primary-key B-trees in memory (measured: ~1.4x faster at 1M rows).
            diesel::sql_query("PRAGMA cache_size = -65536").execute(conn)?;
        }
        insert_chunks!(conn, global_settings::table, batch.settings);
        insert_chunks!(conn, client_organizations::table, batch.clients);
        insert_chunks!(conn, user_client_mapping::table, batch.mappings);
        insert_chunks!(conn, client_daily_usage::table, batch.daily);
        insert_chunks!(conn, client_user_daily_usage::table, batch.users);
        insert_chunks!(conn, client_model_daily_usage::table, batch.models);
        insert_chunks!(conn, processed_generations::table, batch.ledger);
        insert_chunks!(conn, processed_generation_cleanup_log::table, batch.cleanup);
        for s in &batch.statements {
            diesel::sql_query(s.as_str()).execute(conn)?;
        }
        for (k, v) in &batch.state {
            diesel::sql_query(upsert.as_str())
                .bind::<Text, _>(k)
                .bind::<Text, _>(v)
                .bind::<BigInt, _>(now)
                .execute(conn)?;
        }
        Ok(())
    })?;
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
    let rows: Vec<Entry> =
        orgusage_db::with_conn!(db, |conn| Ok(diesel::sql_query(sql.as_str()).load(conn)?))?;
    Ok(rows.into_iter().map(|e| (e.key, e.value)).collect())
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs a `SELECT CAST(… AS BIGINT) AS n` on the target.
pub(crate) fn count(db: &Database, sql: &str) -> Result<i64> {
    let rows: Vec<N> = orgusage_db::with_conn!(db, |conn| Ok(diesel::sql_query(sql).load(conn)?))?;
    Ok(rows.first().map_or(0, |r| r.n))
}
