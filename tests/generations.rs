//! Exactly-once ingestion of OpenRouter generations, the ledger and its retention cleanup,
//! on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use orgusage::{Error, GenerationOutcome, Store, UsageRecord};
use orgusage_testkit::{TestStore, backend_tests};
use orgusage_testkit::{client, date, race};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn gen_rec(c: &str) -> UsageRecord {
    UsageRecord::new(c, "u1", "or-u1", "openai/gpt-4.1")
        .on(date(2025, 7, 24))
        .tokens(100, 50)
        .raw_cost(dec!(0.003))
}

fn day_totals(store: &Store, c: &str) -> (i64, i64, Decimal) {
    store
        .usage()
        .get_daily_usage(c, date(2025, 7, 24), date(2025, 7, 24))
        .unwrap()
        .pop()
        .map(|d| (d.total_tokens, d.total_requests, d.raw_cost))
        .unwrap_or((0, 0, dec!(0)))
}

fn inject_failure_on_user_rows(t: &TestStore) {
    if t.backend() == "sqlite" {
        t.execute_sql("CREATE TRIGGER inject_failure BEFORE INSERT ON client_user_daily_usage BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    } else {
        t.execute_sql(
            "CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
             CREATE TRIGGER inject_failure BEFORE INSERT ON client_user_daily_usage FOR EACH ROW EXECUTE FUNCTION inject_failure();",
        );
    }
}

fn remove_injected_failure(t: &TestStore) {
    t.execute_sql(
        "DROP TRIGGER inject_failure ON client_user_daily_usage"
            .replace(
                if t.backend() == "sqlite" {
                    " ON client_user_daily_usage"
                } else {
                    ""
                },
                "",
            )
            .as_str(),
    );
}

backend_tests! {
    fn duplicate_generation_changes_nothing(t) {
        let c = client(&t.store, "c1");
        let first = t.store.usage().record_generation("gen-1", &gen_rec(&c)).unwrap();
        let GenerationOutcome::Recorded(done) = first else { panic!("first must record") };
        assert_eq!((done.total_tokens, done.markup_cost), (150, dec!(0.0039)));
        assert_eq!(t.store.usage().record_generation("gen-1", &gen_rec(&c)).unwrap(), GenerationOutcome::Duplicate);
        assert_eq!(day_totals(&t.store, &c), (150, 1, dec!(0.003)));
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!((stats.total_processed, stats.total_tokens, stats.total_cost), (1, 150, dec!(0.003)));
        assert!(t.store.generations().is_generation_processed("gen-1", &c).unwrap());
        let info = t.store.generations().get_processed_generation("gen-1", &c).unwrap().unwrap();
        assert_eq!((info.generation_date, info.total_cost, info.total_tokens), (date(2025, 7, 24), dec!(0.003), 150));
        assert!(t.store.generations().get_processed_generation("gen-2", &c).unwrap().is_none());
        let json = serde_json::to_value(GenerationOutcome::Duplicate).unwrap();
        assert_eq!(json, serde_json::json!({"status": "duplicate"}));
    }

    fn twenty_threads_recording_the_same_ids_record_each_once(t) {
        let c = client(&t.store, "c1");
        let threads = 20;
        let ids = 1000;
        let contenders = (0..threads)
            .map(|i| {
                let store = if i % 2 == 0 { t.store.clone() } else { t.second_instance() };
                // Each thread walks the ids in its own order.
                let mut order: Vec<usize> = (0..ids).collect();
                order.rotate_left((i * 37) % ids);
                if i % 3 == 0 {
                    order.reverse();
                }
                (store, order)
            })
            .collect();
        let recorded: usize = race(contenders, |_, (store, order)| {
            order.into_iter().filter(|n| store.usage().record_generation(&format!("gen-{n}"), &gen_rec(&c)).unwrap().is_recorded()).count()
        })
        .into_iter()
        .sum();
        assert_eq!(recorded, ids, "each id is recorded by exactly one thread");
        let stats = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(stats.total_processed, ids as i64);
        assert_eq!(day_totals(&t.store, &c), (150 * ids as i64, ids as i64, dec!(0.003) * Decimal::from(ids)));
    }

    fn failure_after_the_ledger_insert_rolls_back_both(t) {
        let c = client(&t.store, "c1");
        inject_failure_on_user_rows(t);
        let err = t.store.usage().record_generation("gen-3", &gen_rec(&c)).unwrap_err();
        assert!(matches!(err, Error::Database { .. }), "{err:?}");
        assert!(!t.store.generations().is_generation_processed("gen-3", &c).unwrap(), "ledger row rolled back");
        assert_eq!(day_totals(&t.store, &c), (0, 0, dec!(0)), "client-day increment rolled back");
        remove_injected_failure(t);
        assert!(t.store.usage().record_generation("gen-3", &gen_rec(&c)).unwrap().is_recorded());
        assert_eq!(t.store.usage().record_generation("gen-3", &gen_rec(&c)).unwrap(), GenerationOutcome::Duplicate);
        assert_eq!(day_totals(&t.store, &c), (150, 1, dec!(0.003)));
    }

    fn ledger_database_error_is_an_error_never_false(t) {
        let c = client(&t.store, "c1");
        t.execute_sql("DROP TABLE processed_generations");
        assert!(matches!(t.store.usage().record_generation("gen-x", &gen_rec(&c)), Err(Error::Database { .. })));
        assert!(matches!(t.store.generations().is_generation_processed("gen-x", &c), Err(Error::Database { .. })));
        assert_eq!(day_totals(&t.store, &c), (0, 0, dec!(0)));
    }

    fn ledger_key_is_client_and_id_and_it_keeps_the_raw_cost(t) {
        let (c1, c2) = (client(&t.store, "c1"), client(&t.store, "c2"));
        t.store.usage().record_generation("gen-1", &gen_rec(&c1).markup_cost(dec!(1))).unwrap();
        assert!(!t.store.generations().is_generation_processed("gen-1", &c2).unwrap());
        assert!(t.store.usage().record_generation("gen-1", &gen_rec(&c2)).unwrap().is_recorded());
        let s = t.store.generations().get_processed_generations_stats(&c1, None, None).unwrap();
        assert_eq!(s.total_cost, dec!(0.003), "the ledger keeps the raw cost, not the markup");
        // Unknown or inactive clients are rejected and write nothing.
        t.store.clients().deactivate_client(&c2).unwrap();
        assert!(matches!(t.store.usage().record_generation("gen-9", &gen_rec(&c2)), Err(Error::NotFound { .. })));
        assert!(!t.store.generations().is_generation_processed("gen-9", &c2).unwrap());
        // mark_generation_processed: true once, then false.
        assert!(t.store.generations().mark_generation_processed("gen-m", &c1, date(2025, 7, 1), dec!(0.5), 10).unwrap());
        assert!(!t.store.generations().mark_generation_processed("gen-m", &c1, date(2025, 7, 1), dec!(0.5), 10).unwrap());
        assert!(t.store.generations().mark_generation_processed("gen-m", &c1, date(2025, 7, 1), dec!(-1), 10).is_err());
    }

    fn cleanup_deletes_rows_older_than_the_cutoff_and_keeps_usage(t) {
        let c = client(&t.store, "c1");
        let now = Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap();
        for (days, tokens) in [(100, 1), (61, 2), (60, 4), (59, 8)] {
            t.clock.set(now - Duration::days(days));
            let rec = gen_rec(&c).tokens(tokens, 0).raw_cost(dec!(0.25));
            t.store.usage().record_generation(&format!("gen-{days}"), &rec).unwrap();
        }
        t.clock.set(now);
        let r = t.store.generations().cleanup_old_processed_generations(None).unwrap();
        assert!(r.success, "{r:?}");
        assert_eq!((r.records_before, r.records_deleted, r.records_remaining, r.days_to_keep), (4, 2, 2, 60));
        assert_eq!(r.cutoff_date, "2025-07-03");
        assert_eq!((r.old_tokens_removed, r.old_cost_removed), (3, dec!(0.5)));
        let b = &r.organization_breakdown[&c];
        assert_eq!((b.records, b.tokens, b.cost), (2, 3, dec!(0.5)));
        assert!(r.storage_saved_kb > dec!(0));
        assert!(t.store.generations().is_generation_processed("gen-60", &c).unwrap());
        assert!(!t.store.generations().is_generation_processed("gen-61", &c).unwrap());
        let log = t.store.generations().get_cleanup_log(10).unwrap();
        assert_eq!(log.len(), 1);
        assert!(log[0].success);
        assert_eq!(log[0].records_deleted, 2);
        // Usage totals are billing history: cleanup never touches them.
        assert_eq!(day_totals(&t.store, &c).1, 4);
        // Idempotent: a second run deletes nothing.
        assert_eq!(t.store.generations().cleanup_old_processed_generations(Some(60)).unwrap().records_deleted, 0);
    }

    fn cleanup_of_an_empty_ledger_reports_zeros(t) {
        let r = t.store.generations().cleanup_old_processed_generations(None).unwrap();
        assert!(r.success);
        assert_eq!((r.records_before, r.records_deleted, r.records_remaining), (0, 0, 0));
        assert_eq!(r.storage_saved_kb, dec!(0));
        assert!(r.organization_breakdown.is_empty());
        let keys = serde_json::to_value(&r).unwrap();
        for k in ["success", "cutoff_date", "days_to_keep", "records_before", "records_deleted", "records_remaining", "old_tokens_removed", "old_cost_removed", "storage_saved_kb", "cleanup_duration_seconds", "organization_breakdown", "cleanup_timestamp"] {
            assert!(keys.get(k).is_some(), "{k}");
        }
    }

    fn cleanup_failure_is_reported_and_written_to_the_audit_log(t) {
        t.execute_sql("DROP TABLE processed_generations");
        let r = t.store.generations().cleanup_old_processed_generations(None).unwrap();
        assert!(!r.success);
        assert!(r.error.as_deref().is_some_and(|e| !e.is_empty()));
        let log = t.store.generations().get_cleanup_log(1).unwrap();
        assert!(!log[0].success);
        assert!(log[0].error_message.as_ref().is_some_and(|m| m.chars().count() <= 500));
    }

    fn ledger_stats_use_inclusive_dates(t) {
        let (c1, c2) = (client(&t.store, "c1"), client(&t.store, "c2"));
        for (id, day) in [("a", date(2025, 6, 30)), ("b", date(2025, 7, 1)), ("c", date(2025, 7, 31)), ("d", date(2025, 8, 1))] {
            t.store.usage().record_generation(id, &gen_rec(&c1).on(day)).unwrap();
        }
        t.store.usage().record_generation("e", &gen_rec(&c2).on(date(2025, 7, 15))).unwrap();
        let s = t.store.generations().get_processed_generations_stats(&c1, Some(date(2025, 7, 1)), Some(date(2025, 7, 31))).unwrap();
        assert_eq!((s.total_processed, s.total_tokens), (2, 300));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["date_range"], serde_json::json!({"start": "2025-07-01", "end": "2025-07-31"}));
        let all = t.store.generations().get_processed_generations_stats(&c1, None, None).unwrap();
        assert_eq!(all.total_processed, 4);
        assert_eq!(serde_json::to_value(&all).unwrap()["date_range"], serde_json::json!({"start": null, "end": null}));
        assert!(t.store.generations().get_processed_generations_stats(&c1, Some(date(2025, 8, 1)), Some(date(2025, 7, 1))).is_err());
    }

    fn concurrent_cleanups_delete_each_row_once(t) {
        let c = client(&t.store, "c1");
        let now = Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap();
        t.clock.set(now - Duration::days(90));
        for n in 0..300 {
            t.store.generations().mark_generation_processed(&format!("old-{n}"), &c, date(2025, 6, 3), dec!(0.01), 1).unwrap();
        }
        t.clock.set(now - Duration::days(10));
        for n in 0..50 {
            t.store.generations().mark_generation_processed(&format!("new-{n}"), &c, date(2025, 8, 22), dec!(0.01), 1).unwrap();
        }
        t.clock.set(now);
        let stores = (0..3).map(|_| t.second_instance()).collect();
        let results = race(stores, |_, store| store.generations().cleanup_old_processed_generations(Some(60)).unwrap());
        assert!(results.iter().all(|r| r.success), "{results:?}");
        assert_eq!(results.iter().map(|r| r.records_deleted).sum::<i64>(), 300);
        assert_eq!(results.iter().map(|r| r.old_cost_removed).sum::<Decimal>(), dec!(3));
        let left = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(left.total_processed, 50);
        assert_eq!(t.store.generations().get_cleanup_log(10).unwrap().len(), 3);
    }
}
