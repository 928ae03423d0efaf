//! Bulk loading, for tools that fill orgusage's tables wholesale (the mAI importer): one typed
//! row struct per table, written in chunked multi-row `INSERT`s inside one transaction, and
//! plain SQL reads of the result.
//!
//! Why a module of its own: the repositories keep the daily rows, the ledger and
//! `unique_users` consistent with each other record by record; a bulk load writes exactly the
//! rows it is given, so it must not be mistaken for an application write path. It keeps the
//! schema and the backend dispatch private to this crate: a caller names no table and no
//! diesel connection.
//!
//! ```no_run
//! use orgusage_db::bulk::{self, NewDaily, Rows, Value};
//! use orgusage_db::{Database, DbConfig};
//!
//! let db = Database::connect(&DbConfig::new("sqlite:///tmp/target.db"))?;
//! let mut rows = Rows::default();
//! rows.daily.push(NewDaily {
//!     client_org_id: "acme".into(),
//!     usage_date: chrono::NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(),
//!     total_tokens: 1_000,
//!     total_requests: 2,
//!     raw_cost: 1_500_000_000, // nano-USD
//!     markup_cost: 1_950_000_000,
//!     unique_users: 1,
//!     created_at: 0,
//!     updated_at: 0,
//! });
//! bulk::write(&db, &rows, &[])?;
//!
//! #[derive(diesel::QueryableByName)]
//! struct N {
//!     #[diesel(sql_type = diesel::sql_types::BigInt)]
//!     n: i64,
//! }
//! let n: Vec<N> = bulk::query(&db, "SELECT COUNT(*) AS n FROM client_daily_usage WHERE client_org_id = ?", &[Value::Text("acme")])?;
//! assert_eq!(n[0].n, 1);
//! # Ok::<(), orgusage_domain::Error>(())
//! ```

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::query_builder::InsertStatement;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::sql_types::Untyped;
use orgusage_domain::Result;

use crate::prepared::DynStmt;
pub use crate::prepared::Val as Value;
use crate::schema::{
    client_daily_usage, client_model_daily_usage, client_organizations, client_user_daily_usage,
    global_settings, processed_generation_cleanup_log, processed_generations, user_client_mapping,
};
use crate::{Backend, Database, backends};

/// Rows per `INSERT` statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const INSERT_CHUNK: usize = 500;

/// A `global_settings` row (money and rates in nano-units).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = global_settings)]
pub struct NewSettings {
    /// Always `global`.
    pub id: String,
    /// The provisioning key, as stored.
    pub openrouter_provisioning_key: Option<String>,
    /// Default markup rate (nano-units of 1).
    pub default_markup_rate: i64,
    /// Billing currency code.
    pub billing_currency: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `client_organizations` row with a plaintext key (`openrouter_api_key_lookup` stays NULL;
/// `KeyMaintenance` encrypts such rows later).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = client_organizations)]
pub struct NewClient {
    /// Client id.
    pub id: String,
    /// Name.
    pub name: String,
    /// OpenRouter API key.
    pub openrouter_api_key: String,
    /// OpenRouter's hash of the key.
    pub openrouter_key_hash: Option<String>,
    /// Markup rate (nano-units of 1).
    pub markup_rate: i64,
    /// Monthly limit (nano-USD).
    pub monthly_limit: Option<i64>,
    /// Billing e-mail.
    pub billing_email: Option<String>,
    /// IANA zone.
    pub timezone: String,
    /// Active or not.
    pub is_active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `user_client_mapping` row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = user_client_mapping)]
pub struct NewMapping {
    /// Mapping id.
    pub id: String,
    /// Host user id.
    pub user_id: String,
    /// Client id.
    pub client_org_id: String,
    /// OpenRouter user id.
    pub openrouter_user_id: String,
    /// Active or not.
    pub is_active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `client_daily_usage` row; `input_tokens`/`output_tokens` stay 0 (the original has no
/// prompt/completion split).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = client_daily_usage)]
pub struct NewDaily {
    /// Client id.
    pub client_org_id: String,
    /// Client-local day.
    pub usage_date: NaiveDate,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (nano-USD).
    pub raw_cost: i64,
    /// Marked-up cost (nano-USD).
    pub markup_cost: i64,
    /// Users with requests that day.
    pub unique_users: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `client_user_daily_usage` row (input/output tokens 0, as [`NewDaily`]).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = client_user_daily_usage)]
pub struct NewUserDay {
    /// Client id.
    pub client_org_id: String,
    /// Host user id.
    pub user_id: String,
    /// OpenRouter user id.
    pub openrouter_user_id: String,
    /// Client-local day.
    pub usage_date: NaiveDate,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (nano-USD).
    pub raw_cost: i64,
    /// Marked-up cost (nano-USD).
    pub markup_cost: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `client_model_daily_usage` row (input/output tokens 0, as [`NewDaily`]).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = client_model_daily_usage)]
pub struct NewModelDay {
    /// Client id.
    pub client_org_id: String,
    /// Model name.
    pub model_name: String,
    /// Client-local day.
    pub usage_date: NaiveDate,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (nano-USD).
    pub raw_cost: i64,
    /// Marked-up cost (nano-USD).
    pub markup_cost: i64,
    /// Provider.
    pub provider: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A `processed_generations` (ledger) row without the request's instant and model, which the
/// original did not keep.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = processed_generations)]
pub struct NewLedger {
    /// Client id.
    pub client_org_id: String,
    /// Generation id.
    pub id: String,
    /// Client-local day of the generation.
    pub generation_date: NaiveDate,
    /// Unix seconds.
    pub processed_at: i64,
    /// Raw cost (nano-USD).
    pub total_cost: i64,
    /// Tokens.
    pub total_tokens: i64,
}

/// A `processed_generation_cleanup_log` row (its id is assigned by the database).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = processed_generation_cleanup_log)]
pub struct NewCleanup {
    /// UTC date of the run.
    pub cleanup_date: NaiveDate,
    /// UTC date of the cut-off.
    pub cutoff_date: NaiveDate,
    /// Unix seconds of the cut-off.
    pub cutoff_timestamp: i64,
    /// Retention in days.
    pub days_retained: i64,
    /// Ledger rows before the run.
    pub records_before: i64,
    /// Rows deleted.
    pub records_deleted: i64,
    /// Rows left.
    pub records_remaining: i64,
    /// Tokens of the deleted rows.
    pub old_tokens_removed: i64,
    /// Cost of the deleted rows (nano-USD).
    pub old_cost_removed: i64,
    /// Bytes of the deleted rows.
    pub payload_bytes_removed: i64,
    /// Run time.
    pub cleanup_duration_ms: i64,
    /// Whether the run succeeded.
    pub success: bool,
    /// The error, if any.
    pub error_message: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Rows of any of orgusage's tables, for one [`write()`].
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// `global_settings`.
    pub settings: Vec<NewSettings>,
    /// `client_organizations`.
    pub clients: Vec<NewClient>,
    /// `user_client_mapping`.
    pub mappings: Vec<NewMapping>,
    /// `client_daily_usage`.
    pub daily: Vec<NewDaily>,
    /// `client_user_daily_usage`.
    pub users: Vec<NewUserDay>,
    /// `client_model_daily_usage`.
    pub models: Vec<NewModelDay>,
    /// `processed_generations`.
    pub ledger: Vec<NewLedger>,
    /// `processed_generation_cleanup_log`.
    pub cleanup: Vec<NewCleanup>,
}

/// A statement a [`write()`] runs after its rows, in the same transaction: `sql` with one `?` per
/// bind (written `$n` on PostgreSQL).
#[derive(Debug, Clone)]
pub struct Then<'a> {
    /// The text.
    pub sql: String,
    /// Its binds, in order.
    pub binds: Vec<Value<'a>>,
}

/// Writes `rows` (tables in the order of [`Rows`]' fields, chunks of 500 rows), then runs
/// `then`, all in one transaction (`BEGIN IMMEDIATE` on SQLite): all of it or nothing.
///
/// On SQLite the connection's page cache is raised to 64 MiB first: a bulk load grows the
/// primary-key B-trees, and SQLite's default 2 MiB cache made that the bottleneck (measured
/// about 1.4x faster at 1M rows). Give a bulk load a [`Database`] of its own.
pub fn write(db: &Database, rows: &Rows, then: &[Then<'_>]) -> Result<()> {
    let sqlite = db.backend() == Backend::Sqlite;
    crate::write_tx!(db, |conn| {
        if sqlite {
            diesel::sql_query("PRAGMA cache_size = -65536").execute(conn)?;
        }
        insert_chunks::<_, _, NewSettings>(conn, global_settings::table, &rows.settings)?;
        insert_chunks::<_, _, NewClient>(conn, client_organizations::table, &rows.clients)?;
        insert_chunks::<_, _, NewMapping>(conn, user_client_mapping::table, &rows.mappings)?;
        insert_chunks::<_, _, NewDaily>(conn, client_daily_usage::table, &rows.daily)?;
        insert_chunks::<_, _, NewUserDay>(conn, client_user_daily_usage::table, &rows.users)?;
        insert_chunks::<_, _, NewModelDay>(conn, client_model_daily_usage::table, &rows.models)?;
        insert_chunks::<_, _, NewLedger>(conn, processed_generations::table, &rows.ledger)?;
        insert_chunks::<_, _, NewCleanup>(
            conn,
            processed_generation_cleanup_log::table,
            &rows.cleanup,
        )?;
        for t in then {
            DynStmt::<()>::new(t.sql.clone(), t.binds.clone(), false).execute(conn)?;
        }
        Ok(())
    })
}

/// Inserts `rows` into `table`, [`INSERT_CHUNK`] rows per statement.
fn insert_chunks<'r, C, T, R>(conn: &mut C, table: T, rows: &'r [R]) -> QueryResult<()>
where
    C: Connection,
    T: Table + Copy,
    &'r [R]: Insertable<T>,
    InsertStatement<T, <&'r [R] as Insertable<T>>::Values>: ExecuteDsl<C>,
{
    for chunk in rows.chunks(INSERT_CHUNK) {
        diesel::insert_into(table).values(chunk).execute(conn)?;
    }
    Ok(())
}

/// A row type [`query`] can read: `#[derive(diesel::QueryableByName)]` with a `sql_type` per
/// field, on every compiled-in backend.
pub trait FromRow:
    QueryableByName<backends::Sqlite> + QueryableByName<backends::Pg> + 'static
{
}

impl<T> FromRow for T where
    T: QueryableByName<backends::Sqlite> + QueryableByName<backends::Pg> + 'static
{
}

/// Runs `sql` (one `?` per bind, written `$n` on PostgreSQL) on a pooled connection and reads
/// its rows by column name. For reading what a bulk load wrote (verification, resumption);
/// application reads go through the repositories.
pub fn query<T: FromRow>(db: &Database, sql: &str, binds: &[Value<'_>]) -> Result<Vec<T>> {
    crate::with_conn!(db, |conn| {
        Ok(DynStmt::<Untyped>::new(sql.to_string(), binds.to_vec(), false).load::<T>(conn)?)
    })
}
