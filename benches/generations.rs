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

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use orgusage::{Decimal, GenerationOutcome, UsageRecord};
use orgusage_testkit::TestStore;

use common::{MODELS, RawConn, RawRef, Val, in_tx, profile, stmt, with_raw};

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

/// `usage::UPSERT_USER_DAY`, verbatim.
const UPSERT_USER_DAY: &str = "INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = excluded.openrouter_user_id, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + 1, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at \
    RETURNING total_requests";

/// `usage::UPSERT_CLIENT_DAY`, verbatim.
const UPSERT_CLIENT_DAY: &str = "INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) \
    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
    total_tokens = client_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_daily_usage.total_requests + 1, \
    raw_cost = client_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_daily_usage.markup_cost + excluded.markup_cost, \
    unique_users = client_daily_usage.unique_users + excluded.unique_users, \
    updated_at = excluded.updated_at";

/// `usage::UPSERT_MODEL_DAY`, verbatim.
const UPSERT_MODEL_DAY: &str = "INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + 1, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at";

/// `cleanup::SQLITE_DELETE_BATCH`, verbatim.
const SQLITE_DELETE_BATCH: &str = "DELETE FROM processed_generations WHERE rowid IN \
     (SELECT rowid FROM processed_generations WHERE processed_at < ? LIMIT ?) \
     RETURNING client_org_id, total_tokens, total_cost, \
     LENGTH(CAST(id AS BLOB)) + LENGTH(CAST(client_org_id AS BLOB)) AS payload";

/// `cleanup::POSTGRES_DELETE_BATCH`, with `?` for diesel's `$n`.
const POSTGRES_DELETE_BATCH: &str = "DELETE FROM processed_generations WHERE ctid = ANY(ARRAY( \
     SELECT ctid FROM processed_generations WHERE processed_at < ? LIMIT ? FOR UPDATE SKIP LOCKED)) \
     RETURNING client_org_id, total_tokens, total_cost, \
     CAST(octet_length(id) + octet_length(client_org_id) AS BIGINT) AS payload";

/// The set-based reference of the cleanup.
const DELETE_OLD: &str = "DELETE FROM processed_generations WHERE processed_at < ?";

const COUNT_LEDGER: &str = "SELECT COUNT(*) FROM processed_generations";

/// `cleanup::CLEANUP_BATCH`.
const CLEANUP_BATCH: i64 = 10_000;

// ---------------------------------------------------------------------------------------------
// record_generation

const USERS: usize = 5;
const BENCH_MODELS: usize = 4;

/// One request: the library's record and the values the floor binds.
struct Req {
    record: UsageRecord,
    client: String,
    user: String,
    or_user: String,
    model: &'static str,
    provider: &'static str,
    input: i64,
    output: i64,
    raw: i64,
    markup: i64,
}

impl Req {
    fn new(client: &str, user: usize, model: usize) -> Self {
        let (model, provider) = MODELS[model];
        let (input, output) = (800 + 37 * user as i64, 200 + 11 * user as i64);
        // raw cost in nano-USD, a multiple of 10 so that x1.3 is exact
        let raw = (input * 3 + output * 15) * 1_000;
        let user_id = format!("user-{user:03}");
        let or_user = format!("or-{user_id}");
        Self {
            record: UsageRecord::new(client, &user_id, &or_user, model)
                .tokens(input, output)
                .raw_cost(Decimal::new(raw, 9))
                .provider(provider),
            client: client.to_string(),
            user: user_id,
            or_user,
            model,
            provider,
            input,
            output,
            raw,
            markup: raw / 10 * 13,
        }
    }
}

/// The day (client-local today of the test clock) and `now` every record is booked with.
#[derive(Clone, Copy)]
struct Day {
    date: NaiveDate,
    now: i64,
}

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
            .map(|k| Req::new(&client, k / BENCH_MODELS, k % BENCH_MODELS))
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
// cleanup

/// Resident and peak-resident memory of this process, in KiB.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: i64,
    hwm: i64,
}

fn mem() -> Mem {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(-1)
    };
    Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    }
}

/// Resets `VmHWM` to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The cleanup's ledger: `rows` old rows over the clients, and `rows / 100` young ones.
struct Ledger {
    clients: Vec<String>,
    rows: i64,
    keep: i64,
    now: i64,
    cutoff: i64,
}

impl Ledger {
    fn new(t: &TestStore) -> Self {
        let clients = (0..20)
            .map(|k| common::create_client(&t.store, &format!("old-{k:02}")))
            .collect();
        let (_, now) = common::today_and_now(t);
        let rows = if common::full_run() { 1_000_000 } else { 5_000 };
        Self {
            clients,
            rows,
            keep: rows / 100,
            now,
            cutoff: now - 60 * 86_400,
        }
    }

    /// Empties the ledger and fills it with one set-based statement; returns the time it took.
    fn seed(&self, conn: &mut RawConn) -> Duration {
        let start = Instant::now();
        let client = {
            let arms: String = self
                .clients
                .iter()
                .enumerate()
                .map(|(k, id)| format!(" WHEN {k} THEN '{id}'"))
                .collect();
            format!("CASE n % {}{arms} END", self.clients.len())
        };
        let (rows, total, now) = (self.rows, self.rows + self.keep, self.now);
        // Old rows: 90 days back, spread over one day in insertion order (as the ledger fills:
        // `processed_at` grows with the rowid / heap position); young rows: now. With
        // `ORGUSAGE_BENCH_CLEANUP_SCATTERED=1` the old rows' `processed_at` cycles through the
        // day instead, so that rows adjacent in `processed_at` order lie all over the table.
        let old_at = now - 90 * 86_400;
        let offset = if scattered_layout() {
            "n % 86400".to_string()
        } else {
            format!("n / {}", (rows / 86_400).max(1))
        };
        let select = |old_date: &str, new_date: &str| {
            format!(
                "INSERT INTO processed_generations (client_org_id, id, generation_date, \
                 processed_at, total_cost, total_tokens) \
                 SELECT {client}, 'gen-' || (100000000 + n), \
                 CASE WHEN n < {rows} THEN {old_date} ELSE {new_date} END, \
                 CASE WHEN n < {rows} THEN {old_at} + {offset} ELSE {now} END, \
                 (1000 + n % 997) * 1000, 500 + n % 113"
            )
        };
        match conn.as_ref() {
            #[cfg(feature = "sqlite")]
            RawRef::Sqlite(c) => {
                let insert = select("'2025-04-25'", "'2025-07-24'");
                c.batch_execute(&format!(
                    "DELETE FROM processed_generations; BEGIN IMMEDIATE; \
                     WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s \
                     WHERE n + 1 < {total}) {insert} FROM s; COMMIT; \
                     PRAGMA wal_checkpoint(TRUNCATE);"
                ))
                .expect("seed sqlite ledger");
            }
            #[cfg(feature = "postgres")]
            RawRef::Pg(c) => {
                let insert = select("DATE '2025-04-25'", "DATE '2025-07-24'");
                c.batch_execute(&format!(
                    "TRUNCATE processed_generations; \
                     {insert} FROM generate_series(0, {total} - 1) AS s(n);"
                ))
                .expect("seed postgres ledger");
                // Hint bits, visibility map and statistics as on a settled table, so that the
                // first variant after a seed pays no extra writes.
                c.batch_execute("VACUUM (ANALYZE) processed_generations")
                    .expect("vacuum ledger");
            }
        }
        start.elapsed()
    }

    fn count(&self, conn: &mut RawConn) -> i64 {
        with_raw!(conn.as_ref(), |c| stmt::<20, BigInt>(
            COUNT_LEDGER,
            &[],
            true
        )
        .get_result(c))
        .expect("count ledger")
    }
}

/// `ORGUSAGE_BENCH_CLEANUP_SCATTERED=1`: the adversarial layout of the old rows (see `seed`).
fn scattered_layout() -> bool {
    std::env::var("ORGUSAGE_BENCH_CLEANUP_SCATTERED").is_ok_and(|v| v == "1")
}

/// Seconds and memory of one cleanup variant run.
struct Run {
    took: Duration,
    before: Mem,
    /// Peak RSS during the run (after [`reset_peak`]), or the lifetime peak if that failed.
    peak: i64,
    after: Mem,
}

fn measure(f: impl FnOnce() -> i64, expect_deleted: i64) -> Run {
    let reset = reset_peak();
    let before = mem();
    let start = Instant::now();
    let deleted = f();
    let took = start.elapsed();
    let after = mem();
    assert_eq!(deleted, expect_deleted, "rows deleted");
    Run {
        took,
        before,
        peak: if reset { after.hwm } else { -1 },
        after,
    }
}

/// The library's batch statements alone: `DELETE … RETURNING` of 10,000 rows per transaction
/// until a short batch.
fn floor_batched(conn: &mut RawConn, cutoff: i64) -> i64 {
    let binds = [Val::Int(cutoff), Val::Int(CLEANUP_BATCH)];
    type Row = (Text, BigInt, BigInt, BigInt);
    let mut deleted = 0;
    loop {
        let rows: Vec<(String, i64, i64, i64)> = match conn.as_ref() {
            #[cfg(feature = "sqlite")]
            RawRef::Sqlite(c) => in_tx(c, |c| {
                stmt::<21, Row>(SQLITE_DELETE_BATCH, &binds, true).load(c)
            }),
            #[cfg(feature = "postgres")]
            RawRef::Pg(c) => in_tx(c, |c| {
                stmt::<22, Row>(POSTGRES_DELETE_BATCH, &binds, true).load(c)
            }),
        }
        .expect("delete batch");
        deleted += rows.len() as i64;
        black_box(rows.iter().map(|r| r.1).sum::<i64>());
        if rows.len() < CLEANUP_BATCH as usize {
            return deleted;
        }
    }
}

fn floor_single_delete(conn: &mut RawConn, cutoff: i64) -> i64 {
    let binds = [Val::Int(cutoff)];
    with_raw!(conn.as_ref(), |c| in_tx(c, |c| stmt::<23, ()>(
        DELETE_OLD, &binds, false
    )
    .execute(c)))
    .expect("delete old") as i64
}

const VARIANTS: [&str; 3] = [
    "library",
    "floor_single_delete",
    "floor_batched_same_statements",
];

fn cleanup_bench(t: &TestStore) {
    let name = format!("cleanup/{}/1M", t.backend());
    if !selected(&name) {
        return;
    }
    let ledger = Ledger::new(t);
    let mut conn = RawConn::open(t);
    let runs = if common::full_run() { 3 } else { 1 };
    let gens = t.store.generations();
    let mut results: Vec<Vec<Run>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    let mut seeds = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..runs {
        for (v, out) in VARIANTS.iter().zip(&mut results) {
            seeds.push(ledger.seed(&mut conn));
            let start = Instant::now();
            assert_eq!(ledger.count(&mut conn), ledger.rows + ledger.keep);
            counts.push(start.elapsed());
            let run = match *v {
                "library" => measure(
                    || {
                        let r = gens
                            .cleanup_old_processed_generations(Some(60))
                            .expect("cleanup");
                        assert!(r.success, "{:?}", r.error);
                        assert_eq!(r.records_remaining, ledger.keep);
                        assert_eq!(r.organization_breakdown.len(), ledger.clients.len());
                        assert_eq!(r.cutoff_timestamp, ledger.cutoff);
                        r.records_deleted
                    },
                    ledger.rows,
                ),
                "floor_single_delete" => measure(
                    || floor_single_delete(&mut conn, ledger.cutoff),
                    ledger.rows,
                ),
                _ => measure(|| floor_batched(&mut conn, ledger.cutoff), ledger.rows),
            };
            assert_eq!(ledger.count(&mut conn), ledger.keep, "young rows stay");
            out.push(run);
        }
    }
    report_cleanup(&name, &ledger, &results, &seeds, &counts);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report_cleanup(
    name: &str,
    ledger: &Ledger,
    results: &[Vec<Run>],
    seeds: &[Duration],
    counts: &[Duration],
) {
    let mib = |kib: i64| kib as f64 / 1024.0;
    println!(
        "\n=== {name}: {} old rows over {} clients ({} layout) deleted, {} young rows kept; {} \
         run(s) per variant, interleaved ===",
        ledger.rows,
        ledger.clients.len(),
        if scattered_layout() {
            "scattered"
        } else {
            "insertion-ordered"
        },
        ledger.keep,
        results[0].len()
    );
    println!(
        "   seeding (one INSERT … SELECT{}): median {:.2} s; COUNT(*) of the seeded ledger: \
         median {:.0} ms",
        if name.contains("postgres") {
            " + VACUUM ANALYZE on PostgreSQL"
        } else {
            ""
        },
        median(seeds.to_vec()).as_secs_f64(),
        median(counts.to_vec()).as_secs_f64() * 1e3
    );
    let floor = median(results[1].iter().map(|r| r.took).collect());
    for (v, runs) in VARIANTS.iter().zip(results) {
        let med = median(runs.iter().map(|r| r.took).collect());
        let each: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.3}", r.took.as_secs_f64()))
            .collect();
        println!(
            "-- {v:<30} median {:>7.3} s  x{:.2} of floor_single_delete  {:>9.0} rows/s  \
             (runs: {} s)",
            med.as_secs_f64(),
            med.as_secs_f64() / floor.as_secs_f64(),
            ledger.rows as f64 / med.as_secs_f64(),
            each.join(", ")
        );
        for r in runs {
            println!(
                "   RSS before {:>7.1} MiB, peak during {:>7.1} MiB (+{:.1}), after {:>7.1} MiB \
                 (+{:.1})",
                mib(r.before.rss),
                mib(r.peak),
                mib(r.peak - r.before.rss),
                mib(r.after.rss),
                mib(r.after.rss - r.before.rss),
            );
        }
    }
}

/// `false` when a criterion filter was given on the command line that `name` does not contain
/// (an approximation of criterion's regex filter, for the printed cleanup measurements).
fn selected(name: &str) -> bool {
    const FLAGS: [&str; 10] = [
        "--bench",
        "--test",
        "--list",
        "--exact",
        "--nocapture",
        "--quiet",
        "--verbose",
        "--noplot",
        "--discard-baseline",
        "--quick",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skip_value = false;
    for a in &args {
        if skip_value {
            skip_value = false;
        } else if a.starts_with("--") {
            skip_value = !FLAGS.contains(&a.as_str()) && !a.contains('=');
        } else if !a.starts_with('-') {
            filters.push(a.as_str());
        }
    }
    filters.is_empty() || filters.iter().any(|f| name.contains(f))
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
            cleanup_bench(&fresh);
        }
    }
}

criterion_group! {
    name = generations;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(generations);
