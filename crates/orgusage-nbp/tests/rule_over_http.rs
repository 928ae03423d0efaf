//! The "last business day before D" rule over HTTP, against a fake NBP whose
//! tables exist only on Polish business days.

use orgusage_stub_http::nbp as common;

use std::time::Duration;

use chrono::NaiveDate;
use common::{Behaviour, FakeNbp, d, mid_for, range_of};
use orgusage_nbp::{NbpError, RateSource, rate_for_cost_date, rate_on_or_before};

#[test]
fn case_53_each_date_in_one_request() {
    let server = FakeNbp::usd_business_days();
    let client = server.client();
    let cases = [
        (d(2025, 4, 22), d(2025, 4, 18)),
        (d(2025, 11, 12), d(2025, 11, 10)),
        (d(2025, 12, 29), d(2025, 12, 23)),
        (d(2025, 5, 5), d(2025, 5, 2)),
        (d(2025, 1, 7), d(2025, 1, 3)),
        (d(2025, 1, 2), d(2024, 12, 31)),
    ];
    for (i, (cost_date, expected)) in cases.into_iter().enumerate() {
        let rate = rate_for_cost_date(&client, "USD", cost_date).expect("rate");
        assert_eq!(rate.effective_date, expected, "cost date {cost_date}");
        assert_eq!(rate.mid, mid_for(expected));
        assert_eq!(rate.currency, "USD");
        assert!(
            rate.table_no
                .ends_with(&format!("/A/NBP/{}", expected.format("%Y")))
        );
        let seen = server.requests();
        assert_eq!(seen.len(), i + 1, "one request for {cost_date}");
        let (from, to) = range_of(&seen[i]);
        assert_eq!(to, cost_date.pred_opt().expect("day before"));
        assert_eq!((to - from).num_days(), 13, "a 14-day window");
    }
}

#[test]
fn the_rule_never_uses_the_cost_dates_own_table() {
    let server = FakeNbp::usd_business_days();
    let client = server.client();
    // 2025-04-16 has its own table; the rule wants the 15th's.
    let rate = client
        .rate_for_cost_date("USD", d(2025, 4, 16))
        .expect("rate");
    assert_eq!(rate.effective_date, d(2025, 4, 15));
    // The explicit "on or before" mode does take it.
    let same_day = client
        .rate_on_or_before("USD", d(2025, 4, 16))
        .expect("rate");
    assert_eq!(same_day.effective_date, d(2025, 4, 16));
    // On a day without a table both agree on the last published one.
    let easter_monday = rate_on_or_before(&client, "USD", d(2025, 4, 21)).expect("rate");
    assert_eq!(easter_monday.effective_date, d(2025, 4, 18));
    assert_eq!(server.request_count(), 3);
}

#[test]
fn case_55_no_table_days_are_skipped_within_one_request() {
    // NBP skipped 17 and 18 April (as if it had not published) on top of Easter: the range
    // answer simply lacks them, and the client still asks only once.
    let tables = common::usd_tables(d(2025, 3, 1), d(2025, 5, 31))
        .into_iter()
        .filter(|r| r.effective_date != d(2025, 4, 17) && r.effective_date != d(2025, 4, 18))
        .collect();
    let server = FakeNbp::start(tables);
    let rate = server
        .client()
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(rate.effective_date, d(2025, 4, 16));
    assert_eq!(server.request_count(), 1);
    let targets: Vec<String> = server.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        vec!["/api/exchangerates/rates/a/usd/2025-04-08/2025-04-21/?format=json"]
    );
}

#[test]
fn case_55_an_empty_window_is_retried_once_wider() {
    // Nothing in the 14 days before D, a table 30 days earlier.
    let tables = common::usd_tables(d(2025, 3, 1), d(2025, 3, 20));
    let server = FakeNbp::start(tables);
    let rate = server
        .client()
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(rate.effective_date, d(2025, 3, 20));
    let ranges: Vec<(NaiveDate, NaiveDate)> = server.requests().iter().map(range_of).collect();
    assert_eq!(
        ranges,
        vec![
            (d(2025, 4, 8), d(2025, 4, 21)),
            (d(2025, 1, 19), d(2025, 4, 21)),
        ]
    );
}

#[test]
fn case_55_nothing_at_all_is_rate_unavailable_after_two_requests() {
    let server = FakeNbp::start(Vec::new());
    let result = server.client().rate_for_cost_date("USD", d(2025, 4, 22));
    match result {
        Err(NbpError::RateUnavailable { date, reason }) => {
            assert_eq!(date, d(2025, 4, 22));
            assert!(reason.contains("USD"), "{reason}");
        }
        other => panic!("expected RateUnavailable, got {other:?}"),
    }
    assert_eq!(server.request_count(), 2);
}

#[test]
fn case_55_timeout_and_server_errors_are_never_a_rate() {
    let server = FakeNbp::usd_business_days();
    server.set(Behaviour::Fixed {
        status: 500,
        body: "Internal Server Error".into(),
    });
    let client = server.client_with_timeout(Duration::from_millis(300));
    let failed = client.rate_for_cost_date("USD", d(2025, 4, 22));
    assert!(
        matches!(failed, Err(NbpError::Server { status: 500 })),
        "{failed:?}"
    );
    assert_eq!(
        server.request_count(),
        1,
        "a 5xx is not retried as 'no table'"
    );

    server.set(Behaviour::Slow(Duration::from_millis(1000)));
    let slow = client.rate_for_cost_date("USD", d(2025, 4, 22));
    assert!(matches!(slow, Err(NbpError::Timeout)), "{slow:?}");
    assert_eq!(server.request_count(), 2);

    server.set(Behaviour::Nbp);
    let recovered = client
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(recovered.effective_date, d(2025, 4, 18));
}

#[test]
fn christmas_week_2025() {
    let server = FakeNbp::usd_business_days();
    let client = server.client();
    let cases = [
        (d(2025, 12, 23), d(2025, 12, 22)),
        (d(2025, 12, 24), d(2025, 12, 23)),
        (d(2025, 12, 25), d(2025, 12, 23)),
        (d(2025, 12, 26), d(2025, 12, 23)),
        (d(2025, 12, 27), d(2025, 12, 23)),
        (d(2025, 12, 28), d(2025, 12, 23)),
        (d(2025, 12, 29), d(2025, 12, 23)),
        (d(2025, 12, 30), d(2025, 12, 29)),
        (d(2026, 1, 2), d(2025, 12, 31)),
        (d(2026, 1, 7), d(2026, 1, 5)),
    ];
    for (cost_date, expected) in cases {
        let rate = client.rate_for_cost_date("USD", cost_date).expect("rate");
        assert_eq!(rate.effective_date, expected, "cost date {cost_date}");
    }
    assert_eq!(server.request_count(), cases.len());
    // 2024: 24 December was a working day with its own table.
    let rate = client
        .rate_for_cost_date("USD", d(2024, 12, 27))
        .expect("rate");
    assert_eq!(rate.effective_date, d(2024, 12, 24));
}

#[test]
fn range_spanning_easter_2025() {
    let server = FakeNbp::usd_business_days();
    let rates = server
        .client()
        .mid_rates("USD", d(2025, 4, 14), d(2025, 4, 25))
        .expect("rates");
    let dates: Vec<NaiveDate> = rates.iter().map(|r| r.effective_date).collect();
    assert_eq!(
        dates,
        vec![
            d(2025, 4, 14),
            d(2025, 4, 15),
            d(2025, 4, 16),
            d(2025, 4, 17),
            d(2025, 4, 18),
            d(2025, 4, 22),
            d(2025, 4, 23),
            d(2025, 4, 24),
            d(2025, 4, 25),
        ]
    );
    assert_eq!(rates[0].table_no, "072/A/NBP/2025");
    assert_eq!(rates[5].table_no, "077/A/NBP/2025");
    assert_eq!(server.request_count(), 1);
}
