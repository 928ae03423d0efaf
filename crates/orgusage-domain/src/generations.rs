//! Shapes of the exactly-once ledger (`ProcessedGenerationDb`) and of `record_generation`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::usage::RecordedUsage;

/// The outcome of `record_generation`. A duplicate is a normal, successful outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GenerationOutcome {
    /// The generation was new: its ledger row and its usage were written in one transaction.
    Recorded(RecordedUsage),
    /// The (client, generation id) pair was already in the ledger; nothing was written.
    Duplicate,
}

impl GenerationOutcome {
    /// True for [`GenerationOutcome::Recorded`].
    pub fn is_recorded(&self) -> bool {
        matches!(self, Self::Recorded(_))
    }
}

/// One ledger row (the original's `ProcessedGenerationInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessedGenerationInfo {
    /// OpenRouter generation id.
    pub generation_id: String,
    /// The client it was billed to.
    pub client_org_id: String,
    /// The client-local usage day it was booked on.
    pub generation_date: NaiveDate,
    /// Raw cost (USD), always the raw cost.
    #[serde(with = "rust_decimal::serde::str")]
    pub total_cost: Decimal,
    /// Tokens.
    pub total_tokens: i64,
    /// Unix seconds when it was recorded.
    pub processed_at: i64,
}

/// Per-client part of a cleanup result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupBreakdown {
    /// Rows deleted.
    pub records: i64,
    /// Their tokens.
    pub tokens: i64,
    /// Their raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
}

/// The result of `cleanup_old_processed_generations` (the original's `CleanupStatsResult` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupStatsResult {
    /// False when a database error stopped the cleanup (see `error`); rows deleted by
    /// batches that committed before the error stay deleted and are counted.
    pub success: bool,
    /// The date part of the cut-off instant (UTC), ISO.
    pub cutoff_date: String,
    /// The cut-off instant in Unix seconds: rows with `processed_at` strictly before it go.
    pub cutoff_timestamp: i64,
    /// Retention in days.
    pub days_to_keep: u32,
    /// Ledger rows before the cleanup.
    pub records_before: i64,
    /// Rows deleted by this run.
    pub records_deleted: i64,
    /// Ledger rows after the cleanup (counted, not computed).
    pub records_remaining: i64,
    /// Tokens of the deleted rows.
    pub old_tokens_removed: i64,
    /// Raw cost of the deleted rows (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub old_cost_removed: Decimal,
    /// Payload bytes of the deleted rows / 1024, rounded to 2 places: the bytes of their text
    /// columns plus 32 bytes of integers and 4 of date per row. Index and page overhead are not
    /// counted, so the space a database file actually frees may differ.
    #[serde(with = "rust_decimal::serde::str")]
    pub storage_saved_kb: Decimal,
    /// Wall time of the cleanup in seconds (3 places).
    #[serde(with = "rust_decimal::serde::str")]
    pub cleanup_duration_seconds: Decimal,
    /// Deleted rows per client.
    pub organization_breakdown: BTreeMap<String, CleanupBreakdown>,
    /// Unix seconds when the cleanup ran.
    pub cleanup_timestamp: i64,
    /// Number of delete batches (each its own short transaction).
    pub batches: u32,
    /// The error, when `success` is false.
    pub error: Option<String>,
}

/// `date_range` of [`ProcessedGenerationStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateRange {
    /// Inclusive start, or null.
    pub start: Option<NaiveDate>,
    /// Inclusive end, or null.
    pub end: Option<NaiveDate>,
}

/// The result of `get_processed_generations_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessedGenerationStats {
    /// The client.
    pub client_org_id: String,
    /// Ledger rows in the range.
    pub total_processed: i64,
    /// Their raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub total_cost: Decimal,
    /// Their tokens.
    pub total_tokens: i64,
    /// The inclusive `generation_date` range used.
    pub date_range: DateRange,
}
