//! Usage reports on SQLite (file, WAL) and PostgreSQL (when reachable) over 90 days of history,
//! each beside a raw-SQL floor measured in the same run: the same statements the library sends
//! (the client look-up, then the `SELECT … GROUP BY`) as plain prepared statements on a dedicated
//! connection, decoded into tuples. `floor_unprepared` re-prepares them on every call, as diesel
//! does for the library's aggregate queries (they contain `sql(..)` literals, never cached).
//! Exception: since the month rollups, the library's by-user report reads
//! `client_user_monthly_usage`, while this bench's by-user floor is still the day-row read the
//! library sent before (`BY_USER_DAYS`), kept as the reference of that change; the rollup read's
//! same-statement floor is in `report_year.rs`.
//!
//! The database is seeded once per process, directly with SQL (daily rows of the three tables,
//! totals consistent across them, checked against the library before measuring):
//! * `30_users`: 10 clients x 30 users x 12 models, each active user using 1-3 models a day (the
//!   Python baseline's shape); the benches read one of the ten clients;
//! * `300_users`: one client with 300 users.
//!
//! In criterion's test mode (`cargo test --benches`) and debug builds the shapes are smaller.

mod common;

use std::hint::black_box;

use chrono::{Datelike, Duration, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Date, Nullable, Text};
use orgusage_testkit::TestStore;

use common::report_sql::{BY_MODEL, BY_USER_DAYS, CLIENT_ZONE, STATS_DAYS};
use common::{MODELS, RawConn, RawRef, Val, in_tx, profile, stmt, with_raw};

const INS_DAILY: &str = "INSERT INTO client_daily_usage (client_org_id, usage_date, total_tokens, \
     input_tokens, output_tokens, total_requests, raw_cost, markup_cost, \
     unique_users, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INS_USER: &str = "INSERT INTO client_user_daily_usage (client_org_id, user_id, \
     openrouter_user_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, \
     raw_cost, markup_cost, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INS_MODEL: &str = "INSERT INTO client_model_daily_usage (client_org_id, model_name, \
     usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
     markup_cost, provider, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const DAYS: i64 = 90;

type GroupSt = (Text, Nullable<Text>, BigInt, BigInt, BigInt, BigInt, BigInt);
type GroupRow = (String, Option<String>, i64, i64, i64, i64, i64);

/// Tokens (input, output), requests, raw and marked-up cost (nano-USD) of one row.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tot {
    input: i64,
    output: i64,
    requests: i64,
    raw: i64,
    markup: i64,
}

impl Tot {
    fn add(&mut self, o: Tot) {
        self.input += o.input;
        self.output += o.output;
        self.requests += o.requests;
        self.raw += o.raw;
        self.markup += o.markup;
    }

    fn tokens(&self) -> i64 {
        self.input + self.output
    }
}

/// A deterministic pseudo-random number of a key (splitmix64).
fn h(key: [u64; 4]) -> u64 {
    let mut x = key.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |a, k| {
        (a ^ k).wrapping_mul(0xbf58_476d_1ce4_e5b9)
    });
    x ^= x >> 31;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 29)
}

/// The usage of `user` with `model` on day `d` (days ago) of client number `c`, if any.
fn usage(c: u64, d: u64, user: u64) -> Vec<(usize, Tot)> {
    if h([c, d, user, 0]) % 5 == 0 {
        return Vec::new(); // inactive that day
    }
    let models = 1 + h([c, d, user, 1]) % 3;
    (0..models)
        .map(|j| {
            let m = ((user * 7 + d + j * 5) % 12) as usize;
            let requests = 1 + (h([c, d, user, 2 + j]) % 6) as i64;
            let input = requests * (300 + (h([c, d, user, 10 + j]) % 2000) as i64);
            let output = requests * (100 + (h([c, d, user, 20 + j]) % 800) as i64);
            let price = (m as i64 + 1) * 100;
            let raw = input * price + output * price * 4;
            let tot = Tot {
                input,
                output,
                requests,
                raw,
                markup: raw / 10 * 13,
            };
            (m, tot)
        })
        .collect()
}

/// What was seeded for one benched client, to check the library's answers against.
struct Seeded {
    client: String,
    label: &'static str,
    total: Tot,
}

/// Seeds `clients` clients of `users` users each over 90 days; returns the first client.
fn seed_shape(
    t: &TestStore,
    conn: &mut RawConn,
    label: &'static str,
    clients: u64,
    users: u64,
    today: NaiveDate,
    now: i64,
) -> Seeded {
    let mut first = None;
    for c in 0..clients {
        let id = common::create_client(&t.store, &format!("{label}-{c}"));
        let salt = if label == "300_users" { 1000 + c } else { c };
        let mut total = Tot::default();
        with_raw!(conn.as_ref(), |conn| in_tx(conn, |conn| {
            for d in 0..DAYS as u64 {
                let date = today - Duration::days(d as i64);
                let mut by_model = [Tot::default(); 12];
                let mut day = Tot::default();
                let mut active = 0;
                for u in 0..users {
                    let used = usage(salt, d, u);
                    if used.is_empty() {
                        continue;
                    }
                    active += 1;
                    let mut row = Tot::default();
                    for (m, tot) in used {
                        row.add(tot);
                        by_model[m].add(tot);
                    }
                    day.add(row);
                    let user = format!("{label}-{c}-user-{u:03}");
                    let or_user = format!("or-{user}");
                    let binds = [
                        Val::Text(&id),
                        Val::Text(&user),
                        Val::Text(&or_user),
                        Val::Date(date),
                        Val::Int(row.tokens()),
                        Val::Int(row.input),
                        Val::Int(row.output),
                        Val::Int(row.requests),
                        Val::Int(row.raw),
                        Val::Int(row.markup),
                        Val::Int(now),
                        Val::Int(now),
                    ];
                    stmt::<20, ()>(INS_USER, &binds, true).execute(conn)?;
                }
                if active == 0 {
                    continue;
                }
                for (m, tot) in by_model.iter().enumerate().filter(|(_, t)| t.requests > 0) {
                    let binds = [
                        Val::Text(&id),
                        Val::Text(MODELS[m].0),
                        Val::Date(date),
                        Val::Int(tot.tokens()),
                        Val::Int(tot.input),
                        Val::Int(tot.output),
                        Val::Int(tot.requests),
                        Val::Int(tot.raw),
                        Val::Int(tot.markup),
                        Val::OptText(Some(MODELS[m].1)),
                        Val::Int(now),
                        Val::Int(now),
                    ];
                    stmt::<21, ()>(INS_MODEL, &binds, true).execute(conn)?;
                }
                let binds = [
                    Val::Text(&id),
                    Val::Date(date),
                    Val::Int(day.tokens()),
                    Val::Int(day.input),
                    Val::Int(day.output),
                    Val::Int(day.requests),
                    Val::Int(day.raw),
                    Val::Int(day.markup),
                    Val::Int(active),
                    Val::Int(now),
                    Val::Int(now),
                ];
                stmt::<22, ()>(INS_DAILY, &binds, true).execute(conn)?;
                total.add(day);
            }
            Ok(())
        }))
        .expect("seed");
        first.get_or_insert(Seeded {
            client: id,
            label,
            total,
        });
    }
    first.expect("at least one client")
}

/// Checks that the three tables agree, through the library's own reports.
fn check(t: &TestStore, s: &Seeded, today: NaiveDate) {
    let from = Some(today - Duration::days(DAYS - 1));
    let u = t.store.usage();
    let by_user = u
        .get_usage_by_user(&s.client, from, Some(today))
        .expect("by user");
    let by_model = u
        .get_usage_by_model(&s.client, from, Some(today))
        .expect("by model");
    let daily = u
        .get_daily_usage(&s.client, today - Duration::days(DAYS - 1), today)
        .expect("daily");
    let sums = [
        by_user
            .iter()
            .map(|r| (r.total_tokens, r.total_requests))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        by_model
            .iter()
            .map(|r| (r.total_tokens, r.total_requests))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        daily
            .iter()
            .map(|r| (r.total_tokens, r.total_requests))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
    ];
    for sum in sums {
        assert_eq!(
            sum,
            (s.total.tokens(), s.total.requests),
            "{} totals",
            s.label
        );
    }
    eprintln!(
        "seeded {}: {} users, {} models, {} days, {} requests on the benched client",
        s.label,
        by_user.len(),
        by_model.len(),
        daily.len(),
        s.total.requests
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Report {
    Stats,
    ByUser,
    ByModel,
}

/// The floor of a report: the client look-up and the report's query, decoded into tuples.
fn floor(
    conn: RawRef<'_>,
    r: Report,
    client: &str,
    range: (NaiveDate, NaiveDate),
    cached: bool,
) -> usize {
    let zone_binds = [Val::Text(client), Val::Bool(true), Val::Int(1)];
    let binds = [Val::Text(client), Val::Date(range.0), Val::Date(range.1)];
    with_raw!(conn, |c| {
        let zone: (String, String) = stmt::<10, (Text, Text)>(CLIENT_ZONE, &zone_binds, true)
            .get_result(c)
            .expect("zone");
        black_box(zone);
        match r {
            Report::Stats => {
                let rows: Vec<(NaiveDate, i64, i64, i64, i64)> =
                    stmt::<11, (Date, BigInt, BigInt, BigInt, BigInt)>(STATS_DAYS, &binds, cached)
                        .load(c)
                        .expect("stats");
                rows.len()
            }
            Report::ByUser => {
                let rows: Vec<GroupRow> = stmt::<12, GroupSt>(BY_USER_DAYS, &binds, cached)
                    .load(c)
                    .expect("by user");
                rows.len()
            }
            Report::ByModel => {
                let rows: Vec<GroupRow> = stmt::<13, GroupSt>(BY_MODEL, &binds, cached)
                    .load(c)
                    .expect("by model");
                rows.len()
            }
        }
    })
}

fn bench_backend(c: &mut Criterion, t: &TestStore) {
    let (today, now) = common::today_and_now(t);
    let mut conn = RawConn::open(t);
    let (a_clients, a_users, b_users) = if common::full_run() {
        (10, 30, 300)
    } else {
        (2, 6, 20)
    };
    let started = std::time::Instant::now();
    let shapes = [
        seed_shape(t, &mut conn, "30_users", a_clients, a_users, today, now),
        seed_shape(t, &mut conn, "300_users", 1, b_users, today, now),
    ];
    eprintln!("seeded {} in {:.1?}", t.backend(), started.elapsed());
    for s in &shapes {
        check(t, s, today);
    }
    let month = (today.with_day(1).expect("day 1"), today);
    let days90 = (today - Duration::days(DAYS - 1), today);
    let history = (month.0.min(today - Duration::days(29)), today);
    let cases = [
        ("stats", Report::Stats, history),
        ("by_user_90d", Report::ByUser, days90),
        ("by_user_month", Report::ByUser, month),
        ("by_model_90d", Report::ByModel, days90),
        ("by_model_month", Report::ByModel, month),
    ];
    let usage = t.store.usage();
    let library = |report: Report, client: &str, range: (NaiveDate, NaiveDate)| {
        let (from, to) = if range == month {
            (None, None)
        } else {
            (Some(range.0), Some(range.1))
        };
        match report {
            Report::Stats => {
                black_box(usage.get_usage_stats_by_client_blocking(client, None)).expect("stats");
            }
            Report::ByUser => {
                black_box(usage.get_usage_by_user(client, from, to)).expect("by user");
            }
            Report::ByModel => {
                black_box(usage.get_usage_by_model(client, from, to)).expect("by model");
            }
        }
    };
    if profile::enabled() {
        let n = if common::full_run() { 300 } else { 3 };
        for (name, report, range) in cases {
            for s in &shapes {
                let timings = profile::interleaved(
                    n,
                    20,
                    &mut [
                        ("library", &mut |_| library(report, &s.client, range)),
                        ("floor_same_statements", &mut |_| {
                            floor(conn.as_ref(), report, &s.client, range, true);
                        }),
                    ],
                );
                let title = format!("reports/{}/{name}/{}", t.backend(), s.label);
                profile::report(&title, n, &timings);
            }
        }
        return;
    }
    for (name, report, range) in cases {
        let mut g = c.benchmark_group(format!("reports/{}/{name}", t.backend()));
        for s in &shapes {
            let client = s.client.as_str();
            g.bench_function(format!("{}/library", s.label), |b| {
                b.iter(|| library(report, client, range))
            });
            g.bench_function(format!("{}/floor_same_statements", s.label), |b| {
                b.iter(|| floor(conn.as_ref(), report, client, range, true))
            });
            if report != Report::Stats && range == days90 {
                g.bench_function(format!("{}/floor_unprepared", s.label), |b| {
                    b.iter(|| floor(conn.as_ref(), report, client, range, false))
                });
            }
        }
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    if profile::enabled() {
        profile::install();
    }
    for t in common::stores() {
        bench_backend(c, &t);
    }
}

criterion_group! {
    name = reports;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(reports);
