//! Read-only usage reports: client stats, by user, by model, billing for all clients.
//! Every read runs in the client's time zone (UTC when asked) and never writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::dsl::{Limit, count_star, max, sql};
use diesel::prelude::*;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::BigInt;
use orgusage_domain::money::{units_to_decimal, wide_units_to_decimal};
use orgusage_domain::timezone::{local_date_at, month_start, parse_timezone};
use orgusage_domain::usage::{
    ClientBillingResponse, ClientDailyUsage, ClientUsageStatsResponse, DailyHistoryItem,
    ModelUsage, MonthUsage, TodayUsage, UserUsage, report_range,
};
use orgusage_domain::{Error, Result};

use super::usage::UsageRepo;
use crate::error::TxError;
use crate::exact::exact_sum;
use crate::prepared::{Val, stmt};
use crate::rollup::{Bind, user_binds};
use crate::schema::client_daily_usage::dsl as d;
use crate::schema::client_model_daily_usage::dsl as md;
use crate::schema::client_organizations::dsl as co;
use crate::statements::UserReport;

/// How many days `daily_history` covers (today included).
pub const HISTORY_DAYS: i64 = 30;

#[derive(Queryable)]
struct DayRow {
    usage_date: NaiveDate,
    total_tokens: i64,
    total_requests: i64,
    markup_cost: i64,
    updated_at: i64,
}

#[derive(Queryable)]
struct GroupRow {
    key: String,
    label: Option<String>,
    tokens: i64,
    requests: i64,
    raw: i64,
    markup: i64,
    days: i64,
}

/// A row of [`USER_REPORT`](crate::rollup::USER_REPORT): a [`GroupRow`] and whether a month it used overflowed.
#[derive(Queryable)]
struct UserRow {
    key: String,
    label: Option<String>,
    tokens: i64,
    requests: i64,
    raw: i64,
    markup: i64,
    days: i64,
    overflowed: i64,
}

/// The SQL types of a [`UserRow`].
type UserRowSt = (
    diesel::sql_types::Text,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    BigInt,
    BigInt,
    BigInt,
    BigInt,
    BigInt,
    BigInt,
);

/// Client name and zone of an active client.
#[diesel::dsl::auto_type]
fn client_zone_query<'a>(client: &'a str) -> _ {
    let active: bool = true;
    co::client_organizations
        .filter(co::id.eq(client).and(co::is_active.eq(active)))
        .select((co::name, co::timezone))
}

/// The inclusive report range of an active client (`NotFound` otherwise): the given dates, with
/// the client's month to date (in its own zone) filling what is missing.
fn client_range<'q, C>(
    conn: &mut C,
    client: &'q str,
    (start, end): (Option<NaiveDate>, Option<NaiveDate>),
    now: DateTime<Utc>,
) -> Result<(NaiveDate, NaiveDate), TxError>
where
    C: Connection,
    Limit<client_zone_query<'q>>: LoadQuery<'q, C, (String, String)>,
{
    let (_, tz_name) = client_zone(conn, client)?;
    Ok(report_range(
        start,
        end,
        local_date_at(zone(&tz_name, true)?, now),
    )?)
}

/// Client name and zone of an active client (`NotFound` otherwise).
fn client_zone<'q, C>(conn: &mut C, client: &'q str) -> Result<(String, String), TxError>
where
    C: Connection,
    Limit<client_zone_query<'q>>: LoadQuery<'q, C, (String, String)>,
{
    let row = client_zone_query(client).first(conn).optional()?;
    row.ok_or_else(|| {
        TxError::from(Error::NotFound {
            entity: "client",
            id: client.to_string(),
        })
    })
}

fn zone(name: &str, use_client_timezone: bool) -> Result<Tz, TxError> {
    if use_client_timezone {
        Ok(parse_timezone(name)?)
    } else {
        Ok(Tz::UTC)
    }
}

fn hms(tz: Tz, unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&tz).format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

impl UsageRepo<'_> {
    /// The original's stats: `today`, `this_month` (client-local month to date, each day once),
    /// `daily_history` (up to 30 days ending today, newest first) and the client's name.
    /// Unknown or inactive clients are [`Error::NotFound`]. Two queries, no writes.
    pub fn get_usage_stats_by_client(
        &self,
        client_org_id: &str,
        use_client_timezone: bool,
    ) -> Result<ClientUsageStatsResponse> {
        let _span = tracing::debug_span!("orgusage.usage.stats", client_org_id).entered();
        let now = self.clock.now();
        crate::with_conn!(self.db, |conn| {
            let (name, tz_name) = client_zone(conn, client_org_id)?;
            let tz = zone(&tz_name, use_client_timezone)?;
            let today = local_date_at(tz, now);
            let first = month_start(today);
            let history_from = today - Duration::days(HISTORY_DAYS - 1);
            let rows: Vec<DayRow> = d::client_daily_usage
                .filter(
                    d::client_org_id
                        .eq(client_org_id)
                        .and(d::usage_date.between(first.min(history_from), today)),
                )
                .order(d::usage_date.desc())
                .select((
                    d::usage_date,
                    d::total_tokens,
                    d::total_requests,
                    d::markup_cost,
                    d::updated_at,
                ))
                .load(conn)?;
            let mut month = (0_i64, 0_i128, 0_i64, 0_i64);
            let mut today_usage = TodayUsage {
                tokens: 0,
                cost: units_to_decimal(0),
                requests: 0,
                last_updated: "No usage today".into(),
            };
            let mut history = Vec::new();
            for r in rows.iter().filter(|r| r.total_requests > 0) {
                if r.usage_date >= first {
                    month.0 += r.total_tokens;
                    month.1 += i128::from(r.markup_cost);
                    month.2 += r.total_requests;
                    month.3 += 1;
                }
                if r.usage_date == today {
                    today_usage = TodayUsage {
                        tokens: r.total_tokens,
                        cost: units_to_decimal(r.markup_cost),
                        requests: r.total_requests,
                        last_updated: hms(tz, r.updated_at),
                    };
                }
                if r.usage_date >= history_from {
                    history.push(DailyHistoryItem {
                        date: r.usage_date,
                        tokens: r.total_tokens,
                        cost: units_to_decimal(r.markup_cost),
                        requests: r.total_requests,
                    });
                }
            }
            Ok(ClientUsageStatsResponse {
                today: today_usage,
                this_month: MonthUsage {
                    tokens: month.0,
                    cost: wide_units_to_decimal(month.1)?,
                    requests: month.2,
                    days_active: month.3,
                },
                daily_history: history,
                client_org_name: name,
            })
        })
    }

    /// Per-user totals over an inclusive range (default: the client's month to date), by
    /// marked-up cost descending, then user id. Whole client-local months are read from the
    /// month rollups, so the cost follows the number of months and users, not of days (see
    /// [`crate::rollup`]).
    pub fn get_usage_by_user(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<UserUsage>> {
        let _span = tracing::debug_span!("orgusage.usage.by_user", client_org_id).entered();
        let now = self.clock.now();
        let rows: Vec<GroupRow> = crate::with_conn!(self.db, |conn| {
            let (start, end) = client_range(conn, client_org_id, (start_date, end_date), now)?;
            let binds: Vec<Val<'_>> = user_binds(start, end)
                .into_iter()
                .map(|b| match b {
                    Bind::Client => Val::Text(client_org_id),
                    Bind::Date(d) => Val::Date(d),
                    Bind::Flag(f) => Val::Int(f),
                })
                .collect();
            let rows: Vec<UserRow> = stmt::<UserReport, UserRowSt>(&binds).load(conn)?;
            if rows.iter().any(|r| r.overflowed != 0) {
                return Err(TxError::from(Error::Overflow(format!(
                    "the per-user sums of client {client_org_id} from {start} to {end} exceed \
                     the i64 storage range"
                ))));
            }
            Ok(rows
                .into_iter()
                .map(|r| GroupRow {
                    key: r.key,
                    label: r.label,
                    tokens: r.tokens,
                    requests: r.requests,
                    raw: r.raw,
                    markup: r.markup,
                    days: r.days,
                })
                .collect())
        })?;
        let mut out: Vec<UserUsage> = rows
            .into_iter()
            .map(|r| UserUsage {
                user_id: r.key,
                openrouter_user_id: r.label.unwrap_or_default(),
                total_tokens: r.tokens,
                total_requests: r.requests,
                raw_cost: units_to_decimal(r.raw),
                markup_cost: units_to_decimal(r.markup),
                days_active: r.days,
            })
            .collect();
        out.sort_by(|a, b| {
            b.markup_cost
                .cmp(&a.markup_cost)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        Ok(out)
    }

    /// Per-model totals over an inclusive range (default: the client's month to date). Every
    /// model with usage is listed; catalogue models without usage are added with zeros. Sorted
    /// by marked-up cost descending, then model id.
    pub fn get_usage_by_model(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ModelUsage>> {
        let _span = tracing::debug_span!("orgusage.usage.by_model", client_org_id).entered();
        let now = self.clock.now();
        let rows: Vec<GroupRow> = crate::with_conn!(self.db, |conn| {
            let (start, end) = client_range(conn, client_org_id, (start_date, end_date), now)?;
            Ok(md::client_model_daily_usage
                .filter(
                    md::client_org_id
                        .eq(client_org_id)
                        .and(md::usage_date.between(start, end)),
                )
                .group_by(md::model_name)
                .select((
                    md::model_name,
                    max(md::provider),
                    exact_sum(md::total_tokens),
                    exact_sum(md::total_requests),
                    exact_sum(md::raw_cost),
                    exact_sum(md::markup_cost),
                    count_star(),
                ))
                .load(conn)?)
        })?;
        let mut out: BTreeMap<String, ModelUsage> = rows
            .into_iter()
            .map(|r| {
                let usage = ModelUsage {
                    model_name: r.key.clone(),
                    provider: r.label,
                    total_tokens: r.tokens,
                    total_requests: r.requests,
                    raw_cost: units_to_decimal(r.raw),
                    markup_cost: units_to_decimal(r.markup),
                    days_used: r.days,
                };
                (r.key, usage)
            })
            .collect();
        for m in self.catalogue {
            out.entry(m.model_name.clone())
                .or_insert_with(|| ModelUsage {
                    model_name: m.model_name.clone(),
                    provider: m.provider.clone(),
                    total_tokens: 0,
                    total_requests: 0,
                    raw_cost: units_to_decimal(0),
                    markup_cost: units_to_decimal(0),
                    days_used: 0,
                });
        }
        let mut out: Vec<ModelUsage> = out.into_values().collect();
        out.sort_by(|a, b| {
            b.markup_cost
                .cmp(&a.markup_cost)
                .then_with(|| a.model_name.cmp(&b.model_name))
        });
        Ok(out)
    }

    /// Billing for every active client with usage in the range. With no dates each client gets
    /// its own client-local month to date. Raw cost is summed from stored rows, and
    /// `profit_margin = markup_cost - raw_cost` exactly. One query per distinct range (not per
    /// client): with explicit dates that is one query plus the client list.
    pub fn get_all_clients_usage_stats(
        &self,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ClientBillingResponse>> {
        let _span = tracing::debug_span!("orgusage.usage.all_clients").entered();
        if let (Some(start), Some(end)) = (start_date, end_date) {
            // Wrong order is an error even when there is no client to report on.
            report_range(Some(start), Some(end), end)?;
        }
        let now = self.clock.now();
        crate::with_conn!(self.db, |conn| {
            let clients: Vec<(String, String, String)> = co::client_organizations
                .filter(co::is_active.eq(true))
                .order((co::created_at.asc(), co::id.asc()))
                .select((co::id, co::name, co::timezone))
                .load(conn)?;
            let mut by_range: BTreeMap<(NaiveDate, NaiveDate), Vec<&str>> = BTreeMap::new();
            for (id, _, tz_name) in &clients {
                let today = local_date_at(parse_timezone(tz_name)?, now);
                if end_date.is_none() && start_date.is_some_and(|s| s > today) {
                    // `start` is still in this client's future (a client west of the others
                    // just before its midnight): its range is empty, so it has no row. Only
                    // explicit dates in the wrong order are the caller's error.
                    continue;
                }
                by_range
                    .entry(report_range(start_date, end_date, today)?)
                    .or_default()
                    .push(id);
            }
            let mut totals: BTreeMap<String, (GroupRow, (NaiveDate, NaiveDate))> = BTreeMap::new();
            for (range, ids) in by_range {
                let rows: Vec<GroupRow> = d::client_daily_usage
                    .filter(
                        d::client_org_id
                            .eq_any(&ids)
                            .and(d::usage_date.between(range.0, range.1)),
                    )
                    .group_by(d::client_org_id)
                    .select((
                        d::client_org_id,
                        sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("NULL"),
                        exact_sum(d::total_tokens),
                        exact_sum(d::total_requests),
                        exact_sum(d::raw_cost),
                        exact_sum(d::markup_cost),
                        count_star(),
                    ))
                    .load(conn)?;
                totals.extend(rows.into_iter().map(|r| (r.key.clone(), (r, range))));
            }
            let mut out = Vec::new();
            for (id, name, _) in clients {
                let Some((r, range)) = totals.remove(&id) else {
                    continue;
                };
                if r.requests == 0 {
                    continue;
                }
                let raw = units_to_decimal(r.raw);
                let markup = units_to_decimal(r.markup);
                out.push(ClientBillingResponse {
                    client_org_id: id,
                    client_name: name,
                    total_tokens: r.tokens,
                    raw_cost: raw,
                    markup_cost: markup,
                    profit_margin: markup - raw,
                    total_requests: r.requests,
                    days_active: r.days,
                    start_date: range.0,
                    end_date: range.1,
                });
            }
            Ok(out)
        })
    }
}

#[derive(Queryable)]
struct DailyRow {
    client_org_id: String,
    usage_date: NaiveDate,
    total_tokens: i64,
    input_tokens: i64,
    output_tokens: i64,
    total_requests: i64,
    raw_cost: i64,
    markup_cost: i64,
    unique_users: i64,
    created_at: i64,
    updated_at: i64,
}

impl UsageRepo<'_> {
    /// The stored client-day rows of an inclusive range, oldest first (any client, active or not).
    pub fn get_daily_usage(
        &self,
        client_org_id: &str,
        start_date: NaiveDate,
        end_date: NaiveDate,
    ) -> Result<Vec<ClientDailyUsage>> {
        crate::with_conn!(self.db, |conn| {
            let rows: Vec<DailyRow> = d::client_daily_usage
                .filter(
                    d::client_org_id
                        .eq(client_org_id)
                        .and(d::usage_date.between(start_date, end_date)),
                )
                .order(d::usage_date.asc())
                .select((
                    d::client_org_id,
                    d::usage_date,
                    d::total_tokens,
                    d::input_tokens,
                    d::output_tokens,
                    d::total_requests,
                    d::raw_cost,
                    d::markup_cost,
                    d::unique_users,
                    d::created_at,
                    d::updated_at,
                ))
                .load(conn)?;
            // primary_model is derived here rather than stored: keeping a stored leader current
            // cost a fourth statement per recorded request.
            let models: Vec<(NaiveDate, String, i64)> = md::client_model_daily_usage
                .filter(
                    md::client_org_id
                        .eq(client_org_id)
                        .and(md::usage_date.between(start_date, end_date)),
                )
                .select((md::usage_date, md::model_name, md::total_tokens))
                .load(conn)?;
            let mut leaders: BTreeMap<NaiveDate, (i64, String)> = BTreeMap::new();
            for (day, model, tokens) in models {
                let better = leaders
                    .get(&day)
                    .is_none_or(|(t, m)| tokens > *t || (tokens == *t && model < *m));
                if better {
                    leaders.insert(day, (tokens, model));
                }
            }
            Ok(rows
                .into_iter()
                .map(|r| ClientDailyUsage {
                    client_org_id: r.client_org_id,
                    usage_date: r.usage_date,
                    total_tokens: r.total_tokens,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    total_requests: r.total_requests,
                    raw_cost: units_to_decimal(r.raw_cost),
                    markup_cost: units_to_decimal(r.markup_cost),
                    primary_model: leaders.remove(&r.usage_date).map(|(_, m)| m),
                    unique_users: r.unique_users,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
                .collect())
        })
    }
}
