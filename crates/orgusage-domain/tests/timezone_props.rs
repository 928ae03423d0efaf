//! Property and edge tests of the client-local calendar: day bounds must partition time exactly
//! in every zone, including DST zones, a 30-minute-DST zone and a zone that skipped a whole day.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use orgusage_domain::timezone::*;
use orgusage_domain::{Clock, Error, ManualClock};
use proptest::prelude::*;

const ZONES: [&str; 6] = [
    "Europe/Warsaw",
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
];

/// 2100-01-01T00:00:00Z, the exclusive upper end of the instants under test.
const END_2100: i64 = 4_102_444_800;

fn zone(index: usize) -> Tz {
    parse_timezone(ZONES[index]).expect("test zones are canonical")
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("1970..2100 is in range")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn instant_lies_within_its_local_day(z in 0..ZONES.len(), secs in 0..END_2100) {
        let (tz, at) = (zone(z), instant(secs));
        let (start, end) = local_day_bounds(tz, local_date_at(tz, at));
        prop_assert!(start <= at && at < end, "{at} not in [{start}, {end}) in {tz}");
    }

    #[test]
    fn local_day_is_between_22_and_26_hours(z in 0..ZONES.len(), secs in 0..END_2100) {
        let tz = zone(z);
        let (start, end) = local_day_bounds(tz, local_date_at(tz, instant(secs)));
        let length = end - start;
        prop_assert!(
            TimeDelta::hours(22) <= length && length <= TimeDelta::hours(26),
            "day of {start} lasts {length} in {tz}"
        );
    }

    #[test]
    fn consecutive_days_abut(z in 0..ZONES.len(), secs in 0..END_2100) {
        let tz = zone(z);
        let day = local_date_at(tz, instant(secs));
        let next = day.succ_opt().unwrap();
        prop_assert_eq!(local_day_bounds(tz, day).1, local_day_bounds(tz, next).0);
    }

    #[test]
    fn month_start_and_end_enclose_the_date(z in 0..ZONES.len(), secs in 0..END_2100) {
        let day = local_date_at(zone(z), instant(secs));
        let (first, last) = (month_start(day), month_end(day));
        prop_assert!(first <= day && day <= last);
        prop_assert_eq!((first.year(), first.month()), (day.year(), day.month()));
        prop_assert_eq!((last.year(), last.month()), (day.year(), day.month()));
        prop_assert_eq!(first.day(), 1);
        prop_assert!(last.succ_opt().unwrap().month() != day.month());
    }

    #[test]
    fn days_in_month_matches_month_end(z in 0..ZONES.len(), secs in 0..END_2100) {
        let day = local_date_at(zone(z), instant(secs));
        prop_assert_eq!(days_in_month(day.year(), day.month()), month_end(day).day());
    }
}

/// Random instants rarely hit a transition, so walk every local day of 1970–2099 in each zone.
#[test]
fn every_day_from_1970_to_2100_is_well_formed() {
    let first = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
    let last = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();
    for name in ZONES {
        let tz = parse_timezone(name).unwrap();
        let mut day = first;
        let mut previous_end = local_day_bounds(tz, day).0;
        let mut skipped = 0;
        while day <= last {
            let (start, end) = local_day_bounds(tz, day);
            assert_eq!(
                start, previous_end,
                "{name} {day} does not abut the day before"
            );
            if start == end {
                // A day the zone skipped entirely; its start belongs to a later date.
                assert!(
                    local_date_at(tz, start) > day,
                    "{name} {day} empty but exists"
                );
                skipped += 1;
            } else {
                let length = end - start;
                assert!(
                    TimeDelta::hours(22) <= length && length <= TimeDelta::hours(26),
                    "{name} {day} lasts {length}"
                );
                assert_eq!(local_date_at(tz, start), day, "{name} {day} start");
                let last_second = end - TimeDelta::seconds(1);
                assert_eq!(local_date_at(tz, last_second), day, "{name} {day} end");
            }
            previous_end = end;
            day = day.succ_opt().unwrap();
        }
        let expected_skips = usize::from(name == "Pacific/Kiritimati");
        assert_eq!(skipped, expected_skips, "{name} skipped days");
    }
}

// Deterministic edge cases through the public API (kept here to hold timezone.rs under its size cap).

fn utc(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().expect("valid RFC 3339 literal")
}

fn date(iso: &str) -> NaiveDate {
    iso.parse().expect("valid ISO date literal")
}

#[test]
fn midnight_in_a_dst_gap_starts_the_day_after_the_gap() {
    // Chile springs forward at 24:00, so 2024-09-08 begins at 01:00 -03.
    let santiago = parse_timezone("America/Santiago").unwrap();
    let (start, end) = local_day_bounds(santiago, date("2024-09-08"));
    assert_eq!(
        (start, end),
        (utc("2024-09-08T04:00:00Z"), utc("2024-09-09T03:00:00Z"))
    );
    assert_eq!(local_date_at(santiago, start), date("2024-09-08"));
    let (prev_start, prev_end) = local_day_bounds(santiago, date("2024-09-07"));
    assert_eq!(prev_end, start);
    assert_eq!(prev_end - prev_start, TimeDelta::hours(24));
}

#[test]
fn repeated_midnight_starts_the_day_at_its_first_occurrence() {
    // Cuba falls back from 01:00 CDT to 00:00 CST, so midnight happens twice.
    let havana = parse_timezone("America/Havana").unwrap();
    let (start, end) = local_day_bounds(havana, date("2024-11-03"));
    assert_eq!(start, utc("2024-11-03T04:00:00Z"));
    assert_eq!(end - start, TimeDelta::hours(25));
}

#[test]
fn a_skipped_day_is_an_empty_interval() {
    // Kiritimati jumped from -10 to +14, so 1994-12-31 never happened there.
    let kiritimati = parse_timezone("Pacific/Kiritimati").unwrap();
    let (start, end) = local_day_bounds(kiritimati, date("1994-12-31"));
    assert_eq!(start, end);
    assert_eq!(local_date_at(kiritimati, start), date("1995-01-01"));
    assert_eq!(local_day_bounds(kiritimati, date("1994-12-30")).1, start);
    assert_eq!(local_day_bounds(kiritimati, date("1995-01-01")).0, start);
}

#[test]
fn the_edges_of_chrono_never_panic() {
    let extremes = [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC];
    for name in ["Europe/Warsaw", "Pacific/Kiritimati", "Pacific/Niue", "UTC"] {
        let tz = parse_timezone(name).unwrap();
        for day in [NaiveDate::MAX, NaiveDate::MIN] {
            let (start, end) = local_day_bounds(tz, day);
            assert!(start <= end, "{name} {day}");
        }
        for at in extremes {
            let _ = local_date_at(tz, at);
            let _ = get_timezone_offset_info_at(name, at);
        }
    }
    for at in extremes {
        assert_eq!(
            get_polish_business_hours_info_at(at).timezone,
            "Europe/Warsaw"
        );
    }
    let far = get_timezone_offset_info_at("Pacific/Kiritimati", DateTime::<Utc>::MAX_UTC);
    assert!(matches!(
        far,
        Err(Error::InvalidInput {
            field: "instant",
            ..
        })
    ));
}

#[test]
fn invalid_zone_errors_propagate_from_every_clock_function() {
    let clock = ManualClock::new(utc("2025-07-15T08:00:00Z"));
    for result in [
        get_client_local_date_with(&clock, "Poland"),
        get_client_month_start_with(&clock, "Poland"),
        get_client_local_date("Poland"),
        get_client_month_start("Poland"),
    ] {
        assert!(matches!(result, Err(Error::InvalidTimezone(n)) if n == "Poland"));
    }
    assert!(get_month_date_range_for_client_with(&clock, "CET").is_err());
    assert!(get_month_date_range_for_client("CET").is_err());
    let info = get_timezone_offset_info_at("CET", clock.now());
    assert!(matches!(info, Err(Error::InvalidTimezone(n)) if n == "CET"));
    assert!(get_timezone_offset_info("Europe/Warsaw").is_ok());
    assert!(get_client_local_date(DEFAULT_TIMEZONE).is_ok());
}

#[test]
fn timezone_offset_info_at_known_instants() {
    let summer = utc("2025-07-15T08:00:00Z");
    let warsaw = get_timezone_offset_info_at("Europe/Warsaw", summer).unwrap();
    let expected = TimezoneOffsetInfo {
        timezone: "Europe/Warsaw".into(),
        current_datetime: "2025-07-15T10:00:00+02:00".into(),
        current_date: "2025-07-15".into(),
        utc_offset: "+0200".into(),
        timezone_name: "CEST".into(),
        is_dst: true,
    };
    assert_eq!(warsaw, expected);
    let kolkata = get_timezone_offset_info_at("Asia/Kolkata", summer).unwrap();
    assert_eq!(
        (kolkata.utc_offset.as_str(), kolkata.timezone_name.as_str()),
        ("+0530", "IST")
    );
    assert!(!kolkata.is_dst);
    let winter = utc("2025-01-15T03:00:00Z");
    let ny = get_timezone_offset_info_at("America/New_York", winter).unwrap();
    assert_eq!(ny.current_datetime, "2025-01-14T22:00:00-05:00");
    assert_eq!(ny.current_date, "2025-01-14");
    assert_eq!(
        (ny.utc_offset.as_str(), ny.timezone_name.as_str()),
        ("-0500", "EST")
    );
    assert!(!ny.is_dst);
    let zulu = get_timezone_offset_info_at("UTC", summer).unwrap();
    assert_eq!(zulu.current_datetime, "2025-07-15T08:00:00+00:00");
    // Lord Howe's summer shift is only 30 minutes; it still counts as DST.
    let lord_howe = get_timezone_offset_info_at("Australia/Lord_Howe", winter).unwrap();
    assert_eq!(lord_howe.utc_offset, "+1100");
    assert!(lord_howe.is_dst);
    // tzdata defines Irish summer time as standard and winter GMT as a negative DST, so is_dst
    // follows tzdata (and libc's tm_isdst) there: true in winter, false in summer.
    let dublin = |at| get_timezone_offset_info_at("Europe/Dublin", at).map(|i| i.is_dst);
    assert_eq!(
        (dublin(summer).unwrap(), dublin(winter).unwrap()),
        (false, true)
    );
}

#[test]
fn info_structs_serialize_with_the_original_keys() {
    let at = utc("2025-07-15T08:00:00Z");
    let hours = serde_json::to_value(get_polish_business_hours_info_at(at)).unwrap();
    assert_eq!(hours["current_time_poland"], "2025-07-15 10:00:00 CEST");
    assert_eq!(hours["month_name_polish"], "Lipiec");
    // The original's 7 keys plus `is_public_holiday` and `holiday_name`.
    assert_eq!(hours.as_object().unwrap().len(), 9);
    assert_eq!(hours["is_public_holiday"], false);
    assert!(hours["holiday_name"].is_null());
    assert_eq!(get_polish_business_hours_info().timezone, "Europe/Warsaw");
    let offset = serde_json::to_value(get_timezone_offset_info_at("UTC", at).unwrap()).unwrap();
    let mut keys: Vec<&str> = offset
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let expected = [
        "current_date",
        "current_datetime",
        "is_dst",
        "timezone",
        "timezone_name",
    ];
    assert_eq!(keys, [&expected[..], &["utc_offset"]].concat());
}

#[test]
fn public_holidays_are_not_business_hours() {
    // Corpus Christi 2026 is a Thursday; 08:00Z is 10:00 CEST, inside the usual hours.
    let corpus_christi = get_polish_business_hours_info_at(utc("2026-06-04T08:00:00Z"));
    assert!(!corpus_christi.is_business_hours);
    assert!(corpus_christi.is_public_holiday);
    assert_eq!(corpus_christi.holiday_name.as_deref(), Some("Boże Ciało"));
    // Christmas Eve is a holiday from 2025 only.
    let eve_2024 = get_polish_business_hours_info_at(utc("2024-12-24T09:00:00Z"));
    assert!(eve_2024.is_business_hours && !eve_2024.is_public_holiday);
    let eve_2025 = get_polish_business_hours_info_at(utc("2025-12-24T09:00:00Z"));
    assert!(!eve_2025.is_business_hours);
    assert_eq!(
        eve_2025.holiday_name.as_deref(),
        Some("Wigilia Bożego Narodzenia")
    );
    // Easter Monday 2025.
    assert!(!get_polish_business_hours_info_at(utc("2025-04-21T10:00:00Z")).is_business_hours);
}
