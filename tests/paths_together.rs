//! The throughput paths (batch, group commit, PostgreSQL's one-statement record) and the spend
//! guard were built side by side; these tests hold them to each other's promises on SQLite and
//! PostgreSQL: every path settles or releases the reservation a record carries, and every path
//! that writes a ledger row keeps the UTC instant and model reconciliation needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use orgusage::spend::Authorization;
use orgusage::{ClientOrganizationForm, ClientOrganizationUpdate, Store, UsageRecord};
use orgusage_testkit::backend_tests;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn client(store: &Store, name: &str, limit: Option<Decimal>) -> String {
    let form = ClientOrganizationForm {
        monthly_limit: limit,
        ..ClientOrganizationForm::new(name)
    };
    orgusage_testkit::client_with(store, form)
}

fn reserve(store: &Store, c: &str) -> String {
    match store.spend().authorize(c, dec!(0.1)).unwrap() {
        Authorization::Reserved(r) => r.id,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

fn rec(c: &str) -> UsageRecord {
    UsageRecord::new(c, "u1", "or-u1", "openai/gpt-4.1")
        .tokens(10, 5)
        .raw_cost(dec!(0.1))
}

backend_tests! {
    fn batches_settle_and_release_the_reservations_their_records_carry(t) {
        let c = client(&t.store, "batch", Some(dec!(100)));
        let (a, b, d) = (reserve(&t.store, &c), reserve(&t.store, &c), reserve(&t.store, &c));
        assert_eq!(t.store.spend().live_reservations(&c).unwrap().len(), 3);
        let done = t.store.usage().record_usage_batch(&[rec(&c).settles(&a), rec(&c).settles(&b)]);
        assert!(done.iter().all(Result::is_ok), "{done:?}");
        // A generation already billed releases the reservation its replay carried.
        t.store.usage().record_generation("gen-1", &rec(&c)).unwrap();
        let again = t.store.usage().record_generations(&[("gen-1".to_string(), rec(&c).settles(&d))]);
        assert!(again[0].as_ref().is_ok_and(|o| !o.is_recorded()), "{again:?}");
        assert!(t.store.spend().live_reservations(&c).unwrap().is_empty());
    }

    fn a_record_settles_its_reservation_after_the_limit_was_removed(t) {
        let c = client(&t.store, "unlimited-now", Some(dec!(100)));
        let r = reserve(&t.store, &c);
        let update = ClientOrganizationUpdate { monthly_limit: Some(None), ..Default::default() };
        t.store.clients().update_client(&c, &update).unwrap();
        // Twice, so that PostgreSQL's billing cache knows the client is unlimited by now.
        t.store.usage().record_usage(&rec(&c)).unwrap();
        t.store.usage().record_usage(&rec(&c).settles(&r)).unwrap();
        assert!(t.store.spend().live_reservations(&c).unwrap().is_empty());
    }

    fn every_ledger_path_keeps_the_instant_and_model(t) {
        let c = client(&t.store, "ledger", None);
        let usage = t.store.usage();
        // Twice each single call, so PostgreSQL's one-statement path is taken the second time.
        usage.record_generation("single-1", &rec(&c)).unwrap();
        usage.record_generation("single-2", &rec(&c)).unwrap();
        let batch: Vec<(String, UsageRecord)> =
            (0..3).map(|i| (format!("batch-{i}"), rec(&c))).collect();
        assert!(usage.record_generations(&batch).iter().all(Result::is_ok));
        let today = NaiveDate::from_ymd_opt(2025, 7, 24).unwrap();
        let ledger = t.store.generations().ledger_by_utc_day(&c, today, today).unwrap();
        assert_eq!(ledger.unplaced, 0, "{ledger:?}");
        let requests: i64 = ledger.days.iter().map(|d| d.requests).sum();
        assert_eq!(requests, 5, "{ledger:?}");
        assert!(ledger.days.iter().all(|d| d.model == "openai/gpt-4.1"), "{ledger:?}");
    }
}
