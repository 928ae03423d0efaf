//! `daily_exchange_rates` (the rate applied to each cost date, shared by every instance) and the
//! per-day cost rows that PLN reports convert. No HTTP here: fetching rates is the facade's job.
//!
//! The rate table is written first-writer-wins: `INSERT … ON CONFLICT DO NOTHING`, then the
//! stored rows are read back in the same transaction, so concurrent instances converge on one
//! rate per (date, pair, rule) and a stored day never reprices.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::query_dsl::LoadQuery;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::pln::{DailyRate, RateRule};
use orgusage_domain::{Clock, Error, Result};

use crate::Database;
use crate::schema::client_daily_usage::dsl as d;
use crate::schema::client_model_daily_usage::dsl as md;
use crate::schema::client_organizations::dsl as co;
use crate::schema::client_user_daily_usage::dsl as ud;
use crate::schema::daily_exchange_rates::{self, dsl as r};

/// The costs of one key (client, user or model) on one day, in storage units.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct DayCosts {
    /// The client id, user id or model name the row belongs to.
    pub key: String,
    /// Client-local date.
    pub usage_date: NaiveDate,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost in nano-USD.
    pub raw_units: i64,
    /// Marked-up cost in nano-USD.
    pub markup_units: i64,
}

/// Name, zone and state of a client, active or not.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = crate::schema::client_organizations)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
pub struct ClientHeader {
    /// The client's name.
    pub name: String,
    /// Its IANA zone.
    pub timezone: String,
    /// Whether it is active.
    pub is_active: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = daily_exchange_rates)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
struct RateRow {
    rate_date: NaiveDate,
    currency_from: String,
    currency_to: String,
    rate: i64,
    table_no: String,
    effective_date: NaiveDate,
    source: String,
}

impl From<RateRow> for DailyRate {
    fn from(row: RateRow) -> Self {
        DailyRate {
            cost_date: row.rate_date,
            currency_from: row.currency_from,
            currency_to: row.currency_to,
            rate: units_to_decimal(row.rate),
            table_no: Some(row.table_no),
            effective_date: Some(row.effective_date),
            source: row.source,
            is_fallback: false,
            is_provisional: false,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = daily_exchange_rates)]
struct NewRate<'a> {
    rate_date: NaiveDate,
    currency_from: &'a str,
    currency_to: &'a str,
    rate_rule: &'a str,
    rate: i64,
    table_no: &'a str,
    effective_date: NaiveDate,
    source: &'a str,
    fetched_at: i64,
}

/// The stored rates of a pair and rule for the cost dates `from..=to`, oldest first.
#[diesel::dsl::auto_type]
fn rates_query<'a>(
    currency_from: &'a str,
    currency_to: &'a str,
    rule: &'a str,
    from: NaiveDate,
    to: NaiveDate,
) -> _ {
    r::daily_exchange_rates
        .filter(
            r::currency_from
                .eq(currency_from)
                .and(r::currency_to.eq(currency_to))
                .and(r::rate_rule.eq(rule))
                .and(r::rate_date.between(from, to)),
        )
        .order(r::rate_date.asc())
        .select((
            r::rate_date,
            r::currency_from,
            r::currency_to,
            r::rate,
            r::table_no,
            r::effective_date,
            r::source,
        ))
}

/// Loads [`rates_query`] of `pair` and `rule`.
fn load_rates<C>(
    conn: &mut C,
    pair: (&str, &str),
    rule: RateRule,
    (from, to): (NaiveDate, NaiveDate),
) -> QueryResult<Vec<RateRow>>
where
    C: Connection,
    for<'a> rates_query<'a>: LoadQuery<'a, C, RateRow>,
{
    rates_query(pair.0, pair.1, rule.as_str(), from, to).load(conn)
}

/// The client-day rows of one client in `from..=to`, oldest first (`key` = client id).
#[diesel::dsl::auto_type]
fn client_days_query<'a>(client: &'a str, from: NaiveDate, to: NaiveDate) -> _ {
    d::client_daily_usage
        .filter(
            d::client_org_id
                .eq(client)
                .and(d::usage_date.between(from, to)),
        )
        .order(d::usage_date.asc())
        .select((
            d::client_org_id,
            d::usage_date,
            d::total_tokens,
            d::total_requests,
            d::raw_cost,
            d::markup_cost,
        ))
}

/// Repository of `daily_exchange_rates` and the per-day cost rows PLN reports read.
#[derive(Debug, Clone, Copy)]
pub struct RatesRepo<'a> {
    db: &'a Database,
    clock: &'a dyn Clock,
}

impl<'a> RatesRepo<'a> {
    /// A repository over `db`; `clock` stamps `fetched_at`.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// The stored rates of `(currency_from, currency_to, rule)` for `dates`, oldest first; dates
    /// without a stored rate are simply absent. One query over the dates' span.
    pub fn get_rates(
        &self,
        currency_from: &str,
        currency_to: &str,
        rule: RateRule,
        dates: &BTreeSet<NaiveDate>,
    ) -> Result<Vec<DailyRate>> {
        let (Some(from), Some(to)) = (dates.first(), dates.last()) else {
            return Ok(Vec::new());
        };
        let pair = (currency_from, currency_to);
        let span = (*from, *to);
        let rows = crate::with_conn!(self.db, |conn| Ok(load_rates(conn, pair, rule, span)?))?;
        Ok(rows
            .into_iter()
            .filter(|row| dates.contains(&row.rate_date))
            .map(DailyRate::from)
            .collect())
    }

    /// Stores `rates` under `rule`, first writer wins, and returns what is stored for their
    /// dates afterwards (an earlier writer's rate where there was one), oldest first.
    ///
    /// Every rate must come from a published table: a fallback or provisional rate, or one
    /// without a table number, is [`Error::InvalidInput`] and nothing is written. All rates must
    /// share one currency pair.
    pub fn store_rates(&self, rule: RateRule, rates: &[DailyRate]) -> Result<Vec<DailyRate>> {
        let Some(first) = rates.first() else {
            return Ok(Vec::new());
        };
        let pair = (first.currency_from.as_str(), first.currency_to.as_str());
        let now = self.clock.now().timestamp();
        let mut rows = Vec::with_capacity(rates.len());
        let mut dates = BTreeSet::new();
        for rate in rates {
            if rate.is_fallback || rate.is_provisional {
                return Err(Error::invalid(
                    "rate",
                    format!(
                        "a fallback or provisional rate for {} is never stored",
                        rate.cost_date
                    ),
                ));
            }
            if (rate.currency_from.as_str(), rate.currency_to.as_str()) != pair {
                return Err(Error::invalid(
                    "rate",
                    "rates of one call must share a currency pair",
                ));
            }
            let (Some(table_no), Some(effective_date)) = (&rate.table_no, rate.effective_date)
            else {
                return Err(Error::invalid(
                    "rate",
                    format!("the rate for {} has no NBP table", rate.cost_date),
                ));
            };
            if effective_date > rate.cost_date {
                return Err(Error::invalid(
                    "effective_date",
                    format!(
                        "table of {effective_date} cannot apply to costs of {}",
                        rate.cost_date
                    ),
                ));
            }
            dates.insert(rate.cost_date);
            rows.push(NewRate {
                rate_date: rate.cost_date,
                currency_from: pair.0,
                currency_to: pair.1,
                rate_rule: rule.as_str(),
                rate: rate.rate_units()?,
                table_no,
                effective_date,
                source: &rate.source,
                fetched_at: now,
            });
        }
        let (Some(from), Some(to)) = (dates.first().copied(), dates.last().copied()) else {
            return Ok(Vec::new());
        };
        let stored: Vec<RateRow> = crate::write_tx!(self.db, |conn| {
            // One statement per row: diesel cannot batch `ON CONFLICT` inserts on SQLite, and a
            // month is a few dozen rows inside one transaction.
            for row in &rows {
                diesel::insert_into(r::daily_exchange_rates)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(conn)?;
            }
            Ok(load_rates(conn, pair, rule, (from, to))?)
        })?;
        Ok(stored
            .into_iter()
            .filter(|row| dates.contains(&row.rate_date))
            .map(DailyRate::from)
            .collect())
    }

    /// Name, zone and state of a client, active or not (statements may be needed for a client
    /// that was deactivated after the month).
    pub fn client_header(&self, client_org_id: &str) -> Result<Option<ClientHeader>> {
        crate::with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .find(client_org_id)
                .select((co::name, co::timezone, co::is_active))
                .first::<ClientHeader>(conn)
                .optional()?)
        })
    }

    /// [`RatesRepo::client_header`] and [`RatesRepo::client_days`] on one pooled connection
    /// (a statement's reads): `None` for an unknown client.
    pub fn client_month(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<(ClientHeader, Vec<DayCosts>)>> {
        crate::with_conn!(self.db, |conn| {
            let header: Option<ClientHeader> = co::client_organizations
                .find(client_org_id)
                .select((co::name, co::timezone, co::is_active))
                .first(conn)
                .optional()?;
            let Some(header) = header else {
                return Ok(None);
            };
            let days = client_days_query(client_org_id, from, to).load::<DayCosts>(conn)?;
            Ok(Some((header, days)))
        })
    }

    /// The client-day rows of one client in `from..=to`, oldest first (`key` = client id).
    pub fn client_days(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCosts>> {
        crate::with_conn!(self.db, |conn| {
            Ok(client_days_query(client_org_id, from, to).load::<DayCosts>(conn)?)
        })
    }

    /// The client-day rows of every client in `from..=to` (`key` = client id), by client and
    /// date. One query on the date index, whatever the number of clients.
    pub fn all_client_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayCosts>> {
        crate::with_conn!(self.db, |conn| {
            Ok(d::client_daily_usage
                .filter(d::usage_date.between(from, to))
                .order((d::client_org_id.asc(), d::usage_date.asc()))
                .select((
                    d::client_org_id,
                    d::usage_date,
                    d::total_tokens,
                    d::total_requests,
                    d::raw_cost,
                    d::markup_cost,
                ))
                .load::<DayCosts>(conn)?)
        })
    }

    /// The user-day rows of one client in `from..=to` (`key` = user id). The primary key holds
    /// one row per (client, day, user), so no grouping is needed.
    pub fn user_days(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCosts>> {
        crate::with_conn!(self.db, |conn| {
            Ok(ud::client_user_daily_usage
                .filter(
                    ud::client_org_id
                        .eq(client_org_id)
                        .and(ud::usage_date.between(from, to)),
                )
                .select((
                    ud::user_id,
                    ud::usage_date,
                    ud::total_tokens,
                    ud::total_requests,
                    ud::raw_cost,
                    ud::markup_cost,
                ))
                .load::<DayCosts>(conn)?)
        })
    }

    /// The model-day rows of one client in `from..=to` (`key` = model name).
    pub fn model_days(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCosts>> {
        crate::with_conn!(self.db, |conn| {
            Ok(md::client_model_daily_usage
                .filter(
                    md::client_org_id
                        .eq(client_org_id)
                        .and(md::usage_date.between(from, to)),
                )
                .select((
                    md::model_name,
                    md::usage_date,
                    md::total_tokens,
                    md::total_requests,
                    md::raw_cost,
                    md::markup_cost,
                ))
                .load::<DayCosts>(conn)?)
        })
    }
}
