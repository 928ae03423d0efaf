//! PLN billing: which NBP rate applies to a cost date, a day's rate as used, exact PLN arithmetic
//! with a single rounding, the PLN report shapes and the monthly statement.
//!
//! # Arithmetic
//! A day's PLN is `markup_usd(day) × rate(day)`, computed on integers: the stored nano-USD
//! amount times the rate in nano-units is an exact `i128` at scale 18 ([`EXACT_SCALE`]). Days are
//! summed exactly at that scale, and the sum is rounded **once**, half-up (half away from zero)
//! to 2 decimal places ([`round_pln`]). No float and no intermediate rounding touch the money
//! path: 0.15 USD × 4.50 is 0.675 and becomes 0.68 (the original's float `round` gave 0.67).
//!
//! # Honesty flags
//! A figure that used a configured fallback rate carries `is_fallback` (or `pln_is_fallback`); a
//! figure that used a rate which may still change (the table of its rule day is not published
//! yet) carries `is_provisional`. Neither kind of rate is ever stored.

mod reports;
mod statement;

use std::fmt;

use chrono::{Days, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::{STORAGE_SCALE, rate_to_units};

pub use reports::{
    ClientBillingPln, ClientUsageStatsPln, DayPln, ModelUsagePln, PlnReport, UserUsagePln,
};
pub use statement::{MonthlyStatement, StatementLine, StatementTotals};

/// Decimal places of an exact PLN amount: nano-USD (9) times a rate in nano-units (9).
pub const EXACT_SCALE: u32 = 2 * STORAGE_SCALE;

/// Decimal places of a PLN figure shown on a report or an invoice.
pub const PLN_DECIMALS: u32 = 2;

/// Which NBP table A rate converts a cost incurred on day D.
///
/// The default is the rule of Polish tax law (PIT art. 11a, CIT art. 12 ust. 2 / art. 15 ust. 1,
/// VAT art. 31a): the mid rate of the last business day **before** D.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateRule {
    /// The table with the greatest `effectiveDate` strictly before D (the legal rule).
    #[default]
    PreviousBusinessDay,
    /// The original system's behaviour, kept as an explicit option: the table with the greatest
    /// `effectiveDate` on or before D. For D = today that is today's table once NBP has published
    /// it (around 12:00 Warsaw time) and the previous one before, so until publication the rate
    /// is provisional. Not the tax rule for costs.
    SameDayIfPublished,
}

impl RateRule {
    /// The stable name stored in the database (`previous_business_day`, `same_day_if_published`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreviousBusinessDay => "previous_business_day",
            Self::SameDayIfPublished => "same_day_if_published",
        }
    }

    /// The inverse of [`RateRule::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "previous_business_day" => Some(Self::PreviousBusinessDay),
            "same_day_if_published" => Some(Self::SameDayIfPublished),
            _ => None,
        }
    }

    /// The last day whose table may apply to `cost_date`: the day before it, or the day itself.
    /// `None` only at the first day chrono can represent.
    pub fn rule_day(self, cost_date: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::PreviousBusinessDay => cost_date.checked_sub_days(Days::new(1)),
            Self::SameDayIfPublished => Some(cost_date),
        }
    }
}

impl fmt::Display for RateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exchange rate used for the costs of one day, with what an invoice or an auditor cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyRate {
    /// The cost date the rate applies to (not the table's date).
    pub cost_date: NaiveDate,
    /// The currency converted from, e.g. `USD`.
    pub currency_from: String,
    /// The currency converted to, always `PLN` for NBP.
    pub currency_to: String,
    /// PLN per one unit of `currency_from`, exactly as published (a JSON string).
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// NBP table number, e.g. `072/A/NBP/2025`; `None` for a fallback rate.
    pub table_no: Option<String>,
    /// The table's `effectiveDate`; `None` for a fallback rate.
    pub effective_date: Option<NaiveDate>,
    /// Where the rate came from: `NBP` (or the configured source name), or `fallback`.
    pub source: String,
    /// True when NBP could not be used and the host's configured fallback rate was used instead.
    pub is_fallback: bool,
    /// True when the table of the rule day is not published yet, so the rate may still change.
    pub is_provisional: bool,
}

impl DailyRate {
    /// The `source` of a fallback rate.
    pub const FALLBACK_SOURCE: &'static str = "fallback";

    /// A fallback rate for `cost_date`: no table, flagged `is_fallback`.
    pub fn fallback(cost_date: NaiveDate, currency_from: &str, rate: Decimal) -> Self {
        Self {
            cost_date,
            currency_from: currency_from.to_string(),
            currency_to: "PLN".to_string(),
            rate,
            table_no: None,
            effective_date: None,
            source: Self::FALLBACK_SOURCE.to_string(),
            is_fallback: true,
            is_provisional: false,
        }
    }

    /// The rate in storage nano-units (exact; a rate with more than 9 decimals is rejected).
    pub fn rate_units(&self) -> Result<i64> {
        rate_to_units("rate", self.rate)
    }
}

/// Rounds a PLN amount half-up (half away from zero) to 2 decimal places: the one rounding of
/// a PLN figure, applied at the end.
///
/// ```
/// use orgusage_domain::pln::round_pln;
/// use rust_decimal_macros::dec;
///
/// assert_eq!(round_pln(dec!(0.675)), dec!(0.68));
/// assert_eq!(round_pln(dec!(0.8775)), dec!(0.88));
/// assert_eq!(round_pln(dec!(0.6749999)), dec!(0.67));
/// ```
pub fn round_pln(amount: Decimal) -> Decimal {
    let mut rounded =
        amount.round_dp_with_strategy(PLN_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
    // Invoices show grosze: 0.9 is written "0.90" (the value is unchanged).
    rounded.rescale(PLN_DECIMALS);
    rounded
}

/// Converts a USD amount at `rate` and rounds the result once.
///
/// The amount is taken at storage precision (rounded half-up to 1e-9 like every stored amount);
/// a rate with more than 9 decimal places is rejected rather than rounded.
///
/// ```
/// use orgusage_domain::pln::convert_to_pln;
/// use rust_decimal_macros::dec;
///
/// assert_eq!(convert_to_pln(dec!(0.15), dec!(4.50)).unwrap(), dec!(0.68));
/// assert_eq!(convert_to_pln(dec!(0.15) * dec!(1.3), dec!(4.50)).unwrap(), dec!(0.88));
/// ```
pub fn convert_to_pln(amount: Decimal, rate: Decimal) -> Result<Decimal> {
    let mut sum = PlnSum::default();
    sum.add(
        crate::money::amount_to_units(amount)?,
        rate_to_units("rate", rate)?,
    )?;
    sum.rounded()
}

/// An exact running sum of `amount × rate` products, rounded only when asked for.
///
/// ```
/// use orgusage_domain::pln::PlnSum;
/// use rust_decimal_macros::dec;
///
/// // Two days of 0.00125 USD at 4.0 are 0.005 PLN each. Rounding each day would give
/// // 0.01 + 0.01 = 0.02; the exact sum is 0.01 and stays 0.01 when rounded once.
/// let mut sum = PlnSum::default();
/// sum.add(1_250_000, 4_000_000_000).unwrap(); // 0.00125 USD x 4.0
/// sum.add(1_250_000, 4_000_000_000).unwrap();
/// assert_eq!(sum.exact().unwrap(), dec!(0.01));
/// assert_eq!(sum.rounded().unwrap(), dec!(0.01));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlnSum {
    units: i128,
}

impl PlnSum {
    /// Adds `amount_units` (nano-USD) × `rate_units` (nano-PLN per USD), exactly.
    pub fn add(&mut self, amount_units: i64, rate_units: i64) -> Result<()> {
        // i64 × i64 always fits i128; only the running sum can overflow.
        let product = i128::from(amount_units) * i128::from(rate_units);
        self.units = self
            .units
            .checked_add(product)
            .ok_or_else(|| Error::Overflow("PLN sum exceeds the exact range".into()))?;
        Ok(())
    }

    /// Adds another exact sum.
    pub fn add_sum(&mut self, other: PlnSum) -> Result<()> {
        self.units = self
            .units
            .checked_add(other.units)
            .ok_or_else(|| Error::Overflow("PLN sum exceeds the exact range".into()))?;
        Ok(())
    }

    /// The difference `self - other`, exactly (e.g. a PLN profit margin).
    pub fn minus(self, other: PlnSum) -> Result<PlnSum> {
        let units = self
            .units
            .checked_sub(other.units)
            .ok_or_else(|| Error::Overflow("PLN difference exceeds the exact range".into()))?;
        Ok(PlnSum { units })
    }

    /// The exact sum as a normalized decimal (up to 18 decimal places).
    pub fn exact(self) -> Result<Decimal> {
        Decimal::try_from_i128_with_scale(self.units, EXACT_SCALE)
            .map(|d| d.normalize())
            .map_err(|_| Error::Overflow(format!("PLN amount of {} units", self.units)))
    }

    /// The sum rounded once, half-up, to 2 decimal places.
    pub fn rounded(self) -> Result<Decimal> {
        self.exact().map(round_pln)
    }
}

/// Shows a rate with at least NBP's four decimal places (`4.5` → `4.5000`), for people.
pub fn display_rate(rate: Decimal) -> Decimal {
    let mut shown = rate;
    if shown.scale() < 4 {
        shown.rescale(4);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn case_56_half_up_on_exact_decimals() {
        assert_eq!(convert_to_pln(dec!(0.15), dec!(4.50)).unwrap(), dec!(0.68));
        assert_eq!(convert_to_pln(dec!(0.195), dec!(4.50)).unwrap(), dec!(0.88));
        assert_eq!(round_pln(dec!(0.15) * dec!(1.3) * dec!(4.50)), dec!(0.88));
        assert_eq!(round_pln(dec!(0.005)), dec!(0.01));
        assert_eq!(round_pln(dec!(0.00499999999)), dec!(0));
        assert_eq!(round_pln(dec!(-0.005)), dec!(-0.01));
        assert!(convert_to_pln(dec!(1), dec!(4.1234567891)).is_err());
    }

    #[test]
    fn case_57_sum_then_round_once() {
        // Three days of 0.001 USD x 4.995 = 0.004995 PLN each: per-day rounding gives 0.00,
        // rounding the exact sum (0.014985) gives 0.01.
        let mut sum = PlnSum::default();
        for _ in 0..3 {
            sum.add(1_000_000, 4_995_000_000).unwrap();
        }
        assert_eq!(sum.exact().unwrap(), dec!(0.014985));
        assert_eq!(sum.rounded().unwrap(), dec!(0.01));
        let per_day: Decimal = (0..3).map(|_| round_pln(dec!(0.004995))).sum();
        assert_eq!(per_day, dec!(0));
    }

    #[test]
    fn sums_are_exact_at_the_extremes() {
        let mut sum = PlnSum::default();
        sum.add(i64::MAX, 1).unwrap();
        assert!(sum.exact().is_ok());
        let mut huge = PlnSum::default();
        huge.add(i64::MAX, i64::MAX).unwrap();
        assert!(matches!(huge.exact(), Err(Error::Overflow(_))));
        assert!(huge.add(i64::MAX, i64::MAX).is_ok());
        assert!(matches!(
            huge.add(i64::MAX, i64::MAX),
            Err(Error::Overflow(_))
        ));
        let diff = PlnSum::default().minus(sum).unwrap();
        assert!(diff.exact().unwrap().is_sign_negative());
    }

    #[test]
    fn rule_names_round_trip() {
        for rule in [RateRule::PreviousBusinessDay, RateRule::SameDayIfPublished] {
            assert_eq!(RateRule::parse(rule.as_str()), Some(rule));
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::json!(rule.as_str())
            );
        }
        assert_eq!(RateRule::default(), RateRule::PreviousBusinessDay);
        assert_eq!(RateRule::parse("today"), None);
        let d = NaiveDate::from_ymd_opt(2025, 4, 22).unwrap();
        assert_eq!(
            RateRule::PreviousBusinessDay.rule_day(d),
            NaiveDate::from_ymd_opt(2025, 4, 21)
        );
        assert_eq!(RateRule::SameDayIfPublished.rule_day(d), Some(d));
        assert_eq!(RateRule::PreviousBusinessDay.rule_day(NaiveDate::MIN), None);
    }

    #[test]
    fn fallback_is_flagged_and_serializes_money_as_strings() {
        let d = NaiveDate::from_ymd_opt(2025, 4, 22).unwrap();
        let rate = DailyRate::fallback(d, "USD", dec!(4.1234));
        assert!(rate.is_fallback && !rate.is_provisional);
        assert_eq!(rate.table_no, None);
        let json = serde_json::to_value(&rate).unwrap();
        assert_eq!(json["rate"], "4.1234");
        assert_eq!(json["source"], "fallback");
        assert_eq!(json["is_fallback"], true);
        assert_eq!(rate.rate_units().unwrap(), 4_123_400_000);
        assert_eq!(display_rate(dec!(4.5)).to_string(), "4.5000");
        assert_eq!(display_rate(dec!(4.12345)).to_string(), "4.12345");
    }
}
