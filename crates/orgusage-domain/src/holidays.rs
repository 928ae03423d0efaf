//! Polish public holidays and business days, computed for any year (no I/O, no fixed tables).
//!
//! Polish tax law converts a foreign-currency cost incurred on day D at the NBP mid rate of the
//! last business day *before* D, so the calendar must be right for every year, not only the one
//! a hand-written list was made for (the original missed Easter Monday, Pentecost and Corpus
//! Christi outside 2025 and treated 24 December as a holiday in every year).
//!
//! The rules follow the Act on non-working days (ustawa o dniach wolnych od pracy) as in force
//! now: Epiphany (6 January) is a holiday since 2011 and Christmas Eve (24 December) since 2025.
//! Holidays abolished before 1990 are not modelled; dates that old never reach this library.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The first year in which 6 January (Trzech Króli) is a public holiday.
const EPIPHANY_SINCE: i32 = 2011;
/// The first year in which 24 December (Wigilia) is a public holiday.
const CHRISTMAS_EVE_SINCE: i32 = 2025;

/// Easter Sunday of `year` in the Gregorian calendar, or `None` if the date is not representable.
///
/// Uses the anonymous Gregorian computus (Meeus/Jones/Butcher) with Euclidean division, so the
/// arithmetic stays correct for proleptic years too.
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_domain::holidays::easter_sunday;
///
/// assert_eq!(easter_sunday(2026), NaiveDate::from_ymd_opt(2026, 4, 5));
/// ```
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// All Polish public holidays of `year` with their Polish names, in calendar order.
///
/// Pentecost Sunday is listed for completeness although it always falls on a Sunday. Returns an
/// empty list for years whose dates chrono cannot represent.
pub fn polish_public_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let ymd = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let mut fixed: Vec<(Option<NaiveDate>, &'static str)> = vec![(ymd(1, 1), "Nowy Rok")];
    if year >= EPIPHANY_SINCE {
        fixed.push((ymd(1, 6), "Trzech Króli"));
    }
    if let Some(easter) = easter_sunday(year) {
        let after = |n: u64| easter.checked_add_days(Days::new(n));
        fixed.push((Some(easter), "Wielkanoc"));
        fixed.push((after(1), "Poniedziałek Wielkanocny"));
        fixed.push((after(49), "Zielone Świątki"));
        fixed.push((after(60), "Boże Ciało"));
    }
    fixed.push((ymd(5, 1), "Święto Pracy"));
    fixed.push((ymd(5, 3), "Święto Konstytucji 3 Maja"));
    fixed.push((ymd(8, 15), "Wniebowzięcie Najświętszej Maryi Panny"));
    fixed.push((ymd(11, 1), "Wszystkich Świętych"));
    fixed.push((ymd(11, 11), "Narodowe Święto Niepodległości"));
    if year >= CHRISTMAS_EVE_SINCE {
        fixed.push((ymd(12, 24), "Wigilia Bożego Narodzenia"));
    }
    fixed.push((ymd(12, 25), "Boże Narodzenie (pierwszy dzień)"));
    fixed.push((ymd(12, 26), "Boże Narodzenie (drugi dzień)"));

    let mut out: Vec<(NaiveDate, &'static str)> = fixed
        .into_iter()
        .filter_map(|(date, name)| date.map(|d| (d, name)))
        .collect();
    out.sort_by_key(|(date, _)| *date);
    out
}

/// The Polish name of the public holiday on `date`, if it is one.
///
/// Checks fixed dates first so the common case does not compute Easter.
pub fn polish_holiday_name(date: NaiveDate) -> Option<&'static str> {
    let year = date.year();
    let fixed = match (date.month(), date.day()) {
        (1, 1) => Some("Nowy Rok"),
        (1, 6) if year >= EPIPHANY_SINCE => Some("Trzech Króli"),
        (5, 1) => Some("Święto Pracy"),
        (5, 3) => Some("Święto Konstytucji 3 Maja"),
        (8, 15) => Some("Wniebowzięcie Najświętszej Maryi Panny"),
        (11, 1) => Some("Wszystkich Świętych"),
        (11, 11) => Some("Narodowe Święto Niepodległości"),
        (12, 24) if year >= CHRISTMAS_EVE_SINCE => Some("Wigilia Bożego Narodzenia"),
        (12, 25) => Some("Boże Narodzenie (pierwszy dzień)"),
        (12, 26) => Some("Boże Narodzenie (drugi dzień)"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    // Movable feasts fall between 22 March (Easter) and 24 June (Corpus Christi).
    if !(3..=6).contains(&date.month()) {
        return None;
    }
    let easter = easter_sunday(year)?;
    match date.signed_duration_since(easter).num_days() {
        0 => Some("Wielkanoc"),
        1 => Some("Poniedziałek Wielkanocny"),
        49 => Some("Zielone Świątki"),
        60 => Some("Boże Ciało"),
        _ => None,
    }
}

/// Whether `date` is a Polish public holiday.
pub fn is_polish_public_holiday(date: NaiveDate) -> bool {
    polish_holiday_name(date).is_some()
}

/// Whether `date` is a Polish business day: Monday to Friday and not a public holiday.
pub fn is_polish_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_polish_public_holiday(date)
}

/// The last Polish business day strictly before `date`.
///
/// Unlike the original, this always returns a business day: it keeps walking back until it
/// finds one (the longest run of non-business days is a handful of days, so the walk is short).
/// Only for dates within days of [`NaiveDate::MIN`], where no earlier date exists, does it give
/// up and return [`NaiveDate::MIN`].
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_domain::holidays::last_business_day_before;
///
/// let easter_tuesday = NaiveDate::from_ymd_opt(2025, 4, 22).unwrap();
/// assert_eq!(last_business_day_before(easter_tuesday), NaiveDate::from_ymd_opt(2025, 4, 18).unwrap());
/// ```
pub fn last_business_day_before(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    while let Some(prev) = day.pred_opt() {
        if is_polish_business_day(prev) {
            return prev;
        }
        day = prev;
    }
    NaiveDate::MIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn easter_known_years() {
        let known = [
            d(2000, 4, 23),
            d(2011, 4, 24),
            d(2019, 4, 21),
            d(2024, 3, 31),
            d(2025, 4, 20),
            d(2026, 4, 5),
            d(2038, 4, 25),
            d(2285, 3, 22),
        ];
        for date in known {
            assert_eq!(easter_sunday(date.year()), Some(date), "{date}");
        }
    }

    #[test]
    fn movable_holidays_2026_are_not_business_days() {
        assert!(is_polish_public_holiday(d(2026, 4, 6)));
        assert!(is_polish_public_holiday(d(2026, 6, 4)));
        assert!(!is_polish_business_day(d(2026, 4, 6)));
        assert!(!is_polish_business_day(d(2026, 6, 4)));
        assert_eq!(polish_holiday_name(d(2026, 6, 4)), Some("Boże Ciało"));
        assert_eq!(polish_holiday_name(d(2026, 5, 24)), Some("Zielone Świątki"));
    }

    #[test]
    fn christmas_eve_only_from_2025() {
        assert!(is_polish_business_day(d(2024, 12, 24)));
        assert!(!is_polish_public_holiday(d(2024, 12, 24)));
        assert!(is_polish_public_holiday(d(2025, 12, 24)));
        assert!(!is_polish_business_day(d(2025, 12, 24)));
    }

    #[test]
    fn epiphany_only_from_2011() {
        assert!(is_polish_business_day(d(2010, 1, 6)));
        assert!(is_polish_public_holiday(d(2011, 1, 6)));
    }

    #[test]
    fn list_2025_matches_the_official_dates() {
        let dates: Vec<NaiveDate> = polish_public_holidays(2025)
            .into_iter()
            .map(|(date, _)| date)
            .collect();
        let expected = [
            d(2025, 1, 1),
            d(2025, 1, 6),
            d(2025, 4, 20),
            d(2025, 4, 21),
            d(2025, 5, 1),
            d(2025, 5, 3),
            d(2025, 6, 8),
            d(2025, 6, 19),
            d(2025, 8, 15),
            d(2025, 11, 1),
            d(2025, 11, 11),
            d(2025, 12, 24),
            d(2025, 12, 25),
            d(2025, 12, 26),
        ];
        assert_eq!(dates, expected);
        assert_eq!(polish_public_holidays(2024).len(), 13);
        assert_eq!(polish_public_holidays(2010).len(), 12);
    }

    #[test]
    fn list_and_predicate_agree() {
        for year in [2009, 2011, 2024, 2025, 2026, 2030] {
            let listed = polish_public_holidays(year);
            for (date, name) in &listed {
                assert_eq!(polish_holiday_name(*date), Some(*name), "{date}");
            }
            let mut day = d(year, 1, 1);
            let mut count = 0;
            while day.year() == year {
                if is_polish_public_holiday(day) {
                    count += 1;
                }
                day = day.succ_opt().expect("in range");
            }
            assert_eq!(count, listed.len(), "{year}");
        }
    }

    #[test]
    fn case_53_last_business_day_before() {
        let cases = [
            (d(2025, 4, 22), d(2025, 4, 18)),
            (d(2025, 11, 12), d(2025, 11, 10)),
            (d(2025, 12, 29), d(2025, 12, 23)),
            (d(2025, 5, 5), d(2025, 5, 2)),
            (d(2025, 1, 7), d(2025, 1, 3)),
            (d(2025, 1, 2), d(2024, 12, 31)),
        ];
        for (cost_date, expected) in cases {
            assert_eq!(last_business_day_before(cost_date), expected, "{cost_date}");
        }
    }

    #[test]
    fn strictly_before_even_on_a_business_day() {
        assert_eq!(last_business_day_before(d(2025, 4, 16)), d(2025, 4, 15));
        assert_eq!(last_business_day_before(d(2025, 4, 14)), d(2025, 4, 11));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        assert_eq!(last_business_day_before(NaiveDate::MIN), NaiveDate::MIN);
        let _ = polish_public_holidays(NaiveDate::MAX.year());
        let _ = polish_public_holidays(NaiveDate::MIN.year());
        let _ = is_polish_business_day(NaiveDate::MAX);
    }

    proptest! {
        #[test]
        fn last_business_day_before_is_the_closest_business_day(days in 0i64..(200 * 366)) {
            let date = d(1950, 1, 1) + chrono::Duration::days(days);
            let found = last_business_day_before(date);
            prop_assert!(found < date);
            prop_assert!(is_polish_business_day(found));
            let mut between = found.succ_opt().expect("in range");
            while between < date {
                prop_assert!(!is_polish_business_day(between), "{} is a business day", between);
                between = between.succ_opt().expect("in range");
            }
        }
    }
}
