//! Regression tests for the billing defects of issue 14 (markup rounded twice, the all-clients
//! report after midnight, lost limit crossings, the by-user `openrouter_user_id`, the cleanup's
//! byte figure, an inactive client's duplicate), on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use chrono::{TimeZone, Utc};
use orgusage::nbp::StaticRates;
use orgusage::pln::PlnConfig;
use orgusage::{ClientOrganizationForm, Error, GenerationOutcome, Store, UsageRecord};
use orgusage_testkit::{TestStore, backend_tests};
use orgusage_testkit::{client_with, date};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn client(store: &Store, name: &str, markup: Decimal) -> String {
    let form = ClientOrganizationForm {
        markup_rate: markup,
        ..ClientOrganizationForm::new(name)
    };
    client_with(store, form)
}

fn limited(store: &Store, name: &str, limit: Decimal) -> String {
    let form = ClientOrganizationForm {
        markup_rate: dec!(1),
        monthly_limit: Some(limit),
        ..ClientOrganizationForm::new(name)
    };
    client_with(store, form)
}

fn rec(c: &str, raw: Decimal) -> UsageRecord {
    UsageRecord::new(c, "u1", "or-u1", "openai/gpt-4.1")
        .tokens(10, 5)
        .raw_cost(raw)
}

/// (requests, raw, markup) of the client over all of July 2025.
fn july(t: &TestStore, c: &str) -> (i64, Decimal, Decimal) {
    let rows = t
        .store
        .usage()
        .get_usage_by_user(c, Some(date(2025, 7, 1)), Some(date(2025, 7, 31)))
        .unwrap();
    rows.iter().fold((0, dec!(0), dec!(0)), |acc, r| {
        (
            acc.0 + r.total_requests,
            acc.1 + r.raw_cost,
            acc.2 + r.markup_cost,
        )
    })
}

backend_tests! {
    fn markup_is_rounded_once_from_the_exact_raw_cost(t) {
        // (markup, raw cost, marked-up cost with one rounding of the exact product)
        let cases = [
            (dec!(1.3), dec!(0.0000123456789012), dec!(0.000016049)), // twice rounded: 0.00001605
            (dec!(2), dec!(0.00000000149), dec!(0.000000003)),        // twice: 0.000000002
            (dec!(1000), dec!(0.0000000004), dec!(0.0000004)),        // twice: 0
            (dec!(1.5), dec!(0.000000001), dec!(0.000000002)),        // exactly half a unit: up
            (dec!(1.3), dec!(0.0123), dec!(0.01599)),
        ];
        for (i, (markup, raw, want)) in cases.into_iter().enumerate() {
            let c = client(&t.store, &format!("m{i}"), markup);
            let done = t.store.usage().record_usage(&rec(&c, raw)).unwrap();
            assert_eq!(done.markup_cost, want, "record_usage {raw} x {markup}");
            let generation = t.store.usage().record_generation("gen-1", &rec(&c, raw)).unwrap();
            let GenerationOutcome::Recorded(g) = generation else { panic!("new id") };
            assert_eq!(g.markup_cost, want, "record_generation {raw} x {markup}");
            // What is stored (and billed) is the same figure, twice.
            assert_eq!(july(t, &c).2, want * dec!(2), "stored {raw} x {markup}");
        }
    }

    fn all_clients_report_after_midnight_in_warsaw_skips_a_client_still_in_july(t) {
        let warsaw = client(&t.store, "warsaw", dec!(1.3));
        let ny_form = ClientOrganizationForm {
            timezone: "America/New_York".into(),
            ..ClientOrganizationForm::new("newyork")
        };
        let ny = client_with(&t.store, ny_form);
        // 00:30 on 1 August in Warsaw, 18:30 on 31 July in New York.
        t.clock.set(Utc.with_ymd_and_hms(2025, 7, 31, 22, 30, 0).unwrap());
        t.store.usage().record_usage(&rec(&warsaw, dec!(0.5))).unwrap();
        t.store.usage().record_usage(&rec(&ny, dec!(0.25))).unwrap();

        let rows = t.store.usage().get_all_clients_usage_stats(Some(date(2025, 8, 1)), None).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].client_org_id, warsaw);
        assert_eq!((rows[0].start_date, rows[0].end_date), (date(2025, 8, 1), date(2025, 8, 1)));
        assert_eq!((rows[0].raw_cost, rows[0].markup_cost), (dec!(0.5), dec!(0.65)));

        // The PLN twin likewise (1 August's rate is the one of 31 July).
        let rates = Arc::new(StaticRates::on_polish_business_days("USD", date(2025, 7, 1), date(2025, 8, 31), dec!(4)));
        let pln = t.store.pln(rates, PlnConfig::default()).unwrap();
        let report = pln.get_all_clients_usage_stats_pln(Some(date(2025, 8, 1)), None).unwrap();
        assert_eq!(report.rows.len(), 1);
        assert_eq!(report.rows[0].markup_cost_pln, dec!(2.60));

        // Explicit dates in the wrong order remain the caller's error.
        let wrong = t.store.usage().get_all_clients_usage_stats(Some(date(2025, 8, 2)), Some(date(2025, 8, 1)));
        assert!(matches!(wrong, Err(Error::InvalidInput { field: "start_date", .. })), "{wrong:?}");
        // A range in nobody's past is empty, not an error.
        let none = t.store.usage().get_all_clients_usage_stats(Some(date(2025, 8, 2)), None).unwrap();
        assert!(none.is_empty());
    }

    fn a_crossing_on_a_later_day_of_the_month_is_reported_once(t) {
        let c = limited(&t.store, "lim", dec!(1));
        // The clock is on 24 July; the record is booked ahead, on the 25th.
        let first = t.store.usage().record_usage(&rec(&c, dec!(2)).on(date(2025, 7, 25))).unwrap();
        assert!(first.limit_crossed, "{first:?}");
        let status = first.monthly_limit.unwrap();
        assert_eq!((status.month_start, status.spent, status.exceeded), (date(2025, 7, 1), dec!(2), true));
        // The status on the 24th already counts the 25th: it is this month's spend.
        assert!(t.store.usage().get_monthly_limit_status(&c).unwrap().exceeded);
        t.clock.advance(chrono::Duration::days(1));
        let second = t.store.usage().record_usage(&rec(&c, dec!(0.01))).unwrap();
        assert!(!second.limit_crossed, "already over: {second:?}");
        assert!(t.store.usage().get_monthly_limit_status(&c).unwrap().exceeded);
    }

    fn each_month_reports_its_own_crossing(t) {
        let c = limited(&t.store, "months", dec!(1));
        // June (a past month) is crossed by its second record, July by its first.
        let june = |n: u32| rec(&c, dec!(0.6)).on(date(2025, 6, n));
        assert!(!t.store.usage().record_usage(&june(3)).unwrap().limit_crossed);
        let crossing = t.store.usage().record_usage(&june(20)).unwrap();
        assert!(crossing.limit_crossed);
        assert_eq!(crossing.monthly_limit.unwrap().month_start, date(2025, 6, 1));
        assert!(t.store.usage().record_usage(&rec(&c, dec!(1.5))).unwrap().limit_crossed);
        assert!(!t.store.usage().record_usage(&june(21)).unwrap().limit_crossed);
    }

    fn concurrent_writers_on_different_days_report_one_crossing(t) {
        let c = limited(&t.store, "race", dec!(1));
        let stores = [t.store.clone(), t.second_instance()];
        let barrier = Arc::new(Barrier::new(8));
        // 8 writers, each on its own day of July, 0.3 USD each: the 4th in commit order crosses.
        let crossings: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|i| {
                    let store = stores[i as usize % 2].clone();
                    let (barrier, c) = (barrier.clone(), c.clone());
                    s.spawn(move || {
                        barrier.wait();
                        let done = store.usage().record_usage(&rec(&c, dec!(0.3)).on(date(2025, 7, 10 + i))).unwrap();
                        usize::from(done.limit_crossed)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(crossings, 1);
        assert_eq!(july(t, &c), (8, dec!(2.4), dec!(2.4)));
    }

    fn by_user_reports_the_greatest_openrouter_user_id_whatever_the_write_order(t) {
        let c = client(&t.store, "ids", dec!(1.3));
        let day = date(2025, 7, 24);
        for (user, order) in [("u1", ["or-z", "or-a"]), ("u2", ["or-a", "or-z"])] {
            for or_id in order {
                let r = UsageRecord::new(&c, user, or_id, "m").on(day).raw_cost(dec!(0.1));
                t.store.usage().record_usage(&r).unwrap();
            }
        }
        let rows = t.store.usage().get_usage_by_user(&c, Some(day), Some(day)).unwrap();
        for row in rows {
            assert_eq!(row.openrouter_user_id, "or-z", "{}", row.user_id);
        }
    }

    fn cleanup_counts_28_fixed_bytes_per_ledger_row(t) {
        let c = client(&t.store, "bytes", dec!(1.3));
        let long = "x".repeat(200);
        let ids = ["g", "gen-0123456789", long.as_str()];
        for id in &ids {
            t.store.usage().record_generation(id, &rec(&c, dec!(0.1))).unwrap();
        }
        t.clock.advance(chrono::Duration::days(61));
        let r = t.store.generations().cleanup_old_processed_generations(Some(60)).unwrap();
        assert_eq!(r.records_deleted, 3);
        let text: usize = ids.iter().map(|id| id.len() + c.len()).sum();
        let bytes = Decimal::from(text + 3 * 28);
        assert_eq!(r.storage_saved_kb, (bytes / dec!(1024)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
    }

    fn an_inactive_client_is_not_found_even_for_a_known_generation(t) {
        let c = client(&t.store, "gone", dec!(1.3));
        assert!(t.store.usage().record_generation("gen-1", &rec(&c, dec!(0.1))).unwrap().is_recorded());
        assert!(t.store.clients().deactivate_client(&c).unwrap());
        for id in ["gen-1", "gen-2"] {
            let again = t.store.usage().record_generation(id, &rec(&c, dec!(0.1)));
            assert!(matches!(again, Err(Error::NotFound { entity: "client", .. })), "{id}: {again:?}");
        }
        assert!(!t.store.generations().is_generation_processed("gen-2", &c).unwrap());
        // Reactivated behind the library's back, the client shows that nothing was written.
        t.execute_sql(&format!("UPDATE client_organizations SET is_active = TRUE WHERE id = '{c}'"));
        assert_eq!(july(t, &c).0, 1, "nothing written");
    }
}
