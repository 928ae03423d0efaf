//! Tenant isolation (issue 9, item 8), on SQLite and PostgreSQL: two clients with the same user
//! ids, model names, OpenRouter user ids and generation ids, data in both; every read method
//! called for Alpha returns Alpha's exact figures and nothing of Beta.
//!
//! Beta's amounts are a thousand times Alpha's and Beta has extra users, models and days, so any
//! leak shows up in the figures, not only in row counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::NaiveDate;
use orgusage::nbp::StaticRates;
use orgusage::openrouter::Generation;
use orgusage::pln::PlnConfig;
use orgusage::{
    ClientOrganizationForm, ClientRef, GenerationOutcome, Store, UsageRecord, UserClientMappingForm,
};
use orgusage_testkit::backend_tests;
use orgusage_testkit::date;
use rust_decimal_macros::dec;

const ALPHA_KEY: &str = "sk-or-v1-alpha-0123456789";
const BETA_KEY: &str = "sk-or-v1-beta-0123456789";

fn client(store: &Store, name: &str, key: &str, markup: rust_decimal::Decimal) -> String {
    let form = ClientOrganizationForm {
        markup_rate: markup,
        monthly_limit: Some(dec!(100)),
        ..ClientOrganizationForm::new(name)
    };
    store
        .clients()
        .create_client(&form, &key.into(), None)
        .unwrap()
        .id
}

fn map(store: &Store, user: &str, client: &str, or_user: &str) {
    store
        .mappings()
        .create_mapping(&UserClientMappingForm {
            user_id: user.into(),
            client_org_id: client.into(),
            openrouter_user_id: or_user.into(),
        })
        .unwrap();
}

fn generation(cost: &str, tokens: i64) -> Generation {
    Generation::from_json(&format!(
        r#"{{"id":"gen-shared-2","model":"m1","created_at":"2025-07-24T09:00:00Z","total_cost":{cost},"tokens_prompt":{tokens},"tokens_completion":0,"external_user":"or-u1"}}"#
    ))
    .unwrap()
}

/// Alpha (markup 1.5) and Beta (markup 2), the same ids in both. Returns (alpha, beta).
fn seed(store: &Store) -> (String, String) {
    let a = client(store, "Alpha", ALPHA_KEY, dec!(1.5));
    let b = client(store, "Beta", BETA_KEY, dec!(2));
    // One active mapping per user id exists, so Beta's users differ; their OpenRouter ids do not.
    map(store, "u1", &a, "or-u1");
    map(store, "u2", &a, "or-u2");
    map(store, "b-u1", &b, "or-u1");
    map(store, "b-u2", &b, "or-u2");
    let u = store.usage();
    let rec = |c: &str, user: &str, model: &str, day: NaiveDate| {
        UsageRecord::new(c, user, format!("or-{user}"), model).on(day)
    };
    let (d23, d24) = (date(2025, 7, 23), date(2025, 7, 24));
    // Alpha.
    u.record_usage(
        &rec(&a, "u1", "m1", d24)
            .tokens(100, 50)
            .raw_cost(dec!(0.01)),
    )
    .unwrap();
    u.record_usage(&rec(&a, "u2", "m2", d23).tokens(200, 0).raw_cost(dec!(0.02)))
        .unwrap();
    let g1 = rec(&a, "u1", "m1", d24).tokens(10, 0).raw_cost(dec!(0.001));
    assert!(
        u.record_generation("gen-shared-1", &g1)
            .unwrap()
            .is_recorded()
    );
    // Beta: the same user, model and generation ids, a thousand times the money, and more.
    u.record_usage(
        &rec(&b, "u1", "m1", d24)
            .tokens(100_000, 50_000)
            .raw_cost(dec!(10)),
    )
    .unwrap();
    u.record_usage(
        &rec(&b, "u2", "m2", d23)
            .tokens(200_000, 0)
            .raw_cost(dec!(20)),
    )
    .unwrap();
    u.record_usage(&rec(&b, "u3", "m3", d24).tokens(7, 7).raw_cost(dec!(7)))
        .unwrap();
    u.record_usage(&rec(&b, "u1", "m1", date(2025, 7, 1)).raw_cost(dec!(1)))
        .unwrap();
    u.record_usage(&rec(&b, "u1", "m1", date(2025, 6, 30)).raw_cost(dec!(1)))
        .unwrap();
    let g1b = rec(&b, "u1", "m1", d24).tokens(10_000, 0).raw_cost(dec!(1));
    assert!(
        u.record_generation("gen-shared-1", &g1b)
            .unwrap()
            .is_recorded()
    );
    let gb = rec(&b, "u1", "m1", d24).raw_cost(dec!(1));
    assert!(
        u.record_generation("gen-beta-only", &gb)
            .unwrap()
            .is_recorded()
    );
    // The same OpenRouter generation id ingested for both, each by its own key: each books
    // to its own mapping of `or-u1`.
    for (key, cost, tokens) in [(ALPHA_KEY, "0.002", 5), (BETA_KEY, "2", 5000)] {
        let out = store
            .ingest_generation(ClientRef::ApiKey(key), &generation(cost, tokens))
            .unwrap();
        assert!(matches!(out, GenerationOutcome::Recorded(_)), "{out:?}");
    }
    (a, b)
}

backend_tests! {
    fn usage_reports_show_only_the_tenant(t) {
        let (a, _b) = seed(&t.store);
        let u = t.store.usage();
        let s = u.get_usage_stats_by_client_blocking(&a, None).unwrap();
        assert_eq!((s.today.tokens, s.today.cost, s.today.requests), (165, dec!(0.0195), 3));
        let m = &s.this_month;
        assert_eq!((m.tokens, m.cost, m.requests, m.days_active), (365, dec!(0.0495), 4, 2));
        let hist: Vec<_> = s.daily_history.iter().map(|d| (d.date, d.tokens, d.cost, d.requests)).collect();
        assert_eq!(hist, [(date(2025, 7, 24), 165, dec!(0.0195), 3), (date(2025, 7, 23), 200, dec!(0.03), 1)]);
        assert_eq!(s.client_org_name, "Alpha");
        let enhanced = futures_lite::future::block_on(u.get_enhanced_usage_stats_by_client(&a, None, None)).unwrap();
        assert_eq!(enhanced, s);

        let users: Vec<_> = u.get_usage_by_user(&a, None, None).unwrap().into_iter()
            .map(|r| (r.user_id, r.openrouter_user_id, r.total_tokens, r.total_requests, r.raw_cost, r.markup_cost, r.days_active))
            .collect();
        assert_eq!(users, [
            ("u2".to_string(), "or-u2".to_string(), 200, 1, dec!(0.02), dec!(0.03), 1),
            ("u1".to_string(), "or-u1".to_string(), 165, 3, dec!(0.013), dec!(0.0195), 1),
        ]);
        let mut models: Vec<_> = u.get_usage_by_model(&a, None, None).unwrap().into_iter()
            .map(|r| (r.model_name, r.total_tokens, r.total_requests, r.raw_cost, r.markup_cost, r.days_used))
            .collect();
        models.sort();
        assert_eq!(models, [
            ("m1".to_string(), 165, 3, dec!(0.013), dec!(0.0195), 1),
            ("m2".to_string(), 200, 1, dec!(0.02), dec!(0.03), 1),
        ]);

        let billing = u.get_all_clients_usage_stats(None, None).unwrap();
        let row = billing.iter().find(|r| r.client_org_id == a).unwrap();
        assert_eq!(
            (row.total_tokens, row.raw_cost, row.markup_cost, row.profit_margin, row.total_requests, row.days_active),
            (365, dec!(0.033), dec!(0.0495), dec!(0.0165), 4, 2)
        );
        assert_eq!(billing.len(), 2);

        let limit = u.get_monthly_limit_status(&a).unwrap();
        assert_eq!((limit.spent, limit.remaining, limit.exceeded), (dec!(0.0495), Some(dec!(99.9505)), false));

        let days: Vec<_> = u.get_daily_usage(&a, date(2025, 6, 1), date(2025, 7, 31)).unwrap().into_iter()
            .map(|d| (d.client_org_id, d.usage_date, d.total_tokens, d.total_requests, d.raw_cost, d.markup_cost, d.unique_users, d.primary_model))
            .collect();
        assert_eq!(days, [
            (a.clone(), date(2025, 7, 23), 200, 1, dec!(0.02), dec!(0.03), 1, Some("m2".to_string())),
            (a.clone(), date(2025, 7, 24), 165, 3, dec!(0.013), dec!(0.0195), 1, Some("m1".to_string())),
        ]);
    }

    fn health_checks_show_only_the_tenant(t) {
        let (a, _b) = seed(&t.store);
        let u = t.store.usage();
        let v = u.validate_no_double_counting(&a, date(2025, 7, 24)).unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!((v.daily_tokens, v.daily.tokens, v.daily.requests, v.daily.raw_cost, v.daily.markup_cost), (165, 165, 3, dec!(0.013), dec!(0.0195)));
        assert_eq!((v.users.tokens, v.models.tokens, v.users.markup_cost, v.models.markup_cost), (165, 165, dec!(0.0195), dec!(0.0195)));
        let h = u.create_month_total_health_check(&a).unwrap();
        assert_eq!((h.client_org_id.as_str(), h.issues_found), (a.as_str(), 0), "{h:?}");
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains("0.0495"), "the month total of Alpha appears: {json}");
    }

    fn mappings_and_ledger_show_only_the_tenant(t) {
        let (a, b) = seed(&t.store);
        let m = t.store.mappings();
        let ids: Vec<_> = m.get_mappings_by_client_id(&a).unwrap().into_iter().map(|m| (m.user_id, m.client_org_id)).collect();
        assert_eq!(ids, [("u1".to_string(), a.clone()), ("u2".to_string(), a.clone())]);
        assert_eq!(m.get_mapping_by_openrouter_user_id(&a, "or-u1").unwrap().unwrap().user_id, "u1");
        assert_eq!(m.get_mapping_by_openrouter_user_id(&b, "or-u1").unwrap().unwrap().user_id, "b-u1");
        assert_eq!(m.get_mapping_by_user_id("u1").unwrap().unwrap().client_org_id, a);
        assert_eq!(t.store.clients().get_client_by_api_key(ALPHA_KEY).unwrap().unwrap().id, a);

        let g = t.store.generations();
        assert!(g.is_generation_processed("gen-shared-1", &a).unwrap());
        assert!(!g.is_generation_processed("gen-beta-only", &a).unwrap());
        assert!(g.get_processed_generation("gen-beta-only", &a).unwrap().is_none());
        let row = g.get_processed_generation("gen-shared-1", &a).unwrap().unwrap();
        assert_eq!((row.client_org_id.as_str(), row.total_cost, row.total_tokens), (a.as_str(), dec!(0.001), 10));
        let row = g.get_processed_generation("gen-shared-2", &a).unwrap().unwrap();
        assert_eq!((row.total_cost, row.total_tokens), (dec!(0.002), 5));
        let stats = g.get_processed_generations_stats(&a, None, None).unwrap();
        assert_eq!((stats.total_processed, stats.total_cost, stats.total_tokens), (2, dec!(0.003), 15));
        let stats = g.get_processed_generations_stats(&b, None, None).unwrap();
        assert_eq!((stats.total_processed, stats.total_cost, stats.total_tokens), (3, dec!(4), 15_000));
    }

    fn pln_reports_show_only_the_tenant(t) {
        let (a, _b) = seed(&t.store);
        let rates = StaticRates::on_polish_business_days("USD", date(2025, 6, 1), date(2025, 7, 31), dec!(4));
        let pln = t.store.pln(Arc::new(rates), PlnConfig::default()).unwrap();
        let users = pln.get_usage_by_user_pln(&a, None, None).unwrap();
        let got: Vec<_> = users.rows.iter().map(|r| (r.usage.user_id.as_str(), r.markup_cost_pln, r.raw_cost_pln)).collect();
        assert_eq!(got, [("u2", dec!(0.12), dec!(0.08)), ("u1", dec!(0.08), dec!(0.05))]);
        let models = pln.get_usage_by_model_pln(&a, None, None).unwrap();
        assert_eq!(models.rows.len(), 2);
        let stats = pln.get_usage_stats_by_client_pln(&a, None).unwrap();
        assert_eq!((stats.this_month_cost_pln, stats.today_cost_pln), (dec!(0.20), dec!(0.08)));
        let all = pln.get_all_clients_usage_stats_pln(None, None).unwrap();
        let row = all.rows.iter().find(|r| r.billing.client_org_id == a).unwrap();
        assert_eq!((row.billing.markup_cost, row.markup_cost_pln), (dec!(0.0495), dec!(0.20)));
        let st = pln.monthly_statement(&a, 2025, 7).unwrap();
        assert_eq!((st.totals.tokens, st.totals.requests, st.totals.markup_usd, st.totals.pln), (365, 4, dec!(0.0495), dec!(0.20)));
        assert_eq!(st.lines.len(), 2);
    }
}
