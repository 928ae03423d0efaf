//! Usage records and report shapes of `ClientUsageDb`.
//!
//! Response types serialize with exactly the original's JSON keys (extra keys are additions, never
//! renames). Money is [`Decimal`] and serializes as a JSON **string** (`"0.013"`), so no JSON
//! reader can turn it into a float on the way.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::bounds::{
    MAX_RECORD_COST, MAX_RECORD_MARKUP_COST, validate_at_most, validate_instant, validate_tokens,
    validate_usage_date,
};
use crate::error::{Error, Result};
use crate::models::validate_identifier;
use crate::money::validate_amount;

/// One LLM request to record: the original's eleven `record_usage` arguments, plus an optional
/// event instant from which the usage day is derived in the client's time zone.
///
/// ```
/// use rust_decimal_macros::dec;
/// use orgusage_domain::usage::UsageRecord;
///
/// let rec = UsageRecord::new("client_acme", "u1", "or-u1", "anthropic/claude-sonnet-4")
///     .tokens(1000, 500)
///     .raw_cost(dec!(0.01))
///     .provider("anthropic");
/// assert_eq!(rec.total_tokens().unwrap(), 1500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The paying client (must exist and be active).
    pub client_org_id: String,
    /// The host application's user id.
    pub user_id: String,
    /// The OpenRouter `user` value sent with the request.
    pub openrouter_user_id: String,
    /// OpenRouter model id, e.g. `anthropic/claude-sonnet-4`.
    pub model_name: String,
    /// The client-local usage day. When `None` it is derived from `occurred_at` (or the clock's now)
    /// in the client's time zone. Either way it must lie in
    /// [`crate::bounds::MIN_USAGE_DATE`]..=[`crate::bounds::MAX_USAGE_DATE`].
    pub usage_date: Option<NaiveDate>,
    /// When the request happened; used only when `usage_date` is `None`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Prompt tokens (0..=[`crate::bounds::MAX_RECORD_TOKENS`]).
    pub input_tokens: i64,
    /// Completion tokens (0..=[`crate::bounds::MAX_RECORD_TOKENS`]).
    pub output_tokens: i64,
    /// OpenRouter's cost in USD (0..=[`crate::bounds::MAX_RECORD_COST`]).
    pub raw_cost: Decimal,
    /// Marked-up cost in USD; `None` = `raw_cost` x the client's markup rate at recording time.
    pub markup_cost: Option<Decimal>,
    /// Provider name (e.g. `anthropic`), stored with the model row.
    pub provider: Option<String>,
    /// Free-form metadata of the request. Accepted for compatibility; the original ignored it
    /// and so does this version (it is not stored).
    pub request_metadata: Option<String>,
    /// The spend reservation this record settles (see `crate::spend`): the record's
    /// transaction deletes it, so its actual cost replaces the reserved estimate atomically.
    pub reservation_id: Option<String>,
}

impl UsageRecord {
    /// A record with zero tokens and cost, dated by the clock's now in the client's zone.
    pub fn new(
        client_org_id: impl Into<String>,
        user_id: impl Into<String>,
        openrouter_user_id: impl Into<String>,
        model_name: impl Into<String>,
    ) -> Self {
        Self {
            client_org_id: client_org_id.into(),
            user_id: user_id.into(),
            openrouter_user_id: openrouter_user_id.into(),
            model_name: model_name.into(),
            usage_date: None,
            occurred_at: None,
            input_tokens: 0,
            output_tokens: 0,
            raw_cost: Decimal::ZERO,
            markup_cost: None,
            provider: None,
            request_metadata: None,
            reservation_id: None,
        }
    }

    /// Sets prompt and completion tokens.
    pub fn tokens(mut self, input: i64, output: i64) -> Self {
        self.input_tokens = input;
        self.output_tokens = output;
        self
    }

    /// Sets the raw cost.
    pub fn raw_cost(mut self, raw: Decimal) -> Self {
        self.raw_cost = raw;
        self
    }

    /// Sets an explicit markup cost instead of raw x rate.
    pub fn markup_cost(mut self, markup: Decimal) -> Self {
        self.markup_cost = Some(markup);
        self
    }

    /// Books the record on an explicit client-local day.
    pub fn on(mut self, usage_date: NaiveDate) -> Self {
        self.usage_date = Some(usage_date);
        self
    }

    /// Books the record on the client-local day of `instant`.
    pub fn at(mut self, instant: DateTime<Utc>) -> Self {
        self.occurred_at = Some(instant);
        self
    }

    /// Settles the spend reservation `reservation_id` (from `authorize`) with this record.
    pub fn settles(mut self, reservation_id: impl Into<String>) -> Self {
        self.reservation_id = Some(reservation_id.into());
        self
    }

    /// Sets the provider.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// `input_tokens + output_tokens`, or an overflow error.
    pub fn total_tokens(&self) -> Result<i64> {
        self.input_tokens
            .checked_add(self.output_tokens)
            .ok_or_else(|| Error::Overflow("input_tokens + output_tokens".into()))
    }

    /// Checks every field against the rules and the per-record bounds of [`crate::bounds`];
    /// returns (raw units, explicit markup units) on success.
    pub fn validate(&self) -> Result<(i64, Option<i64>)> {
        validate_identifier("client_org_id", &self.client_org_id)?;
        validate_identifier("user_id", &self.user_id)?;
        validate_identifier("openrouter_user_id", &self.openrouter_user_id)?;
        validate_identifier("model_name", &self.model_name)?;
        if self.input_tokens < 0 || self.output_tokens < 0 {
            return Err(Error::invalid(
                "tokens",
                "negative token counts are not allowed",
            ));
        }
        // The storage range first (Overflow), then the documented per-record bound.
        self.total_tokens()?;
        validate_tokens("input_tokens", self.input_tokens)?;
        validate_tokens("output_tokens", self.output_tokens)?;
        let raw = validate_amount("raw_cost", self.raw_cost)?;
        validate_at_most("raw_cost", self.raw_cost, MAX_RECORD_COST)?;
        let markup = self
            .markup_cost
            .map(|m| {
                let units = validate_amount("markup_cost", m)?;
                validate_at_most("markup_cost", m, MAX_RECORD_MARKUP_COST)?;
                Ok::<_, Error>(units)
            })
            .transpose()?;
        if let Some(p) = &self.provider {
            validate_identifier("provider", p)?;
        }
        if let Some(date) = self.usage_date {
            validate_usage_date("usage_date", date)?;
        } else if let Some(at) = self.occurred_at {
            validate_instant("occurred_at", at)?;
        }
        Ok((raw, markup))
    }
}

/// What `record_usage` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedUsage {
    /// The client-local day the usage was booked on.
    pub usage_date: NaiveDate,
    /// Tokens added.
    pub total_tokens: i64,
    /// Raw cost added (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost added (USD), after the single rounding to 1e-9.
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
    /// When the client has a limit: the limit status, after this record, of the client-local
    /// month the record was booked into (usually the current month; `month_start` says which).
    pub monthly_limit: Option<MonthlyLimitStatus>,
    /// True when this very record moved its month from under the limit to at or over it.
    /// Exactly one record reports each month's crossing, whichever days of the month the
    /// records are booked on and however many instances write at once.
    pub limit_crossed: bool,
}

/// Spending against `monthly_limit` in the client's current local month (marked-up USD).
///
/// The limit is information for the host: orgusage records usage that already happened (it
/// cannot un-spend it), reports `exceeded`, and `record_usage` says when a record crossed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthlyLimitStatus {
    /// The client.
    pub client_org_id: String,
    /// The limit, if any.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub monthly_limit: Option<Decimal>,
    /// First day of the client-local month.
    pub month_start: NaiveDate,
    /// Marked-up spend booked into the month: every day from `month_start` to the month's last
    /// day, so usage booked ahead on a later day of the month counts too.
    #[serde(with = "rust_decimal::serde::str")]
    pub spent: Decimal,
    /// `max(limit - spent, 0)`, when there is a limit.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub remaining: Option<Decimal>,
    /// `spent >= limit` once anything was spent (a zero limit is exceeded by the first spend).
    pub exceeded: bool,
    /// `spent / limit x 100`, rounded half-up to 2 places; `None` without a limit or for a 0 limit.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub percent_used: Option<Decimal>,
}

/// `today` of [`ClientUsageStatsResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TodayUsage {
    /// Tokens today.
    pub tokens: i64,
    /// Marked-up cost today (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Requests today.
    pub requests: i64,
    /// `HH:MM:SS` client-local time of the last write today, or `No usage today`.
    pub last_updated: String,
}

/// `this_month` of [`ClientUsageStatsResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthUsage {
    /// Tokens in the client-local month to date.
    pub tokens: i64,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Requests.
    pub requests: i64,
    /// Days with at least one request, each counted once.
    pub days_active: i64,
}

/// One day of `daily_history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyHistoryItem {
    /// Client-local date (ISO).
    pub date: NaiveDate,
    /// Tokens.
    pub tokens: i64,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Requests.
    pub requests: i64,
}

/// The response of `get_usage_stats_by_client` (the original's V1-V3 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientUsageStatsResponse {
    /// Today in the client's zone.
    pub today: TodayUsage,
    /// The client-local month to date, today included exactly once.
    pub this_month: MonthUsage,
    /// Up to 30 days ending today, newest first, only days with usage.
    pub daily_history: Vec<DailyHistoryItem>,
    /// The client's name.
    pub client_org_name: String,
}

/// One row of `get_usage_by_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserUsage {
    /// Host user id.
    pub user_id: String,
    /// OpenRouter user value (the greatest seen in the range; normally there is only one).
    pub openrouter_user_id: String,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
    /// Distinct days with usage.
    pub days_active: i64,
}

/// One row of `get_usage_by_model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelUsage {
    /// OpenRouter model id.
    pub model_name: String,
    /// Provider as recorded (or from the catalogue for zero rows).
    pub provider: Option<String>,
    /// Tokens.
    pub total_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
    /// Distinct days with usage.
    pub days_used: i64,
}

/// One row of `get_all_clients_usage_stats` (the original's `ClientBillingResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientBillingResponse {
    /// Client id.
    pub client_org_id: String,
    /// Client name.
    pub client_name: String,
    /// Tokens in the range.
    pub total_tokens: i64,
    /// Raw cost summed from stored rows (never derived from today's rate).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost.
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
    /// `markup_cost - raw_cost`, exactly.
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_margin: Decimal,
    /// Requests.
    pub total_requests: i64,
    /// Distinct days with usage.
    pub days_active: i64,
    /// First day of the range used for this client (an addition).
    pub start_date: NaiveDate,
    /// Last day of the range used for this client (an addition).
    pub end_date: NaiveDate,
}

/// A model the host wants listed in by-model reports even without usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueModel {
    /// OpenRouter model id.
    pub model_name: String,
    /// Provider shown for zero rows.
    pub provider: Option<String>,
}

/// One stored `client_daily_usage` row (the V5 `daily_breakdown` material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientDailyUsage {
    /// The client.
    pub client_org_id: String,
    /// Client-local date.
    pub usage_date: NaiveDate,
    /// Tokens (input + output).
    pub total_tokens: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Requests.
    pub total_requests: i64,
    /// Raw cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost: Decimal,
    /// Marked-up cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost: Decimal,
    /// The model with the most tokens that day (ties: the smaller model id), derived from the
    /// model rows when read.
    pub primary_model: Option<String>,
    /// Distinct users with usage that day.
    pub unique_users: i64,
    /// Unix seconds of the first write of the day.
    pub created_at: i64,
    /// Unix seconds of the last write of the day.
    pub updated_at: i64,
}

/// The inclusive date range of a report: the given dates; without `end`, the client's `today`;
/// without `start`, the first day of `end`'s month. A `start` after the `end` is
/// [`Error::InvalidInput`].
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_domain::usage::report_range;
/// let d = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
/// assert_eq!(report_range(None, None, d(7, 24)).unwrap(), (d(7, 1), d(7, 24)));
/// assert_eq!(report_range(Some(d(6, 30)), None, d(7, 24)).unwrap(), (d(6, 30), d(7, 24)));
/// assert!(report_range(Some(d(8, 1)), None, d(7, 31)).is_err());
/// ```
pub fn report_range(
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate)> {
    let end = end.unwrap_or(today);
    let start = start.unwrap_or_else(|| crate::timezone::month_start(end));
    if start > end {
        return Err(Error::invalid(
            "start_date",
            format!("{start} is after end_date {end}"),
        ));
    }
    Ok((start, end))
}
