//! Reading an original mAI database, read-only, in bounded pages.
//!
//! Every `SELECT` is built from the source's catalogue: a column that this version of the
//! original lacks (`timezone` before V3, `provider`, …) is read as a typed `NULL`, and every
//! column name is double-quoted, which is what makes `client_live_counters."current_date"` the
//! column and not SQLite's `CURRENT_DATE` keyword (bug B25). Values are cast to one SQL type
//! per kind so that SQLite's loose typing and PostgreSQL's strict one read alike. Large tables
//! are paged by keyset (`WHERE (key…) > (last key…) ORDER BY key… LIMIT n`), so memory stays
//! flat and a page can be resumed from the key recorded in the target.

use std::collections::BTreeMap;

#[cfg(feature = "postgres")]
use diesel::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::SqliteConnection;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::query_dsl::LoadQuery;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use orgusage_db::Backend;
use orgusage_db::detect::ColumnInfo;

use crate::error::{ImportError, Result};

/// An open connection to the original database.
pub(crate) enum SourceConn {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(PgConnection),
}

/// The kind of a source column and the SQL type it is read as.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Int,
    /// An integer 0/1 or a boolean, read as an integer.
    Bool,
    /// A float money or rate column, read as `DOUBLE PRECISION`.
    Float,
    /// A date, read as its ISO text.
    Date,
}

/// Runs `sql` binding each of `binds` as text, on either backend's connection.
fn load_with_binds<C, T>(conn: &mut C, sql: &str, binds: &[String]) -> diesel::QueryResult<Vec<T>>
where
    C: Connection,
    C::Backend: HasSqlType<Text>,
    str: ToSql<Text, C::Backend>,
    for<'a> BoxedSqlQuery<'a, C::Backend, SqlQuery>: LoadQuery<'a, C, T>,
{
    let mut query = diesel::sql_query(sql).into_boxed::<C::Backend>();
    for b in binds {
        query = query.bind::<Text, _>(b.as_str());
    }
    query.load(conn)
}

impl SourceConn {
    /// Opens `url`. A SQLite source is opened read-only (`mode=ro`): the importer cannot write
    /// it even by mistake, and a missing file is an error instead of a new empty database.
    pub(crate) fn open(url: &str, read_only: bool) -> Result<Self> {
        // Only a SQLite source can be opened read-only.
        #[cfg(not(feature = "sqlite"))]
        let _ = read_only;
        match Backend::from_url(url)? {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let path = orgusage_db::conn::sqlite_path(url);
                let target = if read_only && !path.starts_with("file:") {
                    if !std::path::Path::new(path).exists() {
                        return Err(ImportError::Unsupported(format!(
                            "the SQLite source {path} does not exist"
                        )));
                    }
                    format!("file:{path}?mode=ro")
                } else {
                    path.to_string()
                };
                let mut conn = SqliteConnection::establish(&target)?;
                // A 64 MiB page cache: keyset pages read the source's id index and then its rows
                // in another order; SQLite's default 2 MiB cache made that the bottleneck.
                use diesel::connection::SimpleConnection;
                conn.batch_execute("PRAGMA busy_timeout = 30000; PRAGMA cache_size = -65536;")
                    .map_err(ImportError::source("busy_timeout"))?;
                Ok(Self::Sqlite(conn))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => Ok(Self::Postgres(PgConnection::establish(url)?)),
            #[allow(unreachable_patterns)]
            other => Err(ImportError::Unsupported(format!(
                "the {} backend is not compiled in",
                other.name()
            ))),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `sql` (with `?` placeholders) binding text values; rows of `T`.
    pub(crate) fn load<T>(&mut self, context: &str, sql: &str, binds: &[String]) -> Result<Vec<T>>
    where
        T: QueryableByName<diesel_backend::Sqlite> + QueryableByName<diesel_backend::Pg> + 'static,
    {
        debug_assert!(binds.len() <= 3);
        let r = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(c) => load_with_binds(c, sql, binds),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => {
                let sql = dollar_placeholders(sql);
                load_with_binds(c, &sql, binds)
            }
        };
        r.map_err(ImportError::source(context))
    }

    /// Runs statements without results (the in-place rename), in one transaction.
    pub(crate) fn execute_in_transaction(&mut self, context: &str, sql: &[String]) -> Result<()> {
        use diesel::connection::SimpleConnection;
        let run = |c: &mut dyn SimpleConnection| -> diesel::QueryResult<()> {
            for s in sql {
                c.batch_execute(s)?;
            }
            Ok(())
        };
        let r = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(c) => c.immediate_transaction(|c| run(c)),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => c.transaction(|c| run(c)),
        };
        r.map_err(ImportError::source(context))
    }

    /// The catalogue: every column of every table.
    pub(crate) fn columns(&mut self) -> Result<Vec<ColumnInfo>> {
        const SQLITE: &str = "SELECT m.name AS table_name, p.name AS column_name, \
             upper(p.type) AS data_type FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' ORDER BY m.name, p.cid";
        const POSTGRES: &str = "SELECT table_name::text AS table_name, \
             column_name::text AS column_name, upper(data_type::text) AS data_type \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position";
        let sql = match self.backend() {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        self.load("catalogue", sql, &[])
    }
}

/// diesel's backends, named once for the trait bounds above.
pub(crate) mod diesel_backend {
    #[cfg(feature = "postgres")]
    pub use diesel::pg::Pg;
    #[cfg(feature = "sqlite")]
    pub use diesel::sqlite::Sqlite;
    /// Stand-ins so that the bounds compile with one backend only.
    #[cfg(not(feature = "postgres"))]
    pub type Pg = Sqlite;
    #[cfg(not(feature = "sqlite"))]
    pub type Sqlite = Pg;
}

/// `?` → `$1`, `$2`, … (no `?` appears inside the importer's literals).
#[cfg(feature = "postgres")]
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Which original tables (under the prefix) exist, with their columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    pub prefix: String,
    pub tables: BTreeMap<String, Vec<String>>,
}

impl Shape {
    pub(crate) fn from_columns(cols: &[ColumnInfo], prefix: &str) -> Self {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in cols {
            if let Some(t) = c.table_name.strip_prefix(prefix) {
                tables
                    .entry(t.to_string())
                    .or_default()
                    .push(c.column_name.clone());
            }
        }
        Self {
            prefix: prefix.to_string(),
            tables,
        }
    }

    pub(crate) fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub(crate) fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|c| c.iter().any(|n| n == column))
    }

    /// The quoted, prefixed table name.
    pub(crate) fn table(&self, table: &str) -> String {
        format!("\"{}{}\"", self.prefix, table)
    }

    /// A select list: each column cast to its kind's SQL type, or a typed NULL when missing.
    pub(crate) fn select(&self, table: &str, cols: &[(&str, Kind)]) -> String {
        cols.iter()
            .map(|(name, kind)| {
                let ty = match kind {
                    Kind::Text | Kind::Date => "TEXT",
                    Kind::Int | Kind::Bool => "BIGINT",
                    Kind::Float => "DOUBLE PRECISION",
                };
                let expr = if !self.has_column(table, name) {
                    "NULL".to_string()
                } else if matches!(kind, Kind::Bool) {
                    // PostgreSQL cannot cast boolean to bigint directly, only to integer.
                    format!("CAST(\"{name}\" AS INTEGER)")
                } else {
                    format!("\"{name}\"")
                };
                format!("CAST({expr} AS {ty}) AS \"{name}\"")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The keyset condition `(a, b, …) > (?, ?, …)`; a date key is cast on PostgreSQL, where a text
/// parameter does not compare with a `date` column (on SQLite the stored text is compared).
pub(crate) fn keyset_after(backend: Backend, keys: &[(&str, Kind)]) -> String {
    let cols = keys
        .iter()
        .map(|(k, _)| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let params = keys
        .iter()
        .map(|(_, kind)| match (backend, kind) {
            (Backend::Postgres, Kind::Date) => "CAST(? AS DATE)",
            _ => "?",
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("({cols}) > ({params})")
}
