//! The spend guard's cost: `authorize` + a settling `record_usage` against a plain
//! `record_usage` of the same limited client, on SQLite (file, WAL) and PostgreSQL (when
//! reachable), one writer, beside a floor measured in the same run:
//!
//! * `record_usage`: the plain record of a limited client (it already takes the month lock and
//!   sums the month to report `limit_crossed`);
//! * `authorize_settle`: `authorize` before it, and the record settles the reservation;
//! * `authorize_unlimited_record`: the same for a client without a limit (`authorize` is one
//!   read, the record carries no reservation);
//! * `floor_round_trip`: one `SELECT 1` on a dedicated raw connection, the unit the issue's
//!   budget ("at most one extra round trip on PostgreSQL") is stated in.
//!
//! `ORGUSAGE_BENCH_PROFILE=1` instead runs the three library variants interleaved (fair under a
//! changing machine load) and prints statements per operation, i.e. the round trips the guard
//! adds.
//!
//! Read: guard overhead = `authorize_settle − record_usage`; on PostgreSQL compare it with
//! `floor_round_trip`, on SQLite with 30 % of `record_usage`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use diesel::connection::SimpleConnection;
use orgusage::spend::Authorization;
use orgusage::{ClientOrganizationForm, Decimal, UsageRecord};
use orgusage_testkit::TestStore;

use common::{MODELS, RawConn, profile, with_raw};

/// A client with a limit far above what the bench spends, so nothing is ever refused.
fn limited_client(t: &TestStore) -> String {
    let form = ClientOrganizationForm {
        monthly_limit: Some(Decimal::new(1_000_000, 0)),
        ..ClientOrganizationForm::new("guarded")
    };
    t.store
        .clients()
        .create_client(&form, &"sk-or-v1-bench-guarded-0123456789".into(), None)
        .expect("client")
        .id
}

fn record(client: &str, i: u64) -> UsageRecord {
    let (model, provider) = MODELS[(i % 12) as usize];
    UsageRecord::new(client, format!("user-{:03}", i % 30), "or-user", model)
        .tokens(800, 200)
        .raw_cost(Decimal::new(5_400_000, 9))
        .provider(provider)
}

fn one_writer(c: &mut Criterion, t: &TestStore) {
    let limited = limited_client(t);
    let free = common::create_client(&t.store, "free");
    let estimate = Decimal::new(6, 3);
    let mut g = c.benchmark_group(format!("spend_guard/{}/1_writer", t.backend()));
    g.throughput(Throughput::Elements(1));
    let mut i = 0_u64;
    g.bench_function("record_usage", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                t.store
                    .usage()
                    .record_usage(&record(&limited, i))
                    .expect("record"),
            )
        })
    });
    g.bench_function("authorize_settle", |b| {
        b.iter(|| {
            i += 1;
            let Authorization::Reserved(r) = t
                .store
                .spend()
                .authorize(&limited, estimate)
                .expect("authorize")
            else {
                panic!("the bench limit is never reached")
            };
            black_box(
                t.store
                    .usage()
                    .record_usage(&record(&limited, i).settles(r.id))
                    .expect("record"),
            )
        })
    });
    g.bench_function("authorize_unlimited_record", |b| {
        b.iter(|| {
            i += 1;
            let a = t
                .store
                .spend()
                .authorize(&free, estimate)
                .expect("authorize");
            assert_eq!(a, Authorization::Unlimited);
            black_box(
                t.store
                    .usage()
                    .record_usage(&record(&free, i))
                    .expect("record"),
            )
        })
    });
    let mut conn = RawConn::open(t);
    g.bench_function("floor_round_trip", |b| {
        b.iter(|| {
            with_raw!(conn.as_ref(), |c| c
                .batch_execute("SELECT 1")
                .expect("select 1"))
        })
    });
    g.finish();
    assert!(
        t.store
            .spend()
            .live_reservations(&limited)
            .expect("live")
            .is_empty()
    );
}

/// `ORGUSAGE_BENCH_PROFILE=1`: the variants interleaved, with per-statement counts.
fn profile_run(t: &TestStore) {
    let n: u64 = if common::full_run() { 2_000 } else { 20 };
    let limited = limited_client(t);
    let free = common::create_client(&t.store, "free");
    let estimate = Decimal::new(6, 3);
    let mut plain = |i| {
        t.store
            .usage()
            .record_usage(&record(&limited, i))
            .expect("record");
    };
    let mut guarded = |i| {
        let a = t
            .store
            .spend()
            .authorize(&limited, estimate)
            .expect("authorize");
        let id = a.reservation_id().expect("reserved").to_string();
        t.store
            .usage()
            .record_usage(&record(&limited, i).settles(id))
            .expect("record");
    };
    let mut unlimited = |i| {
        let _ = t
            .store
            .spend()
            .authorize(&free, estimate)
            .expect("authorize");
        t.store
            .usage()
            .record_usage(&record(&free, i))
            .expect("record");
    };
    let timings = profile::interleaved(
        n,
        50,
        &mut [
            ("record_usage", &mut plain),
            ("authorize_settle", &mut guarded),
            ("authorize_unlimited_record", &mut unlimited),
        ],
    );
    profile::report(&format!("spend_guard/{}", t.backend()), n, &timings);
}

fn benches(c: &mut Criterion) {
    if profile::enabled() {
        profile::install();
        for t in common::stores() {
            profile_run(&t);
        }
        return;
    }
    for t in common::stores() {
        one_writer(c, &t);
    }
}

criterion_group! {
    name = spend_guard;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(spend_guard);
