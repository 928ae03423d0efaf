//! The read side of `ClientUsageDb`: stats, month totals, daily history, usage by user and by
//! model, billing of all clients, health checks and the rollover no-ops; on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use orgusage::{ClientOrganizationUpdate, Error, Store, UsageRecord};
use orgusage_testkit::backend_tests;
use orgusage_testkit::{client, date};
use rust_decimal_macros::dec;

const SONNET: &str = "anthropic/claude-sonnet-4";

fn rec(c: &str, user: &str, model: &str, day: NaiveDate) -> UsageRecord {
    UsageRecord::new(c, user, format!("or-{user}"), model).on(day)
}

fn stats(store: &Store, c: &str) -> orgusage::usage::ClientUsageStatsResponse {
    futures_lite::future::block_on(store.usage().get_usage_stats_by_client(c, None)).unwrap()
}

backend_tests! {
    fn month_total_counts_today_once(t) {
        // The clock stands at 2025-07-24T10:00Z: today is 24 July in Warsaw.
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 23)).tokens(5000, 0).markup_cost(dec!(0.195))).unwrap();
        for _ in 0..7 {
            t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 23)).markup_cost(dec!(0))).unwrap();
        }
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 24)).tokens(1500, 500).markup_cost(dec!(0.078))).unwrap();
        let s = stats(&t.store, &c);
        assert_eq!((s.this_month.tokens, s.this_month.cost, s.this_month.requests, s.this_month.days_active), (7000, dec!(0.273), 9, 2));
        assert_eq!((s.today.tokens, s.today.cost, s.today.requests), (2000, dec!(0.078), 1));
        assert_eq!(s.today.last_updated, "12:00:00", "10:00Z is 12:00 CEST");
    }

    fn stats_of_a_client_without_usage_are_zero(t) {
        let c = client(&t.store, "Empty Co");
        let s = stats(&t.store, &c);
        assert_eq!((s.today.tokens, s.today.cost, s.today.requests, s.today.last_updated.as_str()), (0, dec!(0), 0, "No usage today"));
        assert_eq!((s.this_month.tokens, s.this_month.cost, s.this_month.requests, s.this_month.days_active), (0, dec!(0), 0, 0));
        assert!(s.daily_history.is_empty());
        assert_eq!(s.client_org_name, "Empty Co");
        let json = serde_json::to_value(&s).unwrap();
        for key in ["today", "this_month", "daily_history", "client_org_name"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert!(matches!(futures_lite::future::block_on(t.store.usage().get_usage_stats_by_client("nope", None)), Err(Error::NotFound { .. })));
    }

    fn daily_history_is_thirty_days_newest_first_without_future_days(t) {
        let c = client(&t.store, "c1");
        for back in 0..40 {
            let day = date(2025, 7, 24) - Duration::days(back);
            t.store.usage().record_usage(&rec(&c, "u1", SONNET, day).tokens(10, 0).markup_cost(dec!(0.01))).unwrap();
        }
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 25)).tokens(999, 0)).unwrap();
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 8, 3)).tokens(999, 0)).unwrap();
        let s = stats(&t.store, &c);
        assert_eq!(s.daily_history.len(), 30);
        assert_eq!(s.daily_history[0].date, date(2025, 7, 24));
        assert_eq!(s.daily_history[29].date, date(2025, 6, 25));
        assert!(s.daily_history.windows(2).all(|w| w[0].date > w[1].date));
        assert_eq!((s.this_month.tokens, s.this_month.days_active, s.this_month.cost), (240, 24, dec!(0.24)));
        let item = serde_json::to_value(&s.daily_history[0]).unwrap();
        assert_eq!(item, serde_json::json!({"date": "2025-07-24", "tokens": 10, "cost": "0.01", "requests": 1}));
    }

    fn reports_and_health_checks_write_nothing(t) {
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 24)).tokens(10, 0)).unwrap();
        let before = t.store.usage().get_daily_usage(&c, date(2025, 1, 1), date(2025, 12, 31)).unwrap();
        let (a, b) = (stats(&t.store, &c), stats(&t.store, &c));
        assert_eq!(a, b);
        t.store.usage().get_usage_by_user(&c, None, None).unwrap();
        t.store.usage().get_usage_by_model(&c, None, None).unwrap();
        t.store.usage().get_all_clients_usage_stats(None, None).unwrap();
        t.store.usage().create_month_total_health_check(&c).unwrap();
        t.store.usage().perform_atomic_daily_rollover_all_clients().unwrap();
        assert_eq!(t.store.usage().get_daily_usage(&c, date(2025, 1, 1), date(2025, 12, 31)).unwrap(), before);
    }

    fn health_check_detects_double_counting_from_a_second_writer(t) {
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 24)).tokens(100, 0).raw_cost(dec!(0.1))).unwrap();
        let healthy = t.store.usage().create_month_total_health_check(&c).unwrap();
        assert_eq!((healthy.overall_status.as_str(), healthy.issues_found), ("healthy", 0), "{healthy:?}");
        // A legacy writer adds today's usage to the client row a second time.
        t.execute_sql(&format!(
            "UPDATE client_daily_usage SET total_tokens = total_tokens + 100, total_requests = total_requests + 1 WHERE client_org_id = '{c}'"
        ));
        let before = t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap();
        let r = t.store.usage().create_month_total_health_check(&c).unwrap();
        assert_eq!(r.overall_status, "warning");
        assert!(r.issues_found >= 1);
        let dc = r.checks.iter().find(|c| c.check == "double_counting").unwrap();
        assert_eq!(dc.status, "failed");
        assert!(r.recommendations.iter().any(|s| s.contains("double counting")));
        assert_eq!(t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap(), before, "untouched");
        let v = t.store.usage().validate_no_double_counting(&c, date(2025, 7, 24)).unwrap();
        assert!(!v.valid);
        assert_eq!((v.daily.tokens, v.users.tokens, v.models.tokens), (200, 100, 100));
        let unknown = t.store.usage().create_month_total_health_check("nope").unwrap();
        assert_eq!(unknown.overall_status, "error");
        assert_eq!(unknown.checks[0].check, "client_exists");
        assert_eq!(unknown.checks[0].status, "failed");
    }

    fn rollover_calls_are_idempotent_no_ops(t) {
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 23)).tokens(10, 0)).unwrap();
        let before = t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap();
        for _ in 0..2 {
            assert!(t.store.usage().perform_atomic_daily_rollover_all_clients().unwrap().success);
            let one = t.store.usage().perform_timezone_aware_rollover_by_client(&c).unwrap();
            assert_eq!(one.client_today, Some(date(2025, 7, 24)));
        }
        assert_eq!(t.store.usage().get_daily_usage(&c, date(2025, 7, 1), date(2025, 7, 31)).unwrap(), before);
        let h = t.store.usage().get_rollover_health_status().unwrap();
        assert_eq!((h.status.as_str(), h.total_clients, h.stale_counters), ("healthy", 1, 0));
        assert!(matches!(t.store.usage().perform_timezone_aware_rollover_by_client("nope"), Err(Error::NotFound { .. })));
    }

    fn usage_by_user_defaults_to_the_clients_month_to_date(t) {
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 2)).markup_cost(dec!(0.2))).unwrap();
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 3)).markup_cost(dec!(0.3))).unwrap();
        t.store.usage().record_usage(&rec(&c, "u2", SONNET, date(2025, 7, 3)).markup_cost(dec!(0.8))).unwrap();
        t.store.usage().record_usage(&rec(&c, "u3", SONNET, date(2025, 6, 30)).markup_cost(dec!(5))).unwrap();
        let rows = t.store.usage().get_usage_by_user(&c, None, None).unwrap();
        let summary: Vec<_> = rows.iter().map(|r| (r.user_id.as_str(), r.markup_cost, r.days_active)).collect();
        assert_eq!(summary, vec![("u2", dec!(0.8), 1), ("u1", dec!(0.5), 2)]);
        let keys: Vec<String> = serde_json::to_value(&rows[0]).unwrap().as_object().unwrap().keys().cloned().collect();
        let mut want = vec!["user_id", "openrouter_user_id", "total_tokens", "total_requests", "raw_cost", "markup_cost", "days_active"];
        want.sort_unstable();
        assert_eq!(keys, want);
        // At 2025-07-31T22:30Z it is already August in Warsaw: the default range moves.
        t.clock.set(Utc.with_ymd_and_hms(2025, 7, 31, 22, 30, 0).unwrap());
        assert!(t.store.usage().get_usage_by_user(&c, None, None).unwrap().is_empty());
    }

    fn report_ranges_are_inclusive_and_a_reversed_range_is_invalid(t) {
        let c = client(&t.store, "c1");
        for day in [date(2025, 7, 1), date(2025, 7, 10), date(2025, 7, 11)] {
            t.store.usage().record_usage(&rec(&c, "u1", SONNET, day).tokens(1, 0)).unwrap();
        }
        let rows = t.store.usage().get_usage_by_user(&c, Some(date(2025, 7, 1)), Some(date(2025, 7, 10))).unwrap();
        assert_eq!((rows[0].total_tokens, rows[0].days_active), (2, 2));
        let models = t.store.usage().get_usage_by_model(&c, Some(date(2025, 7, 1)), Some(date(2025, 7, 10))).unwrap();
        assert_eq!((models[0].total_tokens, models[0].days_used), (2, 2));
        assert!(matches!(
            t.store.usage().get_usage_by_user(&c, Some(date(2025, 7, 11)), Some(date(2025, 7, 10))),
            Err(Error::InvalidInput { .. })
        ));
    }

    fn usage_by_model_lists_every_model_with_usage(t) {
        let c = client(&t.store, "c1");
        t.store.usage().record_usage(&rec(&c, "u1", "anthropic/claude-3.5-sonnet", date(2025, 7, 3)).markup_cost(dec!(0.5)).provider("anthropic")).unwrap();
        t.store.usage().record_usage(&rec(&c, "u1", "openai/gpt-4", date(2025, 7, 3)).markup_cost(dec!(0.5))).unwrap();
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 3)).markup_cost(dec!(0.9))).unwrap();
        let rows = t.store.usage().get_usage_by_model(&c, None, None).unwrap();
        let names: Vec<_> = rows.iter().map(|r| r.model_name.as_str()).collect();
        assert_eq!(names, vec![SONNET, "anthropic/claude-3.5-sonnet", "openai/gpt-4"]);
        assert_eq!(rows[1].provider.as_deref(), Some("anthropic"));
        let json = serde_json::to_value(&rows[0]).unwrap();
        for key in ["model_name", "provider", "total_tokens", "total_requests", "raw_cost", "markup_cost", "days_used"] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    fn reports_never_show_another_clients_usage(t) {
        let (c1, c2) = (client(&t.store, "c1"), client(&t.store, "c2"));
        t.store.usage().record_usage(&rec(&c2, "u9", "x/secret-model", date(2025, 7, 3)).tokens(50, 0).raw_cost(dec!(1))).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u1", SONNET, date(2025, 7, 3)).tokens(5, 0).raw_cost(dec!(1))).unwrap();
        assert!(t.store.usage().get_usage_by_user(&c1, None, None).unwrap().iter().all(|r| r.user_id == "u1"));
        assert!(t.store.usage().get_usage_by_model(&c1, None, None).unwrap().iter().all(|r| r.model_name == SONNET));
        assert_eq!(stats(&t.store, &c1).this_month.tokens, 5);
        let billing = t.store.usage().get_all_clients_usage_stats(None, None).unwrap();
        let c1_row = billing.iter().find(|b| b.client_org_id == c1).unwrap();
        assert_eq!(c1_row.total_tokens, 5);
    }

    fn billing_of_all_clients_skips_idle_and_deactivated_and_sums_margins(t) {
        let c1 = client(&t.store, "c1");
        let idle = client(&t.store, "idle");
        let gone = client(&t.store, "gone");
        t.clock.set(Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap());
        t.store.usage().record_usage(&rec(&c1, "u1", SONNET, date(2025, 1, 3)).tokens(400, 0).raw_cost(dec!(4))).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u1", SONNET, date(2025, 1, 9)).tokens(100, 0).raw_cost(dec!(1))).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u2", SONNET, date(2025, 1, 15)).tokens(200, 0).raw_cost(dec!(5))).unwrap();
        t.store.clients().update_client(&c1, &ClientOrganizationUpdate { markup_rate: Some(dec!(1.5)), ..Default::default() }).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u2", SONNET, date(2025, 1, 20)).tokens(200, 0).raw_cost(dec!(4))).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u2", SONNET, date(2025, 1, 20)).tokens(100, 0).raw_cost(dec!(6))).unwrap();
        t.store.usage().record_usage(&rec(&gone, "u3", SONNET, date(2025, 1, 20)).tokens(100, 0).raw_cost(dec!(6))).unwrap();
        t.store.usage().record_usage(&rec(&c1, "u2", SONNET, date(2025, 2, 1)).tokens(100, 0).raw_cost(dec!(6))).unwrap();
        t.store.clients().deactivate_client(&gone).unwrap();
        let billing = t.store.usage().get_all_clients_usage_stats(Some(date(2025, 1, 1)), Some(date(2025, 1, 31))).unwrap();
        assert_eq!(billing.len(), 1, "idle and deactivated clients are omitted: {billing:?}");
        let b = &billing[0];
        assert_eq!(b.client_org_id, c1);
        assert_eq!((b.total_tokens, b.total_requests, b.days_active), (1000, 5, 4));
        assert_eq!((b.raw_cost, b.markup_cost, b.profit_margin), (dec!(20), dec!(28), dec!(8)));
        assert_eq!(b.profit_margin, b.markup_cost - b.raw_cost);
        assert!(!billing.iter().any(|b| b.client_org_id == idle));
        // Without dates each client gets its own month to date (10 January).
        let mtd = t.store.usage().get_all_clients_usage_stats(None, None).unwrap();
        assert_eq!((mtd[0].total_tokens, mtd[0].raw_cost, mtd[0].markup_cost), (500, dec!(5), dec!(6.5)));
        assert_eq!((mtd[0].start_date, mtd[0].end_date), (date(2025, 1, 1), date(2025, 1, 10)));
    }

    fn utc_option_uses_utc_days(t) {
        let c = client(&t.store, "c1");
        t.clock.set(Utc.with_ymd_and_hms(2025, 7, 31, 22, 30, 0).unwrap());
        t.store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 31)).tokens(7, 0)).unwrap();
        let warsaw = stats(&t.store, &c);
        assert_eq!(warsaw.this_month.tokens, 0, "Warsaw is in August already");
        let utc = futures_lite::future::block_on(t.store.usage().get_usage_stats_by_client(&c, Some(false))).unwrap();
        assert_eq!((utc.this_month.tokens, utc.today.tokens), (7, 7));
    }

    fn catalogue_adds_zero_rows(t) {
        let c = client(&t.store, "c1");
        let store = orgusage::Store::open(
            orgusage::StoreConfig::new(t.url.clone()).clock(t.clock.clone()).model_catalogue([orgusage::usage::CatalogueModel {
                model_name: "google/gemini-2.5-pro".into(),
                provider: Some("google".into()),
            }]),
        )
        .unwrap();
        store.usage().record_usage(&rec(&c, "u1", SONNET, date(2025, 7, 3)).raw_cost(dec!(1))).unwrap();
        let rows = store.usage().get_usage_by_model(&c, None, None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].model_name.as_str(), rows[1].total_requests), ("google/gemini-2.5-pro", 0));
    }
}
