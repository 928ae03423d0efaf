//! Monthly limit status: spend in the client's current local month against `monthly_limit`.

use chrono::NaiveDate;
use orgusage_domain::Result;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::timezone::{local_date_at, month_end, month_start, parse_timezone};
use orgusage_domain::usage::MonthlyLimitStatus;
use rust_decimal::{Decimal, RoundingStrategy};

use super::usage::{UsageRepo, load_billing, month_markup_units};
use crate::error::TxError;

/// Builds the status and tells whether `spent_before -> spent` crossed the limit.
pub(crate) fn limit_status(
    client_org_id: &str,
    limit_units: Option<i64>,
    month_start: NaiveDate,
    spent_units: i64,
    spent_before: Option<i64>,
) -> (MonthlyLimitStatus, bool) {
    let spent = units_to_decimal(spent_units);
    let limit = limit_units.map(units_to_decimal);
    let exceeded = limit_units.is_some_and(|l| spent_units >= l && spent_units > 0);
    let crossed = match (limit_units, spent_before) {
        (Some(l), Some(before)) => before < l.max(1) && spent_units >= l && spent_units > before,
        _ => false,
    };
    let percent_used = limit.filter(|l| !l.is_zero()).map(|l| {
        (spent * Decimal::ONE_HUNDRED / l)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    });
    let status = MonthlyLimitStatus {
        client_org_id: client_org_id.to_string(),
        monthly_limit: limit,
        month_start,
        spent,
        remaining: limit.map(|l| (l - spent).max(Decimal::ZERO)),
        exceeded,
        percent_used,
    };
    (status, crossed)
}

impl UsageRepo<'_> {
    /// Spend of the client's current local month against its monthly limit (read-only).
    pub fn get_monthly_limit_status(&self, client_org_id: &str) -> Result<MonthlyLimitStatus> {
        let now = self.clock.now();
        crate::with_conn!(self.db, |conn| {
            let client = load_billing(conn, client_org_id)?;
            let tz = parse_timezone(&client.timezone).map_err(TxError::from)?;
            let today = local_date_at(tz, now);
            let first = month_start(today);
            // The whole month: usage booked on a later day of it counts as this month's spend.
            let spent = month_markup_units(conn, client_org_id, (first, month_end(today)))?;
            Ok(limit_status(client_org_id, client.monthly_limit, first, spent, None).0)
        })
    }
}
