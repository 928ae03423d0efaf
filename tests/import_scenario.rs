//! The importer on the scenario fixture: every report line, the exact money, the policies,
//! idempotence, the refusal of an original database by `Store::open`, in-place and dry runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod import_common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use orgusage::clock::ManualClock;
use orgusage::{Error, Store, StoreConfig};
use orgusage_import::{
    DuplicateDayPolicy, ImportError, ImportOptions, ImportReport, LedgerCostRule, Target, import,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn do_import(source: &str, target: &Target, opts: &ImportOptions) -> ImportReport {
    let mut events = 0;
    let r = import(source, target, opts, &mut |p| {
        events += 1;
        assert!(p.rows_done <= p.rows_total);
    })
    .unwrap();
    assert!(events > 0, "progress is reported");
    r
}

fn month<'a>(r: &'a ImportReport, client: &str, m: &str) -> &'a orgusage_import::MonthVerification {
    r.months
        .iter()
        .find(|x| x.client_org_id == client && x.month == m)
        .unwrap_or_else(|| panic!("no month {client} {m}"))
}

fn sql_count(url: &str, sql: &str) -> i64 {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres") {
        let mut c = diesel::PgConnection::establish(url).unwrap();
        return diesel::sql_query(sql).load::<N>(&mut c).unwrap()[0].n;
    }
    let mut c = diesel::SqliteConnection::establish(url).unwrap();
    diesel::sql_query(sql).load::<N>(&mut c).unwrap()[0].n
}

/// The month rollups of every imported client equal their days, and a by-user report over all
/// time (whole months from the rollups) has the day table's totals.
fn assert_rollups_exact(store: &Store, url: &str) {
    let (from, to) = (date(2000, 1, 1), date(2099, 12, 31));
    for c in ["c_acme", "c_beta", "c_gamma", "c_delta"] {
        assert!(
            store
                .usage()
                .validate_month_rollups(c, from, to)
                .unwrap()
                .is_empty(),
            "{c}"
        );
        let Ok(users) = store.usage().get_usage_by_user(c, Some(from), Some(to)) else {
            continue; // an inactive client has no reports, only its rollups to check
        };
        let tokens: i64 = users.iter().map(|u| u.total_tokens).sum();
        let rows: i64 = users.iter().map(|u| u.days_active).sum();
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS n FROM client_user_daily_usage WHERE client_org_id = '{c}'"
        );
        assert_eq!(tokens, sql_count(url, &sql), "{c}");
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM client_user_daily_usage WHERE client_org_id = '{c}'"
        );
        assert_eq!(rows, sql_count(url, &sql), "{c}");
    }
}

fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn store_at(url: &str) -> Store {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 7, 15, 10, 0, 0).unwrap());
    Store::open(StoreConfig::new(url).clock(Arc::new(clock))).unwrap()
}

import_tests! {
    fn every_report_line(env) {
        let env = env.scenario();
        let r = do_import(&env.source, &Target::Separate(env.target.clone()), &ImportOptions::default());
        assert!(r.verified(), "{r}");
        assert!(!r.already_complete);
        assert!(r.provisioning_key_kept);
        // Timezones: CET and empty and NULL mapped, each reported.
        let tz: Vec<_> = r.timezone_mappings.iter().map(|t| (t.client_org_id.as_str(), t.original.as_deref(), t.mapped_to.as_str())).collect();
        assert_eq!(tz, vec![("c_beta", Some("CET"), "Europe/Warsaw"), ("c_delta", None, "Europe/Warsaw"), ("c_gamma", Some(""), "Europe/Warsaw")]);
        // Several active mappings: the latest stays active.
        assert_eq!(r.mapping_conflicts.len(), 1);
        assert_eq!(r.mapping_conflicts[0].kept_active, "u2_c_beta");
        assert_eq!(r.mapping_conflicts[0].deactivated, vec!["u2_c_acme".to_string()]);
        // The row of an unknown client.
        assert_eq!(r.orphans.len(), 1);
        assert_eq!((r.orphans[0].table.as_str(), r.orphans[0].client_org_id.as_str(), r.orphans[0].rows), ("client_daily_usage", "c_ghost", 1));
        // One day under both id formats: the later (colon) row kept, the other reported.
        assert_eq!(r.duplicate_days_total, 1);
        let dup = &r.duplicate_days[0];
        assert_eq!((dup.client_org_id.as_str(), dup.usage_date.as_str(), dup.kept.as_str()), ("c_acme", "2025-07-01", "c_acme:2025-07-01"));
        assert_eq!(dup.dropped.tokens, 300);
        assert_eq!(dup.dropped.raw_cost.round_dp(9), dec!(0.3));
        // Live counters: one on a day with a row (not added), one imported, one empty.
        let live: Vec<_> = r.live_counters.iter().map(|l| (l.client_org_id.as_str(), l.counter_date.as_str(), l.action.as_str())).collect();
        assert_eq!(live, vec![("c_acme", "2025-07-02", "skipped_day_exists"), ("c_beta", "2025-07-03", "imported"), ("c_gamma", "2025-07-03", "skipped_empty")]);
        // beta's ledger day holds the marked-up cost (the original's client manager stored it there)
        // and is converted back to raw.
        assert_eq!(r.ledger_marked_up_days_total, 1);
        assert_eq!(r.ledger_marked_up_days[0].client_org_id, "c_beta");
        assert_eq!(r.ledger_rows_converted, 2);
        assert_eq!(sql_count(&env.target, "SELECT total_cost AS n FROM processed_generations WHERE id = 'gen-b1'"), 100_000_000);
        assert_eq!(sql_count(&env.target, "SELECT total_cost AS n FROM processed_generations WHERE id = 'gen-b2'"), 200_000_000);
        assert_eq!(sql_count(&env.target, "SELECT total_cost AS n FROM processed_generations WHERE id = 'gen-a1'"), 10_000_000);
        // The original's inconsistent days are listed, not hidden.
        let bad: Vec<_> = r.inconsistent_days.iter().map(|d| (d.client_org_id.as_str(), d.usage_date.as_str())).collect();
        assert_eq!(bad, vec![("c_beta", "2025-07-02"), ("c_beta", "2025-07-03")]);
        // Months: exact sums, and the adjustments explain the source's double count.
        let acme = month(&r, "c_acme", "2025-07");
        assert_eq!((acme.imported.tokens, acme.imported.requests), (500, 5));
        assert_eq!(acme.imported.raw_cost, dec!(0.31));
        assert_eq!(acme.imported.markup_cost, dec!(0.403));
        assert_eq!(acme.source_as_stored.tokens, 800);
        assert_eq!(acme.adjustments.tokens, -300);
        assert_eq!(acme.difference.tokens, 0);
        assert!(acme.difference.raw_cost.abs() < dec!(0.000000001));
        // 0.1 + 0.2 = 0.30000000000000004 was rounded to 0.3: a real, reported rounding.
        assert!(acme.rounding.raw_cost < Decimal::ZERO && acme.rounding.raw_cost > dec!(-0.000000001));
        assert!(acme.levels_agree);
        let beta = month(&r, "c_beta", "2025-07");
        assert_eq!(beta.imported.tokens, 1070);
        assert_eq!(beta.adjustments.tokens, 70);
        assert!(!beta.levels_agree);
        // The report serializes and prints.
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"duplicate_days_total\":1"));
        let table = r.to_string();
        assert!(table.contains("c_acme") && table.contains("verified: yes"));
        // The target is a normal orgusage database.
        let store = store_at(&env.target);
        let beta_client = store.clients().get_client_by_id("c_beta").unwrap().unwrap();
        assert_eq!((beta_client.timezone.as_str(), beta_client.markup_rate), ("Europe/Warsaw", dec!(1.5)));
        let acme_client = store.clients().get_client_by_id("c_acme").unwrap().unwrap();
        assert_eq!(acme_client.monthly_limit, Some(dec!(500)));
        let settings = store.settings().get_settings().unwrap().unwrap();
        assert_eq!(settings.openrouter_provisioning_key.unwrap().expose(), "sk-or-prov-test");
        assert_eq!(store.mappings().get_mapping_by_user_id("u2").unwrap().unwrap().client_org_id, "c_beta");
        // The library's own Month Total health check agrees (read-only, current month July).
        assert_eq!(store.usage().create_month_total_health_check("c_acme").unwrap().overall_status, "healthy");
        assert_ne!(store.usage().create_month_total_health_check("c_beta").unwrap().overall_status, "healthy");
        assert_rollups_exact(&store, &env.target);
        assert_eq!(sql_count(&env.target, "SELECT unique_users AS n FROM client_daily_usage WHERE client_org_id = 'c_acme' AND usage_date = '2025-07-01'"), 2);
        assert_eq!(sql_count(&env.target, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM processed_generation_cleanup_log WHERE payload_bytes_removed = 700 AND cleanup_duration_ms = 13"), 1);
    }

    fn rerun_changes_nothing_and_says_so(env) {
        let env = env.scenario();
        let opts = ImportOptions::default();
        let first = do_import(&env.source, &Target::Separate(env.target.clone()), &opts);
        let second = do_import(&env.source, &Target::Separate(env.target.clone()), &opts);
        assert!(second.already_complete);
        assert_eq!(second.rows_written_this_run, 0);
        assert_eq!(first.months, second.months);
        assert_eq!(first.target_rows, second.target_rows);
        assert!(second.to_string().contains("already complete"));
        // Other options on the same target are refused, not mixed in.
        let other = ImportOptions { duplicate_days: DuplicateDayPolicy::Sum, ..ImportOptions::default() };
        let err = import(&env.source, &Target::Separate(env.target.clone()), &other, &mut |_| {}).unwrap_err();
        assert!(matches!(err, ImportError::OptionsChanged { .. }), "{err}");
    }

    fn store_open_refuses_the_original_and_writes_nothing(env) {
        let env = env.scenario();
        let tables = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM client_daily_usage";
        let before = sql_count(&env.source, tables);
        let err = Store::open(env.source.as_str()).unwrap_err();
        match &err {
            Error::ForeignSchema { found } => {
                assert!(found.contains("client_daily_usage.id"), "{found}");
                assert!(found.contains("client_live_counters"), "{found}");
            }
            other => panic!("expected ForeignSchema, got {other:?}"),
        }
        assert!(err.to_string().contains("import_mai"));
        assert_eq!(sql_count(&env.source, tables), before);
        // No migration ran: diesel's bookkeeping table was never created.
        let migrations = if env.backend == "sqlite" {
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sqlite_master WHERE name = '__diesel_schema_migrations'"
        } else {
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '__diesel_schema_migrations'"
        };
        assert_eq!(sql_count(&env.source, migrations), 0);
    }

    fn in_place_renames_for_audit_then_opens(env) {
        let env = env.scenario();
        let target = Target::InPlace { prefix: orgusage_import::DEFAULT_AUDIT_PREFIX.into() };
        let r = do_import(&env.source, &target, &ImportOptions::default());
        assert!(r.verified(), "{r}");
        assert_eq!(r.source.prefix, "mai_");
        assert_eq!(sql_count(&env.source, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM mai_client_daily_usage"), 6);
        assert_eq!(month(&r, "c_acme", "2025-07").imported.raw_cost, dec!(0.31));
        // The same database now opens as an orgusage store.
        let store = store_at(&env.source);
        assert!(store.clients().get_client_by_id("c_acme").unwrap().is_some());
        assert_rollups_exact(&store, &env.source);
        let again = do_import(&env.source, &target, &ImportOptions::default());
        assert!(again.already_complete);
        assert_eq!(again.months, r.months);
    }

    fn dry_run_writes_nowhere(env) {
        let env = env.scenario();
        let r = do_import(&env.source, &Target::DryRun, &ImportOptions::default());
        assert_eq!(r.mode, "dry_run");
        assert!(r.verified());
        assert_eq!(r.duplicate_days_total, 1);
        assert!(Store::open(env.source.as_str()).is_err(), "the source is still the original");
    }

    fn sum_policy_and_keep_as_raw(env) {
        let env = env.scenario();
        let opts = ImportOptions {
            duplicate_days: DuplicateDayPolicy::Sum,
            ledger_costs: LedgerCostRule::KeepAsRaw,
            ..ImportOptions::default()
        };
        let r = do_import(&env.source, &Target::Separate(env.target.clone()), &opts);
        assert_eq!(month(&r, "c_acme", "2025-07").imported.tokens, 800);
        assert_eq!(r.duplicate_days[0].kept, "sum");
        assert_eq!(r.ledger_marked_up_days[0].action, "kept_as_raw");
        assert_eq!(r.ledger_rows_converted, 0);
        assert_eq!(sql_count(&env.target, "SELECT total_cost AS n FROM processed_generations WHERE id = 'gen-b1'"), 150_000_000);
        // Summing duplicates breaks the month's level agreement, and the report says so.
        assert!(!month(&r, "c_acme", "2025-07").levels_agree);
    }

    fn older_versions_without_timezone_counters_or_ledger(env) {
        let shape = orgusage_import::fixture::Shape { timezone: false, live_counters: false, ledger: false };
        orgusage_import::fixture::create(&env.source, &shape).unwrap();
        orgusage_import::fixture::seed_bulk(&env.source, 2, 3, 2, 1).unwrap();
        let r = do_import(&env.source, &Target::Separate(env.target.clone()), &ImportOptions::default());
        assert!(!r.source.has_timezone && !r.source.has_live_counters && !r.source.has_ledger);
        assert!(r.verified(), "{r}");
        assert_eq!(r.inconsistent_days_total, 0);
        assert_eq!(r.timezone_mappings.len(), 2, "a missing column is mapped and reported too");
        assert_eq!(r.months.len(), 2);
        assert_eq!(r.months[0].imported.tokens, 3 * 200);
    }

    fn target_with_foreign_data_is_refused(env) {
        let env = env.scenario();
        let store = Store::open(env.target.as_str()).unwrap();
        store.clients().create_client(&orgusage::ClientOrganizationForm::new("Live"), &"sk-or-live".into(), None).unwrap();
        let err = import(&env.source, &Target::Separate(env.target.clone()), &ImportOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(err, ImportError::TargetNotEmpty(_)), "{err}");
    }
}

#[test]
fn sqlite_source_file_is_never_written() {
    let env = import_common::sqlite().scenario();
    let before = std::fs::read(&env.source).unwrap();
    let r = do_import(
        &env.source,
        &Target::Separate(env.target.clone()),
        &ImportOptions::default(),
    );
    assert!(r.verified());
    do_import(
        &env.source,
        &Target::Separate(env.target.clone()),
        &ImportOptions::default(),
    );
    assert_eq!(
        std::fs::read(&env.source).unwrap(),
        before,
        "the source bytes are unchanged"
    );
}
