//! How the texts of [`crate::statements`] are bound and cached.
//!
//! A [`Stmt`] is a fixed text with a static query id, its marker type, so diesel prepares it
//! once per pooled connection and can never hand one statement's prepared text to another. A
//! [`DynStmt`] is a text built at run time (the multi-row statements of the batch path), cached
//! by its text when small. Both bind [`Val`]s to the text's `?`s, which diesel writes as `$n` on
//! PostgreSQL, so one text serves both backends.

use std::marker::PhantomData;

use chrono::NaiveDate;
use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Date, HasSqlType, Nullable, Text};

use crate::statements::{MultiRow, Statement};

/// A value bound to a `?` of a statement.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// `TEXT`.
    Text(&'a str),
    /// Nullable `TEXT`.
    OptText(Option<&'a str>),
    /// Nullable `BIGINT`.
    OptInt(Option<i64>),
    /// `DATE`.
    Date(NaiveDate),
    /// `BIGINT`.
    Int(i64),
}

/// A backend that can bind every kind of [`Val`]: SQLite and PostgreSQL.
pub(crate) trait ValBackend: Backend {
    /// Binds `val` to the next placeholder.
    fn push_val<'b>(out: &mut AstPass<'_, 'b, Self>, val: &'b Val<'b>) -> QueryResult<()>;
}

impl<DB> ValBackend for DB
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Date> + HasSqlType<BigInt>,
    str: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn push_val<'b>(out: &mut AstPass<'_, 'b, Self>, val: &'b Val<'b>) -> QueryResult<()> {
        match val {
            Val::Text(s) => out.push_bind_param::<Text, str>(s),
            Val::OptText(s) => out.push_bind_param::<Nullable<Text>, Option<&str>>(s),
            Val::Date(d) => out.push_bind_param::<Date, NaiveDate>(d),
            Val::Int(i) => out.push_bind_param::<BigInt, i64>(i),
            Val::OptInt(i) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(i),
        }
    }
}

/// Writes `sql` with each `?` replaced by the next of `binds`.
fn walk<'b, DB: ValBackend>(
    sql: &str,
    binds: &'b [Val<'b>],
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()> {
    let mut parts = sql.split('?');
    out.push_sql(parts.next().unwrap_or_default());
    for (part, val) in parts.zip(binds) {
        DB::push_val(out, val)?;
        out.push_sql(part);
    }
    Ok(())
}

/// Statement `S` with its binds, returning rows of SQL type `ST`.
pub(crate) struct Stmt<'a, S, ST = ()> {
    binds: &'a [Val<'a>],
    _types: PhantomData<(S, ST)>,
}

/// Statement `S` bound to `binds` (one per `?` of its text).
pub(crate) fn stmt<'a, S: Statement, ST>(binds: &'a [Val<'a>]) -> Stmt<'a, S, ST> {
    debug_assert_eq!(
        S::SQL.matches('?').count(),
        binds.len(),
        "binds of {}",
        S::SQL
    );
    Stmt {
        binds,
        _types: PhantomData,
    }
}

/// The marker type is the query id: one prepared statement per text and connection.
impl<S: Statement, ST> QueryId for Stmt<'_, S, ST> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Statement, ST> Query for Stmt<'_, S, ST> {
    type SqlType = ST;
}

impl<S: Statement, ST, C> diesel::RunQueryDsl<C> for Stmt<'_, S, ST> {}

impl<S: Statement, ST, DB: ValBackend> QueryFragment<DB> for Stmt<'_, S, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        walk(S::SQL, self.binds, &mut out)
    }
}

/// A SQL text built at run time (the multi-row statements of the batch path, whose row count
/// varies; bulk reads of the importer) with its binds, returning rows of SQL type `ST`.
///
/// Statements of at most [`CACHED_ROWS`] rows (the groups of group commit) stay in diesel's
/// prepared-statement cache, keyed by their text: at most that many texts per statement and
/// connection, and re-preparing them would cost more than the merge saves. Larger ones (batch
/// chunks) are prepared per use: a cache of every row count up to `BATCH_CHUNK` would only grow,
/// and the one prepare is spread over the chunk's records. Either way they work behind PgBouncer
/// in transaction mode, where the pool disables diesel's cache and every statement is unnamed.
pub(crate) struct DynStmt<'a, ST = ()> {
    sql: String,
    binds: Vec<Val<'a>>,
    cached: bool,
    _st: PhantomData<ST>,
}

/// The largest row count whose multi-row statements are cached (see [`DynStmt`]).
pub(crate) const CACHED_ROWS: usize = 32;

impl<'a, ST> DynStmt<'a, ST> {
    /// Statement `M` for `rows` rows; the row count decides whether it is cached.
    pub(crate) fn rows<M: MultiRow>(rows: usize, binds: Vec<Val<'a>>) -> Self {
        Self::new(M::sql(rows), binds, rows <= CACHED_ROWS)
    }

    /// Any text; `cached`: whether diesel may keep its prepared statement (by text).
    pub(crate) fn new(sql: String, binds: Vec<Val<'a>>, cached: bool) -> Self {
        debug_assert_eq!(sql.matches('?').count(), binds.len(), "binds of {sql}");
        Self {
            sql,
            binds,
            cached,
            _st: PhantomData,
        }
    }
}

impl<ST> QueryId for DynStmt<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> Query for DynStmt<'_, ST> {
    type SqlType = ST;
}

impl<ST, C> diesel::RunQueryDsl<C> for DynStmt<'_, ST> {}

impl<ST, DB: ValBackend> QueryFragment<DB> for DynStmt<'_, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        walk(&self.sql, &self.binds, &mut out)
    }
}
