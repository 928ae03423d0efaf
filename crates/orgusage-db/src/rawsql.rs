//! Fixed SQL texts that diesel prepares once per connection.
//!
//! diesel refuses to cache the prepared statement of any `INSERT … ON CONFLICT DO UPDATE` or
//! `UPDATE` built with its DSL, so each call re-prepared (and on PostgreSQL re-planned) the
//! usage upserts: measured +120-140 µs per record on SQLite and about +380 µs on PostgreSQL.
//! A [`Stmt`] is a constant SQL text with a static query id, so it is prepared once per pooled
//! connection. The SQL is portable: `?` becomes `$n` on PostgreSQL through diesel's binds.

use std::marker::PhantomData;

use chrono::NaiveDate;
use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Date, HasSqlType, Nullable, Text};

/// A value bound to a `?` of a [`Stmt`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    OptInt(Option<i64>),
    Date(NaiveDate),
    Int(i64),
}

/// The query id of statement number `N`: one prepared statement per number and connection.
pub(crate) struct Id<const N: u32>;

/// Statement number `N` (unique per SQL text) returning rows of SQL type `ST`.
pub(crate) struct Stmt<'a, const N: u32, ST = ()> {
    sql: &'static str,
    binds: &'a [Val<'a>],
    _st: PhantomData<ST>,
}

pub(crate) fn stmt<'a, const N: u32, ST>(
    sql: &'static str,
    binds: &'a [Val<'a>],
) -> Stmt<'a, N, ST> {
    debug_assert_eq!(sql.matches('?').count(), binds.len(), "binds of {sql}");
    Stmt {
        sql,
        binds,
        _st: PhantomData,
    }
}

impl<const N: u32, ST> QueryId for Stmt<'_, N, ST> {
    type QueryId = Id<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: u32, ST> Query for Stmt<'_, N, ST> {
    type SqlType = ST;
}

impl<const N: u32, ST, C> diesel::RunQueryDsl<C> for Stmt<'_, N, ST> {}

impl<const N: u32, ST, DB> QueryFragment<DB> for Stmt<'_, N, ST>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Date> + HasSqlType<BigInt>,
    str: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        for (part, val) in parts.zip(self.binds) {
            match val {
                Val::Text(s) => out.push_bind_param::<Text, str>(s)?,
                Val::OptText(s) => out.push_bind_param::<Nullable<Text>, Option<&str>>(s)?,
                Val::Date(d) => out.push_bind_param::<Date, NaiveDate>(d)?,
                Val::Int(i) => out.push_bind_param::<BigInt, i64>(i)?,
                Val::OptInt(i) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(i)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

/// A SQL text built at run time (the multi-row statements of the batch path, whose row count
/// varies) with its binds, returning rows of SQL type `ST`.
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
    /// `rows`: the statement's row count, which decides whether it is cached.
    pub(crate) fn new(sql: String, binds: Vec<Val<'a>>, rows: usize) -> Self {
        debug_assert_eq!(sql.matches('?').count(), binds.len(), "binds of {sql}");
        Self {
            sql,
            binds,
            cached: rows <= CACHED_ROWS,
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

impl<ST, DB> QueryFragment<DB> for DynStmt<'_, ST>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Date> + HasSqlType<BigInt>,
    str: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        for (part, val) in parts.zip(&self.binds) {
            match val {
                Val::Text(s) => out.push_bind_param::<Text, str>(s)?,
                Val::OptText(s) => out.push_bind_param::<Nullable<Text>, Option<&str>>(s)?,
                Val::Date(d) => out.push_bind_param::<Date, NaiveDate>(d)?,
                Val::Int(i) => out.push_bind_param::<BigInt, i64>(i)?,
                Val::OptInt(i) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(i)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}
