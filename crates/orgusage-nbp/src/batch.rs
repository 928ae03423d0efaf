//! The rate rule for many cost dates at once (a month of a statement, a report's range) with one
//! range request instead of one per date, and whether a found rate can still change.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use orgusage_domain::holidays::is_polish_business_day;
use orgusage_domain::pln::RateRule;

use crate::rate::{NBP_MAX_RANGE_DAYS, RULE_WINDOW_DAYS};
use crate::{MidRate, NbpError, RateSource};

/// The rate of `rule` for every date of `cost_dates`, with as few source calls as possible.
///
/// Each cost date D has a *rule day*: D-1 for [`RateRule::PreviousBusinessDay`] (the tax rule),
/// D for [`RateRule::SameDayIfPublished`]. Its rate is the table with the greatest
/// `effectiveDate` on or before the rule day. One range request covers
/// `[earliest rule day - 13, latest rule day]` (for a month: about 45 days, one NBP request),
/// and every date picks its rate from that one answer. That is exactly the answer of
/// [`crate::rate_for_cost_date`] per date, because the range holds every table up to each rule
/// day. Only dates with no table at all in that range (virtually never: it takes 14 days without a
/// table) cost one more request, widened to NBP's 93-day limit.
///
/// Rule days after `today` (Warsaw's date) are capped at `today`: NBP rejects ranges that end in
/// the future, and no later table exists yet. Such rates are not final (see [`rate_is_final`]).
///
/// Dates whose rate cannot be found are absent from the map (callers decide between a fallback
/// and an error; [`crate::no_table_verdict`] explains the gap). Timeouts, transport and server
/// errors are returned as they are and never become a rate.
pub fn rates_for_dates<S: RateSource + ?Sized>(
    source: &S,
    currency: &str,
    cost_dates: &[NaiveDate],
    rule: RateRule,
    today: NaiveDate,
) -> Result<BTreeMap<NaiveDate, MidRate>, NbpError> {
    let wanted: BTreeMap<NaiveDate, NaiveDate> = cost_dates
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter_map(|d| rule.rule_day(*d).map(|day| (*d, day.min(today))))
        .collect();
    let (Some(lo), Some(hi)) = (wanted.values().min(), wanted.values().max()) else {
        return Ok(BTreeMap::new());
    };
    let from = back(*lo, RULE_WINDOW_DAYS);
    let rates = fetch(source, currency, from, *hi)?;
    let mut found = pick(&rates, &wanted, from);

    let missing: BTreeMap<NaiveDate, NaiveDate> = wanted
        .iter()
        .filter(|(d, _)| !found.contains_key(*d))
        .map(|(d, day)| (*d, *day))
        .collect();
    // Nothing in [from, rule day] for these dates: their table, if any, is before `from`.
    if let (Some(lo), Some(before)) = (missing.values().min(), from.pred_opt()) {
        let wide_from = back(*lo, NBP_MAX_RANGE_DAYS);
        if wide_from <= before {
            let older = fetch(source, currency, wide_from, before)?;
            for (date, rate) in pick(&older, &missing, wide_from) {
                // Same limit as the single-date rule: at most 93 days back from the rule day.
                if missing
                    .get(&date)
                    .is_some_and(|day| rate.effective_date >= back(*day, NBP_MAX_RANGE_DAYS))
                {
                    found.insert(date, rate);
                }
            }
        }
    }
    Ok(found)
}

/// Whether a rate found for `cost_date` under `rule` can no longer change, given Warsaw's
/// `today`: the table of the rule day itself was found, or the rule day is over (its table was
/// published or never will be), or the rule day is today and not a business day.
///
/// Only final rates may be stored or cached: a provisional one (e.g. [`RateRule::SameDayIfPublished`]
/// before today's table is out, or a cost dated after today) would freeze a wrong rate.
pub fn rate_is_final(
    rule: RateRule,
    cost_date: NaiveDate,
    effective_date: NaiveDate,
    today: NaiveDate,
) -> bool {
    match rule.rule_day(cost_date) {
        Some(day) => {
            effective_date == day || day < today || (day == today && !is_polish_business_day(today))
        }
        None => false,
    }
}

/// `days` days ending on `last` (inclusive): the first of them, clamped at the calendar's start.
fn back(last: NaiveDate, days: u64) -> NaiveDate {
    last.checked_sub_days(Days::new(days.saturating_sub(1)))
        .unwrap_or(NaiveDate::MIN)
}

/// The source's rates of `[from, to]`, sorted; "no table" is an empty list.
fn fetch<S: RateSource + ?Sized>(
    source: &S,
    currency: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<MidRate>, NbpError> {
    let mut rates = match source.mid_rates(currency, from, to) {
        Ok(rates) => rates,
        Err(NbpError::NoTable) => Vec::new(),
        Err(other) => return Err(other),
    };
    // Filter and sort defensively: a foreign source may not keep the contract.
    rates.retain(|r| r.effective_date >= from && r.effective_date <= to);
    rates.sort_by_key(|r| r.effective_date);
    Ok(rates)
}

/// For each (cost date, rule day), the latest of `sorted` on or before the rule day and not
/// before `from`.
fn pick(
    sorted: &[MidRate],
    wanted: &BTreeMap<NaiveDate, NaiveDate>,
    from: NaiveDate,
) -> BTreeMap<NaiveDate, MidRate> {
    wanted
        .iter()
        .filter_map(|(date, day)| {
            let upto = sorted.partition_point(|r| r.effective_date <= *day);
            let rate = sorted.get(upto.checked_sub(1)?)?;
            (rate.effective_date >= from).then(|| (*date, rate.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StaticRates, rate_for_cost_date, rate_on_or_before};
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid")
    }

    fn year_of_rates() -> StaticRates {
        StaticRates::new(crate::business_day_rates(
            "USD",
            d(2024, 11, 1),
            d(2026, 1, 31),
            |day| rust_decimal::Decimal::new(37000 + i64::from(chrono::Datelike::ordinal(&day)), 4),
        ))
    }

    #[test]
    fn a_month_in_one_request_matches_the_single_date_rule() {
        let source = year_of_rates();
        let april: Vec<NaiveDate> = d(2025, 4, 1).iter_days().take(30).collect();
        let today = d(2025, 6, 1);
        for rule in [RateRule::PreviousBusinessDay, RateRule::SameDayIfPublished] {
            let before = source.calls();
            let batch = rates_for_dates(&source, "USD", &april, rule, today).expect("rates");
            assert_eq!(
                source.calls() - before,
                1,
                "{rule}: one request for the month"
            );
            assert_eq!(batch.len(), 30);
            for date in &april {
                let single = match rule {
                    RateRule::PreviousBusinessDay => rate_for_cost_date(&source, "USD", *date),
                    RateRule::SameDayIfPublished => rate_on_or_before(&source, "USD", *date),
                }
                .expect("single");
                assert_eq!(batch.get(date), Some(&single), "{rule} {date}");
            }
        }
    }

    #[test]
    fn future_rule_days_are_capped_and_provisional() {
        let source = year_of_rates();
        let today = d(2025, 4, 16);
        let dates = [d(2025, 4, 16), d(2025, 4, 17), d(2025, 4, 20)];
        let batch = rates_for_dates(&source, "USD", &dates, RateRule::PreviousBusinessDay, today)
            .expect("rates");
        // The static set already has the 16th's table, so the 17th gets it; the 20th is capped.
        assert_eq!(batch[&d(2025, 4, 17)].effective_date, d(2025, 4, 16));
        assert_eq!(batch[&d(2025, 4, 20)].effective_date, d(2025, 4, 16));
        let rule = RateRule::PreviousBusinessDay;
        assert!(rate_is_final(rule, d(2025, 4, 16), d(2025, 4, 15), today));
        assert!(rate_is_final(rule, d(2025, 4, 17), d(2025, 4, 16), today));
        assert!(!rate_is_final(rule, d(2025, 4, 17), d(2025, 4, 15), today));
        assert!(!rate_is_final(rule, d(2025, 4, 20), d(2025, 4, 16), today));
        let same = RateRule::SameDayIfPublished;
        assert!(!rate_is_final(same, today, d(2025, 4, 15), today));
        assert!(rate_is_final(same, today, today, today));
        // On a Saturday no table is coming: Friday's is final for a Sunday cost.
        assert!(rate_is_final(
            rule,
            d(2025, 4, 13),
            d(2025, 4, 11),
            d(2025, 4, 12)
        ));
    }

    #[test]
    fn a_long_gap_costs_one_wider_request() {
        let source =
            StaticRates::on_polish_business_days("USD", d(2025, 3, 1), d(2025, 3, 20), dec!(4));
        let dates = [d(2025, 4, 22), d(2025, 4, 23), d(2025, 8, 1)];
        let batch = rates_for_dates(
            &source,
            "USD",
            &dates,
            RateRule::PreviousBusinessDay,
            d(2025, 9, 1),
        )
        .expect("rates");
        assert_eq!(batch[&d(2025, 4, 22)].effective_date, d(2025, 3, 20));
        assert_eq!(batch[&d(2025, 4, 23)].effective_date, d(2025, 3, 20));
        assert!(
            !batch.contains_key(&d(2025, 8, 1)),
            "more than 93 days back"
        );
        assert_eq!(source.calls(), 2);
        assert!(
            rates_for_dates(&source, "USD", &[], RateRule::default(), d(2025, 9, 1))
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn errors_are_returned_not_turned_into_rates() {
        struct Down;
        impl RateSource for Down {
            fn mid_rates(
                &self,
                _: &str,
                _: NaiveDate,
                _: NaiveDate,
            ) -> Result<Vec<MidRate>, NbpError> {
                Err(NbpError::Server { status: 503 })
            }
        }
        let result = rates_for_dates(
            &Down,
            "USD",
            &[d(2025, 4, 22)],
            RateRule::default(),
            d(2025, 5, 1),
        );
        assert!(matches!(result, Err(NbpError::Server { status: 503 })));
    }
}
