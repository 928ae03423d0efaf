//! [`exact_sum`]: the one way this crate sums a money or count column.
//!
//! Why not diesel's `sum`: its result is `NUMERIC` on PostgreSQL (`SUM(bigint)`), which diesel
//! decodes only through `bigdecimal`, and on SQLite it may be decoded through `f64`. Why not a
//! `sql::<BigInt>("CAST(COALESCE(SUM(col), 0) AS BIGINT)")` string: a misspelt or renamed
//! column there is found only when the query runs, and a column of another table not at all.
//! Here the column is a typed schema column of SQL type `BIGINT`, checked by the compiler.

use diesel::backend::Backend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::{Column, QueryResult};

/// `CAST(COALESCE(SUM(column), 0) AS BIGINT)`: exact (integer arithmetic on both engines), 0
/// for no rows, and an `i64` again on PostgreSQL, so a sum past `i64` is an error (mapped to
/// `Overflow`) instead of a wrong value.
#[derive(Debug, Clone, Copy, QueryId)]
pub(crate) struct ExactSum<C>(C);

/// The exact sum of a `BIGINT` column (see [`ExactSum`]).
pub(crate) fn exact_sum<C: Column<SqlType = BigInt>>(column: C) -> ExactSum<C> {
    ExactSum(column)
}

/// The type of `exact_sum(column)`, under the function's name so that
/// `#[diesel::dsl::auto_type]` query functions can use it.
#[allow(non_camel_case_types)]
pub(crate) type exact_sum<C> = ExactSum<C>;

impl<C: Expression<SqlType = BigInt>> Expression for ExactSum<C> {
    type SqlType = BigInt;
}

impl<C, DB> QueryFragment<DB> for ExactSum<C>
where
    DB: Backend,
    C: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("CAST(COALESCE(SUM(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql("), 0) AS BIGINT)");
        Ok(())
    }
}

impl<C, QS> AppearsOnTable<QS> for ExactSum<C>
where
    C: AppearsOnTable<QS>,
    Self: Expression,
{
}

impl<C, QS> SelectableExpression<QS> for ExactSum<C>
where
    C: SelectableExpression<QS>,
    Self: AppearsOnTable<QS>,
{
}

/// An aggregate: it may stand beside other aggregates or the `GROUP BY` columns.
impl<C, GB> ValidGrouping<GB> for ExactSum<C> {
    type IsAggregate = is_aggregate::Yes;
}
