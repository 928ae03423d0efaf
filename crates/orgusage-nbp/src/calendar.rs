//! Tells an expected missing table (weekend, holiday, not yet published, before NBP's history)
//! from an unexpected one (an outage or a gap in NBP's data), using the Polish holiday calendar.

use chrono::{Datelike, NaiveDate, Weekday};
use orgusage_domain::holidays::{is_polish_business_day, polish_holiday_name};

/// The first day NBP's API has table A data for.
pub const NBP_HISTORY_START: NaiveDate = match NaiveDate::from_ymd_opt(2002, 1, 2) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// How many days an explanation names before it shortens the list.
const NAMED_DAYS: usize = 6;

/// What the calendar says about NBP having no table A on any day of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoTableVerdict {
    /// True when no business day in the range should have a table already: every day is a
    /// weekend or a public holiday, lies before NBP's history, or is today/later (today's
    /// table is published around 12:00 Warsaw time).
    pub expected: bool,
    /// Business days of the range whose table should exist (empty when `expected`).
    pub missing_business_days: Vec<NaiveDate>,
    /// A sentence for logs and error messages.
    pub explanation: String,
}

/// Classifies "NBP has no table in `[from, to]`".
///
/// `today` is Warsaw's date when known: a table for today or later may legitimately not exist
/// yet. Pass `None` when the caller does not know the date; then every business day counts.
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_nbp::no_table_verdict;
///
/// let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
/// let easter = no_table_verdict(d(4, 19), d(4, 21), None);
/// assert!(easter.expected, "{}", easter.explanation);
/// assert!(easter.explanation.contains("Poniedziałek Wielkanocny"));
/// let outage = no_table_verdict(d(4, 14), d(4, 16), None);
/// assert!(!outage.expected);
/// assert_eq!(outage.missing_business_days.len(), 3);
/// ```
pub fn no_table_verdict(
    from: NaiveDate,
    to: NaiveDate,
    today: Option<NaiveDate>,
) -> NoTableVerdict {
    let mut missing = Vec::new();
    let mut reasons = Vec::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        if day < NBP_HISTORY_START {
            continue;
        }
        if today.is_some_and(|t| day >= t) {
            break;
        }
        if is_polish_business_day(day) {
            missing.push(day);
        } else if reasons.len() < NAMED_DAYS {
            let why = match polish_holiday_name(day) {
                Some(name) => name.to_string(),
                None if day.weekday() == Weekday::Sat => "Saturday".to_string(),
                None => "Sunday".to_string(),
            };
            reasons.push(format!("{day} {why}"));
        }
    }
    let mut notes = Vec::new();
    if from < NBP_HISTORY_START {
        notes.push(format!("NBP's history starts on {NBP_HISTORY_START}"));
    }
    if let Some(today) = today.filter(|t| *t <= to) {
        notes.push(format!(
            "tables from {today} on may not be published yet (around 12:00 Warsaw time)"
        ));
    }
    let explanation = if missing.is_empty() {
        let mut parts = reasons;
        parts.extend(notes);
        format!(
            "expected by the Polish calendar: no business day with a published table in \
             {from}..{to} ({})",
            parts.join("; ")
        )
    } else {
        let shown: Vec<String> = missing
            .iter()
            .take(NAMED_DAYS)
            .map(|d| d.to_string())
            .collect();
        let more = missing.len().saturating_sub(NAMED_DAYS);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "NOT expected by the Polish calendar: {} business day(s) in {from}..{to} should have \
             a table ({}{more}); NBP outage or a gap in its data",
            missing.len(),
            shown.join(", ")
        )
    };
    NoTableVerdict {
        expected: missing.is_empty(),
        missing_business_days: missing,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid")
    }

    #[test]
    fn weekends_and_holidays_are_expected() {
        let christmas = no_table_verdict(d(2025, 12, 24), d(2025, 12, 28), None);
        assert!(christmas.expected, "{}", christmas.explanation);
        assert!(
            christmas.explanation.contains("Wigilia"),
            "{}",
            christmas.explanation
        );
        assert!(christmas.explanation.contains("Saturday"));
        // 2024-12-24 was a working day: no table that day is not expected.
        let eve_2024 = no_table_verdict(d(2024, 12, 24), d(2024, 12, 24), None);
        assert!(!eve_2024.expected);
        assert_eq!(eve_2024.missing_business_days, vec![d(2024, 12, 24)]);
    }

    #[test]
    fn today_and_later_are_expected() {
        let today = d(2025, 4, 16);
        let v = no_table_verdict(d(2025, 4, 16), d(2025, 4, 16), Some(today));
        assert!(v.expected);
        assert!(
            v.explanation.contains("not be published yet"),
            "{}",
            v.explanation
        );
        let v = no_table_verdict(d(2025, 4, 14), d(2025, 4, 16), Some(today));
        assert!(!v.expected);
        assert_eq!(
            v.missing_business_days,
            vec![d(2025, 4, 14), d(2025, 4, 15)]
        );
        assert!(v.explanation.contains("outage"), "{}", v.explanation);
    }

    #[test]
    fn before_history_is_expected_and_lists_are_short() {
        let v = no_table_verdict(d(2001, 12, 1), d(2002, 1, 1), None);
        assert!(v.expected, "{}", v.explanation);
        assert!(v.explanation.contains("2002-01-02"));
        let long = no_table_verdict(d(2025, 1, 1), d(2025, 3, 31), None);
        assert!(!long.expected);
        assert!(long.explanation.contains("more"), "{}", long.explanation);
        assert!(long.explanation.len() < 400);
    }
}
