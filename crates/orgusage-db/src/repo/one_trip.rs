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

// Without PostgreSQL there is no one-trip path: the cache is kept (the facade holds one) but unused.
#![cfg_attr(not(feature = "postgres"), allow(dead_code, unused_imports))]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::usage::{RecordedUsage, UsageRecord};
use orgusage_domain::{DatabaseErrorKind, Error, Result};

use super::usage::{ClientBilling, UsageRepo, prepare};

/// Entries kept at most; past it the cache starts over (it only saves round trips).
const MAX_CLIENTS: usize = 10_000;

/// The billing settings of recently recorded clients, per store (see the module docs).
///
/// Clients with a limit (or inactive) are cached too, so that their calls go straight to the
/// ordinary transaction without an extra read; since no statement re-checks those entries, they
/// are trusted for 30 seconds only.
#[derive(Debug, Default)]
pub struct BillingCache {
    map: Mutex<HashMap<String, (ClientBilling, Instant)>>,
}

/// How long a cached "take the ordinary path" entry (a limited or inactive client) is trusted.
const RECHECK_AFTER: Duration = Duration::from_secs(30);

impl BillingCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, client: &str) -> Option<ClientBilling> {
        let map = self.lock();
        let (billing, at) = map.get(client)?;
        let verified_by_statement = billing.is_active && billing.monthly_limit.is_none();
        (verified_by_statement || at.elapsed() < RECHECK_AFTER).then(|| billing.clone())
    }

    fn put(&self, client: &str, billing: ClientBilling) {
        let mut map = self.lock();
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(client.to_string(), (billing, Instant::now()));
    }

    fn forget(&self, client: &str) {
        self.lock().remove(client);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ClientBilling, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UsageRepo<'_> {
    /// `record_usage` in one round trip when possible; `Ok(None)` means "take the ordinary
    /// transaction" (SQLite, no cache, a limited or unknown client, or changed settings).
    pub(crate) fn record_usage_one_trip(
        &self,
        record: &UsageRecord,
        parts: (i64, Option<i64>, i64),
        now: DateTime<Utc>,
    ) -> Result<Option<RecordedUsage>> {
        Ok(match self.record_one_trip(None, record, parts, now)? {
            Some(GenerationOutcome::Recorded(done)) => Some(done),
            // Without a generation id there is no ledger row, so never a duplicate.
            _ => None,
        })
    }

    /// `record_usage` (no `generation_id`) or `record_generation` in one round trip when
    /// possible; `Ok(None)` means "take the ordinary path".
    pub(crate) fn record_one_trip(
        &self,
        generation_id: Option<&str>,
        record: &UsageRecord,
        (raw_units, explicit_markup, total_tokens): (i64, Option<i64>, i64),
        now: DateTime<Utc>,
    ) -> Result<Option<GenerationOutcome>> {
        // A record that settles a spend reservation takes the ordinary transaction, which
        // deletes the reservation atomically with the usage (see `reservations::settle_reservation`).
        #[cfg(feature = "postgres")]
        if let (Some(cache), crate::conn::PoolKind::Postgres(pool), None) = (
            self.billing_cache,
            self.db.pool(),
            record.reservation_id.as_deref(),
        ) {
            let client = record.client_org_id.as_str();
            let billing = match cache.get(client) {
                Some(b) => b,
                None => {
                    let b = crate::with_conn!(self.db, |conn| {
                        Ok(super::usage::find_billing(conn, client)?)
                    })?;
                    match b {
                        Some(b) => {
                            cache.put(client, b.clone());
                            b
                        }
                        None => return Ok(None),
                    }
                }
            };
            if !billing.is_active || billing.monthly_limit.is_some() {
                return Ok(None);
            }
            let prepared = prepare(&billing, record, explicit_markup, now).map_err(Error::from)?;
            let inc = super::usage::Increment::new(record, &prepared, raw_units, total_tokens, now);
            let mut conn = self.db.checkout_pg(pool)?;
            let ledger = (
                super::generations::ledger_instant(record, now),
                generation_id,
            );
            let result = run_one(&mut conn, &inc, &billing, ledger);
            crate::conn::discard_if_dead(&mut conn, &result);
            return match result? {
                // A client without a limit: no limit status, never crossed.
                Matched::Written => Ok(Some(GenerationOutcome::Recorded(prepared.recorded(
                    raw_units,
                    total_tokens,
                    None,
                )))),
                Matched::Duplicate => Ok(Some(GenerationOutcome::Duplicate)),
                Matched::Changed => {
                    // The client changed since it was cached: nothing was written.
                    cache.forget(client);
                    Ok(None)
                }
            };
        }
        let _ = (
            generation_id,
            record,
            raw_units,
            explicit_markup,
            total_tokens,
            now,
        );
        Ok(None)
    }
}

/// What [`PgRecordOne`](crate::statements::PgRecordOne) did.
#[cfg(feature = "postgres")]
enum Matched {
    /// The usage (and the ledger row, if any) was written.
    Written,
    /// The generation id was already in the ledger: nothing was written.
    Duplicate,
    /// The client no longer matches the cached settings: nothing was written.
    Changed,
}

/// Runs [`PgRecordOne`](crate::statements::PgRecordOne).
#[cfg(feature = "postgres")]
fn run_one(
    conn: &mut diesel::PgConnection,
    inc: &super::usage::Increment<'_>,
    billing: &ClientBilling,
    (created_at, generation_id): (Option<i64>, Option<&str>),
) -> Result<Matched> {
    use crate::prepared::{Val, stmt};
    use crate::statements::PgRecordOne;
    use diesel::sql_types::BigInt;
    let mut binds = Vec::with_capacity(51);
    // the client check
    binds.extend([
        Val::Text(inc.client_org_id),
        Val::Int(billing.markup_rate),
        Val::Text(&billing.timezone),
    ]);
    // the ledger row, only with a generation id
    binds.extend([
        Val::Text(inc.client_org_id),
        Val::OptText(generation_id),
        Val::Date(inc.usage_date),
        Val::Int(inc.now),
        Val::Int(inc.raw_units),
        Val::Int(inc.total_tokens),
        Val::OptInt(created_at),
        Val::Text(inc.model_name),
        Val::OptText(generation_id),
    ]);
    binds.extend(inc.user_binds());
    binds.push(Val::OptText(generation_id));
    binds.extend(inc.client_binds());
    binds.extend(inc.model_binds());
    // the user-month rollup (the statement writes it itself: see `PgRecordOne`)
    binds.extend([
        Val::Date(orgusage_domain::timezone::month_start(inc.usage_date)),
        Val::Text(inc.openrouter_user_id),
        Val::Int(inc.total_tokens),
        Val::Int(inc.input_tokens),
        Val::Int(inc.output_tokens),
        Val::Int(inc.raw_units),
        Val::Int(inc.markup_units),
    ]);
    let row: QueryResult<(i64, i64, i64)> =
        stmt::<PgRecordOne, (BigInt, BigInt, BigInt)>(&binds).get_result(conn);
    match row {
        Ok((0, _, _)) => Ok(Matched::Changed),
        Ok((_, 0, _)) if generation_id.is_some() => Ok(Matched::Duplicate),
        Ok(_) => Ok(Matched::Written),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("division by zero") =>
        {
            Err(super::batch_plan::overflow_error(
                inc.client_org_id,
                inc.usage_date,
            ))
        }
        Err(e) => Err(match Error::from(crate::error::TxError::from(e)) {
            // The statement is its own transaction: once sent, a lost connection may have
            // lost only the answer to its commit. Saying "nothing was written" could make a
            // caller repeat a `record_usage` that counted.
            e if e.database_kind() == Some(DatabaseErrorKind::Connection) => Error::database(
                DatabaseErrorKind::CommitUnknown,
                format!("connection lost during a single-statement write: {e}"),
            ),
            e => e,
        }),
    }
}
