//! Source row types (as read, every column nullable where the original allowed it) and the one
//! place where the original's floats become orgusage's exact units.

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use orgusage_domain::money::amount_to_units;
use rust_decimal::Decimal;

use crate::error::{ImportError, Result};
use crate::source::Kind;

/// Converts one of the original's float amounts to nano-units, **once**: the float's exact
/// binary value (`Decimal::from_f64_retain`, no decimal round trip through a string) is rounded
/// half away from zero to 1e-9 by `orgusage_domain::money::amount_to_units`. This is the only
/// f64 on the money path, as the original stored it; nothing is computed in floats.
///
/// ```ignore
/// assert_eq!(float_to_units(0.1 + 0.2, ..)?, 300_000_000); // 0.30000000000000004 -> 0.3
/// ```
pub(crate) fn float_to_units(
    value: Option<f64>,
    table: &'static str,
    column: &'static str,
    row: &str,
) -> Result<i64> {
    let v = value.unwrap_or(0.0);
    let invalid = |reason: &str| ImportError::InvalidValue {
        table,
        column,
        row: row.to_string(),
        reason: reason.to_string(),
    };
    let exact = Decimal::from_f64_retain(v).ok_or_else(|| invalid("not a finite number"))?;
    amount_to_units(exact).map_err(|e| invalid(&e.to_string()))
}

/// The exact value of a stored float as a `Decimal` (for the report's differences only).
pub(crate) fn float_exact(value: f64) -> Decimal {
    Decimal::from_f64_retain(value).unwrap_or_default()
}

/// Parses the original's date text (`YYYY-MM-DD`, possibly followed by a time).
pub(crate) fn parse_date(text: &str, table: &'static str, row: &str) -> Result<NaiveDate> {
    let head = text.get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(head, "%Y-%m-%d").map_err(|e| ImportError::InvalidValue {
        table,
        column: "date",
        row: row.to_string(),
        reason: format!("{text:?}: {e}"),
    })
}

/// `global_settings`.
#[derive(Debug, QueryableByName)]
pub(crate) struct SrcSettings {
    #[diesel(sql_type = Nullable<Text>)]
    pub openrouter_provisioning_key: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub default_markup_rate: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub billing_currency: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub updated_at: Option<i64>,
}
pub(crate) const SETTINGS_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("openrouter_provisioning_key", Kind::Text),
    ("default_markup_rate", Kind::Float),
    ("billing_currency", Kind::Text),
    ("created_at", Kind::Int),
    ("updated_at", Kind::Int),
];

/// `client_organizations`.
#[derive(Debug, QueryableByName)]
pub(crate) struct SrcClient {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub openrouter_api_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub openrouter_key_hash: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub markup_rate: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub monthly_limit: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub billing_email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub timezone: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub is_active: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub updated_at: Option<i64>,
}
pub(crate) const CLIENT_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("name", Kind::Text),
    ("openrouter_api_key", Kind::Text),
    ("openrouter_key_hash", Kind::Text),
    ("markup_rate", Kind::Float),
    ("monthly_limit", Kind::Float),
    ("billing_email", Kind::Text),
    ("timezone", Kind::Text),
    ("is_active", Kind::Bool),
    ("created_at", Kind::Int),
    ("updated_at", Kind::Int),
];

/// `user_client_mapping`.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct SrcMapping {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub client_org_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub openrouter_user_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub is_active: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub updated_at: Option<i64>,
}
pub(crate) const MAPPING_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("user_id", Kind::Text),
    ("client_org_id", Kind::Text),
    ("openrouter_user_id", Kind::Text),
    ("is_active", Kind::Bool),
    ("created_at", Kind::Int),
    ("updated_at", Kind::Int),
];

/// A row of any of the three daily tables (`user_id`/`openrouter_user_id` or
/// `model_name`/`provider` are `NULL` where the table has no such column).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct SrcDay {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub client_org_id: String,
    #[diesel(sql_type = Text)]
    pub usage_date: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub openrouter_user_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub model_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub provider: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_tokens: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_requests: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub raw_cost: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub markup_cost: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub updated_at: Option<i64>,
}
pub(crate) const DAY_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("client_org_id", Kind::Text),
    ("usage_date", Kind::Date),
    ("user_id", Kind::Text),
    ("openrouter_user_id", Kind::Text),
    ("model_name", Kind::Text),
    ("provider", Kind::Text),
    ("total_tokens", Kind::Int),
    ("total_requests", Kind::Int),
    ("raw_cost", Kind::Float),
    ("markup_cost", Kind::Float),
    ("created_at", Kind::Int),
    ("updated_at", Kind::Int),
];

/// `client_live_counters` (V1–V4). `current_date` is quoted when read (B25).
#[derive(Debug, QueryableByName)]
pub(crate) struct SrcLive {
    #[diesel(sql_type = Text)]
    pub client_org_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub current_date: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub today_tokens: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub today_requests: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub today_raw_cost: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub today_markup_cost: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_updated: Option<i64>,
}
pub(crate) const LIVE_COLS: &[(&str, Kind)] = &[
    ("client_org_id", Kind::Text),
    ("current_date", Kind::Date),
    ("today_tokens", Kind::Int),
    ("today_requests", Kind::Int),
    ("today_raw_cost", Kind::Float),
    ("today_markup_cost", Kind::Float),
    ("last_updated", Kind::Int),
];

/// `processed_generations` (V3–V5).
#[derive(Debug, QueryableByName)]
pub(crate) struct SrcLedger {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub client_org_id: String,
    #[diesel(sql_type = Text)]
    pub generation_date: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub processed_at: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub total_cost: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_tokens: Option<i64>,
}
pub(crate) const LEDGER_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("client_org_id", Kind::Text),
    ("generation_date", Kind::Date),
    ("processed_at", Kind::Int),
    ("total_cost", Kind::Float),
    ("total_tokens", Kind::Int),
];

/// `processed_generation_cleanup_log`.
#[derive(Debug, QueryableByName)]
pub(crate) struct SrcCleanup {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub cleanup_date: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cutoff_date: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub days_retained: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub records_before: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub records_deleted: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub records_remaining: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub old_tokens_removed: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub old_cost_removed: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub storage_saved_kb: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub cleanup_duration_seconds: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub success: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error_message: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
}
pub(crate) const CLEANUP_COLS: &[(&str, Kind)] = &[
    ("id", Kind::Int),
    ("cleanup_date", Kind::Date),
    ("cutoff_date", Kind::Date),
    ("days_retained", Kind::Int),
    ("records_before", Kind::Int),
    ("records_deleted", Kind::Int),
    ("records_remaining", Kind::Int),
    ("old_tokens_removed", Kind::Int),
    ("old_cost_removed", Kind::Float),
    ("storage_saved_kb", Kind::Float),
    ("cleanup_duration_seconds", Kind::Float),
    ("success", Kind::Bool),
    ("error_message", Kind::Text),
    ("created_at", Kind::Int),
];

/// A row count or a single text, for small catalogue and aggregate queries.
#[derive(Debug, QueryableByName)]
pub(crate) struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}
