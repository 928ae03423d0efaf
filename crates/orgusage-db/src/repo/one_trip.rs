//! PostgreSQL: `record_usage` of a client without a monthly limit in ONE statement, one round
//! trip, instead of six (BEGIN, billing SELECT, three upserts, COMMIT).
//!
//! The record's day and markup depend on the client's time zone and markup rate, and the markup
//! must be computed once, exactly, from the raw cost (`mul_rate_to_units`), so they are decided
//! here from a per-store cache of each client's billing settings. The statement then re-checks
//! those settings itself: its first CTE selects the client only if it is still active, without
//! a limit, and with the cached rate and zone, and every upsert reads from that CTE. If anything
//! changed (another instance updated the client), the statement writes nothing, the cache entry
//! is dropped and the ordinary transaction runs, so a stale cache can cost a round trip but
//! never book a record with old settings. Clients with a limit always take the ordinary path:
//! the limit check needs the per-client lock and a new snapshot after the increment.
//!
//! A single statement is atomic on its own (autocommit), so no BEGIN/COMMIT is needed. The
//! overflow guard of the client-day upsert still holds: when it refuses the row while the client
//! matched, the final `SELECT` divides by zero, which aborts the whole statement (user and model
//! rows included), and that error is reported as `Overflow`.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::usage::{RecordedUsage, UsageRecord};
use orgusage_domain::{Error, Result};

use super::usage::{ClientBilling, UsageRepo, prepare};

/// Entries kept at most; past it the cache starts over (it only saves round trips).
const MAX_CLIENTS: usize = 10_000;

/// The billing settings of recently recorded clients, per store (see the module docs).
#[derive(Debug, Default)]
pub struct BillingCache {
    map: Mutex<HashMap<String, ClientBilling>>,
}

impl BillingCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, client: &str) -> Option<ClientBilling> {
        self.lock().get(client).cloned()
    }

    fn put(&self, client: &str, billing: ClientBilling) {
        let mut map = self.lock();
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(client.to_string(), billing);
    }

    fn forget(&self, client: &str) {
        self.lock().remove(client);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClientBilling>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The whole record as one statement. Binds, in order: the client check (id, markup rate, time
/// zone), the user upsert (11, as `UPSERT_USER_DAY`), the client-day upsert (9: its
/// `unique_users` comes from the user upsert's `RETURNING`), the model upsert (11). Returns
/// (client matched: 0 or 1, 1).
pub const PG_RECORD_ONE: &str = "WITH b AS (SELECT 1 AS ok FROM client_organizations \
    WHERE id = ? AND is_active AND monthly_limit IS NULL AND markup_rate = ? AND timezone = ?), \
    u AS (INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) \
    SELECT ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ? FROM b \
    ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_daily_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_daily_usage.openrouter_user_id END, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + 1, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at \
    RETURNING total_requests), \
    c AS (INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) \
    SELECT ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, CASE WHEN u.total_requests = 1 THEN 1 ELSE 0 END FROM u \
    ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
    total_tokens = client_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_daily_usage.total_requests + 1, \
    raw_cost = client_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_daily_usage.markup_cost + excluded.markup_cost, \
    unique_users = client_daily_usage.unique_users + excluded.unique_users, \
    updated_at = excluded.updated_at \
    WHERE client_daily_usage.total_tokens <= 9223372036854775807 - excluded.total_tokens \
    AND client_daily_usage.raw_cost <= 9223372036854775807 - excluded.raw_cost \
    AND client_daily_usage.markup_cost <= 9223372036854775807 - excluded.markup_cost \
    RETURNING 1 AS ok), \
    m AS (INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) \
    SELECT ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ? FROM u \
    ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + 1, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at) \
    SELECT CAST((SELECT COUNT(*) FROM b) AS BIGINT), \
    CAST(1 / ((SELECT COUNT(*) FROM c) + 1 - (SELECT COUNT(*) FROM b)) AS BIGINT)";

impl UsageRepo<'_> {
    /// `record_usage` in one round trip when possible; `Ok(None)` means "take the ordinary
    /// transaction" (SQLite, no cache, a limited or unknown client, or changed settings).
    pub(crate) fn record_usage_one_trip(
        &self,
        record: &UsageRecord,
        (raw_units, explicit_markup, total_tokens): (i64, Option<i64>, i64),
        now: DateTime<Utc>,
    ) -> Result<Option<RecordedUsage>> {
        #[cfg(feature = "postgres")]
        if let (Some(cache), crate::conn::PoolKind::Postgres(pool)) =
            (self.billing_cache, self.db.pool())
        {
            let client = record.client_org_id.as_str();
            let billing = match cache.get(client) {
                Some(b) => b,
                None => {
                    let b: Option<ClientBilling> = crate::with_conn!(self.db, |conn| {
                        use crate::schema::client_organizations::dsl as co;
                        Ok(co::client_organizations
                            .find(client)
                            .select((
                                co::timezone,
                                co::markup_rate,
                                co::monthly_limit,
                                co::is_active,
                            ))
                            .first(conn)
                            .optional()?)
                    })?;
                    match b {
                        Some(b) if b.is_active && b.monthly_limit.is_none() => {
                            cache.put(client, b.clone());
                            b
                        }
                        _ => return Ok(None),
                    }
                }
            };
            let prepared = prepare(&billing, record, explicit_markup, now).map_err(Error::from)?;
            orgusage_domain::bounds::validate_usage_date("usage_date", prepared.usage_date)?;
            let inc = super::usage::Increment {
                client_org_id: client,
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
            let mut conn = crate::conn::checkout(pool)?;
            let result = run_one(&mut conn, &inc, &billing);
            crate::conn::discard_if_dead(&mut conn, &result);
            return match result? {
                true => Ok(Some(RecordedUsage {
                    usage_date: prepared.usage_date,
                    total_tokens,
                    raw_cost: units_to_decimal(raw_units),
                    markup_cost: units_to_decimal(prepared.markup_units),
                    limit_crossed: false,
                    monthly_limit: None,
                })),
                false => {
                    // The client changed since it was cached: nothing was written.
                    cache.forget(client);
                    Ok(None)
                }
            };
        }
        let _ = (record, raw_units, explicit_markup, total_tokens, now);
        Ok(None)
    }
}

/// Runs [`PG_RECORD_ONE`]; `Ok(false)` when the client no longer matches the cached settings.
#[cfg(feature = "postgres")]
fn run_one(
    conn: &mut diesel::PgConnection,
    inc: &super::usage::Increment<'_>,
    billing: &ClientBilling,
) -> Result<bool> {
    use crate::rawsql::{Val, stmt};
    use diesel::sql_types::BigInt;
    let binds = [
        Val::Text(inc.client_org_id),
        Val::Int(billing.markup_rate),
        Val::Text(&billing.timezone),
        // user
        Val::Text(inc.client_org_id),
        Val::Date(inc.usage_date),
        Val::Text(inc.user_id),
        Val::Text(inc.openrouter_user_id),
        Val::Int(inc.total_tokens),
        Val::Int(inc.input_tokens),
        Val::Int(inc.output_tokens),
        Val::Int(inc.raw_units),
        Val::Int(inc.markup_units),
        Val::Int(inc.now),
        Val::Int(inc.now),
        // client-day
        Val::Text(inc.client_org_id),
        Val::Date(inc.usage_date),
        Val::Int(inc.total_tokens),
        Val::Int(inc.input_tokens),
        Val::Int(inc.output_tokens),
        Val::Int(inc.raw_units),
        Val::Int(inc.markup_units),
        Val::Int(inc.now),
        Val::Int(inc.now),
        // model
        Val::Text(inc.client_org_id),
        Val::Date(inc.usage_date),
        Val::Text(inc.model_name),
        Val::Int(inc.total_tokens),
        Val::Int(inc.input_tokens),
        Val::Int(inc.output_tokens),
        Val::Int(inc.raw_units),
        Val::Int(inc.markup_units),
        Val::OptText(inc.provider),
        Val::Int(inc.now),
        Val::Int(inc.now),
    ];
    let row: QueryResult<(i64, i64)> =
        stmt::<4, (BigInt, BigInt)>(PG_RECORD_ONE, &binds).get_result(conn);
    match row {
        Ok((matched, _)) => Ok(matched == 1),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("division by zero") =>
        {
            Err(super::batch_plan::overflow_error(
                inc.client_org_id,
                inc.usage_date,
            ))
        }
        Err(e) => Err(crate::error::TxError::from(e).into()),
    }
}
