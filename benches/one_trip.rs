//! PostgreSQL only: one `record_usage` of a client without a limit (one writer) beside two floors
//! measured in the same run on a dedicated connection:
//!
//! * `floor_same_statements`: the six round trips the library used to send (BEGIN, billing
//!   SELECT, three upserts, COMMIT), prepared (`common::floor`);
//! * `floor_one_statement`: the same work as the library's one statement
//!   (`orgusage_db::sql::PG_RECORD_ONE`), autocommit: one round trip.
//!
//! `library` is the default store (it pings each connection on checkout, a second round trip);
//! `library_no_ping` is a store with `test_connections_on_checkout(false)`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orgusage::{Store, StoreConfig};

use common::RawConn;
use common::floor::{Req, floor_one_statement, floor_record};

fn benches(c: &mut Criterion) {
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

criterion_group! {
    name = one_trip;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(one_trip);
