//! Recording usage (the write side of `ClientUsageDb`): one record updates the client, user and
//! model rows of the client's day exactly, concurrent writers lose nothing, markup is taken at
//! recording time, bad input writes nothing; on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use orgusage::{ClientOrganizationForm, ClientOrganizationUpdate, Error, Store, UsageRecord};
use orgusage_testkit::backend_tests;
use orgusage_testkit::{client, date, race};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

type ErrCheck = fn(&Error) -> bool;

const SONNET: &str = "anthropic/claude-sonnet-4";

fn sonnet_request_on_24_july(c1: &str) -> UsageRecord {
    UsageRecord::new(c1, "u1", "or-u1", SONNET)
        .on(date(2025, 7, 24))
        .tokens(1000, 500)
        .raw_cost(dec!(0.01))
        .markup_cost(dec!(0.013))
        .provider("anthropic")
}

/// (tokens, requests, raw, markup) of the user, the model and the client row of one day.
fn levels(
    store: &Store,
    c: &str,
    user: &str,
    model: &str,
    day: NaiveDate,
) -> [(i64, i64, Decimal, Decimal); 3] {
    let u = store
        .usage()
        .get_usage_by_user(c, Some(day), Some(day))
        .unwrap();
    let u = u.iter().find(|r| r.user_id == user).unwrap();
    let m = store
        .usage()
        .get_usage_by_model(c, Some(day), Some(day))
        .unwrap();
    let m = m.iter().find(|r| r.model_name == model).unwrap();
    let d = store
        .usage()
        .get_daily_usage(c, day, day)
        .unwrap()
        .pop()
        .unwrap();
    [
        (u.total_tokens, u.total_requests, u.raw_cost, u.markup_cost),
        (m.total_tokens, m.total_requests, m.raw_cost, m.markup_cost),
        (d.total_tokens, d.total_requests, d.raw_cost, d.markup_cost),
    ]
}

backend_tests! {
    fn one_record_updates_the_client_user_and_model_rows(t) {
        let c1 = client(&t.store, "c1");
        let done = t.store.usage().record_usage(&sonnet_request_on_24_july(&c1)).unwrap();
        assert_eq!((done.usage_date, done.total_tokens, done.markup_cost), (date(2025, 7, 24), 1500, dec!(0.013)));
        for level in levels(&t.store, &c1, "u1", SONNET, date(2025, 7, 24)) {
            assert_eq!(level, (1500, 1, dec!(0.01), dec!(0.013)));
        }
        let m = t.store.usage().get_usage_by_model(&c1, Some(date(2025, 7, 24)), Some(date(2025, 7, 24))).unwrap();
        assert_eq!(m[0].provider.as_deref(), Some("anthropic"));
        let day = t.store.usage().get_daily_usage(&c1, date(2025, 7, 24), date(2025, 7, 24)).unwrap();
        assert_eq!((day[0].input_tokens, day[0].output_tokens), (1000, 500));
        assert_eq!(day[0].primary_model.as_deref(), Some(SONNET));
    }

    fn a_second_record_adds_to_the_same_rows(t) {
        let c1 = client(&t.store, "c1");
        t.store.usage().record_usage(&sonnet_request_on_24_july(&c1)).unwrap();
        t.store.usage().record_usage(&sonnet_request_on_24_july(&c1)).unwrap();
        for level in levels(&t.store, &c1, "u1", SONNET, date(2025, 7, 24)) {
            assert_eq!(level, (3000, 2, dec!(0.02), dec!(0.026)));
        }
    }

    fn concurrent_writers_on_two_instances_lose_nothing(t) {
        let c1 = client(&t.store, "c1");
        let threads = 4;
        let per = 50;
        let stores = (0..threads).map(|i| if i % 2 == 0 { t.store.clone() } else { t.second_instance() }).collect();
        race(stores, |_, store| {
            for _ in 0..per {
                let rec = UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).tokens(10, 0).raw_cost(dec!(0.000001));
                store.usage().record_usage(&rec).unwrap();
            }
        });
        for level in levels(&t.store, &c1, "u1", SONNET, date(2025, 7, 24)) {
            assert_eq!(level, (2000, 200, dec!(0.0002), dec!(0.00026)));
        }
    }

    fn ten_records_of_a_tenth_sum_to_exactly_one(t) {
        let c1 = client(&t.store, "c1");
        for _ in 0..10 {
            t.store.usage().record_usage(&UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).raw_cost(dec!(0.1))).unwrap();
        }
        let d = t.store.usage().get_daily_usage(&c1, date(2025, 7, 24), date(2025, 7, 24)).unwrap().pop().unwrap();
        assert_eq!((d.raw_cost, d.markup_cost), (dec!(1), dec!(1.3)));
        assert_eq!(serde_json::to_value(&d).unwrap()["markup_cost"], serde_json::json!("1.3"));
    }

    fn markup_uses_the_rate_at_recording_time_and_history_never_reprices(t) {
        let c1 = client(&t.store, "c1");
        let rec = UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).raw_cost(dec!(0.0123));
        assert_eq!(t.store.usage().record_usage(&rec).unwrap().markup_cost, dec!(0.01599));
        t.store.clients().update_client(&c1, &ClientOrganizationUpdate { markup_rate: Some(dec!(2)), ..Default::default() }).unwrap();
        let rec = UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).raw_cost(dec!(0.1));
        assert_eq!(t.store.usage().record_usage(&rec).unwrap().markup_cost, dec!(0.2));
        // History never reprices: the day holds 0.01599 + 0.2.
        let d = t.store.usage().get_daily_usage(&c1, date(2025, 7, 24), date(2025, 7, 24)).unwrap().pop().unwrap();
        assert_eq!(d.markup_cost, dec!(0.21599));
    }

    fn invalid_or_overflowing_records_and_unknown_clients_write_nothing(t) {
        let c1 = client(&t.store, "c1");
        let inactive = client(&t.store, "gone");
        t.store.clients().deactivate_client(&inactive).unwrap();
        let base = || UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).tokens(1, 1).raw_cost(dec!(0.01));
        let cases: Vec<(UsageRecord, ErrCheck)> = vec![
            (base().tokens(-1, 5), |e| matches!(e, Error::InvalidInput { .. })),
            (base().tokens(5, -1), |e| matches!(e, Error::InvalidInput { .. })),
            (base().raw_cost(dec!(-0.01)), |e| matches!(e, Error::InvalidInput { .. })),
            (base().markup_cost(dec!(-1)), |e| matches!(e, Error::InvalidInput { .. })),
            (UsageRecord { model_name: String::new(), ..base() }, |e| matches!(e, Error::InvalidInput { field: "model_name", .. })),
            (UsageRecord { user_id: " ".into(), ..base() }, |e| matches!(e, Error::InvalidInput { .. })),
            (base().tokens(i64::MAX, 1), |e| matches!(e, Error::Overflow(_))),
            (base().raw_cost(dec!(99999999999)), |e| matches!(e, Error::Overflow(_))),
            (UsageRecord { client_org_id: "nope".into(), ..base() }, |e| matches!(e, Error::NotFound { entity: "client", .. })),
            (UsageRecord { client_org_id: inactive.clone(), ..base() }, |e| matches!(e, Error::NotFound { entity: "client", .. })),
        ];
        for (rec, expected) in cases {
            let err = t.store.usage().record_usage(&rec).unwrap_err();
            assert!(expected(&err), "{rec:?} gave {err:?}");
        }
        assert!(t.store.usage().get_daily_usage(&c1, date(2025, 1, 1), date(2025, 12, 31)).unwrap().is_empty());
        assert!(t.store.usage().get_daily_usage(&inactive, date(2025, 1, 1), date(2025, 12, 31)).unwrap().is_empty());
    }

    fn unique_users_counts_distinct_users_and_primary_model_has_most_tokens(t) {
        let c1 = client(&t.store, "c1");
        let day = date(2025, 7, 24);
        for _ in 0..5 {
            t.store.usage().record_usage(&UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(day).tokens(10, 0)).unwrap();
        }
        assert_eq!(t.store.usage().get_daily_usage(&c1, day, day).unwrap()[0].unique_users, 1);
        t.store.usage().record_usage(&UsageRecord::new(&c1, "u2", "or-u2", "openai/gpt-4.1").on(day).tokens(100, 0)).unwrap();
        let d = t.store.usage().get_daily_usage(&c1, day, day).unwrap().pop().unwrap();
        assert_eq!(d.unique_users, 2);
        assert_eq!(d.primary_model.as_deref(), Some("openai/gpt-4.1"), "100 tokens beat 50");
    }

    fn events_land_on_the_warsaw_day(t) {
        let c1 = client(&t.store, "c1");
        let cases = [
            ((2025, 3, 30, 0, 59, 59), date(2025, 3, 30)),
            ((2025, 3, 30, 1, 0, 0), date(2025, 3, 30)),
            ((2025, 3, 29, 23, 0, 0), date(2025, 3, 30)),
            ((2025, 3, 29, 22, 59, 59), date(2025, 3, 29)),
            ((2025, 10, 31, 22, 59, 59), date(2025, 10, 31)),
            ((2025, 10, 31, 23, 0, 0), date(2025, 11, 1)),
            ((2025, 1, 31, 23, 0, 0), date(2025, 2, 1)),
            ((2025, 12, 31, 23, 0, 0), date(2026, 1, 1)),
        ];
        for ((y, mo, d, h, mi, s), want) in cases {
            let at = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
            let done = t.store.usage().record_usage(&UsageRecord::new(&c1, "u1", "or-u1", SONNET).at(at).tokens(1, 0)).unwrap();
            assert_eq!(done.usage_date, want, "{at}");
        }
        let oct = t.store.usage().get_usage_by_user(&c1, Some(date(2025, 10, 1)), Some(date(2025, 10, 31))).unwrap();
        assert_eq!(oct[0].total_tokens, 1);
        let nov = t.store.usage().get_usage_by_user(&c1, Some(date(2025, 11, 1)), Some(date(2025, 11, 30))).unwrap();
        assert_eq!(nov[0].total_tokens, 1);
        // Without a date or instant the clock's now decides: 2025-07-24T10:00Z is 24 July in Warsaw.
        t.clock.set(Utc.with_ymd_and_hms(2025, 7, 24, 22, 30, 0).unwrap());
        let done = t.store.usage().record_usage(&UsageRecord::new(&c1, "u1", "or-u1", SONNET).tokens(1, 0)).unwrap();
        assert_eq!(done.usage_date, date(2025, 7, 25));
    }

    fn monthly_limit_is_reported_and_crossing_is_flagged(t) {
        let form = ClientOrganizationForm { monthly_limit: Some(dec!(1.00)), ..ClientOrganizationForm::new("limited") };
        let c = t.store.clients().create_client(&form, &"sk-or-v1-limited-000".into(), None).unwrap().id;
        let rec = || UsageRecord::new(&c, "u1", "or-u1", SONNET).raw_cost(dec!(0.4)); // markup 0.52
        let first = t.store.usage().record_usage(&rec()).unwrap();
        let s = first.monthly_limit.unwrap();
        assert_eq!((s.spent, s.remaining, s.exceeded, s.percent_used), (dec!(0.52), Some(dec!(0.48)), false, Some(dec!(52))));
        assert!(!first.limit_crossed);
        let second = t.store.usage().record_usage(&rec()).unwrap();
        assert!(second.limit_crossed);
        assert!(second.monthly_limit.as_ref().unwrap().exceeded);
        assert_eq!(second.monthly_limit.unwrap().remaining, Some(dec!(0)));
        let third = t.store.usage().record_usage(&rec()).unwrap();
        assert!(!third.limit_crossed, "crossing is reported once");
        let status = t.store.usage().get_monthly_limit_status(&c).unwrap();
        assert_eq!((status.spent, status.month_start), (dec!(1.56), date(2025, 7, 1)));
        // A record in a past month counts against that month, not this one.
        let old = t.store.usage().record_usage(&rec().on(date(2025, 6, 30))).unwrap();
        let june = old.monthly_limit.unwrap();
        assert_eq!((june.month_start, june.spent, june.exceeded), (date(2025, 6, 1), dec!(0.52), false));
        assert_eq!(t.store.usage().get_monthly_limit_status(&c).unwrap().spent, dec!(1.56));
        // A client without limit gets no status.
        let free = client(&t.store, "free");
        assert!(t.store.usage().record_usage(&UsageRecord::new(&free, "u", "o", SONNET)).unwrap().monthly_limit.is_none());
        assert_eq!(t.store.usage().get_monthly_limit_status(&free).unwrap().monthly_limit, None);
    }

    fn eight_threads_2500_calls_same_key_exact(t) {
        let c1 = client(&t.store, "c1");
        let threads = 8;
        let per = 2500;
        let stores = (0..threads).map(|i| if i < 4 { t.store.clone() } else { t.second_instance() }).collect();
        race(stores, |_, store| {
            for _ in 0..per {
                let rec = UsageRecord::new(&c1, "u1", "or-u1", SONNET).on(date(2025, 7, 24)).tokens(3, 4).raw_cost(dec!(0.000123457));
                store.usage().record_usage(&rec).unwrap();
            }
        });
        let n = Decimal::from(threads * per);
        let want = (7 * (threads * per) as i64, (threads * per) as i64, dec!(0.000123457) * n, dec!(0.000160494) * n);
        for level in levels(&t.store, &c1, "u1", SONNET, date(2025, 7, 24)) {
            assert_eq!(level, want);
        }
    }

    fn limit_crossing_is_reported_exactly_once_under_concurrency(t) {
        let form = ClientOrganizationForm { monthly_limit: Some(dec!(1.00)), ..ClientOrganizationForm::new("busy") };
        let c = t.store.clients().create_client(&form, &"sk-or-v1-busy-000".into(), None).unwrap().id;
        let threads = 8;
        let stores = (0..threads).map(|i| if i % 2 == 0 { t.store.clone() } else { t.second_instance() }).collect();
        let crossed: usize = race(stores, |i, store| {
            let mut crossed = 0;
            for n in 0..25 {
                let rec = UsageRecord::new(&c, format!("u{i}"), "or", SONNET).markup_cost(dec!(0.01));
                // Half the writes go through the exactly-once path.
                let done = if n % 2 == 0 {
                    store.usage().record_usage(&rec).unwrap()
                } else {
                    match store.usage().record_generation(&format!("g-{i}-{n}"), &rec).unwrap() {
                        orgusage::GenerationOutcome::Recorded(r) => r,
                        orgusage::GenerationOutcome::Duplicate => panic!("unique ids"),
                    }
                };
                assert!(done.monthly_limit.is_some());
                crossed += usize::from(done.limit_crossed);
            }
            crossed
        })
        .into_iter()
        .sum();
        assert_eq!(crossed, 1, "the 100th cent crosses the limit, once");
        let status = t.store.usage().get_monthly_limit_status(&c).unwrap();
        assert_eq!((status.spent, status.exceeded, status.remaining), (dec!(2.00), true, Some(dec!(0))));
    }
}
