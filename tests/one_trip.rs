//! `record_usage` of a client without a limit is one statement on PostgreSQL, from cached billing
//! settings that the statement re-checks. These tests change the client behind the cache's back
//! (another instance) and check that nothing is booked with stale settings; they run on SQLite
//! too, where the ordinary transaction must give the same answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage::{ClientOrganizationForm, ClientOrganizationUpdate, Error, UsageRecord};
use orgusage_testkit::backend_tests;
use orgusage_testkit::start_day as day;
use rust_decimal_macros::dec;

fn rec(c: &str, user: &str) -> UsageRecord {
    UsageRecord::new(c, user, "or", "m/a")
        .on(day())
        .tokens(10, 5)
        .raw_cost(dec!(0.000000011))
}

backend_tests! {
    fn settings_changed_by_another_instance_are_used_at_once(t) {
        let key = "sk-or-v1-trip-0123456789";
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("trip"), &key.into(), None).unwrap().id;
        // 0.000000011 x 1.3 = 0.0000000143 -> 14 nano-USD (one rounding, from the exact raw cost).
        assert_eq!(t.store.usage().record_usage(&rec(&c, "u1")).unwrap().markup_cost, dec!(0.000000014));
        let other = t.second_instance();
        let rate = ClientOrganizationUpdate { markup_rate: Some(dec!(2)), ..Default::default() };
        other.clients().update_client(&c, &rate).unwrap();
        assert_eq!(t.store.usage().record_usage(&rec(&c, "u1")).unwrap().markup_cost, dec!(0.000000022));
        let limit = ClientOrganizationUpdate { monthly_limit: Some(Some(dec!(1))), ..Default::default() };
        other.clients().update_client(&c, &limit).unwrap();
        let limited = t.store.usage().record_usage(&rec(&c, "u2")).unwrap();
        assert!(limited.monthly_limit.is_some());
        other.clients().deactivate_client(&c).unwrap();
        assert!(matches!(t.store.usage().record_usage(&rec(&c, "u3")), Err(Error::NotFound { .. })));
        let d = &t.store.usage().get_daily_usage(&c, day(), day()).unwrap()[0];
        assert_eq!((d.total_requests, d.unique_users, d.markup_cost), (3, 2, dec!(0.000000058)));
        let v = t.store.usage().validate_no_double_counting(&c, day()).unwrap();
        assert!(v.valid, "{v:?}");
    }

    fn overflow_writes_nothing(t) {
        let key = "sk-or-v1-ovf-0123456789";
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("ovf"), &key.into(), None).unwrap().id;
        t.store.usage().record_usage(&rec(&c, "u1")).unwrap();
        t.execute_sql(&format!(
            "UPDATE client_daily_usage SET raw_cost = 9223372036854775800 WHERE client_org_id = '{c}'"
        ));
        let r = t.store.usage().record_usage(&rec(&c, "u2"));
        assert!(matches!(r, Err(Error::Overflow(_))), "{r:?}");
        let users = t.store.usage().get_usage_by_user(&c, Some(day()), Some(day())).unwrap();
        assert_eq!(users.len(), 1, "the refused record left no user row");
        let models = t.store.usage().get_usage_by_model(&c, Some(day()), Some(day())).unwrap();
        assert_eq!(models[0].total_requests, 1);
        // A generation on that day: neither its ledger row nor its usage is kept.
        let r = t.store.usage().record_generation("g-ovf", &rec(&c, "u3"));
        assert!(matches!(r, Err(Error::Overflow(_))), "{r:?}");
        assert!(!t.store.generations().is_generation_processed("g-ovf", &c).unwrap());
    }

    fn generations_in_one_statement_bill_once(t) {
        let key = "sk-or-v1-gen1-0123456789";
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("gen1"), &key.into(), None).unwrap().id;
        let other = t.second_instance();
        for _ in 0..3 {
            for s in [&t.store, &other] {
                s.usage().record_generation("g1", &rec(&c, "u1")).unwrap();
                s.usage().record_generation("g2", &rec(&c, "u2")).unwrap();
            }
        }
        assert_eq!(t.store.usage().record_generation("g1", &rec(&c, "u1")).unwrap(), orgusage::GenerationOutcome::Duplicate);
        let d = &t.store.usage().get_daily_usage(&c, day(), day()).unwrap()[0];
        assert_eq!((d.total_requests, d.unique_users, d.raw_cost), (2, 2, dec!(0.000000022)));
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!((stats.total_processed, stats.total_cost, stats.total_tokens), (2, dec!(0.000000022), 30));
        // The ledger row carries the client-local day and the raw cost, as on the ordinary path.
        let row = t.store.generations().get_processed_generation("g1", &c).unwrap().unwrap();
        assert_eq!((row.generation_date, row.total_cost), (day(), dec!(0.000000011)));
    }
}
