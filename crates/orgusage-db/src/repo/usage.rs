//! `record_usage`: one transaction of atomic upsert increments on the client, user and model
//! daily rows. No read-modify-write, no retry loop: a failed call wrote nothing and may simply be
//! retried by the caller (exactly-once retries are `record_generation`'s job).

use chrono::NaiveDate;
use diesel::prelude::*;
use orgusage_domain::money::{amount_to_units, units_to_decimal};
use orgusage_domain::timezone::{local_date_at, month_start, parse_timezone};
use orgusage_domain::usage::{CatalogueModel, RecordedUsage, UsageRecord};
use orgusage_domain::{Clock, Error, Result};

use crate::Database;
use crate::error::TxError;
use crate::schema::{client_daily_usage, client_model_daily_usage, client_user_daily_usage};

/// The increments one request adds to the three daily tables.
#[derive(Debug, Clone)]
pub(crate) struct Increment<'r> {
    pub client_org_id: &'r str,
    pub user_id: &'r str,
    pub openrouter_user_id: &'r str,
    pub model_name: &'r str,
    pub provider: Option<&'r str>,
    pub usage_date: NaiveDate,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub raw_units: i64,
    pub markup_units: i64,
    pub now: i64,
}

/// What the transaction needs to know about the client.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct ClientBilling {
    pub timezone: String,
    pub markup_rate: i64,
    pub monthly_limit: Option<i64>,
    pub is_active: bool,
}

#[derive(Insertable)]
#[diesel(table_name = client_daily_usage)]
pub(crate) struct NewDaily<'r> {
    pub(crate) client_org_id: &'r str,
    pub(crate) usage_date: NaiveDate,
    pub(crate) total_tokens: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) total_requests: i64,
    pub(crate) raw_cost: i64,
    pub(crate) markup_cost: i64,
    pub(crate) unique_users: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = client_user_daily_usage)]
pub(crate) struct NewUserDaily<'r> {
    pub(crate) client_org_id: &'r str,
    pub(crate) user_id: &'r str,
    pub(crate) openrouter_user_id: &'r str,
    pub(crate) usage_date: NaiveDate,
    pub(crate) total_tokens: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) total_requests: i64,
    pub(crate) raw_cost: i64,
    pub(crate) markup_cost: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = client_model_daily_usage)]
pub(crate) struct NewModelDaily<'r> {
    pub(crate) client_org_id: &'r str,
    pub(crate) model_name: &'r str,
    pub(crate) usage_date: NaiveDate,
    pub(crate) total_tokens: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) total_requests: i64,
    pub(crate) raw_cost: i64,
    pub(crate) markup_cost: i64,
    pub(crate) provider: Option<&'r str>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

diesel::define_sql_function! {
    /// SQL `COALESCE` for nullable text.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::Text>, y: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Applies one request's increments to the three daily tables on a concrete connection.
///
/// Statement order matters on PostgreSQL: the client-day row is upserted first, so its row lock
/// serialises every writer of that client-day before the user and model rows are touched and
/// before `unique_users` / `primary_model` are derived from them (each later statement sees all
/// committed predecessors). The lock order is the same in every transaction, so no deadlocks.
macro_rules! apply_increment {
    ($conn:ident, $inc:expr) => {{
        #[allow(unused_imports)]
        use ::diesel::prelude::*;
        use ::diesel::upsert::excluded;
        use $crate::repo::usage::{NewDaily, NewModelDaily, NewUserDaily};
        use $crate::schema::client_daily_usage::dsl as d;
        use $crate::schema::client_model_daily_usage::dsl as md;
        use $crate::schema::client_user_daily_usage::dsl as ud;
        let inc: &$crate::repo::usage::Increment<'_> = $inc;
        diesel::insert_into(d::client_daily_usage)
            .values(&NewDaily {
                client_org_id: inc.client_org_id,
                usage_date: inc.usage_date,
                total_tokens: inc.total_tokens,
                input_tokens: inc.input_tokens,
                output_tokens: inc.output_tokens,
                total_requests: 1,
                raw_cost: inc.raw_units,
                markup_cost: inc.markup_units,
                unique_users: 0,
                created_at: inc.now,
                updated_at: inc.now,
            })
            .on_conflict((d::client_org_id, d::usage_date))
            .do_update()
            .set((
                d::total_tokens.eq(d::total_tokens + excluded(d::total_tokens)),
                d::input_tokens.eq(d::input_tokens + excluded(d::input_tokens)),
                d::output_tokens.eq(d::output_tokens + excluded(d::output_tokens)),
                d::total_requests.eq(d::total_requests + 1),
                d::raw_cost.eq(d::raw_cost + excluded(d::raw_cost)),
                d::markup_cost.eq(d::markup_cost + excluded(d::markup_cost)),
                d::updated_at.eq(excluded(d::updated_at)),
            ))
            .execute($conn)?;
        let user_requests: i64 = diesel::insert_into(ud::client_user_daily_usage)
            .values(&NewUserDaily {
                client_org_id: inc.client_org_id,
                user_id: inc.user_id,
                openrouter_user_id: inc.openrouter_user_id,
                usage_date: inc.usage_date,
                total_tokens: inc.total_tokens,
                input_tokens: inc.input_tokens,
                output_tokens: inc.output_tokens,
                total_requests: 1,
                raw_cost: inc.raw_units,
                markup_cost: inc.markup_units,
                created_at: inc.now,
                updated_at: inc.now,
            })
            .on_conflict((ud::client_org_id, ud::usage_date, ud::user_id))
            .do_update()
            .set((
                ud::openrouter_user_id.eq(excluded(ud::openrouter_user_id)),
                ud::total_tokens.eq(ud::total_tokens + excluded(ud::total_tokens)),
                ud::input_tokens.eq(ud::input_tokens + excluded(ud::input_tokens)),
                ud::output_tokens.eq(ud::output_tokens + excluded(ud::output_tokens)),
                ud::total_requests.eq(ud::total_requests + 1),
                ud::raw_cost.eq(ud::raw_cost + excluded(ud::raw_cost)),
                ud::markup_cost.eq(ud::markup_cost + excluded(ud::markup_cost)),
                ud::updated_at.eq(excluded(ud::updated_at)),
            ))
            .returning(ud::total_requests)
            .get_result($conn)?;
        diesel::insert_into(md::client_model_daily_usage)
            .values(&NewModelDaily {
                client_org_id: inc.client_org_id,
                model_name: inc.model_name,
                usage_date: inc.usage_date,
                total_tokens: inc.total_tokens,
                input_tokens: inc.input_tokens,
                output_tokens: inc.output_tokens,
                total_requests: 1,
                raw_cost: inc.raw_units,
                markup_cost: inc.markup_units,
                provider: inc.provider,
                created_at: inc.now,
                updated_at: inc.now,
            })
            .on_conflict((md::client_org_id, md::usage_date, md::model_name))
            .do_update()
            .set((
                md::total_tokens.eq(md::total_tokens + excluded(md::total_tokens)),
                md::input_tokens.eq(md::input_tokens + excluded(md::input_tokens)),
                md::output_tokens.eq(md::output_tokens + excluded(md::output_tokens)),
                md::total_requests.eq(md::total_requests + 1),
                md::raw_cost.eq(md::raw_cost + excluded(md::raw_cost)),
                md::markup_cost.eq(md::markup_cost + excluded(md::markup_cost)),
                md::provider.eq($crate::repo::usage::coalesce(
                    md::provider,
                    excluded(md::provider),
                )),
                md::updated_at.eq(excluded(md::updated_at)),
            ))
            .execute($conn)?;
        // primary_model: the model with the most tokens that day, ties broken by name.
        let leader = md::client_model_daily_usage
            .filter(
                md::client_org_id
                    .eq(inc.client_org_id)
                    .and(md::usage_date.eq(inc.usage_date)),
            )
            .order((md::total_tokens.desc(), md::model_name.asc()))
            .select(md::model_name.nullable())
            .limit(1)
            .single_value();
        let new_user = i64::from(user_requests == 1);
        diesel::update(d::client_daily_usage.find((inc.client_org_id, inc.usage_date)))
            .set((
                d::unique_users.eq(d::unique_users + new_user),
                d::primary_model.eq(leader),
            ))
            .execute($conn)?;
    }};
}
#[allow(unused_imports)]
pub(crate) use apply_increment;

/// Sum of marked-up cost (units) of a client over an inclusive date range.
macro_rules! month_markup_units {
    ($conn:ident, $client:expr, $from:expr, $to:expr) => {{
        $crate::schema::client_daily_usage::dsl::client_daily_usage
            .filter(
                $crate::schema::client_daily_usage::dsl::client_org_id
                    .eq($client)
                    .and($crate::schema::client_daily_usage::dsl::usage_date.between($from, $to)),
            )
            .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(SUM(markup_cost), 0) AS BIGINT)",
            ))
            .get_result::<i64>($conn)?
    }};
}
pub(crate) use month_markup_units;

/// After `apply_increment!`: the client's monthly limit status and whether this record crossed
/// it. The month is summed *after* the client-day row was locked by the increment, so on
/// PostgreSQL every writer of that day sees its predecessors and exactly one sees the crossing.
macro_rules! limit_after_increment {
    ($conn:ident, $client_id:expr, $billing:expr, $prepared:expr) => {{
        let billing: &$crate::repo::usage::ClientBilling = $billing;
        let prepared: &$crate::repo::usage::Prepared = $prepared;
        match billing.monthly_limit {
            None => None,
            Some(_) => {
                let after = $crate::repo::usage::month_markup_units!(
                    $conn,
                    $client_id,
                    prepared.month.0,
                    prepared.month.1
                );
                let in_month = prepared.usage_date >= prepared.month.0
                    && prepared.usage_date <= prepared.month.1;
                let before = if in_month {
                    after.saturating_sub(prepared.markup_units)
                } else {
                    after
                };
                Some($crate::repo::limits::limit_status(
                    $client_id,
                    billing.monthly_limit,
                    prepared.month.0,
                    after,
                    Some(before),
                ))
            }
        }
    }};
}
pub(crate) use limit_after_increment;

/// Loads the active client's billing settings inside a transaction (`NotFound` otherwise).
macro_rules! load_billing {
    ($conn:ident, $client:expr) => {{
        let row: Option<$crate::repo::usage::ClientBilling> =
            $crate::schema::client_organizations::dsl::client_organizations
                .find($client)
                .select((
                    $crate::schema::client_organizations::dsl::timezone,
                    $crate::schema::client_organizations::dsl::markup_rate,
                    $crate::schema::client_organizations::dsl::monthly_limit,
                    $crate::schema::client_organizations::dsl::is_active,
                ))
                .first($conn)
                .optional()?;
        match row {
            Some(c) if c.is_active => Ok(c),
            _ => Err($crate::error::TxError::from(
                ::orgusage_domain::Error::NotFound {
                    entity: "client",
                    id: $client.to_string(),
                },
            )),
        }
    }};
}

pub(crate) use load_billing;

/// Repository of the usage tables.
#[derive(Debug, Clone, Copy)]
pub struct UsageRepo<'a> {
    pub(crate) db: &'a Database,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) catalogue: &'a [CatalogueModel],
}

impl<'a> UsageRepo<'a> {
    /// A repository over `db`; `catalogue` lists models shown with zeros in by-model reports.
    pub fn new(db: &'a Database, clock: &'a dyn Clock, catalogue: &'a [CatalogueModel]) -> Self {
        Self {
            db,
            clock,
            catalogue,
        }
    }

    /// Records one request: adds tokens, one request, raw and marked-up cost to the client, user
    /// and model rows of its client-local day, in one transaction.
    ///
    /// Errors (nothing written): unknown or inactive client ([`Error::NotFound`]); negative
    /// tokens or costs, blank ids or model name ([`Error::InvalidInput`]); overflow.
    pub fn record_usage(&self, record: &UsageRecord) -> Result<RecordedUsage> {
        let _span =
            tracing::debug_span!("orgusage.usage.record", client_org_id = %record.client_org_id)
                .entered();
        let (raw_units, explicit_markup) = record.validate()?;
        let total_tokens = record.total_tokens()?;
        let now = self.clock.now();
        crate::write_tx!(self.db, |conn| {
            let client: ClientBilling = load_billing!(conn, &record.client_org_id)?;
            let prepared = prepare(&client, record, raw_units, explicit_markup, now)?;
            let inc = Increment {
                client_org_id: &record.client_org_id,
                user_id: &record.user_id,
                openrouter_user_id: &record.openrouter_user_id,
                model_name: &record.model_name,
                provider: record.provider.as_deref(),
                usage_date: prepared.usage_date,
                input_tokens: record.input_tokens,
                output_tokens: record.output_tokens,
                total_tokens,
                raw_units,
                markup_units: prepared.markup_units,
                now: now.timestamp(),
            };
            apply_increment!(conn, &inc);
            let status = limit_after_increment!(conn, &record.client_org_id, &client, &prepared);
            Ok(RecordedUsage {
                usage_date: prepared.usage_date,
                total_tokens,
                raw_cost: units_to_decimal(raw_units),
                markup_cost: units_to_decimal(prepared.markup_units),
                limit_crossed: status.as_ref().is_some_and(|s| s.1),
                monthly_limit: status.map(|s| s.0),
            })
        })
    }
}

/// Day, markup and current month of a record, decided from the client's settings.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub usage_date: NaiveDate,
    pub markup_units: i64,
    /// The client's current local month to date: (first day, today).
    pub month: (NaiveDate, NaiveDate),
}

pub(crate) fn prepare(
    client: &ClientBilling,
    record: &UsageRecord,
    raw_units: i64,
    explicit_markup: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Prepared, TxError> {
    let tz = parse_timezone(&client.timezone)?;
    let usage_date = match (record.usage_date, record.occurred_at) {
        (Some(date), _) => date,
        (None, Some(at)) => local_date_at(tz, at),
        (None, None) => local_date_at(tz, now),
    };
    let markup_units = match explicit_markup {
        Some(m) => m,
        None => {
            let product = units_to_decimal(raw_units)
                .checked_mul(units_to_decimal(client.markup_rate))
                .ok_or_else(|| Error::Overflow("raw_cost x markup_rate".into()))?;
            amount_to_units(product)?
        }
    };
    let today = local_date_at(tz, now);
    Ok(Prepared {
        usage_date,
        markup_units,
        month: (month_start(today), today),
    })
}
