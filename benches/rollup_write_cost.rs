//! What the month-rollup triggers cost the write path: `record_usage` (one writer, one record per
//! call) and `record_usage_batch` (1,000 records: 10 clients x 30 users x 5 models, one day) on
//! a store with the triggers and on one whose triggers were dropped, in the same run, on SQLite
//! (WAL, `synchronous = NORMAL`, as the other write benches) and PostgreSQL.
//!
//! `ORGUSAGE_BENCH_PROFILE=1` runs the two stores interleaved (call `i` on one, then on the
//! other), which is the comparison to quote on a noisy machine; otherwise criterion groups.

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orgusage::{Decimal, UsageRecord};
use orgusage_testkit::TestStore;

use common::{MODELS, profile};

/// Drops the rollup triggers (the table stays), which is the write path before the rollups.
///
/// On PostgreSQL the batch path and the one-statement `record_usage` write their month rows
/// themselves (the trigger is off for their transactions), so dropping the trigger alone would
/// leave that work on both sides. A `BEFORE INSERT` trigger that discards every month row takes
/// it out of the baseline; its own call (a trivial PL/pgSQL function, a few µs) stays in it, so
/// the ratio slightly understates what the rollups cost.
fn drop_triggers(t: &TestStore) {
    t.execute_sql(if t.backend() == "sqlite" {
        "DROP TRIGGER orgusage_user_month_insert; DROP TRIGGER orgusage_user_month_update; \
         DROP TRIGGER orgusage_user_month_delete; DROP TRIGGER orgusage_user_month_move_out;"
    } else {
        "DROP TRIGGER orgusage_user_month_rollup ON client_user_daily_usage; \
         CREATE FUNCTION bench_discard_month() RETURNS trigger LANGUAGE plpgsql AS \
         'BEGIN RETURN NULL; END'; \
         CREATE TRIGGER bench_discard_month BEFORE INSERT ON client_user_monthly_usage \
         FOR EACH ROW EXECUTE FUNCTION bench_discard_month();"
    });
}

/// Ten clients, the records of one call number `i` for the single and the batch case.
struct Load {
    clients: Vec<String>,
}

impl Load {
    fn new(t: &TestStore) -> Self {
        Self {
            clients: (0..10)
                .map(|c| common::create_client(&t.store, &format!("wc-{c}")))
                .collect(),
        }
    }

    fn record(&self, i: u64) -> UsageRecord {
        let (client, user, model) = (
            (i % 10) as usize,
            (i / 10 % 30) as usize,
            (i / 300 % 5) as usize,
        );
        UsageRecord::new(
            &self.clients[client],
            format!("user-{user}"),
            format!("or-user-{user}"),
            MODELS[model].0,
        )
        .provider(MODELS[model].1)
        .tokens(1200, 300)
        .raw_cost(Decimal::new(4_500_000, 9))
    }

    fn batch(&self, i: u64) -> Vec<UsageRecord> {
        (0..1000).map(|k| self.record(i * 1000 + k)).collect()
    }
}

fn single(t: &TestStore, load: &Load, i: u64) {
    black_box(t.store.usage().record_usage(&load.record(i))).expect("record");
}

fn batch(t: &TestStore, load: &Load, i: u64) {
    for r in t.store.usage().record_usage_batch(&load.batch(i)) {
        r.expect("batch record");
    }
}

fn bench_backend(c: &mut Criterion, with: &TestStore, without: &TestStore) {
    drop_triggers(without);
    let (lw, lo) = (Load::new(with), Load::new(without));
    let name = with.backend();
    if profile::enabled() {
        let (n, nb) = if common::full_run() {
            (3000, 60)
        } else {
            (3, 1)
        };
        let timings = profile::interleaved(
            n,
            50,
            &mut [
                ("with_rollups", &mut |i| single(with, &lw, i)),
                ("without_rollups", &mut |i| single(without, &lo, i)),
            ],
        );
        profile::report(
            &format!("rollup_write_cost/{name}/record_usage"),
            n,
            &timings,
        );
        let timings = profile::interleaved(
            nb,
            3,
            &mut [
                ("with_rollups", &mut |i| batch(with, &lw, i)),
                ("without_rollups", &mut |i| batch(without, &lo, i)),
            ],
        );
        profile::report(
            &format!("rollup_write_cost/{name}/batch_1000"),
            nb,
            &timings,
        );
        return;
    }
    let mut g = c.benchmark_group(format!("rollup_write_cost/{name}/record_usage"));
    let mut i = 0;
    g.bench_function("with_rollups", |b| {
        b.iter(|| {
            i += 1;
            single(with, &lw, i)
        })
    });
    g.bench_function("without_rollups", |b| {
        b.iter(|| {
            i += 1;
            single(without, &lo, i)
        })
    });
    g.finish();
    let mut g = c.benchmark_group(format!("rollup_write_cost/{name}/batch_1000"));
    g.bench_function("with_rollups", |b| {
        b.iter(|| {
            i += 1;
            batch(with, &lw, i)
        })
    });
    g.bench_function("without_rollups", |b| {
        b.iter(|| {
            i += 1;
            batch(without, &lo, i)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    if profile::enabled() {
        profile::install();
    }
    let with = common::stores();
    let without = common::stores();
    for (w, o) in with.iter().zip(&without) {
        bench_backend(c, w, o);
    }
}

criterion_group! {
    name = rollup_write_cost;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(rollup_write_cost);
