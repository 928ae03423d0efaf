//! The exactly-once ledger on SQLite (file, WAL) and PostgreSQL (when reachable), each beside
//! raw-SQL floors measured in the same run:
//!
//! * `record_generation/<backend>/new/{library,floor_same_statements}`: every iteration books a
//!   fresh generation id (a counter) for one client (5 users x 4 models, today). The floor sends
//!   the library's statements as plain prepared statements on a dedicated connection: the
//!   `EXISTS` read outside any transaction, then `BEGIN` (`IMMEDIATE` on SQLite), the billing
//!   `SELECT`, the ledger `INSERT … ON CONFLICT DO NOTHING`, the user, client-day and model
//!   upserts, `COMMIT`.
//! * `record_generation/<backend>/duplicate/{library,floor_same_statements}`: ids recorded
//!   beforehand (1,000, cycled), answered by the `EXISTS` read alone.
//! * `cleanup/<backend>/1M` (printed, not a criterion benchmark: each run needs a freshly seeded
//!   ledger): 1,000,000 old ledger rows over 20 clients plus 1 % young rows that must stay,
//!   seeded with one set-based `INSERT … SELECT` (recursive CTE on SQLite, `generate_series` on
//!   PostgreSQL), `processed_at` growing with insertion order as in a real ledger
//!   (`ORGUSAGE_BENCH_CLEANUP_SCATTERED=1`: scattered over the table instead); then
//!   `cleanup_old_processed_generations(Some(60))` (library),
//!   `floor_single_delete` (one `DELETE … WHERE processed_at < ?`, the ratio reference) and
//!   `floor_batched_same_statements` (the library's batch `DELETE … RETURNING` loop alone, no
//!   counts, tally or audit row), interleaved, 3 runs each, medians and the process's RSS
//!   before / peak during (`VmHWM` after resetting it through `/proc/self/clear_refs`) / after.
//!   Smoke mode (`cargo test --benches`): 5,000 rows, one run. Skipped when a criterion filter is
//!   given that `cleanup/<backend>/1M` does not contain.
//!
//! `ORGUSAGE_BENCH_PROFILE=1` prints per-statement times of the record benches (library vs floor,
//! interleaved) instead of the criterion measurements.

#[path = "generations/cleanup.rs"]
mod cleanup;
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use orgusage::GenerationOutcome;
use orgusage_testkit::TestStore;

use common::floor::{Day, Req};
use common::{RawConn, RawRef, Val, in_tx, profile, stmt, with_raw};

// ---------------------------------------------------------------------------------------------
// The library's statements as fixed SQL (crates/orgusage-db/src/repo/{generations,usage}.rs)

/// `diesel::select(exists(processed_generations.find((client, id))))`.
const SEL_SEEN: &str = "SELECT EXISTS (SELECT client_org_id, id, generation_date, processed_at, \
     total_cost, total_tokens FROM processed_generations WHERE client_org_id = ? AND id = ?)";

/// `load_billing!`.
const SEL_BILLING: &str = "SELECT timezone, markup_rate, monthly_limit, is_active \
     FROM client_organizations WHERE id = ? LIMIT ?";

/// The ledger row (`NewLedgerRow`, `on_conflict_do_nothing`).
const INSERT_LEDGER: &str = "INSERT INTO processed_generations (client_org_id, id, \
     generation_date, processed_at, total_cost, total_tokens) VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT DO NOTHING";

// The upserts and cleanup batches are the library's own texts (`orgusage_db::statements`), so
// the floors cannot drift from what the library sends.
use orgusage_db::statements::{
    PostgresDeleteBatch, SqliteDeleteBatch, Statement, UpsertClientDay, UpsertModelDay,
    UpsertUserDay,
};
use orgusage_db::{CLEANUP_BATCH, SQLITE_CLEANUP_BATCH};
const UPSERT_USER_DAY: &str = UpsertUserDay::SQL;
const UPSERT_CLIENT_DAY: &str = UpsertClientDay::SQL;
const UPSERT_MODEL_DAY: &str = UpsertModelDay::SQL;
const SQLITE_DELETE_BATCH: &str = SqliteDeleteBatch::SQL;
const POSTGRES_DELETE_BATCH: &str = PostgresDeleteBatch::SQL;

/// The set-based reference of the cleanup.
const DELETE_OLD: &str = "DELETE FROM processed_generations WHERE processed_at < ?";

const COUNT_LEDGER: &str = "SELECT COUNT(*) FROM processed_generations";

// ---------------------------------------------------------------------------------------------
// record_generation

const USERS: usize = 5;
const BENCH_MODELS: usize = 4;

/// One generation as plain SQL: `true` if it was recorded, `false` for a duplicate.
fn floor_generation(conn: RawRef<'_>, id: &str, r: &Req, day: Day) -> bool {
    let total = r.input + r.output;
    let key = [Val::Text(&r.client), Val::Text(id)];
    let billing = [Val::Text(&r.client), Val::Int(1)];
    let ledger = [
        Val::Text(&r.client),
        Val::Text(id),
        Val::Date(day.date),
        Val::Int(day.now),
        Val::Int(r.raw),
        Val::Int(total),
    ];
    let user = [
        Val::Text(&r.client),
        Val::Date(day.date),
        Val::Text(&r.user),
        Val::Text(&r.or_user),
        Val::Int(total),
        Val::Int(r.input),
        Val::Int(r.output),
        Val::Int(r.raw),
        Val::Int(r.markup),
        Val::Int(day.now),
        Val::Int(day.now),
    ];
    let client_day = |new_user: i64| {
        [
            Val::Text(&r.client),
            Val::Date(day.date),
            Val::Int(total),
            Val::Int(r.input),
            Val::Int(r.output),
            Val::Int(r.raw),
            Val::Int(r.markup),
            Val::Int(day.now),
            Val::Int(day.now),
            Val::Int(new_user),
        ]
    };
    let model = [
        Val::Text(&r.client),
        Val::Date(day.date),
        Val::Text(r.model),
        Val::Int(total),
        Val::Int(r.input),
        Val::Int(r.output),
        Val::Int(r.raw),
        Val::Int(r.markup),
        Val::OptText(Some(r.provider)),
        Val::Int(day.now),
        Val::Int(day.now),
    ];
    with_raw!(conn, |c| (|| -> diesel::QueryResult<bool> {
        // The read that answers known duplicates before any write lock.
        let seen: bool = stmt::<10, Bool>(SEL_SEEN, &key, true).get_result(c)?;
        if seen {
            return Ok(false);
        }
        in_tx(c, |c| {
            type Billing = (Text, BigInt, Nullable<BigInt>, Bool);
            let b: (String, i64, Option<i64>, bool) =
                stmt::<11, Billing>(SEL_BILLING, &billing, true).get_result(c)?;
            assert!(
                b.3 && b.2.is_none(),
                "bench clients are active, without limit"
            );
            if stmt::<12, ()>(INSERT_LEDGER, &ledger, true).execute(c)? == 0 {
                return Ok(false);
            }
            let user_requests: i64 =
                stmt::<13, BigInt>(UPSERT_USER_DAY, &user, true).get_result(c)?;
            let client_day = client_day(i64::from(user_requests == 1));
            stmt::<14, ()>(UPSERT_CLIENT_DAY, &client_day, true).execute(c)?;
            stmt::<15, ()>(UPSERT_MODEL_DAY, &model, true).execute(c)?;
            Ok(true)
        })
    })())
    .expect("floor generation")
}

struct Fixture {
    /// `reqs[user * BENCH_MODELS + model]`, one client.
    reqs: Vec<Req>,
    /// Ids already in the ledger (recorded by the library); id `k` was booked with `req(k)`.
    dups: Vec<String>,
    day: Day,
}

impl Fixture {
    fn new(t: &TestStore) -> Self {
        let client = common::create_client(&t.store, "gen-0");
        let reqs = (0..USERS * BENCH_MODELS)
            .map(|k| Req::today(&client, k / BENCH_MODELS, k % BENCH_MODELS))
            .collect();
        let (date, now) = common::today_and_now(t);
        let mut fx = Self {
            reqs,
            dups: Vec::new(),
            day: Day { date, now },
        };
        let n = if common::full_run() { 1_000 } else { 50 };
        let usage = t.store.usage();
        fx.dups = (0..n)
            .map(|k| {
                let id = format!("dup-{k:06}");
                let out = usage
                    .record_generation(&id, &fx.req(k).record)
                    .expect("pre-record");
                assert!(out.is_recorded());
                id
            })
            .collect();
        fx
    }

    /// The `i`-th request: every user and model of the client in turn.
    fn req(&self, i: u64) -> &Req {
        let i = i as usize;
        &self.reqs[(i % USERS) * BENCH_MODELS + (i / USERS) % BENCH_MODELS]
    }

    /// The `i`-th known id and its request.
    fn dup(&self, i: u64) -> (&str, &Req) {
        let k = i as usize % self.dups.len();
        (&self.dups[k], self.req(k as u64))
    }
}

/// A generation id never used before in this process.
fn fresh_id(i: u64) -> String {
    format!("gen-{i:012}")
}

fn record_benches(c: &mut Criterion, t: &TestStore, fx: &Fixture) {
    let usage = t.store.usage();
    let mut conn = RawConn::open(t);
    // One counter for both sides: every id is new to the ledger.
    let mut i = 0_u64;

    let mut g = c.benchmark_group(format!("record_generation/{}/new", t.backend()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("library", |b| {
        b.iter(|| {
            i += 1;
            let out = usage
                .record_generation(&fresh_id(i), &fx.req(i).record)
                .expect("record");
            debug_assert!(out.is_recorded());
            black_box(out)
        })
    });
    g.bench_function("floor_same_statements", |b| {
        b.iter(|| {
            i += 1;
            let new = floor_generation(conn.as_ref(), &fresh_id(i), fx.req(i), fx.day);
            debug_assert!(new);
            black_box(new)
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("record_generation/{}/duplicate", t.backend()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("library", |b| {
        b.iter(|| {
            i += 1;
            let (id, r) = fx.dup(i);
            let out = usage.record_generation(id, &r.record).expect("record");
            debug_assert_eq!(out, GenerationOutcome::Duplicate);
            black_box(out)
        })
    });
    g.bench_function("floor_same_statements", |b| {
        b.iter(|| {
            i += 1;
            let (id, r) = fx.dup(i);
            let new = floor_generation(conn.as_ref(), id, r, fx.day);
            debug_assert!(!new);
            black_box(new)
        })
    });
    g.finish();
}

/// Checks once that the library and the floor have the same effect: one ledger row and one
/// request on the client's day per new id, nothing for a known one (whoever recorded it).
fn check_same_effect(t: &TestStore, fx: &Fixture) {
    let r = fx.req(0);
    let gens = t.store.generations();
    let usage = t.store.usage();
    let state = || {
        let ledger = gens
            .get_processed_generations_stats(&r.client, None, None)
            .expect("stats")
            .total_processed;
        let day = usage
            .get_daily_usage(&r.client, fx.day.date, fx.day.date)
            .expect("daily");
        let day = day
            .first()
            .map_or((0, 0), |d| (d.total_requests, d.total_tokens));
        (ledger, day.0, day.1)
    };
    let mut conn = RawConn::open(t);
    let before = state();
    let out = usage
        .record_generation("check-lib", &r.record)
        .expect("record");
    assert!(out.is_recorded());
    assert!(floor_generation(conn.as_ref(), "check-floor", r, fx.day));
    let after = state();
    let tokens = r.input + r.output;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (2, 2, 2 * tokens),
        "one ledger row and one request each"
    );
    for id in ["check-lib", "check-floor"] {
        let out = usage.record_generation(id, &r.record).expect("record");
        assert_eq!(out, GenerationOutcome::Duplicate);
        assert!(!floor_generation(conn.as_ref(), id, r, fx.day));
    }
    assert_eq!(state(), after, "duplicates write nothing");
    let row = |id| {
        gens.get_processed_generation(id, &r.client)
            .expect("ledger row")
            .expect("present")
    };
    let (lib, floor) = (row("check-lib"), row("check-floor"));
    assert_eq!(
        (lib.generation_date, lib.total_cost, lib.total_tokens),
        (floor.generation_date, floor.total_cost, floor.total_tokens),
        "same ledger row shape"
    );
}

/// `ORGUSAGE_BENCH_PROFILE=1`: per-statement times, library vs floor, new then duplicate ids.
fn profile_run(t: &TestStore, fx: &Fixture) {
    let n: u64 = match (common::full_run(), t.backend()) {
        (false, _) => 20,
        (true, "sqlite") => 5_000,
        (true, _) => 1_000,
    };
    let usage = t.store.usage();
    let mut conn = RawConn::open(t);
    let new_lib = |i: u64| format!("p-lib-{i:012}");
    let new_floor = |i: u64| format!("p-floor-{i:012}");
    let mut lib = |i| {
        usage
            .record_generation(&new_lib(i), &fx.req(i).record)
            .expect("record");
    };
    let mut floor = |i| {
        floor_generation(conn.as_ref(), &new_floor(i), fx.req(i), fx.day);
    };
    let timings = profile::interleaved(
        n,
        50,
        &mut [("library", &mut lib), ("floor_same_statements", &mut floor)],
    );
    profile::report(
        &format!("record_generation/{}/new", t.backend()),
        n,
        &timings,
    );
    let mut lib = |i| {
        let (id, r) = fx.dup(i);
        usage.record_generation(id, &r.record).expect("record");
    };
    let mut floor = |i| {
        let (id, r) = fx.dup(i);
        floor_generation(conn.as_ref(), id, r, fx.day);
    };
    let timings = profile::interleaved(
        n,
        50,
        &mut [("library", &mut lib), ("floor_same_statements", &mut floor)],
    );
    profile::report(
        &format!("record_generation/{}/duplicate", t.backend()),
        n,
        &timings,
    );
}

// ---------------------------------------------------------------------------------------------

fn benches(c: &mut Criterion) {
    if profile::enabled() {
        profile::install();
        for t in common::stores() {
            let fx = Fixture::new(&t);
            profile_run(&t, &fx);
        }
        return;
    }
    for t in common::stores() {
        let fx = Fixture::new(&t);
        check_same_effect(&t, &fx);
        record_benches(c, &t, &fx);
        // A store of its own: the record benches' ledger rows are not the cleanup's.
        let fresh = match t.backend() {
            "sqlite" => Some(orgusage_testkit::sqlite()),
            _ => common::postgres_store(),
        };
        drop(t);
        if let Some(fresh) = fresh {
            cleanup::cleanup_bench(&fresh);
        }
    }
}

criterion_group! {
    name = generations;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(generations);
