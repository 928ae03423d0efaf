//! Detection of the original system's tables (mAI, `organization_usage.py`).
//!
//! orgusage uses the original's table names with different columns. Pointing it at a database
//! that still holds the original tables must not end in a half-applied migration ("table already
//! exists") or, worse, in orgusage writing someone else's tables. [`Database::connect`] therefore
//! calls [`refuse_original_schema`] *before* any migration: it only reads the catalogue and
//! returns [`Error::ForeignSchema`] naming what it found.
//!
//! The tables are recognised by their **columns**, not only their names, because the names are
//! shared: a usage table with a string `id` column, the live counters, a cleanup log with
//! `storage_saved_kb`, a rate table with an `id`, or money columns declared as floats.
//!
//! [`Database::connect`]: crate::Database::connect

use diesel::QueryableByName;
use diesel::sql_types::Text;
use orgusage_domain::{Error, Result};

use crate::Database;

/// One column of one table, as the database catalogue describes it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
pub struct ColumnInfo {
    /// Table name.
    #[diesel(sql_type = Text)]
    pub table_name: String,
    /// Column name.
    #[diesel(sql_type = Text)]
    pub column_name: String,
    /// Declared type, upper-cased by [`list_columns`] (`REAL`, `DOUBLE PRECISION`, `BIGINT`, …).
    #[diesel(sql_type = Text)]
    pub data_type: String,
}

/// Every column of every table in the database (SQLite) or the current schema (PostgreSQL).
pub fn list_columns(db: &Database) -> Result<Vec<ColumnInfo>> {
    use diesel::RunQueryDsl;
    // pragma_table_info as a table-valued function needs SQLite 3.16; the bundled one is newer.
    const SQLITE: &str = "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
         ORDER BY m.name, p.cid";
    const POSTGRES: &str = "SELECT table_name::text AS table_name, column_name::text AS column_name, \
         data_type::text AS data_type FROM information_schema.columns \
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position";
    let sql = match db.backend() {
        crate::Backend::Sqlite => SQLITE,
        crate::Backend::Postgres => POSTGRES,
    };
    let mut cols: Vec<ColumnInfo> =
        crate::with_conn!(db, |conn| Ok(diesel::sql_query(sql).load(conn)?))?;
    for c in &mut cols {
        c.data_type = c.data_type.to_ascii_uppercase();
    }
    Ok(cols)
}

fn is_float(decl: &str) -> bool {
    // SQLite's affinity rule for REAL ("REAL", "FLOA", "DOUB") plus PostgreSQL's names.
    ["REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL"]
        .iter()
        .any(|k| decl.contains(k))
}

/// What in `columns` belongs to the original system, for tables named `{prefix}{original name}`.
/// Empty when nothing does. Each entry reads `table.column (why)` or `table`.
///
/// ```
/// use orgusage_db::detect::{ColumnInfo, original_evidence};
/// let col = |t: &str, c: &str, ty: &str| ColumnInfo {
///     table_name: t.into(), column_name: c.into(), data_type: ty.into(),
/// };
/// let original = [col("client_daily_usage", "id", "VARCHAR"), col("client_daily_usage", "raw_cost", "FLOAT")];
/// assert_eq!(original_evidence(&original, "").len(), 2);
/// let ours = [col("client_daily_usage", "raw_cost", "BIGINT")];
/// assert!(original_evidence(&ours, "").is_empty());
/// ```
pub fn original_evidence(columns: &[ColumnInfo], prefix: &str) -> Vec<String> {
    // The original's usage and rate tables are keyed by a built string `id`; orgusage's have none.
    const ID_KEYED: [&str; 4] = [
        "client_daily_usage",
        "client_user_daily_usage",
        "client_model_daily_usage",
        "daily_exchange_rates",
    ];
    // Money and rate columns that are floats in the original and BIGINT nano-units here.
    const MONEY: [(&str, &str); 6] = [
        ("client_organizations", "markup_rate"),
        ("client_organizations", "monthly_limit"),
        ("global_settings", "default_markup_rate"),
        ("client_daily_usage", "raw_cost"),
        ("processed_generations", "total_cost"),
        ("processed_generation_cleanup_log", "old_cost_removed"),
    ];
    let mut found = Vec::new();
    let mut live_counters = false;
    for c in columns {
        let Some(table) = c.table_name.strip_prefix(prefix) else {
            continue;
        };
        let column = c.column_name.as_str();
        if table == "client_live_counters" {
            live_counters = true;
        } else if ID_KEYED.contains(&table) && column == "id" {
            found.push(format!("{table}.id (string row id)"));
        } else if table == "processed_generation_cleanup_log" && column == "storage_saved_kb" {
            found.push(format!("{table}.storage_saved_kb"));
        } else if MONEY.contains(&(table, column)) && is_float(&c.data_type) {
            found.push(format!("{table}.{column} ({})", c.data_type));
        }
    }
    if live_counters {
        found.push("client_live_counters".into());
    }
    found
}

/// Returns [`Error::ForeignSchema`] when the database holds the original's tables; reads only.
pub fn refuse_original_schema(db: &Database) -> Result<()> {
    let _span = tracing::info_span!("orgusage.db.detect", backend = db.backend().name()).entered();
    let found = original_evidence(&list_columns(db)?, "");
    if found.is_empty() {
        return Ok(());
    }
    tracing::error!(found = %found.join(", "), "refusing a database with the original mAI tables");
    Err(Error::ForeignSchema {
        found: found.join(", "),
    })
}
