//! The rate type, the [`RateSource`] abstraction and the rules that pick the rate for a date.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::NbpError;

/// How many days the first request of [`rate_for_cost_date`] covers, ending the day before D.
///
/// The longest run of days without a table A is short: Christmas with a Monday 24 December
/// (Sat 22 to Wed 26) gives 5, Easter (Sat to Mon) gives 3, 1-3 May or 1 and 6 January with a
/// weekend at most 4 (a unit test checks the maximum over 2002-2100 against this constant). 14
/// days is more than twice that, so one request virtually always finds the answer, with room for
/// a day NBP unexpectedly skips. It stays tiny (at most 10 rates) and well under NBP's limits.
pub const RULE_WINDOW_DAYS: u64 = 14;

/// The longest range one NBP request may cover, in days inclusive (official API documentation;
/// the server accepts up to 367 but the documented limit is the safe one).
pub const NBP_MAX_RANGE_DAYS: u64 = 93;

// The wider retry must never be narrower than the first window.
const _: () = assert!(RULE_WINDOW_DAYS <= NBP_MAX_RANGE_DAYS);

/// One table A mid rate as NBP publishes it.
///
/// Keep all four fields next to any amount converted with it: the table number and date are
/// what an invoice or an auditor cites.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MidRate {
    /// ISO 4217 code, upper case (e.g. `USD`).
    pub currency: String,
    /// NBP table number, e.g. `072/A/NBP/2025`.
    pub table_no: String,
    /// The date the table was published for (NBP's `effectiveDate`).
    pub effective_date: NaiveDate,
    /// PLN per one unit of `currency`, exactly as published (scale included).
    #[serde(with = "rust_decimal::serde::str")]
    pub mid: Decimal,
}

/// Anything that can answer "table A mid rates of a currency in a date range".
///
/// Contract, shared by [`crate::NbpClient`], [`crate::StaticRates`] and [`crate::CachedSource`]:
/// * the answer holds every published rate of `currency` with `from <= effective_date <= to`,
///   sorted by `effective_date` ascending, one per date;
/// * a range with no table at all is `Err(NbpError::NoTable)` (callers should treat an empty
///   vector the same way, for foreign implementations);
/// * `from > to` or a malformed currency code is `Err(NbpError::InvalidRequest)`;
/// * any range length is accepted (the HTTP client splits it into NBP-sized requests).
pub trait RateSource: Send + Sync {
    /// Table A mid rates of `currency` published between `from` and `to`, both inclusive.
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError>;

    /// Shorthand for [`rate_for_cost_date`] on this source.
    fn rate_for_cost_date(
        &self,
        currency: &str,
        cost_date: NaiveDate,
    ) -> Result<MidRate, NbpError> {
        rate_for_cost_date(self, currency, cost_date)
    }

    /// Shorthand for [`rate_on_or_before`] on this source.
    fn rate_on_or_before(&self, currency: &str, date: NaiveDate) -> Result<MidRate, NbpError> {
        rate_on_or_before(self, currency, date)
    }
}

impl<T: RateSource + ?Sized> RateSource for &T {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        (**self).mid_rates(currency, from, to)
    }
}

impl<T: RateSource + ?Sized> RateSource for Arc<T> {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        (**self).mid_rates(currency, from, to)
    }
}

impl<T: RateSource + ?Sized> RateSource for Box<T> {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        (**self).mid_rates(currency, from, to)
    }
}

/// THE RULE of Polish tax law (PIT art. 11a, CIT art. 12 ust. 2 / art. 15 ust. 1, VAT art. 31a):
/// a cost incurred on `cost_date` D is converted at the table A mid rate of the last business day
/// strictly **before** D, i.e. the rate with the greatest `effectiveDate < D`, even when D's own
/// table is already out.
///
/// NBP's own data decides which day that is, so a day NBP skipped (or a holiday the calendar
/// does not know) is handled without a calendar. The lookup is one range request
/// `[D-14, D-1]` (see [`RULE_WINDOW_DAYS`]); only if that range has no table at all does it ask
/// once more for the widest range NBP allows, `[D-93, D-1]`, and then gives up with
/// [`NbpError::RateUnavailable`]. It never probes day by day.
///
/// Timeouts, transport and server errors are returned as they are (see
/// [`NbpError::is_transient`]); they never turn into a rate.
pub fn rate_for_cost_date<S: RateSource + ?Sized>(
    source: &S,
    currency: &str,
    cost_date: NaiveDate,
) -> Result<MidRate, NbpError> {
    let last_day = cost_date.pred_opt().ok_or_else(|| {
        NbpError::InvalidRequest(format!("no day before {cost_date} in the calendar"))
    })?;
    let found = latest_up_to(source, currency, cost_date, last_day)?;
    let expected = orgusage_domain::holidays::last_business_day_before(cost_date);
    if found.effective_date < expected {
        // Not an error (NBP is authoritative), but the calendar expected a later table: NBP
        // skipped a business day, or the expected table is not published yet (a cost dated today
        // or later). Worth seeing, so it is a warning.
        let gap = found
            .effective_date
            .succ_opt()
            .unwrap_or(found.effective_date);
        let verdict = crate::no_table_verdict(gap, last_day, None);
        tracing::warn!(
            %cost_date,
            effective_date = %found.effective_date,
            calendar_expected = %expected,
            verdict = %verdict.explanation,
            "NBP has no table on a day the holiday calendar treats as a business day"
        );
    } else if found.effective_date > expected {
        tracing::warn!(
            %cost_date,
            effective_date = %found.effective_date,
            calendar_expected = %expected,
            "NBP published a table on a day the holiday calendar treats as a holiday"
        );
    }
    Ok(found)
}

/// The original system's "today's table once published" behaviour, kept as an explicit option:
/// the rate with the greatest `effectiveDate <= date`.
///
/// For `date` = today this returns today's table if NBP has published it (around 12:00 Warsaw
/// time) and the previous one otherwise, so the answer changes during the day. That is **not**
/// the Polish tax rule for costs; use [`rate_for_cost_date`] for invoicing. Same request pattern
/// as the rule: one short range, one wider retry, then [`NbpError::RateUnavailable`].
pub fn rate_on_or_before<S: RateSource + ?Sized>(
    source: &S,
    currency: &str,
    date: NaiveDate,
) -> Result<MidRate, NbpError> {
    latest_up_to(source, currency, date, date)
}

/// The latest rate with `effective_date <= last_day`, searched in a short window and, if that is
/// empty, once more in the widest window NBP allows.
fn latest_up_to<S: RateSource + ?Sized>(
    source: &S,
    currency: &str,
    wanted_for: NaiveDate,
    last_day: NaiveDate,
) -> Result<MidRate, NbpError> {
    let windows = [RULE_WINDOW_DAYS, NBP_MAX_RANGE_DAYS];
    for days in windows {
        let from = last_day
            .checked_sub_days(Days::new(days - 1))
            .unwrap_or(NaiveDate::MIN);
        match source.mid_rates(currency, from, last_day) {
            Ok(rates) => {
                // Filter defensively: a foreign source may return rates outside the range.
                let best = rates
                    .into_iter()
                    .filter(|r| r.effective_date >= from && r.effective_date <= last_day)
                    .max_by_key(|r| r.effective_date);
                if let Some(rate) = best {
                    return Ok(rate);
                }
            }
            Err(NbpError::NoTable) => {}
            Err(other) => return Err(other),
        }
        tracing::debug!(%wanted_for, %from, to = %last_day, "no NBP table in window");
    }
    let from = last_day
        .checked_sub_days(Days::new(NBP_MAX_RANGE_DAYS - 1))
        .unwrap_or(NaiveDate::MIN);
    let verdict = crate::no_table_verdict(from, last_day, None);
    Err(NbpError::RateUnavailable {
        date: wanted_for,
        reason: format!(
            "no table A rate for {currency} in the {NBP_MAX_RANGE_DAYS} days up to {last_day}; {}",
            verdict.explanation
        ),
    })
}

/// Checks an ISO 4217-shaped code and returns it upper-cased.
pub(crate) fn normalize_currency(currency: &str) -> Result<String, NbpError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(currency.to_ascii_uppercase())
    } else {
        Err(NbpError::InvalidRequest(format!(
            "currency code must be three ASCII letters, got {currency:?}"
        )))
    }
}

/// Rejects `from > to` before anything is sent.
pub(crate) fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), NbpError> {
    if from > to {
        Err(NbpError::InvalidRequest(format!(
            "range starts after it ends: {from} > {to}"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orgusage_domain::holidays::is_polish_business_day;

    #[test]
    fn window_exceeds_the_longest_run_without_business_days() {
        let mut day = NaiveDate::from_ymd_opt(2002, 1, 2).expect("valid");
        let end = NaiveDate::from_ymd_opt(2100, 12, 31).expect("valid");
        let (mut run, mut longest) = (0u64, 0u64);
        while day <= end {
            if is_polish_business_day(day) {
                run = 0;
            } else {
                run += 1;
                longest = longest.max(run);
            }
            day = day.succ_opt().expect("in range");
        }
        assert_eq!(longest, 5, "Christmas with a Monday 24 December");
        assert!(RULE_WINDOW_DAYS > 2 * longest);
    }

    #[test]
    fn currency_codes_are_checked() {
        assert_eq!(normalize_currency("usd").ok().as_deref(), Some("USD"));
        assert!(normalize_currency("US").is_err());
        assert!(normalize_currency("U/D").is_err());
        assert!(normalize_currency("ÜSD").is_err());
    }

    #[test]
    fn serde_keeps_mid_exact_as_string() {
        let rate = MidRate {
            currency: "USD".into(),
            table_no: "072/A/NBP/2025".into(),
            effective_date: NaiveDate::from_ymd_opt(2025, 4, 14).expect("valid"),
            mid: "4.1000".parse().expect("decimal"),
        };
        let json = serde_json::to_string(&rate).expect("serialize");
        assert!(json.contains("\"mid\":\"4.1000\""), "{json}");
        let back: MidRate = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, rate);
        assert_eq!(back.mid.scale(), 4);
    }
}
