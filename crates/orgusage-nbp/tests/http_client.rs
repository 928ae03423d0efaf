//! `NbpClient` against a loopback server that answers like api.nbp.pl.

use orgusage_stub_http::nbp as common;

use std::time::{Duration, Instant};

use common::{Behaviour, FakeNbp, d, range_of};
use orgusage_nbp::{MidRate, NbpClient, NbpConfig, NbpError, RateSource};
use rust_decimal::Decimal;

fn rate(date: chrono::NaiveDate, no: &str, mid: &str) -> MidRate {
    MidRate {
        currency: "USD".into(),
        table_no: no.into(),
        effective_date: date,
        mid: mid.parse().expect("decimal"),
    }
}

#[test]
fn range_answer_is_parsed_exactly_in_one_request() {
    let server = FakeNbp::start(vec![
        rate(d(2025, 4, 14), "072/A/NBP/2025", "3.7654"),
        rate(d(2025, 4, 15), "073/A/NBP/2025", "4.1000"),
        rate(d(2025, 4, 16), "074/A/NBP/2025", "3.7654321098765432"),
    ]);
    let rates = server
        .client()
        .mid_rates("usd", d(2025, 4, 14), d(2025, 4, 20))
        .expect("rates");
    assert_eq!(rates.len(), 3);
    assert_eq!(rates[0].table_no, "072/A/NBP/2025");
    assert_eq!(rates[0].currency, "USD");
    assert_eq!(rates[0].mid, Decimal::new(37654, 4));
    assert_eq!(rates[1].mid.to_string(), "4.1000");
    assert_eq!(rates[1].mid.scale(), 4);
    assert_eq!(rates[2].mid.to_string(), "3.7654321098765432");

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].target,
        "/api/exchangerates/rates/a/usd/2025-04-14/2025-04-20/?format=json"
    );
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    let agent = seen[0].header("user-agent").expect("user agent sent");
    assert!(agent.starts_with("orgusage-nbp/"), "{agent}");
}

#[test]
fn single_day_uses_the_day_endpoint() {
    let server = FakeNbp::usd_business_days();
    let rates = server
        .client()
        .mid_rates("USD", d(2025, 4, 18), d(2025, 4, 18))
        .expect("rates");
    assert_eq!(rates.len(), 1);
    assert_eq!(rates[0].effective_date, d(2025, 4, 18));
    assert_eq!(
        server.requests()[0].target,
        "/api/exchangerates/rates/a/usd/2025-04-18/?format=json"
    );
}

#[test]
fn weekend_and_holiday_answer_no_table() {
    let server = FakeNbp::usd_business_days();
    let client = server.client();
    // Saturday to Easter Monday 2025.
    let easter = client.mid_rates("USD", d(2025, 4, 19), d(2025, 4, 21));
    assert!(matches!(easter, Err(NbpError::NoTable)), "{easter:?}");
    let saturday = client.mid_rates("USD", d(2025, 4, 19), d(2025, 4, 19));
    assert!(matches!(saturday, Err(NbpError::NoTable)), "{saturday:?}");
    assert_eq!(server.request_count(), 2);
}

#[test]
fn bad_request_keeps_status_and_body() {
    let server = FakeNbp::usd_business_days();
    server.set(Behaviour::Fixed {
        status: 400,
        body: common::BAD_RANGE_BODY.to_string(),
    });
    match server
        .client()
        .mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10))
    {
        Err(NbpError::BadRequest { status, body }) => {
            assert_eq!(status, 400);
            assert!(body.contains("Błędny zakres dat"), "{body}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[test]
fn server_error_is_typed() {
    let server = FakeNbp::usd_business_days();
    server.set(Behaviour::Fixed {
        status: 503,
        body: "Service Unavailable".into(),
    });
    let result = server
        .client()
        .mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    match result {
        Err(error @ NbpError::Server { status: 503 }) => assert!(error.is_transient()),
        other => panic!("expected Server, got {other:?}"),
    }
}

#[test]
fn slow_answer_times_out() {
    let server = FakeNbp::usd_business_days();
    server.set(Behaviour::Slow(Duration::from_millis(1000)));
    let client = server.client_with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = client.mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(NbpError::Timeout)), "{result:?}");
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
}

#[test]
fn refused_connection_is_a_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = NbpClient::new(NbpConfig {
        base_url: format!("http://127.0.0.1:{port}/api"),
        timeout: Duration::from_millis(500),
        ..NbpConfig::default()
    });
    let result = client.mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    match result {
        Err(error @ NbpError::Transport(_)) => assert!(error.is_transient()),
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[test]
fn malformed_or_mismatched_answers_are_parse_errors() {
    let server = FakeNbp::usd_business_days();
    let client = server.client();
    server.set(Behaviour::Fixed {
        status: 200,
        body: "<html>maintenance</html>".into(),
    });
    let garbage = client.mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    assert!(matches!(garbage, Err(NbpError::Parse(_))), "{garbage:?}");

    server.set(Behaviour::Fixed {
        status: 200,
        body: r#"{"table":"A","currency":"euro","code":"EUR","rates":[{"no":"1/A/NBP/2025","effectiveDate":"2025-04-01","mid":4.2}]}"#.into(),
    });
    let wrong_code = client.mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    assert!(
        matches!(wrong_code, Err(NbpError::Parse(_))),
        "{wrong_code:?}"
    );

    server.set(Behaviour::Fixed {
        status: 200,
        body: r#"{"table":"A","currency":"dolar","code":"USD","rates":[{"no":"1/A/NBP/2025","effectiveDate":"2025-03-01","mid":4.2}]}"#.into(),
    });
    let outside = client.mid_rates("USD", d(2025, 4, 1), d(2025, 4, 10));
    assert!(matches!(outside, Err(NbpError::Parse(_))), "{outside:?}");
}

#[test]
fn long_ranges_are_split_at_93_days() {
    let server = FakeNbp::usd_business_days();
    let (from, to) = (d(2025, 1, 1), d(2025, 7, 19)); // 200 days
    let rates = server
        .client()
        .mid_rates("USD", from, to)
        .expect("joined rates");
    let expected = common::usd_tables(from, to);
    assert_eq!(rates, expected);

    let ranges: Vec<_> = server.requests().iter().map(range_of).collect();
    assert_eq!(
        ranges,
        vec![
            (d(2025, 1, 1), d(2025, 4, 3)),
            (d(2025, 4, 4), d(2025, 7, 5)),
            (d(2025, 7, 6), d(2025, 7, 19)),
        ]
    );
    for (a, b) in ranges {
        assert!((b - a).num_days() < 93);
    }
}

#[test]
fn split_range_tolerates_an_empty_chunk() {
    // Tables only in the first and last chunk: the empty middle chunk (404) is not an error.
    let mut tables = common::usd_tables(d(2025, 1, 1), d(2025, 1, 31));
    tables.extend(common::usd_tables(d(2025, 7, 1), d(2025, 7, 31)));
    let server = FakeNbp::start(tables);
    let rates = server
        .client()
        .mid_rates("USD", d(2025, 1, 1), d(2025, 7, 19))
        .expect("rates");
    assert_eq!(rates.first().map(|r| r.effective_date), Some(d(2025, 1, 2)));
    assert_eq!(rates.last().map(|r| r.effective_date), Some(d(2025, 7, 18)));
    assert_eq!(server.request_count(), 3);
}
