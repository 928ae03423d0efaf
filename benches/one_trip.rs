//! PostgreSQL only: one `record_usage` of a client without a limit (one writer) beside two floors
//! measured in the same run on a dedicated connection:
//!
//! * `floor_same_statements`: the six round trips the library used to send (BEGIN, billing
//!   SELECT, three upserts, COMMIT), prepared (`common::floor`);
//! * `floor_one_statement`: the same work as the library's one statement
//!   (`orgusage_db::statements::PgRecordOne`), autocommit: one round trip.
//!
//! `library` is the default store (it pings each connection on checkout, a second round trip);
//! `library_no_ping` is a store with `test_connections_on_checkout(false)`.
//!
//! The PostgreSQL server here is shared and its commit latency swings by several times within
//! seconds, so criterion's back-to-back groups can disagree wildly. `ORGUSAGE_BENCH_PROFILE=1`
//! runs the four interleaved instead (record `i` of each in turn) and prints mean, p50, p99 and
//! the statements (round trips) each sends per record: that is the comparison to quote.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orgusage::{Store, StoreConfig};

use common::RawConn;
use common::floor::{Req, floor_one_statement, floor_record};

fn benches(c: &mut Criterion) {
    if common::profile::enabled() {
        common::profile::install();
    }
    let Some(t) = common::postgres_store() else {
        return;
    };
    let (date, now) = common::today_and_now(&t);
    let client = common::create_client(&t.store, "trip");
    let reqs: Vec<Req> = (0..30 * 12)
        .map(|k| Req::new(&client, k / 12, k % 12, date))
        .collect();
    let no_ping = Store::open(
        StoreConfig::new(t.url.clone())
            .clock(t.clock.clone())
            .test_connections_on_checkout(false),
    )
    .expect("store without ping");
    if common::profile::enabled() {
        profile_run(&t, &reqs, &no_ping);
        return;
    }
    let mut g = c.benchmark_group("one_trip/postgres/1_writer");
    g.throughput(Throughput::Elements(1));
    let mut i = 0_usize;
    for (name, store) in [("library", &t.store), ("library_no_ping", &no_ping)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                black_box(
                    store
                        .usage()
                        .record_usage(&reqs[i % reqs.len()].record)
                        .expect("record"),
                )
            })
        });
    }
    let mut conn = RawConn::open(&t);
    g.bench_function("floor_same_statements", |b| {
        b.iter(|| {
            i += 1;
            black_box(floor_record(
                conn.as_ref(),
                &reqs[i % reqs.len()],
                date,
                now,
            ))
        })
    });
    g.bench_function("floor_one_statement", |b| {
        b.iter(|| {
            i += 1;
            black_box(floor_one_statement(
                conn.as_ref(),
                &reqs[i % reqs.len()],
                date,
                now,
            ))
        })
    });
    g.finish();
}

/// The four variants interleaved, with per-statement counts (see the module docs).
fn profile_run(t: &orgusage_testkit::TestStore, reqs: &[Req], no_ping: &Store) {
    let (date, now) = common::today_and_now(t);
    let n = if common::full_run() { 2_000 } else { 20 };
    let pick = |i: u64| &reqs[i as usize % reqs.len()];
    let mut conn = RawConn::open(t);
    let mut conn2 = RawConn::open(t);
    let mut lib = |i| {
        t.store
            .usage()
            .record_usage(&pick(i).record)
            .expect("record");
    };
    let mut lib_no_ping = |i| {
        no_ping
            .usage()
            .record_usage(&pick(i).record)
            .expect("record");
    };
    let mut same = |i| {
        floor_record(conn.as_ref(), pick(i), date, now);
    };
    let mut one = |i| {
        floor_one_statement(conn2.as_ref(), pick(i), date, now);
    };
    let timings = common::profile::interleaved(
        n,
        50,
        &mut [
            ("library", &mut lib),
            ("library_no_ping", &mut lib_no_ping),
            ("floor_same_statements", &mut same),
            ("floor_one_statement", &mut one),
        ],
    );
    common::profile::report("one_trip/postgres/1_writer", n, &timings);
}

criterion_group! {
    name = one_trip;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(one_trip);
