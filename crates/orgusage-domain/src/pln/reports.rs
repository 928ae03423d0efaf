//! The PLN twins of the usage reports: the USD report unchanged (flattened into the same JSON
//! object) plus `*_pln` figures, their honesty flags and the daily rates behind them.
//!
//! Every `*_pln` figure is the sum over days of (that day's USD × that day's rate), rounded
//! half-up to 2 places once, at the end. Rows are rounded independently, so the rows of a
//! report need not add up to a PLN total computed over all of them.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::DailyRate;
use crate::usage::{ClientBillingResponse, ClientUsageStatsResponse, ModelUsage, UserUsage};

/// A PLN report: its rows, and every daily rate the rows used (one per cost date, oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlnReport<T> {
    /// The rows, in the order of the USD report.
    pub rows: Vec<T>,
    /// The rate of every cost date that contributed, oldest first.
    pub rates: Vec<DailyRate>,
    /// True when any row used a fallback rate.
    pub any_fallback: bool,
    /// True when any row used a provisional rate.
    pub any_provisional: bool,
}

impl<T> PlnReport<T> {
    /// A report of `rows` over `rates`, with the flags derived from the rates.
    pub fn new(rows: Vec<T>, rates: Vec<DailyRate>) -> Self {
        let any_fallback = rates.iter().any(|r| r.is_fallback);
        let any_provisional = rates.iter().any(|r| r.is_provisional);
        Self {
            rows,
            rates,
            any_fallback,
            any_provisional,
        }
    }
}

/// One day of the stats' PLN history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayPln {
    /// Client-local date.
    pub date: NaiveDate,
    /// Marked-up cost of the day (USD), as in `daily_history`.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// The rate applied (see the report's `rates` for its table).
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// `cost × rate`, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_pln_exact: Decimal,
    /// `cost × rate`, rounded half-up to 2 places.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_pln: Decimal,
    /// True when the day's rate is a fallback.
    pub is_fallback: bool,
    /// True when the day's rate may still change.
    pub is_provisional: bool,
}

/// `get_usage_stats_by_client` with PLN: the USD response unchanged plus PLN figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientUsageStatsPln {
    /// The USD stats, exactly as `get_usage_stats_by_client` returns them (flattened in JSON).
    #[serde(flatten)]
    pub usd: ClientUsageStatsResponse,
    /// Today's marked-up cost in PLN.
    #[serde(with = "rust_decimal::serde::str")]
    pub today_cost_pln: Decimal,
    /// The month to date in PLN: the exact sum over its days, rounded once.
    #[serde(with = "rust_decimal::serde::str")]
    pub this_month_cost_pln: Decimal,
    /// The days of `daily_history` in PLN, newest first.
    pub daily_history_pln: Vec<DayPln>,
    /// Every rate used, oldest first.
    pub rates: Vec<DailyRate>,
    /// True when any figure used a fallback rate.
    pub pln_is_fallback: bool,
    /// True when any figure used a provisional rate.
    pub pln_is_provisional: bool,
}

/// One row of `get_usage_by_user` with PLN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserUsagePln {
    /// The USD row, unchanged (flattened in JSON).
    #[serde(flatten)]
    pub usage: UserUsage,
    /// Raw cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_pln: Decimal,
    /// Marked-up cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost_pln: Decimal,
    /// True when any day of the row used a fallback rate.
    pub pln_is_fallback: bool,
    /// True when any day of the row used a provisional rate.
    pub pln_is_provisional: bool,
}

/// One row of `get_usage_by_model` with PLN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelUsagePln {
    /// The USD row, unchanged (flattened in JSON).
    #[serde(flatten)]
    pub usage: ModelUsage,
    /// Raw cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_pln: Decimal,
    /// Marked-up cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost_pln: Decimal,
    /// True when any day of the row used a fallback rate.
    pub pln_is_fallback: bool,
    /// True when any day of the row used a provisional rate.
    pub pln_is_provisional: bool,
}

/// One row of `get_all_clients_usage_stats` with PLN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientBillingPln {
    /// The USD row, unchanged (flattened in JSON).
    #[serde(flatten)]
    pub billing: ClientBillingResponse,
    /// Raw cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_pln: Decimal,
    /// Marked-up cost in PLN (sum over days, rounded once).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_cost_pln: Decimal,
    /// `markup - raw` in PLN, computed exactly and rounded once (so it can differ by 0.01 from
    /// the difference of the two rounded figures).
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_margin_pln: Decimal,
    /// True when any day of the row used a fallback rate.
    pub pln_is_fallback: bool,
    /// True when any day of the row used a provisional rate.
    pub pln_is_provisional: bool,
}
