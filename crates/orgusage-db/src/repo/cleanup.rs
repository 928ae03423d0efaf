//! Retention cleanup of the ledger: deletes in bounded batches, each its own short transaction
//! (memory stays flat, SQLite's write lock is held for one batch at a time), and writes an audit
//! row on success and on failure.
//!
//! Cut-off rule: a row is deleted when `processed_at < now - days_to_keep x 86400 s`, i.e.
//! strictly older than the retention (a row exactly `days_to_keep` days old stays). The
//! reported `cutoff_date` is the UTC date of that instant.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Untyped};
use orgusage_domain::generations::{CleanupBreakdown, CleanupStatsResult};
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::{Error, Result};
use rust_decimal::{Decimal, RoundingStrategy};

use super::generations::GenerationRepo;
use crate::conn::PoolKind;
#[cfg(feature = "sqlite")]
use crate::conn::checkout;
use crate::error::TxError;
use crate::prepared::{Val, stmt};
use crate::schema::processed_generation_cleanup_log::{self, dsl as log};
use crate::schema::processed_generations::dsl as pg;
#[cfg(feature = "postgres")]
use crate::statements::PostgresDeleteBatch;
#[cfg(feature = "sqlite")]
use crate::statements::SqliteDeleteBatch;

/// The original's default retention.
pub const DEFAULT_DAYS_TO_KEEP: u32 = 60;
/// Rows per delete batch on PostgreSQL (row locks and WAL grow with the batch; other instances
/// skip locked rows, so smaller batches keep concurrent cleaners busy).
pub const CLEANUP_BATCH: i64 = 10_000;
/// Rows per delete batch on SQLite: each batch is one commit and may trigger a WAL checkpoint,
/// so fewer, larger batches are faster (1M rows: 5.45 s at 10,000); a batch still holds the
/// write lock only for a fraction of a second and memory stays bounded by one batch.
pub const SQLITE_CLEANUP_BATCH: i64 = 25_000;
/// Fixed bytes per ledger row besides its two text columns: three BIGINTs (`processed_at`,
/// `total_cost`, `total_tokens`, 8 bytes each) and a DATE (`generation_date`, 4 bytes).
const FIXED_ROW_BYTES: i64 = 3 * 8 + 4;

#[derive(QueryableByName)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
struct Deleted {
    #[diesel(sql_type = Text)]
    client_org_id: String,
    #[diesel(sql_type = BigInt)]
    total_tokens: i64,
    #[diesel(sql_type = BigInt)]
    total_cost: i64,
    #[diesel(sql_type = BigInt)]
    payload: i64,
}

#[derive(Insertable)]
#[diesel(table_name = processed_generation_cleanup_log)]
struct NewLog<'a> {
    cleanup_date: chrono::NaiveDate,
    cutoff_date: chrono::NaiveDate,
    cutoff_timestamp: i64,
    days_retained: i64,
    records_before: i64,
    records_deleted: i64,
    records_remaining: i64,
    old_tokens_removed: i64,
    old_cost_removed: i64,
    payload_bytes_removed: i64,
    cleanup_duration_ms: i64,
    success: bool,
    error_message: Option<&'a str>,
    created_at: i64,
}

#[derive(Default)]
struct Tally {
    deleted: i64,
    tokens: i64,
    cost: i128,
    bytes: i64,
    batches: u32,
    per_org: BTreeMap<String, (i64, i64, i128)>,
}

impl Tally {
    fn add(&mut self, rows: Vec<Deleted>) {
        self.batches += 1;
        for r in rows {
            self.deleted += 1;
            self.tokens += r.total_tokens;
            self.cost += i128::from(r.total_cost);
            self.bytes += r.payload + FIXED_ROW_BYTES;
            let e = self.per_org.entry(r.client_org_id).or_default();
            e.0 += 1;
            e.1 += r.total_tokens;
            e.2 += i128::from(r.total_cost);
        }
    }
}

impl GenerationRepo<'_> {
    fn count_ledger(&self) -> Result<i64> {
        crate::with_conn!(self.db, |conn| Ok(pg::processed_generations
            .count()
            .get_result::<i64>(conn)?))
    }

    /// Deletes one batch; returns how many rows went.
    fn delete_batch(&self, cutoff: i64, tally: &mut Tally) -> Result<usize> {
        let rows: Vec<Deleted> = match self.db.pool() {
            #[cfg(feature = "sqlite")]
            PoolKind::Sqlite(pool) => {
                let _turn = self.db.write_turn();
                let mut conn = checkout(pool)?;
                let binds = [Val::Int(cutoff), Val::Int(SQLITE_CLEANUP_BATCH)];
                conn.immediate_transaction(|c| {
                    stmt::<SqliteDeleteBatch, Untyped>(&binds)
                        .load(c)
                        .map_err(TxError::from)
                })?
            }
            #[cfg(feature = "postgres")]
            PoolKind::Postgres(pool) => {
                use diesel::Connection;
                let mut conn = self.db.checkout_pg(pool)?;
                // As in `write_tx!`: a connection lost during COMMIT leaves the batch's outcome
                // unknown, and the error (in the run's result and audit row) says so.
                let mut body_ok = false;
                let binds = [Val::Int(cutoff), Val::Int(CLEANUP_BATCH)];
                let result = conn.transaction(|c| {
                    let rows = stmt::<PostgresDeleteBatch, Untyped>(&binds)
                        .load(c)
                        .map_err(TxError::from);
                    body_ok = rows.is_ok();
                    rows
                });
                let result = crate::error::tx_result(result, body_ok);
                crate::conn::discard_if_dead(&mut conn, &result);
                result?
            }
        };
        let n = rows.len();
        tally.add(rows);
        Ok(n)
    }

    /// Deletes ledger rows strictly older than `days_to_keep` days (default 60) in batches of
    /// 25,000 rows on SQLite and 10,000 on PostgreSQL, writes an audit row, and returns honest figures. A database error
    /// ends the run with `success: false` and `error` (and an audit row, if the database
    /// still accepts one); batches committed before it stay deleted and are counted. If only
    /// the audit row fails, `success` stays true and `error` says so.
    pub fn cleanup_old_processed_generations(
        &self,
        days_to_keep: Option<u32>,
    ) -> Result<CleanupStatsResult> {
        let days = days_to_keep.unwrap_or(DEFAULT_DAYS_TO_KEEP);
        let _span =
            tracing::info_span!("orgusage.generations.cleanup", days_to_keep = days).entered();
        let started = Instant::now();
        let now = self.clock.now();
        let cutoff_at: DateTime<Utc> = now
            .checked_sub_signed(Duration::days(i64::from(days)))
            .ok_or_else(|| {
                Error::invalid(
                    "days_to_keep",
                    "reaches before the representable time range",
                )
            })?;
        let cutoff = cutoff_at.timestamp();
        let mut tally = Tally::default();
        let mut before = 0;
        let run = (|| -> Result<i64> {
            before = self.count_ledger()?;
            // A short batch means nothing (unlocked) is left below the cut-off.
            let batch = match self.db.backend() {
                crate::Backend::Sqlite => SQLITE_CLEANUP_BATCH,
                crate::Backend::Postgres => CLEANUP_BATCH,
            };
            while self.delete_batch(cutoff, &mut tally)? == batch as usize {
                tracing::debug!(
                    deleted = tally.deleted,
                    batches = tally.batches,
                    "cleanup progress"
                );
            }
            self.count_ledger()
        })();
        let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (success, error, remaining) = match run {
            Ok(remaining) => (true, None, remaining),
            Err(e) => (false, Some(e.to_string()), (before - tally.deleted).max(0)),
        };
        let cost_units =
            i64::try_from(tally.cost).map_err(|_| Error::Overflow("removed cost".into()))?;
        let message: Option<String> = error.as_ref().map(|e| e.chars().take(500).collect());
        let audit = NewLog {
            cleanup_date: now.date_naive(),
            cutoff_date: cutoff_at.date_naive(),
            cutoff_timestamp: cutoff,
            days_retained: i64::from(days),
            records_before: before,
            records_deleted: tally.deleted,
            records_remaining: remaining,
            old_tokens_removed: tally.tokens,
            old_cost_removed: cost_units,
            payload_bytes_removed: tally.bytes,
            cleanup_duration_ms: elapsed_ms,
            success,
            error_message: message.as_deref(),
            created_at: now.timestamp(),
        };
        let logged: Result<usize> = crate::write_tx!(self.db, |conn| Ok(diesel::insert_into(
            log::processed_generation_cleanup_log
        )
        .values(&audit)
        .execute(conn)?));
        // The rows are gone either way: an audit failure must not hide the figures, so it is
        // reported in `error` next to them instead of replacing them with an `Err`.
        let error = match (logged, error) {
            (Err(e), None) => {
                tracing::error!(error = %e, "could not write the cleanup audit row");
                Some(format!(
                    "cleanup done but its audit row was not written: {e}"
                ))
            }
            (Err(e), Some(run)) => {
                tracing::error!(error = %e, "could not write the failure audit row");
                Some(run)
            }
            (Ok(_), error) => error,
        };
        if let Some(e) = &error {
            tracing::error!(error = %e, deleted = tally.deleted, "ledger cleanup failed");
        } else {
            tracing::info!(
                deleted = tally.deleted,
                batches = tally.batches,
                elapsed_ms,
                "ledger cleanup done"
            );
        }
        let kb = (Decimal::from(tally.bytes) / Decimal::from(1024))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        Ok(CleanupStatsResult {
            success,
            cutoff_date: cutoff_at.date_naive().to_string(),
            cutoff_timestamp: cutoff,
            days_to_keep: days,
            records_before: before,
            records_deleted: tally.deleted,
            records_remaining: remaining,
            old_tokens_removed: tally.tokens,
            old_cost_removed: units_to_decimal(cost_units),
            storage_saved_kb: kb,
            cleanup_duration_seconds: Decimal::new(elapsed_ms, 3),
            organization_breakdown: tally
                .per_org
                .into_iter()
                .map(|(org, (records, tokens, cost))| {
                    let cost = i64::try_from(cost)
                        .map(units_to_decimal)
                        .unwrap_or(Decimal::MAX);
                    (
                        org,
                        CleanupBreakdown {
                            records,
                            tokens,
                            cost,
                        },
                    )
                })
                .collect(),
            cleanup_timestamp: now.timestamp(),
            batches: tally.batches,
            error,
        })
    }
}

/// One row of `processed_generation_cleanup_log`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = processed_generation_cleanup_log)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
pub struct CleanupLogEntry {
    /// Row id.
    pub id: i64,
    /// UTC date the cleanup ran.
    pub cleanup_date: chrono::NaiveDate,
    /// UTC date of the cut-off instant.
    pub cutoff_date: chrono::NaiveDate,
    /// Retention in days.
    pub days_retained: i64,
    /// Rows deleted.
    pub records_deleted: i64,
    /// Whether the run succeeded.
    pub success: bool,
    /// The error (first 500 characters), if any.
    pub error_message: Option<String>,
    /// Unix seconds of the run.
    pub created_at: i64,
}

impl GenerationRepo<'_> {
    /// The most recent cleanup audit rows, newest first.
    pub fn get_cleanup_log(&self, limit: i64) -> Result<Vec<CleanupLogEntry>> {
        crate::with_conn!(self.db, |conn| {
            Ok(log::processed_generation_cleanup_log
                .order(log::id.desc())
                .limit(limit)
                .select((
                    log::id,
                    log::cleanup_date,
                    log::cutoff_date,
                    log::days_retained,
                    log::records_deleted,
                    log::success,
                    log::error_message,
                    log::created_at,
                ))
                .load(conn)?)
        })
    }
}
