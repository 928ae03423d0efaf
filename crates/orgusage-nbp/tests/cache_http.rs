//! Case 58: a second rate request for the same date within the TTL makes no HTTP call.

use orgusage_stub_http::nbp as common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Behaviour, FakeNbp, d};
use orgusage_domain::clock::ManualClock;
use orgusage_nbp::{CachedSource, NbpError, RateSource};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0)
            .single()
            .expect("valid instant"),
    ))
}

#[test]
fn case_58_same_date_within_ttl_makes_no_request() {
    let server = FakeNbp::usd_business_days();
    let clock = clock();
    let cached = CachedSource::with_clock(server.client(), Duration::from_secs(600), clock.clone());

    let first = cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(server.request_count(), 1);
    let second = cached
        .rate_for_cost_date("usd", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(second, first);
    assert_eq!(server.request_count(), 1, "cache hit: no request");

    // Keyed per date: a different date is not answered with the cached rate.
    let other = cached
        .rate_for_cost_date("USD", d(2025, 11, 12))
        .expect("rate");
    assert_eq!(other.effective_date, d(2025, 11, 10));
    assert_eq!(server.request_count(), 2);

    // Keyed per currency too.
    let eur = cached.rate_for_cost_date("EUR", d(2025, 4, 22));
    assert!(
        matches!(eur, Err(NbpError::RateUnavailable { .. })),
        "{eur:?}"
    );
    let after_eur = server.request_count();
    assert!(after_eur > 2);

    clock.advance(chrono::Duration::seconds(599));
    cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(server.request_count(), after_eur, "still within the TTL");

    clock.advance(chrono::Duration::seconds(2));
    cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(
        server.request_count(),
        after_eur + 1,
        "expired: asked again"
    );
}

#[test]
fn failures_are_not_cached() {
    let server = FakeNbp::usd_business_days();
    let cached = CachedSource::with_clock(server.client(), Duration::from_secs(600), clock());
    server.set(Behaviour::Fixed {
        status: 502,
        body: "Bad Gateway".into(),
    });
    let failed = cached.rate_for_cost_date("USD", d(2025, 4, 22));
    assert!(
        matches!(failed, Err(NbpError::Server { status: 502 })),
        "{failed:?}"
    );
    server.set(Behaviour::Nbp);
    let rate = cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(rate.effective_date, d(2025, 4, 18));
    assert_eq!(server.request_count(), 2);
    cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("rate");
    assert_eq!(server.request_count(), 2);
}

#[test]
fn shared_between_threads() {
    let server = FakeNbp::usd_business_days();
    let cached = Arc::new(CachedSource::with_clock(
        server.client(),
        Duration::from_secs(600),
        clock(),
    ));
    cached
        .rate_for_cost_date("USD", d(2025, 4, 22))
        .expect("warm up");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cached = cached.clone();
            std::thread::spawn(move || cached.rate_for_cost_date("USD", d(2025, 4, 22)))
        })
        .collect();
    for handle in handles {
        let rate = handle.join().expect("thread").expect("rate");
        assert_eq!(rate.effective_date, d(2025, 4, 18));
    }
    assert_eq!(server.request_count(), 1);
}
