//! An in-memory [`RateSource`] for tests, examples and offline use.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Datelike, NaiveDate};
use orgusage_domain::holidays::is_polish_business_day;
use rust_decimal::Decimal;

use crate::rate::{check_range, normalize_currency};
use crate::{MidRate, NbpError, RateSource};

/// A fixed set of rates that answers ranges the way [`crate::NbpClient`] does, including
/// [`NbpError::NoTable`] for a range without any rate.
///
/// Counts the calls it answers, so tests of other crates can assert how often they asked.
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_nbp::{RateSource, StaticRates};
/// use rust_decimal::Decimal;
///
/// let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
/// let rates = StaticRates::on_polish_business_days("USD", d(4, 1), d(4, 30), Decimal::new(37654, 4));
/// let rate = rates.rate_for_cost_date("USD", d(4, 22)).unwrap();
/// assert_eq!(rate.effective_date, d(4, 18)); // Easter Monday and the weekend are skipped
/// assert_eq!(rates.calls(), 1);
/// ```
#[derive(Debug, Default)]
pub struct StaticRates {
    rates: Vec<MidRate>,
    calls: AtomicUsize,
}

impl StaticRates {
    /// A source holding `rates`. Currency codes are upper-cased; for two rates of one currency on
    /// one date the later one in `rates` wins.
    pub fn new(rates: impl IntoIterator<Item = MidRate>) -> Self {
        let mut rates: Vec<MidRate> = rates
            .into_iter()
            .map(|mut r| {
                r.currency = r.currency.to_ascii_uppercase();
                r
            })
            .collect();
        // Stable sort keeps input order within a key, so the last duplicate is the one kept.
        rates.sort_by(|a, b| {
            (a.currency.as_str(), a.effective_date).cmp(&(b.currency.as_str(), b.effective_date))
        });
        rates.reverse();
        rates.dedup_by(|a, b| a.currency == b.currency && a.effective_date == b.effective_date);
        rates.reverse();
        Self {
            rates,
            calls: AtomicUsize::new(0),
        }
    }

    /// One rate of `mid` for `currency` on every Polish business day in `[from, to]`, with
    /// table numbers counted from the first business day of each year (`001/A/NBP/2025`, …),
    /// the way NBP numbers them.
    pub fn on_polish_business_days(
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
        mid: Decimal,
    ) -> Self {
        Self::new(business_day_rates(currency, from, to, |_| mid))
    }

    /// How many times [`RateSource::mid_rates`] was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// All rates held, sorted by currency and date.
    pub fn rates(&self) -> &[MidRate] {
        &self.rates
    }
}

impl RateSource for StaticRates {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let code = normalize_currency(currency)?;
        check_range(from, to)?;
        let found: Vec<MidRate> = self
            .rates
            .iter()
            .filter(|r| r.currency == code && r.effective_date >= from && r.effective_date <= to)
            .cloned()
            .collect();
        if found.is_empty() {
            Err(NbpError::NoTable)
        } else {
            Ok(found)
        }
    }
}

/// Rates for `currency` on every Polish business day in `[from, to]`, `mid_for(date)` each, with
/// NBP-style table numbers (the n-th business day of a year has table `nnn/A/NBP/yyyy`).
///
/// Public so test servers and fixtures of other crates can build the same table set.
pub fn business_day_rates(
    currency: &str,
    from: NaiveDate,
    to: NaiveDate,
    mut mid_for: impl FnMut(NaiveDate) -> Decimal,
) -> Vec<MidRate> {
    let mut out = Vec::new();
    let Some(mut day) = NaiveDate::from_ymd_opt(from.year(), 1, 1) else {
        return out;
    };
    let mut number = 0u32;
    while day <= to {
        if day.ordinal() == 1 {
            number = 0;
        }
        if is_polish_business_day(day) {
            number += 1;
            if day >= from {
                out.push(MidRate {
                    currency: currency.to_ascii_uppercase(),
                    table_no: format!("{number:03}/A/NBP/{}", day.year()),
                    effective_date: day,
                    mid: mid_for(day),
                });
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid")
    }

    #[test]
    fn table_numbers_follow_business_days() {
        let rates = business_day_rates("usd", d(2025, 1, 1), d(2025, 1, 10), |_| dec!(4));
        let numbered: Vec<(NaiveDate, &str)> = rates
            .iter()
            .map(|r| (r.effective_date, r.table_no.as_str()))
            .collect();
        assert_eq!(
            numbered,
            vec![
                (d(2025, 1, 2), "001/A/NBP/2025"),
                (d(2025, 1, 3), "002/A/NBP/2025"),
                (d(2025, 1, 7), "003/A/NBP/2025"),
                (d(2025, 1, 8), "004/A/NBP/2025"),
                (d(2025, 1, 9), "005/A/NBP/2025"),
                (d(2025, 1, 10), "006/A/NBP/2025"),
            ]
        );
        assert_eq!(rates[0].currency, "USD");
        // NBP published 72 tables in 2025 up to and including 14 April (072/A/NBP/2025).
        let april = business_day_rates("USD", d(2025, 4, 14), d(2025, 4, 14), |_| dec!(4));
        assert_eq!(april[0].table_no, "072/A/NBP/2025");
    }

    #[test]
    fn ranges_answer_like_nbp() {
        let source = StaticRates::on_polish_business_days(
            "USD",
            d(2025, 4, 1),
            d(2025, 4, 30),
            dec!(3.7654),
        );
        let weekend = source.mid_rates("usd", d(2025, 4, 19), d(2025, 4, 21));
        assert!(matches!(weekend, Err(NbpError::NoTable)));
        let week = source
            .mid_rates("USD", d(2025, 4, 14), d(2025, 4, 20))
            .expect("rates");
        assert_eq!(week.len(), 5);
        assert!(matches!(
            source.mid_rates("EUR", d(2025, 4, 14), d(2025, 4, 20)),
            Err(NbpError::NoTable)
        ));
        assert_eq!(source.calls(), 3);
    }

    #[test]
    fn later_duplicate_wins() {
        let rate = |mid: Decimal| MidRate {
            currency: "usd".into(),
            table_no: "1/A/NBP/2025".into(),
            effective_date: d(2025, 1, 2),
            mid,
        };
        let source = StaticRates::new([rate(dec!(4.1)), rate(dec!(4.2))]);
        assert_eq!(source.rates().len(), 1);
        assert_eq!(source.rates()[0].mid, dec!(4.2));
        assert_eq!(source.rates()[0].currency, "USD");
    }
}
