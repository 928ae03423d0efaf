//! Client-local calendar math: which day and month an instant belongs to in a client's time zone,
//! the UTC bounds of a local day, month arithmetic, and the Polish-facing helpers of the original
//! `timezone_utils.py`.
//!
//! Design decisions that differ from the original on purpose:
//!
//! * **Instants, never server dates** (bugs B4, B11, B13). Usage is bucketed by converting the
//!   *event instant* to the client's zone at write time ([`local_date_at`]); queries turn a local
//!   day into a UTC interval ([`local_day_bounds`]). There is deliberately no
//!   `convert_server_date_to_client_date`: a date carries no instant, so converting it assumes a
//!   server zone, which is exactly the original's bug.
//! * **"Now" comes from an injected [`Clock`]** (bug B12). Every `*_with` function takes the clock
//!   and nothing is cached, so "today" advances in a long-running process. The plain functions use
//!   [`SystemClock`] and exist only for parity with the original API.
//! * **Only canonical IANA names are accepted** (bug B40). A stored client timezone must be
//!   `UTC` or `Area/Location[/Sub]` with a real IANA area (`Europe/Warsaw`,
//!   `America/Argentina/Buenos_Aires`), matched case-sensitively. Legacy aliases such as `CET`,
//!   `Poland`, `EST5EDT`, `US/Eastern` or `Etc/GMT+1` are rejected even though tzdata knows them:
//!   `CET` ignores Poland's own rule history, `Etc/GMT+1` has an inverted sign that invites
//!   mistakes, and accepting several spellings of one zone would let equal clients compare unequal.
//!   Backward-compatible `Area/City` links (e.g. `Europe/Kiev`) are still accepted because they
//!   have the canonical shape and resolve to the same rules.
//! * **Month length is the calendar length** (bug B45): [`days_in_month`] is 28–31, never the
//!   number of days elapsed so far.
//! * **Nothing here panics.** Functions that cannot fail on real input are infallible and document
//!   their fallback for the unreachable edges of chrono's date range.

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, Offset, SecondsFormat, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::{GapInfo, OffsetComponents, OffsetName, Tz};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// The zone of a client that does not say otherwise; the product's customers are Polish.
pub const DEFAULT_TIMEZONE: &str = "Europe/Warsaw";

/// Polish month names, nominative and capitalised, January first (as in the original UI).
#[rustfmt::skip]
pub const POLISH_MONTH_NAMES: [&str; 12] = [
    "Styczeń", "Luty", "Marzec", "Kwiecień", "Maj", "Czerwiec",
    "Lipiec", "Sierpień", "Wrzesień", "Październik", "Listopad", "Grudzień",
];

/// The IANA continent/ocean areas; anything else (`US/`, `Etc/`, `Poland/`) is a legacy alias.
const IANA_AREAS: &str =
    "Africa America Antarctica Arctic Asia Atlantic Australia Europe Indian Pacific";

/// Parses a canonical IANA time-zone name.
///
/// Accepts `UTC` or `Area/Location[/Sub]` where `Area` is an IANA continent or ocean, and only the
/// exact, case-sensitive spelling known to the bundled tz database. See the module docs for why
/// `CET`, `Poland` and other legacy aliases are rejected.
///
/// # Errors
/// [`Error::InvalidTimezone`] carrying the rejected name.
///
/// ```
/// use orgusage_domain::timezone::parse_timezone;
///
/// assert_eq!(parse_timezone("Europe/Warsaw").unwrap(), chrono_tz::Europe::Warsaw);
/// assert!(parse_timezone("CET").is_err());
/// assert!(parse_timezone("europe/warsaw").is_err());
/// ```
pub fn parse_timezone(name: &str) -> Result<Tz> {
    if has_canonical_shape(name) {
        // `FromStr` is the exact-match lookup; the name check guards against a future
        // case-insensitive or alias-resolving parser silently widening what we store.
        if let Ok(tz) = name.parse::<Tz>() {
            if tz.name() == name {
                return Ok(tz);
            }
        }
    }
    Err(Error::InvalidTimezone(name.to_string()))
}

fn has_canonical_shape(name: &str) -> bool {
    if name == "UTC" {
        return true;
    }
    let Some((area, location)) = name.split_once('/') else {
        return false;
    };
    IANA_AREAS.split(' ').any(|known| known == area)
        && location.split('/').count() <= 2
        && location.split('/').all(|part| !part.is_empty())
}

/// Whether `name` is accepted by [`parse_timezone`] (`CET` and `Poland` are not).
pub fn validate_timezone(name: &str) -> bool {
    parse_timezone(name).is_ok()
}

/// The calendar date of `instant` in `tz`; this is the day usage is booked to.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use chrono_tz::Europe::Warsaw;
/// use orgusage_domain::timezone::local_date_at;
///
/// // Midnight CET: the event belongs to February, although it is still January in UTC.
/// let instant = Utc.with_ymd_and_hms(2025, 1, 31, 23, 0, 0).unwrap();
/// assert_eq!(local_date_at(Warsaw, instant), NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
/// ```
pub fn local_date_at(tz: Tz, instant: DateTime<Utc>) -> NaiveDate {
    let utc = instant.naive_utc();
    // `DateTime<Tz>::date_naive` panics when the local time leaves chrono's range (only within
    // hours of `DateTime::<Utc>::MAX_UTC`/`MIN_UTC`); there the UTC date is the saturated answer.
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
        .map_or(utc.date(), |local| local.date())
}

/// The half-open UTC interval `[start, end)` covered by local day `date` in `tz`.
///
/// `end` is the start of the next local day, so consecutive days abut exactly and DST days are
/// 23 or 25 hours long. When midnight does not exist (a DST gap at 00:00, as in
/// America/Santiago), the day starts at the first local instant after the gap; when midnight
/// occurs twice, at its first occurrence (were clocks ever set back *across* midnight, the
/// repeated minutes of the day before would fall inside this interval). A day skipped entirely
/// (Pacific/Kiritimati on 1994-12-31) yields an empty interval `start == end`.
///
/// Fallback: only at the edges of chrono's representable range, where the tz database has no
/// answer, is local midnight read as UTC midnight (and a missing next day taken as 24 hours).
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use chrono_tz::Europe::Warsaw;
/// use orgusage_domain::timezone::local_day_bounds;
///
/// // Spring forward: 2025-03-30 is only 23 hours long in Warsaw.
/// let (start, end) = local_day_bounds(Warsaw, NaiveDate::from_ymd_opt(2025, 3, 30).unwrap());
/// assert_eq!(start, Utc.with_ymd_and_hms(2025, 3, 29, 23, 0, 0).unwrap());
/// assert_eq!(end, Utc.with_ymd_and_hms(2025, 3, 30, 22, 0, 0).unwrap());
/// ```
pub fn local_day_bounds(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_day_start(tz, date);
    let end = match date.succ_opt() {
        Some(next) => local_day_start(tz, next),
        None => start
            .checked_add_signed(TimeDelta::days(1))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    };
    (start, end)
}

fn local_day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(start) => start.with_timezone(&Utc),
        // Clocks went back over midnight: the day began at the first midnight.
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        // Midnight fell into a gap (or out of chrono's range, where GapInfo has no answer).
        LocalResult::None => GapInfo::new(&midnight, &tz)
            .and_then(|gap| gap.end)
            .map_or_else(|| midnight.and_utc(), |after| after.with_timezone(&Utc)),
    }
}

/// The first day of `date`'s month.
pub fn month_start(date: NaiveDate) -> NaiveDate {
    // Day 1 exists in every month; the fallback only satisfies the type.
    date.with_day(1).unwrap_or(date)
}

/// The last day of `date`'s month (the inclusive end of a month range).
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_domain::timezone::month_end;
///
/// let d = NaiveDate::from_ymd_opt(2024, 2, 3).unwrap();
/// assert_eq!(month_end(d), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
/// ```
pub fn month_end(date: NaiveDate) -> NaiveDate {
    date.with_day(days_in_month(date.year(), date.month()))
        .unwrap_or(date)
}

/// The number of days in a month of the proleptic Gregorian calendar (28–31), or 0 when `month`
/// is not in `1..=12`, so a bad month can never be mistaken for a real length.
///
/// ```
/// use orgusage_domain::timezone::days_in_month;
///
/// assert_eq!(days_in_month(2024, 2), 29);
/// assert_eq!(days_in_month(2100, 2), 28);
/// assert_eq!(days_in_month(2025, 13), 0);
/// ```
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Today's date in zone `tz` by the system clock; see [`get_client_local_date_with`].
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
pub fn get_client_local_date(tz: &str) -> Result<NaiveDate> {
    get_client_local_date_with(&SystemClock, tz)
}

/// Today's date in zone `tz` according to `clock`.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use orgusage_domain::clock::ManualClock;
/// use orgusage_domain::timezone::get_client_local_date_with;
///
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 5, 31, 22, 1, 0).unwrap());
/// let today = get_client_local_date_with(&clock, "Europe/Warsaw")?;
/// assert_eq!(today, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
/// # Ok::<(), orgusage_domain::Error>(())
/// ```
pub fn get_client_local_date_with(clock: &dyn Clock, tz: &str) -> Result<NaiveDate> {
    Ok(local_date_at(parse_timezone(tz)?, clock.now()))
}

/// The first day of the current month in zone `tz` by the system clock.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
pub fn get_client_month_start(tz: &str) -> Result<NaiveDate> {
    get_client_month_start_with(&SystemClock, tz)
}

/// The first day of the current month in zone `tz` according to `clock`.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use orgusage_domain::clock::ManualClock;
/// use orgusage_domain::timezone::get_client_month_start_with;
///
/// // 03:00 UTC on 1 March is still 28 February in New York.
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 3, 1, 3, 0, 0).unwrap());
/// let start = get_client_month_start_with(&clock, "America/New_York")?;
/// assert_eq!(start, NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
/// # Ok::<(), orgusage_domain::Error>(())
/// ```
pub fn get_client_month_start_with(clock: &dyn Clock, tz: &str) -> Result<NaiveDate> {
    get_client_local_date_with(clock, tz).map(month_start)
}

/// The inclusive month-to-date range `(month start, today)` in zone `tz` by the system clock.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
pub fn get_month_date_range_for_client(tz: &str) -> Result<(NaiveDate, NaiveDate)> {
    get_month_date_range_for_client_with(&SystemClock, tz)
}

/// The inclusive month-to-date range `(month start, today)` in zone `tz` according to `clock`.
///
/// Both ends come from a single reading of the clock, so they always lie in the same month.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
pub fn get_month_date_range_for_client_with(
    clock: &dyn Clock,
    tz: &str,
) -> Result<(NaiveDate, NaiveDate)> {
    let today = get_client_local_date_with(clock, tz)?;
    Ok((month_start(today), today))
}

/// The Polish name of `month` (1 = "Styczeń"), or "Unknown" outside `1..=12` as in the original.
pub fn polish_month_name(month: u32) -> &'static str {
    month
        .checked_sub(1)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| POLISH_MONTH_NAMES.get(index))
        .copied()
        .unwrap_or("Unknown")
}

/// The time in Poland and whether it is within business hours (never on a public holiday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolishBusinessHoursInfo {
    /// Local wall time with the zone abbreviation, e.g. "2025-07-15 10:00:00 CEST".
    pub current_time_poland: String,
    /// Always "Europe/Warsaw".
    pub timezone: String,
    /// Whether summer time (CEST) is in effect.
    pub is_dst: bool,
    /// The UTC offset as `±HHMM`: "+0100" in winter, "+0200" in summer.
    pub utc_offset: String,
    /// A business day (Monday to Friday, not a public holiday) and 9 ≤ local hour < 17.
    pub is_business_hours: bool,
    /// Whether the local date is a Polish public holiday (an addition).
    pub is_public_holiday: bool,
    /// The holiday's Polish name, e.g. "Boże Ciało" (an addition).
    pub holiday_name: Option<String>,
    /// The English weekday name, e.g. "Tuesday" (the original used English here).
    pub weekday: String,
    /// The Polish name of the local month, e.g. "Lipiec".
    pub month_name_polish: String,
}

/// [`get_polish_business_hours_info_at`] for the system clock's current instant.
pub fn get_polish_business_hours_info() -> PolishBusinessHoursInfo {
    get_polish_business_hours_info_at(SystemClock.now())
}

/// Polish local time facts at `instant`; infallible because the zone is fixed.
///
/// Instants within a day of chrono's representable limits are clamped inward, since their
/// local time cannot be formatted.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use orgusage_domain::timezone::get_polish_business_hours_info_at;
///
/// let info = get_polish_business_hours_info_at(Utc.with_ymd_and_hms(2025, 7, 15, 8, 0, 0).unwrap());
/// assert_eq!(info.current_time_poland, "2025-07-15 10:00:00 CEST");
/// assert!(info.is_business_hours);
/// assert_eq!(info.weekday, "Tuesday");
/// assert_eq!(info.month_name_polish, "Lipiec");
/// ```
pub fn get_polish_business_hours_info_at(instant: DateTime<Utc>) -> PolishBusinessHoursInfo {
    let tz = chrono_tz::Europe::Warsaw;
    // Clamping keeps the function total: only instants within a day of chrono's limits move.
    let margin = TimeDelta::days(1);
    let clamped = match (
        DateTime::<Utc>::MIN_UTC.checked_add_signed(margin),
        DateTime::<Utc>::MAX_UTC.checked_sub_signed(margin),
    ) {
        (Some(lowest), Some(highest)) => instant.clamp(lowest, highest),
        _ => instant,
    };
    let local = clamped.with_timezone(&tz);
    let holiday = crate::holidays::polish_holiday_name(local.date_naive());
    let is_workday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && holiday.is_none();
    PolishBusinessHoursInfo {
        current_time_poland: format!(
            "{} {}",
            local.format("%Y-%m-%d %H:%M:%S"),
            zone_abbreviation(&local)
        ),
        timezone: tz.name().to_string(),
        is_dst: is_dst(&local),
        utc_offset: local.format("%z").to_string(),
        is_business_hours: is_workday && (9..17).contains(&local.hour()),
        is_public_holiday: holiday.is_some(),
        holiday_name: holiday.map(str::to_string),
        weekday: english_weekday(local.weekday()).to_string(),
        month_name_polish: polish_month_name(local.month()).to_string(),
    }
}

/// Offset facts of a zone at one instant (the original's `get_timezone_offset_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimezoneOffsetInfo {
    /// The zone's IANA name as given.
    pub timezone: String,
    /// The local time in RFC 3339 with its offset, e.g. "2025-07-15T10:00:00+02:00".
    pub current_datetime: String,
    /// The local date as `YYYY-MM-DD`.
    pub current_date: String,
    /// The UTC offset as `±HHMM`, e.g. "+0200" or "+0530".
    pub utc_offset: String,
    /// The zone abbreviation in effect, e.g. "CEST"; a numeric offset where tzdata has no letters.
    pub timezone_name: String,
    /// Whether the offset differs from the zone's standard offset, as tzdata defines it (so it is
    /// true in *winter* for Europe/Dublin, whose standard time is the summer one).
    pub is_dst: bool,
}

/// [`get_timezone_offset_info_at`] for the system clock's current instant.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name.
pub fn get_timezone_offset_info(tz: &str) -> Result<TimezoneOffsetInfo> {
    get_timezone_offset_info_at(tz, SystemClock.now())
}

/// Offset facts of zone `tz` at `instant`.
///
/// Unlike the original, an invalid zone is an error rather than a dict with `fallback_used`.
///
/// # Errors
/// [`Error::InvalidTimezone`] when `tz` is not a canonical IANA name; [`Error::InvalidInput`]
/// when the local time at `instant` lies outside chrono's range (years beyond ±262,000).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use orgusage_domain::timezone::get_timezone_offset_info_at;
///
/// let at = Utc.with_ymd_and_hms(2025, 7, 15, 8, 0, 0).unwrap();
/// let info = get_timezone_offset_info_at("Europe/Warsaw", at)?;
/// assert_eq!(info.current_datetime, "2025-07-15T10:00:00+02:00");
/// assert_eq!((info.utc_offset.as_str(), info.timezone_name.as_str()), ("+0200", "CEST"));
/// assert!(info.is_dst);
/// # Ok::<(), orgusage_domain::Error>(())
/// ```
pub fn get_timezone_offset_info_at(tz: &str, instant: DateTime<Utc>) -> Result<TimezoneOffsetInfo> {
    let zone = parse_timezone(tz)?;
    let utc = instant.naive_utc();
    // Formatting a local time that chrono cannot represent would panic, so refuse it up front.
    if utc
        .checked_add_offset(zone.offset_from_utc_datetime(&utc).fix())
        .is_none()
    {
        return Err(Error::invalid(
            "instant",
            "its local time is outside the representable date range",
        ));
    }
    let local = instant.with_timezone(&zone);
    Ok(TimezoneOffsetInfo {
        timezone: zone.name().to_string(),
        current_datetime: local.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        current_date: local.format("%Y-%m-%d").to_string(),
        utc_offset: local.format("%z").to_string(),
        timezone_name: zone_abbreviation(&local),
        is_dst: is_dst(&local),
    })
}

fn is_dst(local: &DateTime<Tz>) -> bool {
    !local.offset().dst_offset().is_zero()
}

fn zone_abbreviation(local: &DateTime<Tz>) -> String {
    // Read the abbreviation directly: `%Z` goes through chrono-tz's Display, which asserts on
    // letterless offsets with seconds; the numeric fallback mirrors what tzdata would print.
    match local.offset().abbreviation() {
        Some(name) => name.to_string(),
        None => local.format("%z").to_string(),
    }
}

fn english_weekday(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono_tz::Europe::Warsaw;

    fn utc(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    fn date(iso: &str) -> NaiveDate {
        iso.parse().unwrap()
    }

    fn wall(instant: &str) -> String {
        let local = utc(instant).with_timezone(&Warsaw);
        local.format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// Asserts the Warsaw day and month of each `(instant, date)` pair.
    fn assert_books_to(cases: &[(&str, &str)]) {
        for &(instant, expected) in cases {
            let day = local_date_at(Warsaw, utc(instant));
            assert_eq!(day, date(expected), "{instant}");
            assert_eq!(month_start(day), date(expected).with_day(1).unwrap());
        }
    }

    fn assert_day(day: &str, start: &str, end: &str, hours: i64) {
        let (s, e) = local_day_bounds(Warsaw, date(day));
        assert_eq!((s, e), (utc(start), utc(end)), "{day}");
        assert_eq!(e - s, TimeDelta::hours(hours), "{day}");
    }

    #[test]
    fn january_end_books_to_february_at_cet_midnight() {
        assert_books_to(&[
            ("2025-01-31T22:59:59Z", "2025-01-31"),
            ("2025-01-31T23:00:00Z", "2025-02-01"),
        ]);
        assert_eq!(wall("2025-01-31T23:00:00Z"), "2025-02-01 00:00:00 CET");
    }

    #[test]
    fn march_end_books_to_april_at_cest_midnight() {
        assert_books_to(&[
            ("2025-03-31T21:59:59Z", "2025-03-31"),
            ("2025-03-31T22:00:00Z", "2025-04-01"),
        ]);
        assert_eq!(wall("2025-03-31T21:59:59Z"), "2025-03-31 23:59:59 CEST");
    }

    #[test]
    fn spring_dst_day_is_23_hours() {
        assert_eq!(wall("2025-03-30T00:59:59Z"), "2025-03-30 01:59:59 CET");
        assert_eq!(wall("2025-03-30T01:00:00Z"), "2025-03-30 03:00:00 CEST");
        assert_day(
            "2025-03-30",
            "2025-03-29T23:00:00Z",
            "2025-03-30T22:00:00Z",
            23,
        );
        assert_books_to(&[
            ("2025-03-29T23:00:00Z", "2025-03-30"),
            ("2025-03-30T00:59:59Z", "2025-03-30"),
            ("2025-03-30T01:00:00Z", "2025-03-30"),
            ("2025-03-30T21:59:59Z", "2025-03-30"),
            ("2025-03-30T22:00:00Z", "2025-03-31"),
        ]);
    }

    #[test]
    fn autumn_dst_day_is_25_hours() {
        assert_day(
            "2025-10-26",
            "2025-10-25T22:00:00Z",
            "2025-10-26T23:00:00Z",
            25,
        );
        assert_eq!(wall("2025-10-26T00:30:00Z"), "2025-10-26 02:30:00 CEST");
        assert_eq!(wall("2025-10-26T01:30:00Z"), "2025-10-26 02:30:00 CET");
        assert_eq!(wall("2025-10-26T22:30:00Z"), "2025-10-26 23:30:00 CET");
        assert_books_to(&[
            ("2025-10-26T00:30:00Z", "2025-10-26"),
            ("2025-10-26T01:30:00Z", "2025-10-26"),
            ("2025-10-26T22:30:00Z", "2025-10-26"),
        ]);
    }

    #[test]
    fn october_end_books_to_november_at_cet_midnight() {
        assert_books_to(&[
            ("2025-10-31T22:59:59Z", "2025-10-31"),
            ("2025-10-31T23:00:00Z", "2025-11-01"),
        ]);
    }

    #[test]
    fn new_year_books_to_january_at_cet_midnight() {
        assert_books_to(&[
            ("2025-12-31T22:59:59Z", "2025-12-31"),
            ("2025-12-31T23:00:00Z", "2026-01-01"),
        ]);
    }

    #[test]
    fn dst_rules_hold_in_2026() {
        assert_eq!(wall("2026-03-29T01:00:00Z"), "2026-03-29 03:00:00 CEST");
        assert_eq!(wall("2026-10-25T01:00:00Z"), "2026-10-25 02:00:00 CET");
        assert_day(
            "2026-03-29",
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
            23,
        );
        assert_day(
            "2026-10-25",
            "2026-10-24T22:00:00Z",
            "2026-10-25T23:00:00Z",
            25,
        );
    }

    #[test]
    fn today_follows_the_clock_across_a_month_boundary() {
        let clock = ManualClock::new(utc("2025-05-31T21:59:00Z"));
        let today = |c: &ManualClock| get_client_local_date_with(c, DEFAULT_TIMEZONE).unwrap();
        let start = |c: &ManualClock| get_client_month_start_with(c, DEFAULT_TIMEZONE).unwrap();
        assert_eq!(today(&clock), date("2025-05-31"));
        assert_eq!(start(&clock), date("2025-05-01"));
        clock.advance(TimeDelta::minutes(2));
        assert_eq!(today(&clock), date("2025-06-01"));
        assert_eq!(start(&clock), date("2025-06-01"));
        let range = get_month_date_range_for_client_with(&clock, DEFAULT_TIMEZONE).unwrap();
        assert_eq!(range, (date("2025-06-01"), date("2025-06-01")));
    }

    #[test]
    fn new_york_is_still_in_february_when_warsaw_is_in_march() {
        let clock = ManualClock::new(utc("2025-03-01T03:00:00Z"));
        let start = get_client_month_start_with(&clock, "America/New_York").unwrap();
        assert_eq!(start, date("2025-02-01"));
        let range = get_month_date_range_for_client_with(&clock, "America/New_York").unwrap();
        assert_eq!(range, (date("2025-02-01"), date("2025-02-28")));
    }

    #[test]
    fn only_canonical_iana_names_are_valid() {
        let valid = "Europe/Warsaw UTC America/New_York America/Argentina/Buenos_Aires \
                     Asia/Kolkata Australia/Lord_Howe Antarctica/Troll Arctic/Longyearbyen";
        for ok in valid.split_whitespace() {
            assert!(validate_timezone(ok), "{ok} should be valid");
            assert_eq!(parse_timezone(ok).unwrap().name(), ok);
        }
        for bad in [
            "",
            "CET",
            "Poland",
            "EST5EDT",
            "US/Eastern",
            "Etc/GMT+1",
            "Etc/UTC",
            "GMT",
            "Poland/Warsaw",
            "Invalid/Timezone",
            "europe/warsaw",
            "EUROPE/WARSAW",
            "utc",
            " Europe/Warsaw",
            "Europe/Warsaw ",
            "Europe/",
            "Europe//Warsaw",
            "Europe/Warsaw/",
            "/Europe/Warsaw",
        ] {
            assert!(!validate_timezone(bad), "{bad:?} should be rejected");
            assert!(matches!(parse_timezone(bad), Err(Error::InvalidTimezone(n)) if n == bad));
        }
    }

    #[test]
    fn polish_business_hours_and_holidays() {
        let summer = get_polish_business_hours_info_at(utc("2025-07-15T08:00:00Z"));
        let expected = PolishBusinessHoursInfo {
            current_time_poland: "2025-07-15 10:00:00 CEST".into(),
            timezone: "Europe/Warsaw".into(),
            is_dst: true,
            utc_offset: "+0200".into(),
            is_business_hours: true,
            is_public_holiday: false,
            holiday_name: None,
            weekday: "Tuesday".into(),
            month_name_polish: "Lipiec".into(),
        };
        assert_eq!(summer, expected);
        let at = |instant: &str| get_polish_business_hours_info_at(utc(instant));
        let closing = at("2025-07-15T15:00:00Z");
        assert!(!closing.is_business_hours);
        assert_eq!(closing.current_time_poland, "2025-07-15 17:00:00 CEST");
        assert!(at("2025-07-15T14:59:59Z").is_business_hours);
        assert!(!at("2025-07-15T06:59:59Z").is_business_hours);
        let saturday = at("2025-07-19T08:00:00Z");
        assert_eq!(saturday.weekday, "Saturday");
        assert!(!saturday.is_business_hours);
        let winter = at("2025-01-15T08:00:00Z");
        assert_eq!(winter.utc_offset, "+0100");
        assert!(!winter.is_dst);
        assert_eq!(winter.month_name_polish, "Styczeń");
        assert_eq!(winter.current_time_poland, "2025-01-15 09:00:00 CET");
        assert!(winter.is_business_hours);
    }

    #[test]
    fn polish_month_names() {
        let expected = "Styczeń Luty Marzec Kwiecień Maj Czerwiec Lipiec Sierpień Wrzesień \
                        Październik Listopad Grudzień";
        let expected: Vec<&str> = expected.split_whitespace().collect();
        for (month, &name) in (1..=12).zip(&expected) {
            assert_eq!(polish_month_name(month), name);
        }
        assert_eq!(POLISH_MONTH_NAMES.to_vec(), expected);
        for bad in [0, 13, u32::MAX] {
            assert_eq!(polish_month_name(bad), "Unknown");
        }
    }

    #[test]
    fn month_arithmetic() {
        let lengths = [(2024, 2, 29), (2025, 2, 28), (1900, 2, 28), (2000, 2, 29)];
        for (year, month, days) in lengths.into_iter().chain([(2025, 4, 30), (2025, 12, 31)]) {
            assert_eq!(days_in_month(year, month), days);
        }
        assert_eq!((days_in_month(2025, 0), days_in_month(2025, 13)), (0, 0));
        assert_eq!(month_start(date("2025-12-31")), date("2025-12-01"));
        assert_eq!(month_end(date("2025-02-01")), date("2025-02-28"));
        assert_eq!(month_end(NaiveDate::MAX), NaiveDate::MAX);
        assert_eq!(month_start(NaiveDate::MIN), NaiveDate::MIN);
    }
}
