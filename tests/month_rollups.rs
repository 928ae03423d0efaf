//! The month rollups (`client_user_monthly_usage`) stay equal to the sums of their days on every
//! write path, and `get_usage_by_user`, which reads whole months from them, answers exactly what
//! the old day-row query answered: random writes and random ranges (month edges, one-day and
//! empty ranges, odd time zones), concurrent batches over several days, repairs by SQL, the
//! migration's back-fill, and the health check that proves it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use orgusage::usage::UserUsage;
use orgusage::{ClientOrganizationForm, Store, UsageRecord};
use orgusage_testkit::{TestStore, backend_tests};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;

const ZONES: [&str; 5] = [
    "Europe/Warsaw",
    "Pacific/Chatham",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "UTC",
];

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn client(store: &Store, name: &str, zone: &str, limit: Option<Decimal>) -> String {
    let mut form = ClientOrganizationForm::new(name);
    form.timezone = zone.into();
    form.monthly_limit = limit;
    let key = format!("sk-or-v1-{name}-0123456789");
    store
        .clients()
        .create_client(&form, &key.as_str().into(), None)
        .unwrap()
        .id
}

/// One write of the random scenario.
#[derive(Debug, Clone)]
struct Write {
    user: u8,
    label: u8,
    day: i64,
    tokens: i64,
    nano: i64,
    path: u8,
}

/// What the old query answered: per user, sums and days of the day rows in the range.
#[derive(Debug, Default, Clone, PartialEq)]
struct Model {
    days: BTreeMap<NaiveDate, (i64, i64, i64, i64, String)>,
}

const BASE: (i32, u32, u32) = (2025, 1, 20);

fn base() -> NaiveDate {
    d(BASE.0, BASE.1, BASE.2)
}

fn expected(
    model: &BTreeMap<String, Model>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(String, String, i64, i64, Decimal, Decimal, i64)> {
    let mut out = Vec::new();
    for (user, m) in model {
        let days: Vec<_> = m.days.range(from..=to).map(|(_, v)| v).collect();
        if days.is_empty() {
            continue;
        }
        let label = days.iter().map(|v| v.4.clone()).max().unwrap();
        let (mut t, mut r, mut raw, mut mk) = (0, 0, 0, 0);
        for v in &days {
            t += v.0;
            r += v.1;
            raw += v.2;
            mk += v.3;
        }
        out.push((
            user.clone(),
            label,
            t,
            r,
            Decimal::new(raw, 9).normalize(),
            Decimal::new(mk, 9).normalize(),
            days.len() as i64,
        ));
    }
    out
}

fn actual(rows: Vec<UserUsage>) -> Vec<(String, String, i64, i64, Decimal, Decimal, i64)> {
    let mut v: Vec<_> = rows
        .into_iter()
        .map(|u| {
            (
                u.user_id,
                u.openrouter_user_id,
                u.total_tokens,
                u.total_requests,
                u.raw_cost.normalize(),
                u.markup_cost.normalize(),
                u.days_active,
            )
        })
        .collect();
    v.sort();
    v
}

fn writes() -> impl Strategy<Value = Vec<Write>> {
    proptest::collection::vec(
        (
            0u8..4,
            0u8..3,
            0i64..200,
            1i64..5000,
            0i64..2_000_000,
            0u8..4,
        )
            .prop_map(|(user, label, day, tokens, nano, path)| Write {
                user,
                label,
                day,
                tokens,
                nano,
                path,
            }),
        1..40,
    )
}

fn ranges() -> impl Strategy<Value = Vec<(i64, i64)>> {
    // Offsets from the base day (20 January 2025): starts and ends on and around month edges,
    // one-day ranges, and ranges reaching past the writes.
    proptest::collection::vec((0i64..230, 0i64..200), 1..8)
}

/// Applies `ws` to `c` through the path each write names, and to the model.
fn apply(t: &TestStore, other: &Store, c: &str, ws: &[Write], model: &mut BTreeMap<String, Model>) {
    let mut batch = Vec::new();
    let mut generations = Vec::new();
    for (n, w) in ws.iter().enumerate() {
        let user = format!("user-{}", w.user);
        let label = format!("or-{}-{}", w.user, w.label);
        let day = base() + Duration::days(w.day);
        let raw = Decimal::new(w.nano, 9);
        let rec = UsageRecord::new(c, &user, &label, "anthropic/claude-sonnet-4")
            .on(day)
            .tokens(w.tokens, 1)
            .raw_cost(raw)
            .markup_cost(raw * Decimal::new(13, 1));
        let entry =
            model
                .entry(user)
                .or_default()
                .days
                .entry(day)
                .or_insert((0, 0, 0, 0, label.clone()));
        entry.0 += w.tokens + 1;
        entry.1 += 1;
        entry.2 += w.nano;
        // The stored markup: raw x 1.3 rounded half away from zero to the nano-USD.
        entry.3 += (w.nano * 13 + 5) / 10;
        entry.4 = entry.4.clone().max(label);
        match w.path {
            0 => {
                t.store.usage().record_usage(&rec).unwrap();
            }
            1 => {
                other.usage().record_usage(&rec).unwrap();
            }
            2 => batch.push(rec),
            _ => generations.push((format!("gen-{c}-{n}"), rec)),
        }
    }
    for r in t.store.usage().record_usage_batch(&batch) {
        r.unwrap();
    }
    for r in t.store.usage().record_generations(&generations) {
        r.unwrap();
    }
}

/// The rollups of `c` equal their days over all time.
fn assert_exact(store: &Store, c: &str) {
    let bad = store
        .usage()
        .validate_month_rollups(c, d(2000, 1, 1), d(2099, 12, 31))
        .unwrap();
    assert!(bad.is_empty(), "rollups differ from days: {bad:?}");
}

backend_tests! {
    fn random_writes_and_ranges_match_the_days(t) {
        let other = t.second_instance();
        let mut runner = TestRunner::new(Config { cases: 32, ..Config::default() });
        let n = std::cell::Cell::new(0);
        runner
            .run(&(writes(), ranges(), 0usize..ZONES.len(), any::<bool>()), |(ws, rs, zone, limited)| {
                n.set(n.get() + 1);
                // A limited client takes the ordinary transaction, the others the one-statement
                // path on PostgreSQL.
                let limit = limited.then(|| Decimal::new(1_000_000, 0));
                let c = client(&t.store, &format!("rnd{}", n.get()), ZONES[zone], limit);
                let mut model = BTreeMap::new();
                apply(t, &other, &c, &ws, &mut model);
                assert_exact(&t.store, &c);
                for (start, len) in rs {
                    let from = base() + Duration::days(start);
                    let to = from + Duration::days(len);
                    let got = t.store.usage().get_usage_by_user(&c, Some(from), Some(to)).unwrap();
                    prop_assert_eq!(actual(got), expected(&model, from, to), "{}..={}", from, to);
                    // Whole months and single days.
                    let m0 = from.with_day0(0).unwrap();
                    let got = t.store.usage().get_usage_by_user(&c, Some(m0), Some(to)).unwrap();
                    prop_assert_eq!(actual(got), expected(&model, m0, to));
                    let got = t.store.usage().get_usage_by_user(&c, Some(from), Some(from)).unwrap();
                    prop_assert_eq!(actual(got), expected(&model, from, from));
                }
                // The default range: the client's month to date (the clock is at 24 July 2025).
                let got = t.store.usage().get_usage_by_user(&c, None, None).unwrap();
                let local_today = orgusage::timezone::local_date_at(
                    orgusage::timezone::parse_timezone(ZONES[zone]).unwrap(),
                    orgusage::clock::Clock::now(t.clock.as_ref()),
                );
                prop_assert_eq!(
                    actual(got),
                    expected(&model, local_today.with_day0(0).unwrap(), local_today)
                );
                Ok(())
            })
            .unwrap();
    }

    fn concurrent_multi_day_batches_stay_exact_without_deadlocks(t) {
        let c = client(&t.store, "conc", "Europe/Warsaw", None);
        let limited = client(&t.store, "conc-lim", "Europe/Warsaw", Some(Decimal::new(1_000_000, 0)));
        let stores: Vec<Store> = (0..4).map(|i| if i % 2 == 0 { t.store.clone() } else { t.second_instance() }).collect();
        std::thread::scope(|s| {
            for (i, store) in stores.iter().enumerate() {
                let (c, limited) = (c.clone(), limited.clone());
                s.spawn(move || {
                    for round in 0..15 {
                        // Several days of one month, users in an order of this thread's own,
                        // so that the batches' day rows cross each other's.
                        let mut recs = Vec::new();
                        for k in 0..12 {
                            let user = if (i + k) % 2 == 0 { k % 6 } else { 5 - k % 6 };
                            let day = d(2025, 6, 1 + ((k + i + round) % 4) as u32);
                            let who = if k % 3 == 0 { &limited } else { &c };
                            recs.push(
                                UsageRecord::new(who.as_str(), format!("u{user}"), format!("or-u{user}"), "openai/gpt-4.1")
                                    .on(day)
                                    .tokens(3, 2)
                                    .raw_cost(Decimal::new(7, 9)),
                            );
                        }
                        for r in store.usage().record_usage_batch(&recs) {
                            r.unwrap();
                        }
                        // And single records on the same rows.
                        let one = UsageRecord::new(c.as_str(), format!("u{}", round % 6), format!("or-u{}", round % 6), "openai/gpt-4.1")
                            .on(d(2025, 6, 1 + (round % 4) as u32))
                            .tokens(1, 1)
                            .raw_cost(Decimal::new(3, 9));
                        store.usage().record_usage(&one).unwrap();
                    }
                });
            }
        });
        for who in [&c, &limited] {
            assert_exact(&t.store, who);
            let users = t.store.usage().get_usage_by_user(who, Some(d(2025, 6, 1)), Some(d(2025, 6, 30))).unwrap();
            let days = t.store.usage().get_daily_usage(who, d(2025, 6, 1), d(2025, 6, 30)).unwrap();
            assert_eq!(
                users.iter().map(|u| (u.total_tokens, u.total_requests, u.raw_cost)).fold((0, 0, Decimal::ZERO), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2)),
                days.iter().map(|u| (u.total_tokens, u.total_requests, u.raw_cost)).fold((0, 0, Decimal::ZERO), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2)),
            );
        }
        let total: i64 = t.store.usage().get_usage_by_user(&c, Some(d(2025, 6, 1)), Some(d(2025, 6, 30))).unwrap().iter().map(|u| u.total_requests).sum::<i64>()
            + t.store.usage().get_usage_by_user(&limited, Some(d(2025, 6, 1)), Some(d(2025, 6, 30))).unwrap().iter().map(|u| u.total_requests).sum::<i64>();
        assert_eq!(total, 4 * 15 * 13);
    }

    fn repairs_by_sql_move_the_rollups_with_the_days(t) {
        let c = client(&t.store, "repair", "Europe/Warsaw", None);
        for (day, label) in [(d(2025, 5, 3), "or-b"), (d(2025, 5, 4), "or-a"), (d(2025, 5, 30), "or-c")] {
            let rec = UsageRecord::new(&c, "u1", label, "openai/gpt-4.1").on(day).tokens(10, 0).raw_cost(Decimal::new(100, 9));
            t.store.usage().record_usage(&rec).unwrap();
        }
        let may = |t: &TestStore| t.store.usage().get_usage_by_user(&c, Some(d(2025, 5, 1)), Some(d(2025, 5, 31))).unwrap();
        assert_eq!((may(t)[0].openrouter_user_id.as_str(), may(t)[0].days_active), ("or-c", 3));
        // A repair that deletes the day holding the month's greatest id.
        t.execute_sql(&format!("DELETE FROM client_user_daily_usage WHERE client_org_id = '{c}' AND usage_date = '2025-05-30'"));
        assert_exact(&t.store, &c);
        assert_eq!((may(t)[0].openrouter_user_id.as_str(), may(t)[0].days_active, may(t)[0].total_tokens), ("or-b", 2, 20));
        // One that lowers an id, one that changes counters, one that moves a day to June.
        t.execute_sql(&format!("UPDATE client_user_daily_usage SET openrouter_user_id = 'or-0' WHERE client_org_id = '{c}' AND usage_date = '2025-05-03'"));
        t.execute_sql(&format!("UPDATE client_user_daily_usage SET total_tokens = total_tokens + 5 WHERE client_org_id = '{c}' AND usage_date = '2025-05-04'"));
        assert_exact(&t.store, &c);
        assert_eq!(may(t)[0].openrouter_user_id, "or-a");
        t.execute_sql(&format!("UPDATE client_user_daily_usage SET usage_date = '2025-06-02' WHERE client_org_id = '{c}' AND usage_date = '2025-05-04'"));
        assert_exact(&t.store, &c);
        assert_eq!((may(t)[0].openrouter_user_id.as_str(), may(t)[0].days_active, may(t)[0].total_tokens), ("or-0", 1, 10));
        // Deleting the last day of a month removes its month row.
        t.execute_sql(&format!("DELETE FROM client_user_daily_usage WHERE client_org_id = '{c}' AND usage_date = '2025-05-03'"));
        assert_exact(&t.store, &c);
        assert!(may(t).is_empty());
    }

    fn health_check_proves_rollups_and_reports_a_tampered_one(t) {
        let c = client(&t.store, "health", "Europe/Warsaw", None);
        for day in [d(2025, 7, 1), d(2025, 7, 2), d(2025, 7, 24)] {
            let rec = UsageRecord::new(&c, "u1", "or-u1", "openai/gpt-4.1").on(day).tokens(10, 0).raw_cost(Decimal::new(100, 9));
            t.store.usage().record_usage(&rec).unwrap();
        }
        let report = t.store.usage().create_month_total_health_check(&c).unwrap();
        let check = report.checks.iter().find(|c| c.check == "rollup_consistency").unwrap();
        assert_eq!((report.overall_status.as_str(), check.status.as_str()), ("healthy", "passed"));
        t.execute_sql(&format!("UPDATE client_user_monthly_usage SET total_tokens = total_tokens + 1 WHERE client_org_id = '{c}'"));
        let report = t.store.usage().create_month_total_health_check(&c).unwrap();
        let check = report.checks.iter().find(|c| c.check == "rollup_consistency").unwrap();
        assert_eq!((report.overall_status.as_str(), check.status.as_str()), ("warning", "failed"));
        let bad = t.store.usage().validate_month_rollups(&c, d(2025, 7, 1), d(2025, 7, 31)).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!((bad[0].month_start, bad[0].user_id.as_str(), bad[0].differences), (d(2025, 7, 1), "u1", [1, 0, 0, 0, 0, 0, 0]));
        t.execute_sql(&format!("DELETE FROM client_user_monthly_usage WHERE client_org_id = '{c}'"));
        let bad = t.store.usage().validate_month_rollups(&c, d(2025, 7, 1), d(2025, 7, 31)).unwrap();
        assert_eq!((bad.len(), bad[0].rollup_openrouter_user_id.as_deref(), bad[0].differences[6]), (1, None, -3));
    }

    fn a_month_past_i64_is_an_overflow_like_its_days(t) {
        // Two days of 9 x 10^18 nano-USD each: every day fits, the month does not. Single
        // records on one client (the trigger), a batch on the other (PostgreSQL: the batch's
        // own month upsert).
        let (single, batched) = (client(&t.store, "ovf-1", "UTC", None), client(&t.store, "ovf-2", "UTC", None));
        let rec = |c: &str, day: u32| UsageRecord::new(c, "w", "or-w", "big/model").on(d(2025, 6, day)).markup_cost(Decimal::new(1_000_000_000, 0));
        for day in [3, 4] {
            for _ in 0..9 {
                t.store.usage().record_usage(&rec(&single, day)).unwrap();
            }
            let batch: Vec<UsageRecord> = (0..9).map(|_| rec(&batched, day)).collect();
            for r in t.store.usage().record_usage_batch(&batch) {
                r.unwrap();
            }
        }
        for c in [&single, &batched] {
            let month = t.store.usage().get_usage_by_user(c, Some(d(2025, 6, 1)), Some(d(2025, 6, 30)));
            assert!(matches!(month, Err(orgusage::Error::Overflow(_))), "{month:?}");
            let day = t.store.usage().get_usage_by_user(c, Some(d(2025, 6, 3)), Some(d(2025, 6, 3))).unwrap();
            assert_eq!(day[0].markup_cost, Decimal::new(9_000_000_000, 0));
            // The flagged month is left out of the comparison; nothing else differs.
            assert_exact(&t.store, c);
        }
    }

    fn the_one_statement_path_writes_the_month_rollup_itself(t) {
        // A client without a limit: on PostgreSQL each call below is one statement
        // (`PgRecordOne`), which upserts the month row itself with the trigger turned off; a
        // month counted by both, or by neither, fails `assert_exact`.
        let c = client(&t.store, "one-stmt", "Europe/Warsaw", None);
        let rec = |user: &str, label: &str, day: NaiveDate, tokens: i64| {
            UsageRecord::new(&c, user, label, "openai/gpt-4.1").on(day).tokens(tokens, 1).raw_cost(Decimal::new(tokens * 10, 9))
        };
        let usage = t.store.usage();
        usage.record_usage(&rec("u1", "or-b", d(2025, 6, 3), 10)).unwrap(); // a new day row
        assert_exact(&t.store, &c);
        usage.record_usage(&rec("u1", "or-a", d(2025, 6, 3), 20)).unwrap(); // the same day row
        assert_exact(&t.store, &c);
        usage.record_usage(&rec("u1", "or-c", d(2025, 6, 4), 30)).unwrap(); // another day
        let recorded = |o: orgusage::GenerationOutcome| matches!(o, orgusage::GenerationOutcome::Recorded(_));
        assert!(recorded(usage.record_generation("g1", &rec("u1", "or-a", d(2025, 6, 5), 40)).unwrap()));
        assert!(recorded(usage.record_generation("g2", &rec("u1", "or-a", d(2025, 6, 5), 50)).unwrap()));
        // A duplicate id writes nothing, month row included.
        let dup = usage.record_generation("g1", &rec("u1", "or-z", d(2025, 6, 6), 60)).unwrap();
        assert!(matches!(dup, orgusage::GenerationOutcome::Duplicate), "{dup:?}");
        usage.record_usage(&rec("u2", "or-x", d(2025, 6, 3), 70)).unwrap();
        // The next month starts its own row.
        usage.record_usage(&rec("u1", "or-a", d(2025, 7, 1), 80)).unwrap();
        assert_exact(&t.store, &c);
        let june = usage.get_usage_by_user(&c, Some(d(2025, 6, 1)), Some(d(2025, 6, 30))).unwrap();
        let row = |user: &str| {
            let u = june.iter().find(|u| u.user_id == user).unwrap();
            (u.openrouter_user_id.clone(), u.days_active, u.total_requests, u.total_tokens, u.raw_cost)
        };
        assert_eq!(june.len(), 2);
        assert_eq!(row("u1"), ("or-c".to_string(), 3, 5, 155, Decimal::new(1500, 9)));
        assert_eq!(row("u2"), ("or-x".to_string(), 1, 1, 71, Decimal::new(700, 9)));
        let july = usage.get_usage_by_user(&c, Some(d(2025, 7, 1)), Some(d(2025, 7, 31))).unwrap();
        assert_eq!((july.len(), july[0].days_active, july[0].total_tokens), (1, 1, 81));
    }

    fn the_migration_backfills_existing_days(t) {
        // With a limit, so that the days before the migration are written by the ordinary
        // transaction: on PostgreSQL the one-statement and batch paths write the month table
        // themselves, which the rolled-back schema does not have.
        let c = client(&t.store, "backfill", "Europe/Warsaw", Some(Decimal::new(1_000_000, 0)));
        let down = if t.backend() == "sqlite" {
            include_str!("../crates/orgusage-db/migrations/sqlite/2026-11-29-000004_month_rollups/down.sql")
        } else {
            include_str!("../crates/orgusage-db/migrations/postgres/2026-11-29-000004_month_rollups/down.sql")
        };
        t.execute_sql(down);
        t.execute_sql("DELETE FROM __diesel_schema_migrations WHERE version = '20261129000004'");
        for (i, day) in [d(2025, 3, 31), d(2025, 4, 1), d(2025, 4, 15), d(2025, 7, 24)].into_iter().enumerate() {
            let rec = UsageRecord::new(&c, format!("u{}", i % 2), format!("or-{i}"), "openai/gpt-4.1").on(day).tokens(10, 0).raw_cost(Decimal::new(100, 9));
            t.store.usage().record_usage(&rec).unwrap();
        }
        assert_eq!(t.store.database().run_pending_migrations().unwrap(), 1);
        assert_exact(&t.store, &c);
        let users = t.store.usage().get_usage_by_user(&c, Some(d(2025, 3, 1)), Some(d(2025, 7, 31))).unwrap();
        assert_eq!(users.iter().map(|u| u.days_active).sum::<i64>(), 4);
        assert_eq!(users.iter().find(|u| u.user_id == "u0").unwrap().openrouter_user_id, "or-2");
    }
}
