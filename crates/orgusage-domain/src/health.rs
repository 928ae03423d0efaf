//! Report shapes of the "Month Total" health API (seed `004`): double-counting validation,
//! month health check, and the rollover calls kept for compatibility.
//!
//! orgusage keeps one source of truth per day (the client's daily row, written in the same
//! transaction as the user and model rows), so there is no live counter to roll over and no
//! second store to double count. The health check *proves* that: for every day of the month it
//! checks client row = sum of user rows = sum of model rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

/// Result of `validate_no_double_counting(client, date)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoubleCountingValidation {
    /// True when the client row equals the sums of the user rows and of the model rows.
    pub valid: bool,
    /// The client.
    pub client_org_id: String,
    /// The client-local day checked.
    pub date: NaiveDate,
    /// Whether a client row exists for the day.
    pub has_daily_data: bool,
    /// Always false: orgusage keeps no live counters (kept for the original's shape).
    pub has_live_data: bool,
    /// Tokens of the client row (the original's key).
    pub daily_tokens: i64,
    /// Always 0: there is no live counter (the original's key).
    pub live_tokens: i64,
    /// Totals of the client row.
    pub daily: DayTotals,
    /// Sum over the user rows.
    pub users: DayTotals,
    /// Sum over the model rows.
    pub models: DayTotals,
    /// `double_counting` when the levels disagree.
    pub issue: Option<String>,
    /// `no_action_needed`, or what to do.
    pub recommended_action: String,
}

/// Tokens, requests and money of one level of one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayTotals {
    /// Tokens.
    pub tokens: i64,
    /// Requests.
    pub requests: i64,
    /// Raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
}

/// One check of a [`MonthHealthReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// Check name: `client_exists`, `double_counting`, `month_consistency`, `timezone_consistency`,
    /// `month_calculation`.
    pub check: String,
    /// `passed`, `failed`, `info` or `error`.
    pub status: String,
    /// Human-readable outcome.
    pub message: String,
    /// Figures behind the outcome.
    pub details: BTreeMap<String, String>,
}

/// Result of `create_month_total_health_check(client)`; it never writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthHealthReport {
    /// The client.
    pub client_org_id: String,
    /// When the check ran (RFC 3339, UTC, from the injected clock).
    pub timestamp: String,
    /// The individual checks, in order.
    pub checks: Vec<HealthCheck>,
    /// `healthy`, `warning` or `error`.
    pub overall_status: String,
    /// Number of failed checks.
    pub issues_found: u32,
    /// What to do about them.
    pub recommendations: Vec<String>,
}

/// Result of the rollover calls. They are idempotent no-ops: daily rows are written at
/// recording time in the client's zone, so there is nothing to move at midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloverResult {
    /// Always true unless the client is unknown.
    pub success: bool,
    /// Always 0.
    pub rollovers_performed: u32,
    /// Always 0.
    pub failed_rollovers: u32,
    /// The client, for the per-client call.
    pub client_org_id: Option<String>,
    /// The client's local today, for the per-client call.
    pub client_today: Option<NaiveDate>,
    /// Why nothing had to be done (or the error).
    pub message: String,
    /// When it ran (RFC 3339, UTC).
    pub timestamp: String,
    /// Wall time in seconds (the original's key).
    #[serde(with = "rust_decimal::serde::str")]
    pub duration_seconds: Decimal,
    /// Per-client results (the original's key); always empty as nothing is rolled over.
    pub details: Vec<BTreeMap<String, String>>,
}

/// Result of `get_rollover_health_status()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloverHealth {
    /// `healthy`: with no live counters nothing can be stale.
    pub status: String,
    /// Explanation.
    pub message: String,
    /// When it ran (RFC 3339, UTC).
    pub timestamp: String,
    /// Active clients.
    pub total_clients: u32,
    /// Clients whose data is current (all of them).
    pub current_counters: u32,
    /// Always 0.
    pub stale_counters: u32,
    /// Clients whose local date differs from the UTC date right now (information only).
    pub timezone_mismatches: u32,
    /// Stale counters (the original's key); always empty.
    pub stale_details: Vec<BTreeMap<String, String>>,
    /// Up to 5 clients whose local date differs from the UTC date (`client_org_id`,
    /// `client_timezone`, `client_date`, `server_date`).
    pub timezone_details: Vec<BTreeMap<String, String>>,
    /// Recommendations.
    pub recommendations: Vec<String>,
}
