//! `record_usage_batch` of 1,000 records (10 clients x 30 users x 5 models, one day) on SQLite
//! (file, WAL) and PostgreSQL (when reachable), beside the per-call floor measured in the same
//! run (`common::floor`: the statements of one `record_usage`, prepared, one transaction per
//! record, on a dedicated connection). Both report records per second; the ratio
//! library / floor is what `docs/performance.md` quotes.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orgusage::UsageRecord;

use common::RawConn;
use common::floor::{Req, floor_record};

/// Records per batch, as the scenario.
const BATCH: usize = 1000;

fn benches(c: &mut Criterion) {
    for t in common::stores() {
        let (date, now) = common::today_and_now(&t);
        let clients: Vec<String> = (0..10)
            .map(|k| common::create_client(&t.store, &format!("batch-{k}")))
            .collect();
        // Record i: client i % 10, user (i / 10) % 30, model (i / 300 + i) % 5: every
        // (client, user) pair about three times, so rows merge as in a real day's replay.
        let reqs: Vec<Req> = (0..BATCH * 3)
            .map(|i| Req::new(&clients[i % 10], (i / 10) % 30, (i / 300 + i) % 5, date))
            .collect();
        let batches: Vec<Vec<UsageRecord>> = reqs
            .chunks(BATCH)
            .map(|c| c.iter().map(|r| r.record.clone()).collect())
            .collect();
        let usage = t.store.usage();
        let mut g = c.benchmark_group(format!("batch/{}", t.backend()));
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut i = 0_usize;
        g.bench_function("library_1000", |b| {
            b.iter(|| {
                i += 1;
                let done = usage.record_usage_batch(&batches[i % batches.len()]);
                assert!(done.iter().all(Result::is_ok), "batch failed");
                black_box(done)
            })
        });
        g.throughput(Throughput::Elements(1));
        let mut conn = RawConn::open(&t);
        g.bench_function("floor_same_statements_per_call", |b| {
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
        g.finish();
    }
}

criterion_group! {
    name = batch;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(batch);
