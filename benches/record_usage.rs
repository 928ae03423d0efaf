//! `record_usage` on SQLite (file, WAL) and PostgreSQL (when reachable), one writer and eight,
//! each beside raw-SQL floors measured in the same run:
//!
//! * `floor_same_statements`: the very statements the library sends for one record (billing
//!   `SELECT`, then the user upsert with `RETURNING`, the client-day upsert that also counts
//!   `unique_users`, the model upsert) as plain prepared statements in one transaction
//!   (`BEGIN IMMEDIATE` on SQLite) on a dedicated connection;
//! * `floor_three_upserts`: only the three upserts, the floor the issue quotes;
//! * diagnostics (one writer): `floor_same_statements_unprepared` re-prepares every statement on
//!   each call; `floor_same_statements_pooled` checks the connection out of an r2d2 pool built
//!   like the library's (with r2d2's default `test_on_check_out`, i.e. a `SELECT 1` per call).
//!
//! Eight writers: 8 threads, each with its own connection (library: its own pool checkout), a
//! fixed batch of records per iteration (`iter_custom`), throughput in records per second.
//! Scenarios: `one_client` (different users and models of one client, same day), `hot_row`
//! (one user and model) and `8_clients` (one client per writer). The SQLite floors queue on an
//! in-process mutex like the library's write gate.
//!
//! `record_usage/sqlite/durability`: one writer on a SQLite file with `synchronous = NORMAL`
//! and `FULL` (`StoreConfig::sqlite_synchronous`), library and `floor_same_statements` with the
//! same pragma, to price a power-loss-safe acknowledgement (an fsync of the WAL per commit).

mod common;

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use orgusage::db::SqliteSynchronous;
use orgusage_testkit::TestStore;

use common::floor::{Day, Req};
use common::{RawConn, RawPool, RawRef, Val, in_tx, profile, stmt, with_raw};

const SEL_BILLING: &str = "SELECT timezone, markup_rate, monthly_limit, is_active \
     FROM client_organizations WHERE id = ? LIMIT ?";

// The three upserts are the library's own texts, so the floor cannot drift from what it sends.
use orgusage_db::statements::{Statement, UpsertClientDay, UpsertModelDay, UpsertUserDay};
const UPSERT_USER_DAY: &str = UpsertUserDay::SQL;
const UPSERT_CLIENT_DAY: &str = UpsertClientDay::SQL;
const UPSERT_MODEL_DAY: &str = UpsertModelDay::SQL;

#[derive(Clone, Copy, PartialEq)]
enum Floor {
    SameStatements,
    ThreeUpserts,
}

/// One record as plain SQL in one transaction; returns the user's request count of the day.
fn floor_record(conn: RawRef<'_>, r: &Req, day: Day, floor: Floor, cached: bool) -> i64 {
    let total = r.input + r.output;
    let daily = |new_user: i64| {
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
    let billing = [Val::Text(&r.client), Val::Int(1)];
    let same = floor == Floor::SameStatements;
    with_raw!(conn, |c| in_tx(c, |c| {
        if same {
            type Billing = (Text, BigInt, Nullable<BigInt>, Bool);
            let b: (String, i64, Option<i64>, bool) =
                stmt::<1, Billing>(SEL_BILLING, &billing, cached).get_result(c)?;
            assert!(
                b.3 && b.2.is_none(),
                "bench clients are active, without limit"
            );
        }
        // The library's order: user row first (its RETURNING tells whether the user is new today).
        let user_requests: i64 = stmt::<3, BigInt>(UPSERT_USER_DAY, &user, cached).get_result(c)?;
        let daily = daily(i64::from(user_requests == 1));
        stmt::<2, ()>(UPSERT_CLIENT_DAY, &daily, cached).execute(c)?;
        stmt::<4, ()>(UPSERT_MODEL_DAY, &model, cached).execute(c)?;
        Ok(user_requests)
    }))
    .expect("floor record")
}

/// Records per writer thread and iteration in the eight-writer benches.
const PER_THREAD: u64 = 8;
const WRITERS: usize = 8;

struct Fixture {
    /// `reqs[client][user * 12 + model]`, 9 clients (0: main, 1..=8: one per writer), 30 users.
    reqs: Vec<Vec<Req>>,
    day: Day,
}

impl Fixture {
    fn new(t: &TestStore) -> Self {
        let reqs = (0..=WRITERS)
            .map(|c| {
                let id = common::create_client(&t.store, &format!("rec-{c}"));
                (0..30 * 12)
                    .map(|k| Req::today(&id, k / 12, k % 12))
                    .collect()
            })
            .collect();
        let (date, now) = common::today_and_now(t);
        Self {
            reqs,
            day: Day { date, now },
        }
    }

    /// The request writer `t` sends as its `i`-th in a scenario.
    fn pick(&self, scenario: &str, t: usize, i: u64) -> &Req {
        let i = i as usize;
        match scenario {
            "one_client" => &self.reqs[0][((t * 4 + i) % 30) * 12 + (t + i * 5) % 12],
            "hot_row" => &self.reqs[0][0],
            _ => &self.reqs[1 + t][(i % 30) * 12 + (i * 5) % 12],
        }
    }

    /// The single writer's `i`-th request: every user, every model, one client.
    fn single(&self, i: u64) -> &Req {
        let i = i as usize;
        &self.reqs[0][(i % 30) * 12 + (i * 5 + i / 30) % 12]
    }
}

fn one_writer(c: &mut Criterion, t: &TestStore, fx: &Fixture) {
    let mut g = c.benchmark_group(format!("record_usage/{}/1_writer", t.backend()));
    g.throughput(Throughput::Elements(1));
    let usage = t.store.usage();
    let mut i = 0_u64;
    g.bench_function("library", |b| {
        b.iter(|| {
            i += 1;
            black_box(usage.record_usage(&fx.single(i).record).expect("record"))
        })
    });
    let mut conn = RawConn::open(t);
    let variants = [
        ("floor_same_statements", Floor::SameStatements, true),
        ("floor_three_upserts", Floor::ThreeUpserts, true),
        (
            "floor_same_statements_unprepared",
            Floor::SameStatements,
            false,
        ),
    ];
    for (name, floor, cached) in variants {
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                black_box(floor_record(
                    conn.as_ref(),
                    fx.single(i),
                    fx.day,
                    floor,
                    cached,
                ))
            })
        });
    }
    let pool = RawPool::open(t);
    let gate = Mutex::new(());
    let sqlite = t.backend() == "sqlite";
    g.bench_function("floor_same_statements_pooled", |b| {
        b.iter(|| {
            i += 1;
            let _turn = sqlite.then(|| gate.lock().expect("gate"));
            pool.with(|c| {
                black_box(floor_record(
                    c,
                    fx.single(i),
                    fx.day,
                    Floor::SameStatements,
                    true,
                ))
            })
        })
    });
    g.finish();
}

fn eight_writers(c: &mut Criterion, t: &TestStore, fx: &Fixture) {
    let mut g = c.benchmark_group(format!("record_usage/{}/8_writers", t.backend()));
    let per_iter = PER_THREAD * WRITERS as u64;
    g.throughput(Throughput::Elements(per_iter))
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(4));
    let conns: Vec<Mutex<RawConn>> = (0..WRITERS).map(|_| Mutex::new(RawConn::open(t))).collect();
    // SQLite floors queue on a process mutex, like the library's write gate.
    let gate = Mutex::new(());
    let sqlite = t.backend() == "sqlite";
    let scenarios: [(&str, &[Floor]); 3] = [
        ("one_client", &[Floor::SameStatements, Floor::ThreeUpserts]),
        ("hot_row", &[Floor::SameStatements]),
        ("8_clients", &[Floor::SameStatements, Floor::ThreeUpserts]),
    ];
    for (scenario, floors) in scenarios {
        g.bench_function(format!("{scenario}/library"), |b| {
            b.iter_custom(|iters| {
                common::run_parallel(WRITERS, iters * PER_THREAD, &|w, i| {
                    let r = fx.pick(scenario, w, i);
                    t.store.usage().record_usage(&r.record).expect("record");
                })
            })
        });
        for &floor in floors {
            let name = match floor {
                Floor::SameStatements => "floor_same_statements",
                Floor::ThreeUpserts => "floor_three_upserts",
            };
            g.bench_function(format!("{scenario}/{name}"), |b| {
                b.iter_custom(|iters| {
                    common::run_parallel(WRITERS, iters * PER_THREAD, &|w, i| {
                        let r = fx.pick(scenario, w, i);
                        let mut conn = conns[w].lock().expect("conn");
                        let _turn = sqlite.then(|| gate.lock().expect("gate"));
                        floor_record(conn.as_ref(), r, fx.day, floor, true);
                    })
                })
            });
        }
    }
    g.finish();
}

/// One writer at each SQLite durability level, the floor beside with the same pragma.
fn durability(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_usage/sqlite/durability");
    g.throughput(Throughput::Elements(1));
    for (name, level) in [
        ("normal", SqliteSynchronous::Normal),
        ("full", SqliteSynchronous::Full),
    ] {
        let t = orgusage_testkit::sqlite_with(|config| config.sqlite_synchronous(level));
        let fx = Fixture::new(&t);
        let usage = t.store.usage();
        let mut i = 0_u64;
        g.bench_function(format!("{name}/library"), |b| {
            b.iter(|| {
                i += 1;
                black_box(usage.record_usage(&fx.single(i).record).expect("record"))
            })
        });
        let mut conn = RawConn::open_with(&t, &common::sqlite_pragmas(level.pragma()));
        g.bench_function(format!("{name}/floor_same_statements"), |b| {
            b.iter(|| {
                i += 1;
                black_box(floor_record(
                    conn.as_ref(),
                    fx.single(i),
                    fx.day,
                    Floor::SameStatements,
                    true,
                ))
            })
        });
    }
    g.finish();
}

/// Checks that the library and the floor wrote the same totals (both add to the same rows).
fn check_same_effect(t: &TestStore, fx: &Fixture) {
    let r = &fx.reqs[0][0];
    let before = t
        .store
        .usage()
        .get_daily_usage(&r.client, fx.day.date, fx.day.date)
        .expect("daily");
    t.store.usage().record_usage(&r.record).expect("record");
    let mut conn = RawConn::open(t);
    floor_record(conn.as_ref(), r, fx.day, Floor::SameStatements, true);
    let after = t
        .store
        .usage()
        .get_daily_usage(&r.client, fx.day.date, fx.day.date)
        .expect("daily");
    let (b, a) = (before.first(), after.first().expect("a client-day row"));
    let b_req = b.map_or(0, |b| b.total_requests);
    let b_tok = b.map_or(0, |b| b.total_tokens);
    assert_eq!(a.total_requests - b_req, 2, "one record each");
    assert_eq!(a.total_tokens - b_tok, 2 * (r.input + r.output));
    assert_eq!(a.primary_model.as_deref(), Some(r.model));
}

/// `ORGUSAGE_BENCH_PROFILE=1`: per-statement times of one writer, library vs floor.
fn profile_run(t: &TestStore, fx: &Fixture) {
    let n: u64 = match (common::full_run(), t.backend()) {
        (false, _) => 20,
        (true, "sqlite") => 5_000,
        (true, _) => 1_000,
    };
    let usage = t.store.usage();
    let mut conn = RawConn::open(t);
    let pool = RawPool::open(t);
    let gate = Mutex::new(());
    let sqlite = t.backend() == "sqlite";
    let mut lib = |i| {
        usage.record_usage(&fx.single(i).record).expect("record");
    };
    let mut floor = |i| {
        floor_record(
            conn.as_ref(),
            fx.single(i),
            fx.day,
            Floor::SameStatements,
            true,
        );
    };
    let mut pooled = |i| {
        let _turn = sqlite.then(|| gate.lock().expect("gate"));
        pool.with(|c| floor_record(c, fx.single(i), fx.day, Floor::SameStatements, true));
    };
    let timings = profile::interleaved(
        n,
        50,
        &mut [
            ("library", &mut lib),
            ("floor_same_statements", &mut floor),
            ("floor_same_statements_pooled", &mut pooled),
        ],
    );
    profile::report(
        &format!("record_usage/{}/1_writer", t.backend()),
        n,
        &timings,
    );
}

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
        one_writer(c, &t, &fx);
        eight_writers(c, &t, &fx);
    }
    durability(c);
}

criterion_group! {
    name = record_usage;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(record_usage);
