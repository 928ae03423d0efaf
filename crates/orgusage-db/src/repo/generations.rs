//! The exactly-once ledger: `record_generation` (ledger row + usage in ONE transaction) and the
//! original's `ProcessedGenerationDb` methods.

use chrono::NaiveDate;
use diesel::prelude::*;
use orgusage_domain::bounds::{
    MAX_RECORD_COST, MAX_RECORD_TOKENS, validate_at_most, validate_usage_date,
};
use orgusage_domain::generations::{
    DateRange, GenerationOutcome, ProcessedGenerationInfo, ProcessedGenerationStats,
};
use orgusage_domain::models::validate_identifier;
use orgusage_domain::money::{units_to_decimal, validate_amount};
use orgusage_domain::usage::UsageRecord;
use orgusage_domain::{Clock, Error, Result};

use super::reservations::settle_reservation;
use super::usage::{
    Increment, UsageRepo, apply_increment, limit_after_increment, load_billing, prepare,
};
use crate::Database;
use crate::exact::exact_sum;
use crate::schema::client_organizations::dsl as co;
use crate::schema::processed_generations::{self, dsl as pg};

#[derive(Insertable)]
#[diesel(table_name = processed_generations)]
struct NewLedgerRow<'r> {
    client_org_id: &'r str,
    id: &'r str,
    generation_date: NaiveDate,
    processed_at: i64,
    total_cost: i64,
    total_tokens: i64,
    created_at: Option<i64>,
    model_name: Option<&'r str>,
}

/// The ledger's `created_at`, kept for reconciliation with OpenRouter's UTC-day activity: the
/// request's instant; a record booked "now" (no day, no instant) was made now. An explicit day
/// without an instant cannot be placed on a UTC day. Every path that writes a ledger row (single,
/// one statement, batch) uses this.
pub(crate) fn ledger_instant(
    record: &UsageRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<i64> {
    match (record.occurred_at, record.usage_date) {
        (Some(at), _) => Some(at.timestamp()),
        (None, None) => Some(now.timestamp()),
        (None, Some(_)) => None,
    }
}

impl UsageRepo<'_> {
    /// Records an OpenRouter generation exactly once per (client, generation id).
    ///
    /// In one transaction the ledger row is inserted and, only if it was new, the usage is
    /// applied as by `record_usage`. If anything fails neither exists, so a retry counts once.
    /// Concurrent submissions of the same id from any number of connections or processes
    /// bill it once: the ledger's primary key arbitrates. A known duplicate is answered from a
    /// read before any write lock is taken (ledger rows are never updated, only aged out).
    pub fn record_generation(
        &self,
        generation_id: &str,
        record: &UsageRecord,
    ) -> Result<GenerationOutcome> {
        let _span = tracing::debug_span!("orgusage.usage.record_generation", generation_id, client_org_id = %record.client_org_id).entered();
        validate_identifier("generation_id", generation_id)?;
        let (raw_units, explicit_markup) = record.validate()?;
        let total_tokens = record.total_tokens()?;
        let client = record.client_org_id.as_str();
        // PostgreSQL, client without a limit: ledger row and usage as one statement.
        let parts = (raw_units, explicit_markup, total_tokens);
        if let Some(outcome) =
            self.record_one_trip(Some(generation_id), record, parts, self.clock.now())?
        {
            return Ok(outcome);
        }
        // One read: is the client active, and is the id known? An inactive client is NotFound
        // even for a known id, as for every other write (nothing is written either way).
        let (active, seen): (bool, bool) = crate::with_conn!(self.db, |conn| {
            Ok(diesel::select((
                diesel::dsl::exists(
                    co::client_organizations.filter(co::id.eq(client).and(co::is_active.eq(true))),
                ),
                diesel::dsl::exists(pg::processed_generations.find((client, generation_id))),
            ))
            .get_result(conn)?)
        })?;
        match (active, seen) {
            (true, true) => {
                // Already billed: the reservation this replay carried holds nothing real.
                if let Some(id) = record.reservation_id.as_deref() {
                    super::reservations::SpendRepo::new(self.db, self.clock).release(id)?;
                }
                return Ok(GenerationOutcome::Duplicate);
            }
            (true, false) => {}
            (false, _) => {
                return Err(Error::NotFound {
                    entity: "client",
                    id: client.to_string(),
                });
            }
        }
        let now = self.clock.now();
        crate::write_tx!(self.db, |conn| {
            let billing = load_billing(conn, client)?;
            let prepared = prepare(&billing, record, explicit_markup, now)?;
            let inserted = diesel::insert_into(pg::processed_generations)
                .values(&NewLedgerRow {
                    client_org_id: client,
                    id: generation_id,
                    generation_date: prepared.usage_date,
                    processed_at: now.timestamp(),
                    total_cost: raw_units,
                    total_tokens,
                    created_at: ledger_instant(record, now),
                    model_name: Some(&record.model_name),
                })
                .on_conflict_do_nothing()
                .execute(conn)?;
            // Settled before the duplicate check: a replay's reservation is freed too.
            let lock_follows = inserted == 1 && billing.monthly_limit.is_some();
            settle_reservation(conn, record, lock_follows)?;
            if inserted == 0 {
                return Ok(GenerationOutcome::Duplicate);
            }
            let inc = Increment::new(record, &prepared, raw_units, total_tokens, now);
            apply_increment(conn, &inc)?;
            let settle = record.reservation_id.as_deref();
            let status = limit_after_increment(conn, client, &billing, &prepared, settle)?;
            Ok(GenerationOutcome::Recorded(prepared.recorded(
                raw_units,
                total_tokens,
                status,
            )))
        })
    }
}

/// Repository of the original's `ProcessedGenerationDb` methods.
#[derive(Debug, Clone, Copy)]
pub struct GenerationRepo<'a> {
    pub(crate) db: &'a Database,
    pub(crate) clock: &'a dyn Clock,
}

impl<'a> GenerationRepo<'a> {
    /// A repository over `db` using `clock`.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// True if this client already has this generation in the ledger. A database error is an
    /// error, never `false` (the original failed open, bug B20).
    pub fn is_generation_processed(
        &self,
        generation_id: &str,
        client_org_id: &str,
    ) -> Result<bool> {
        crate::with_conn!(self.db, |conn| {
            Ok(diesel::select(diesel::dsl::exists(
                pg::processed_generations.find((client_org_id, generation_id)),
            ))
            .get_result(conn)?)
        })
    }

    /// The ledger row of this client's generation, if any.
    pub fn get_processed_generation(
        &self,
        generation_id: &str,
        client_org_id: &str,
    ) -> Result<Option<ProcessedGenerationInfo>> {
        let row: Option<(String, String, NaiveDate, i64, i64, i64)> =
            crate::with_conn!(self.db, |conn| {
                Ok(pg::processed_generations
                    .find((client_org_id, generation_id))
                    .select((
                        pg::id,
                        pg::client_org_id,
                        pg::generation_date,
                        pg::total_cost,
                        pg::total_tokens,
                        pg::processed_at,
                    ))
                    .first(conn)
                    .optional()?)
            })?;
        Ok(row.map(
            |(id, client, date, cost, tokens, at)| ProcessedGenerationInfo {
                generation_id: id,
                client_org_id: client,
                generation_date: date,
                total_cost: units_to_decimal(cost),
                total_tokens: tokens,
                processed_at: at,
            },
        ))
    }

    /// Inserts a ledger row without recording usage (the original's separate "mark" step).
    /// `Ok(true)` if it was new, `Ok(false)` if it was already there. `total_cost` must be the
    /// raw cost. Prefer `record_generation`, which marks and records atomically.
    pub fn mark_generation_processed(
        &self,
        generation_id: &str,
        client_org_id: &str,
        generation_date: NaiveDate,
        total_cost: rust_decimal::Decimal,
        total_tokens: i64,
    ) -> Result<bool> {
        validate_identifier("generation_id", generation_id)?;
        validate_identifier("client_org_id", client_org_id)?;
        let cost = validate_amount("total_cost", total_cost)?;
        validate_at_most("total_cost", total_cost, MAX_RECORD_COST)?;
        if total_tokens < 0 {
            return Err(Error::invalid("total_tokens", "must not be negative"));
        }
        // A ledger row stands for one record: at most both of its token counts.
        if total_tokens > 2 * MAX_RECORD_TOKENS {
            return Err(Error::invalid(
                "total_tokens",
                format!("{total_tokens} exceeds the per-record limit"),
            ));
        }
        validate_usage_date("generation_date", generation_date)?;
        let now = self.clock.now().timestamp();
        crate::write_tx!(self.db, |conn| {
            load_billing(conn, client_org_id)?;
            let n = diesel::insert_into(pg::processed_generations)
                .values(&NewLedgerRow {
                    client_org_id,
                    id: generation_id,
                    generation_date,
                    processed_at: now,
                    total_cost: cost,
                    total_tokens,
                    created_at: None,
                    model_name: None,
                })
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(n == 1)
        })
    }

    /// Ledger totals of a client, optionally within an inclusive `generation_date` range.
    pub fn get_processed_generations_stats(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<ProcessedGenerationStats> {
        if let (Some(s), Some(e)) = (start_date, end_date) {
            if s > e {
                return Err(Error::invalid(
                    "start_date",
                    format!("{s} is after end_date {e}"),
                ));
            }
        }
        let (count, cost, tokens): (i64, i64, i64) = crate::with_conn!(self.db, |conn| {
            let mut q = pg::processed_generations
                .filter(pg::client_org_id.eq(client_org_id))
                .into_boxed();
            if let Some(s) = start_date {
                q = q.filter(pg::generation_date.ge(s));
            }
            if let Some(e) = end_date {
                q = q.filter(pg::generation_date.le(e));
            }
            Ok(q.select((
                diesel::dsl::count_star(),
                exact_sum(pg::total_cost),
                exact_sum(pg::total_tokens),
            ))
            .get_result(conn)?)
        })?;
        Ok(ProcessedGenerationStats {
            client_org_id: client_org_id.to_string(),
            total_processed: count,
            total_cost: units_to_decimal(cost),
            total_tokens: tokens,
            date_range: DateRange {
                start: start_date,
                end: end_date,
            },
        })
    }
}
