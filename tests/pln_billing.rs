//! PLN billing at the NBP rate of the last business day before each cost date (exact sums, one
//! rounding, no invented rates, a Polish calendar for any year), on SQLite and PostgreSQL, with
//! rates fetched over real HTTP from a loopback server that answers like api.nbp.pl.

#![cfg(feature = "nbp-http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use orgusage::holidays::{is_polish_business_day, last_business_day_before};
use orgusage::nbp::StaticRates;
use orgusage::nbp::business_day_rates;
use orgusage::pln::{DailyRate, PlnBilling, PlnConfig, RateRule, round_pln};
use orgusage::{Decimal, Error, Store, UsageRecord};
use orgusage_stub_http::nbp::{Behaviour, FakeNbp, d, mid_for, usd_tables};
use orgusage_testkit::backend_tests;
use orgusage_testkit::client;
use rust_decimal_macros::dec;

const SONNET: &str = "anthropic/claude-sonnet-4";
const GPT: &str = "openai/gpt-4.1";

fn billing(store: &Store, server: &FakeNbp, config: PlnConfig) -> PlnBilling {
    store.pln(Arc::new(server.client()), config).unwrap()
}

fn spend(store: &Store, c: &str, user: &str, model: &str, day: NaiveDate, raw: Decimal) {
    let rec = UsageRecord::new(c, user, format!("or-{user}"), model)
        .on(day)
        .tokens(1000, 250)
        .raw_cost(raw);
    store.usage().record_usage(&rec).unwrap();
}

/// A month of usage: every day `first..=last`, the cost varying with the day.
fn spend_days(store: &Store, c: &str, first: NaiveDate, last: NaiveDate) {
    for (i, day) in first.iter_days().take_while(|x| *x <= last).enumerate() {
        let raw = Decimal::new(1_234_567 + 98_765 * i as i64, 9);
        spend(store, c, "u1", SONNET, day, raw);
        if i % 3 == 0 {
            spend(store, c, "u2", GPT, day, Decimal::new(3_333_333, 9));
        }
    }
}

fn set_clock(t: &orgusage_testkit::TestStore, y: i32, m: u32, day: u32, h: u32) {
    t.clock
        .set(Utc.with_ymd_and_hms(y, m, day, h, 0, 0).single().unwrap());
}

fn rate_unavailable(result: orgusage::Result<impl std::fmt::Debug>) -> (NaiveDate, String) {
    match result {
        Err(Error::RateUnavailable { date, reason }) => (date, reason),
        other => panic!("expected RateUnavailable, got {other:?}"),
    }
}

/// The PLN the tests expect for `markup` on `day` with the fake server's rates: exact product
/// with the mid of the last business day before `day`.
fn exact_pln(markup: Decimal, day: NaiveDate) -> Decimal {
    markup * mid_for(last_business_day_before(day))
}

backend_tests! {
    fn cost_date_uses_the_rate_of_the_last_business_day_before_it(t) {
        let server = FakeNbp::usd_business_days();
        let pln = billing(&t.store, &server, PlnConfig::default());
        let cases = [
            (d(2025, 4, 22), d(2025, 4, 18)),
            (d(2025, 11, 12), d(2025, 11, 10)),
            (d(2025, 12, 29), d(2025, 12, 23)),
            (d(2025, 5, 5), d(2025, 5, 2)),
            (d(2025, 1, 7), d(2025, 1, 3)),
            (d(2025, 1, 2), d(2024, 12, 31)),
        ];
        set_clock(t, 2026, 1, 15, 12);
        for (i, (cost_date, expected)) in cases.into_iter().enumerate() {
            let rate = pln.rate_for(cost_date).unwrap();
            assert_eq!(rate.effective_date, Some(expected), "{cost_date}");
            assert_eq!(rate.rate, mid_for(expected));
            assert!(rate.table_no.as_deref().unwrap().ends_with(&expected.format("/A/NBP/%Y").to_string()));
            assert_eq!((rate.source.as_str(), rate.is_fallback, rate.is_provisional), ("NBP", false, false));
            assert_eq!(server.request_count(), i + 1, "one request per date, never day by day");
        }
        // Stored: a second instance with NBP down gets the same rates from the database.
        server.set(Behaviour::Fixed { status: 500, body: "down".into() });
        let other = billing(&t.second_instance(), &server, PlnConfig::default());
        let dates: Vec<NaiveDate> = cases.iter().map(|c| c.0).collect();
        let stored = other.rates_for(&dates).unwrap();
        for (cost_date, expected) in cases {
            assert_eq!(stored[&cost_date].effective_date, Some(expected));
        }
        assert_eq!(server.request_count(), cases.len());
    }

    fn timeouts_and_server_errors_are_rate_unavailable_never_an_invented_rate(t) {
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Acme");
        spend(&t.store, &c, "u1", SONNET, d(2025, 7, 21), dec!(0.1));
        let fast = |store: &Store, config| store.pln(Arc::new(server.client_with_timeout(Duration::from_millis(300))), config).unwrap();
        let pln = fast(&t.store, PlnConfig::default());
        for (behaviour, needle) in [
            (Behaviour::Fixed { status: 500, body: "Internal Server Error".into() }, "500"),
            (Behaviour::Fixed { status: 503, body: "Service Unavailable".into() }, "503"),
            (Behaviour::Slow(Duration::from_millis(1000)), "timed out"),
        ] {
            server.set(behaviour);
            let (date, reason) = rate_unavailable(pln.rate_for(d(2025, 7, 21)));
            assert_eq!(date, d(2025, 7, 21));
            assert!(reason.contains(needle) && reason.contains("no fallback"), "{reason}");
            rate_unavailable(pln.monthly_statement(&c, 2025, 7));
            rate_unavailable(pln.get_usage_by_user_pln(&c, None, None));
        }
        // A configured fallback stands in, flagged everywhere, and is never stored.
        server.set(Behaviour::Fixed { status: 502, body: "Bad Gateway".into() });
        let config = PlnConfig { fallback_rate: Some(dec!(4.1234)), ..PlnConfig::default() };
        let with_fallback = fast(&t.store, config.clone());
        let rate = with_fallback.rate_for(d(2025, 7, 21)).unwrap();
        assert_eq!(rate, DailyRate::fallback(d(2025, 7, 21), "USD", dec!(4.1234)));
        let statement = with_fallback.monthly_statement(&c, 2025, 7).unwrap();
        assert!(statement.any_fallback && statement.lines[0].is_fallback);
        assert_eq!(statement.lines[0].rate_source, "fallback");
        assert_eq!(statement.lines[0].table_no, None);
        let by_user = with_fallback.get_usage_by_user_pln(&c, None, None).unwrap();
        assert!(by_user.any_fallback && by_user.rows[0].pln_is_fallback);
        let stats = with_fallback.get_usage_stats_by_client_pln(&c, None).unwrap();
        assert!(stats.pln_is_fallback && stats.daily_history_pln[0].is_fallback);
        let billing_rows = with_fallback.get_all_clients_usage_stats_pln(None, None).unwrap();
        assert!(billing_rows.rows[0].pln_is_fallback);
        // A rejected request (400) points at a bug, which a fallback must not hide.
        server.set(Behaviour::Fixed { status: 400, body: "400 BadRequest - Błędny zakres dat".into() });
        let (_, reason) = rate_unavailable(with_fallback.rate_for(d(2025, 7, 21)));
        assert!(reason.contains("400"), "{reason}");
        // NBP back: the real rate, fetched now, because the fallback was never stored.
        server.set(Behaviour::Nbp);
        let before = server.request_count();
        let real = fast(&t.store, config).rate_for(d(2025, 7, 21)).unwrap();
        assert_eq!((real.effective_date, real.is_fallback), (Some(d(2025, 7, 18)), false));
        assert_eq!(server.request_count(), before + 1);
    }

    fn no_table_in_the_window_says_whether_the_calendar_expected_one(t) {
        let server = FakeNbp::start(Vec::new());
        let pln = billing(&t.store, &server, PlnConfig::default());
        let (date, reason) = rate_unavailable(pln.rate_for(d(2025, 4, 22)));
        assert_eq!(date, d(2025, 4, 22));
        assert!(reason.contains("NOT expected by the Polish calendar"), "{reason}");
        assert!(server.request_count() <= 2, "one window, one wider retry");
        let (_, reason) = rate_unavailable(pln.rate_for(d(2001, 6, 1)));
        assert!(reason.contains("expected by the Polish calendar") && reason.contains("2002-01-02"), "{reason}");
    }

    fn pln_rounds_half_up_on_exact_decimals(t) {
        let server = FakeNbp::start(business_day_rates("USD", d(2025, 3, 1), d(2025, 5, 30), |_| dec!(4.50)));
        let c = client(&t.store, "Acme");
        let rec = UsageRecord::new(&c, "u1", "or-u1", SONNET).on(d(2025, 4, 15)).raw_cost(dec!(0.15)).markup_cost(dec!(0.15));
        t.store.usage().record_usage(&rec).unwrap();
        spend(&t.store, &c, "u1", SONNET, d(2025, 4, 16), dec!(0.15)); // x 1.3 = 0.195
        let s = billing(&t.store, &server, PlnConfig::default()).monthly_statement(&c, 2025, 4).unwrap();
        let lines: Vec<(Decimal, Decimal)> = s.lines.iter().map(|l| (l.pln_exact, l.pln)).collect();
        assert_eq!(lines, vec![(dec!(0.675), dec!(0.68)), (dec!(0.8775), dec!(0.88))]);
        assert_eq!((s.totals.pln_exact, s.totals.pln), (dec!(1.5525), dec!(1.55)));
        assert_eq!(s.totals.pln_of_rounded_lines, dec!(1.56), "lines rounded alone differ");
        assert_eq!(orgusage::pln::convert_to_pln(dec!(0.15), dec!(4.50)).unwrap(), dec!(0.68));
    }

    fn month_is_the_exact_sum_of_days_rounded_once_and_never_reprices(t) {
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Kowalski");
        spend_days(&t.store, &c, d(2025, 7, 1), d(2025, 7, 24));
        let pln = billing(&t.store, &server, PlnConfig::default());
        let s = pln.monthly_statement(&c, 2025, 7).unwrap();
        assert_eq!(server.request_count(), 1, "the month's rates in one request");
        assert_eq!(s.lines.len(), 24);
        let mut exact = Decimal::ZERO;
        for line in &s.lines {
            let table_day = last_business_day_before(line.date);
            assert_eq!((line.effective_date, line.rate), (Some(table_day), mid_for(table_day)));
            assert_eq!(line.pln_exact, exact_pln(line.markup_usd, line.date));
            exact += line.pln_exact;
        }
        assert_eq!((s.totals.pln_exact, s.totals.pln), (exact, round_pln(exact)));
        let usd: Decimal = s.lines.iter().map(|l| l.markup_usd).sum();
        assert_eq!(s.totals.markup_usd, usd);
        // A week later NBP's tables are "different" and today's usage is new: July's first 24
        // days keep their stored rates and PLN.
        set_clock(t, 2025, 7, 31, 15);
        spend(&t.store, &c, "u1", SONNET, d(2025, 7, 31), dec!(1));
        let repriced = FakeNbp::start(business_day_rates("USD", d(2025, 1, 1), d(2025, 12, 31), |_| dec!(9.9999)));
        let later = billing(&t.second_instance(), &repriced, PlnConfig::default()).monthly_statement(&c, 2025, 7).unwrap();
        assert_eq!(later.lines[..24], s.lines[..24]);
        assert_eq!(later.lines[24].rate, dec!(9.9999));
        assert_eq!(repriced.request_count(), 1, "only the new day was fetched");
        assert_eq!(later.totals.pln_exact, exact + dec!(1.3) * dec!(9.9999));
    }

    fn second_request_for_a_date_within_the_ttl_makes_no_http_call(t) {
        let server = FakeNbp::usd_business_days();
        set_clock(t, 2026, 1, 15, 12);
        let config = PlnConfig { cache_ttl: Duration::from_secs(600), ..PlnConfig::default() };
        let pln = billing(&t.store, &server, config);
        let first = pln.rate_for(d(2025, 4, 22)).unwrap();
        assert_eq!(pln.rate_for(d(2025, 4, 22)).unwrap(), first);
        assert_eq!(server.request_count(), 1);
        assert_eq!(pln.rate_for(d(2025, 11, 12)).unwrap().effective_date, Some(d(2025, 11, 10)));
        assert_eq!(server.request_count(), 2, "keyed per date");
        // Within the TTL the cache answers even if the stored row is gone.
        t.execute_sql("DELETE FROM daily_exchange_rates");
        assert_eq!(pln.rate_for(d(2025, 4, 22)).unwrap(), first);
        assert_eq!(server.request_count(), 2);
        t.clock.advance(chrono::Duration::seconds(601));
        assert_eq!(pln.rate_for(d(2025, 4, 22)).unwrap(), first);
        assert_eq!(server.request_count(), 3, "expired, not stored: fetched again");
        pln.clear_cache();
        pln.rate_for(d(2025, 4, 22)).unwrap();
        assert_eq!(server.request_count(), 3, "stored again: the database answers");
    }

    fn holiday_week_christmas_2025(t) {
        set_clock(t, 2026, 1, 10, 12);
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Acme");
        spend_days(&t.store, &c, d(2025, 12, 20), d(2025, 12, 31));
        let s = billing(&t.store, &server, PlnConfig::default()).monthly_statement(&c, 2025, 12).unwrap();
        let got: BTreeMap<NaiveDate, NaiveDate> = s.lines.iter().map(|l| (l.date, l.effective_date.unwrap())).collect();
        for (cost, table) in [(22, 19), (23, 22), (24, 23), (25, 23), (26, 23), (27, 23), (28, 23), (29, 23), (30, 29), (31, 30)] {
            assert_eq!(got[&d(2025, 12, cost)], d(2025, 12, table), "cost date 2025-12-{cost}");
        }
        assert!(!is_polish_business_day(d(2025, 12, 24)) && is_polish_business_day(d(2024, 12, 24)));
        assert_eq!(server.request_count(), 1);
    }

    fn a_day_nbp_skipped_is_bridged_by_nbp_data_not_the_calendar(t) {
        // NBP "skipped" 17 and 18 April (say, an outage): the rate of 22 April is the 16th's,
        // found in the same single range request, and stored like any other.
        let tables = usd_tables(d(2025, 3, 1), d(2025, 5, 31)).into_iter()
            .filter(|r| r.effective_date != d(2025, 4, 17) && r.effective_date != d(2025, 4, 18)).collect();
        let server = FakeNbp::start(tables);
        let rate = billing(&t.store, &server, PlnConfig::default()).rate_for(d(2025, 4, 22)).unwrap();
        assert_eq!((rate.effective_date, rate.is_provisional), (Some(d(2025, 4, 16)), false));
        assert_eq!(server.request_count(), 1);
    }

    fn month_spanning_easter_2025(t) {
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Acme");
        spend_days(&t.store, &c, d(2025, 4, 1), d(2025, 4, 30));
        let s = billing(&t.store, &server, PlnConfig::default()).monthly_statement(&c, 2025, 4).unwrap();
        assert_eq!((s.lines.len(), s.month.as_str(), s.period_end), (30, "2025-04", d(2025, 4, 30)));
        let table = |cost: u32| { let l = &s.lines[cost as usize - 1]; (l.effective_date.unwrap(), l.table_no.clone().unwrap()) };
        assert_eq!(table(1), (d(2025, 3, 31), "062/A/NBP/2025".to_string()));
        for cost in 19..=22 {
            assert_eq!(table(cost), (d(2025, 4, 18), "076/A/NBP/2025".to_string()), "Easter: {cost}");
        }
        assert_eq!(table(23), (d(2025, 4, 22), "077/A/NBP/2025".to_string()));
        assert_eq!(server.request_count(), 1);
        let csv = s.to_csv();
        assert_eq!(csv.lines().count(), 32, "header, 30 days, total");
        assert!(csv.contains("\r\n2025-04-23,1250,1,") && csv.contains(",077/A/NBP/2025,2025-04-22,NBP,false,false,"), "{csv}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["totals"]["pln"], s.totals.pln.to_string());
    }

    fn outage_with_and_without_a_stored_rate(t) {
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Acme");
        spend_days(&t.store, &c, d(2025, 5, 1), d(2025, 6, 10));
        let may = billing(&t.store, &server, PlnConfig::default()).monthly_statement(&c, 2025, 5).unwrap();
        assert_eq!(server.request_count(), 1);
        server.set(Behaviour::Fixed { status: 503, body: "Service Unavailable".into() });
        // With the rates stored, another instance with a cold cache is unaffected.
        let cold = billing(&t.second_instance(), &server, PlnConfig::default());
        assert_eq!(cold.monthly_statement(&c, 2025, 5).unwrap(), may);
        assert_eq!(server.request_count(), 1, "no HTTP: every day was in the database");
        // June was never fetched: a typed error, or the flagged fallback.
        let (date, _) = rate_unavailable(cold.monthly_statement(&c, 2025, 6));
        assert_eq!(date, d(2025, 6, 1));
        let config = PlnConfig { fallback_rate: Some(dec!(4)), ..PlnConfig::default() };
        let june = billing(&t.store, &server, config).monthly_statement(&c, 2025, 6).unwrap();
        assert!(june.any_fallback && june.lines.iter().all(|l| l.is_fallback && l.effective_date.is_none()));
        assert_eq!(june.totals.pln, round_pln(june.totals.markup_usd * dec!(4)));
    }

    fn reports_gain_pln_and_keep_usd(t) {
        let server = FakeNbp::usd_business_days();
        let (a, b) = (client(&t.store, "Alpha"), client(&t.store, "Beta"));
        spend_days(&t.store, &a, d(2025, 7, 18), d(2025, 7, 24));
        spend(&t.store, &b, "u9", GPT, d(2025, 7, 22), dec!(0.5));
        let pln = billing(&t.store, &server, PlnConfig::default());
        let usage = t.store.usage();

        let stats = pln.get_usage_stats_by_client_pln(&a, None).unwrap();
        assert_eq!(stats.usd, usage.get_usage_stats_by_client_blocking(&a, None).unwrap());
        let days = usage.get_daily_usage(&a, d(2025, 7, 1), d(2025, 7, 24)).unwrap();
        let month: Decimal = days.iter().map(|r| exact_pln(r.markup_cost, r.usage_date)).sum();
        assert_eq!(stats.this_month_cost_pln, round_pln(month));
        assert_eq!(stats.today_cost_pln, round_pln(exact_pln(stats.usd.today.cost, d(2025, 7, 24))));
        assert_eq!(stats.daily_history_pln.len(), stats.usd.daily_history.len());
        assert_eq!(stats.rates.len(), 7);
        let json = serde_json::to_value(&stats).unwrap();
        assert!(json["this_month"]["cost"].is_string() && json["this_month_cost_pln"].is_string());

        let by_user = pln.get_usage_by_user_pln(&a, None, None).unwrap();
        let users = usage.get_usage_by_user(&a, None, None).unwrap();
        assert_eq!(by_user.rows.iter().map(|r| r.usage.clone()).collect::<Vec<_>>(), users);
        let by_model = pln.get_usage_by_model_pln(&a, None, None).unwrap();
        assert_eq!(by_model.rows.iter().map(|r| r.usage.clone()).collect::<Vec<_>>(), usage.get_usage_by_model(&a, None, None).unwrap());
        // Per-user PLN: u1 and u2 together hold every marked-up dollar of the month.
        let total_users: Decimal = by_user.rows.iter().map(|r| r.markup_cost_pln).sum();
        assert!((total_users - round_pln(month)).abs() <= dec!(0.01), "each row rounded once");
        let json = serde_json::to_value(&by_user).unwrap();
        assert!(json["rows"][0]["markup_cost"].is_string() && json["rows"][0]["markup_cost_pln"].is_string());

        let all = pln.get_all_clients_usage_stats_pln(None, None).unwrap();
        let plain = usage.get_all_clients_usage_stats(None, None).unwrap();
        assert_eq!(all.rows.iter().map(|r| r.billing.clone()).collect::<Vec<_>>(), plain);
        let beta = all.rows.iter().find(|r| r.billing.client_org_id == b).unwrap();
        assert_eq!(beta.markup_cost_pln, round_pln(exact_pln(dec!(0.65), d(2025, 7, 22))));
        assert_eq!(beta.raw_cost_pln, round_pln(exact_pln(dec!(0.5), d(2025, 7, 22))));
        assert_eq!(beta.profit_margin_pln, round_pln(exact_pln(dec!(0.15), d(2025, 7, 22))));
        assert!(!all.any_fallback && !all.any_provisional);
    }

    fn provisional_rates_are_flagged_and_not_stored(t) {
        // 08:00 UTC is 10:00 in Warsaw: today's table (24 July) is not out yet.
        set_clock(t, 2025, 7, 24, 8);
        let server = FakeNbp::start(usd_tables(d(2025, 6, 1), d(2025, 7, 23)));
        let same_day = PlnConfig { rule: RateRule::SameDayIfPublished, ..PlnConfig::default() };
        let pln = billing(&t.store, &server, same_day);
        let early = pln.rate_for(d(2025, 7, 24)).unwrap();
        assert_eq!((early.effective_date, early.is_provisional), (Some(d(2025, 7, 23)), true));
        server.set_tables(usd_tables(d(2025, 6, 1), d(2025, 7, 24)));
        let published = pln.rate_for(d(2025, 7, 24)).unwrap();
        assert_eq!((published.effective_date, published.is_provisional), (Some(d(2025, 7, 24)), false));
        // The legal rule for the same cost date is stored separately: the day before's table.
        let legal = billing(&t.store, &server, PlnConfig::default());
        assert_eq!(legal.rate_for(d(2025, 7, 24)).unwrap().effective_date, Some(d(2025, 7, 23)));
        // A cost dated after today cannot have its final rate yet.
        let future = legal.rate_for(d(2025, 7, 28)).unwrap();
        assert_eq!((future.effective_date, future.is_provisional), (Some(d(2025, 7, 24)), true));
        let count = server.request_count();
        legal.rate_for(d(2025, 7, 28)).unwrap();
        assert_eq!(server.request_count(), count + 1, "provisional rates are not cached");
    }

    fn instances_converge_on_the_first_stored_rate(t) {
        let source = |mid: Decimal| Arc::new(StaticRates::on_polish_business_days("USD", d(2025, 3, 1), d(2025, 5, 31), mid));
        let stores = [t.store.clone(), t.second_instance()];
        let april: Vec<NaiveDate> = d(2025, 4, 1).iter_days().take(30).collect();
        let results: Vec<BTreeMap<NaiveDate, DailyRate>> = std::thread::scope(|s| {
            let handles: Vec<_> = stores.iter().zip([dec!(4.0), dec!(5.0)]).map(|(store, mid)| {
                let pln = store.pln(source(mid), PlnConfig::default()).unwrap();
                let dates = april.clone();
                s.spawn(move || pln.rates_for(&dates).unwrap())
            }).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results[0], results[1], "both instances use the one stored rate per day");
        let third = t.second_instance().pln(source(dec!(6.0)), PlnConfig::default()).unwrap();
        assert_eq!(third.rates_for(&april).unwrap(), results[0]);
    }

    fn statements_for_inactive_unknown_and_bad_months(t) {
        let server = FakeNbp::usd_business_days();
        let c = client(&t.store, "Gone");
        spend(&t.store, &c, "u1", SONNET, d(2025, 6, 30), dec!(0.01));
        assert!(t.store.clients().deactivate_client(&c).unwrap());
        let pln = billing(&t.store, &server, PlnConfig::default());
        let s = pln.monthly_statement(&c, 2025, 6).unwrap();
        assert_eq!((s.client_name.as_str(), s.lines.len(), s.timezone.as_str()), ("Gone", 1, "Europe/Warsaw"));
        let empty = pln.monthly_statement(&c, 2025, 5).unwrap();
        assert!(empty.lines.is_empty() && empty.totals.pln.is_zero());
        assert!(matches!(pln.monthly_statement("nope", 2025, 6), Err(Error::NotFound { .. })));
        assert!(matches!(pln.monthly_statement(&c, 2025, 13), Err(Error::InvalidInput { .. })));
        assert!(matches!(pln.get_usage_by_user_pln(&c, None, None), Err(Error::NotFound { .. })));
    }
}

#[test]
fn polish_calendar_holds_for_any_year() {
    assert!(!is_polish_business_day(d(2026, 4, 6)), "Easter Monday 2026");
    assert!(
        !is_polish_business_day(d(2026, 6, 4)),
        "Corpus Christi 2026"
    );
    assert!(is_polish_business_day(d(2024, 12, 24)));
    assert!(!is_polish_business_day(d(2025, 12, 24)));
    let info = orgusage::timezone::get_polish_business_hours_info_at(
        Utc.with_ymd_and_hms(2026, 4, 6, 9, 0, 0).unwrap(),
    );
    assert!(!info.is_business_hours && info.is_public_holiday);
    assert_eq!(
        info.holiday_name.as_deref(),
        Some("Poniedziałek Wielkanocny")
    );
}

#[test]
fn config_is_checked() {
    let store = Store::open(":memory:").unwrap();
    let source: Arc<StaticRates> = Arc::new(StaticRates::default());
    let bad = [
        PlnConfig {
            currency_from: "US".into(),
            ..PlnConfig::default()
        },
        PlnConfig {
            currency_from: "pln".into(),
            ..PlnConfig::default()
        },
        PlnConfig {
            fallback_rate: Some(dec!(0)),
            ..PlnConfig::default()
        },
        PlnConfig {
            fallback_rate: Some(dec!(4.1234567891)),
            ..PlnConfig::default()
        },
        PlnConfig {
            source_name: "fallback".into(),
            ..PlnConfig::default()
        },
    ];
    for config in bad {
        let result = store.pln(source.clone(), config.clone());
        assert!(
            matches!(result, Err(Error::InvalidInput { .. })),
            "{config:?}"
        );
    }
    let ok = store.pln(
        source,
        PlnConfig {
            currency_from: "eur".into(),
            ..PlnConfig::default()
        },
    );
    assert_eq!(ok.unwrap().config().currency_from, "EUR");
}
