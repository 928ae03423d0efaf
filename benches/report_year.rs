//! Reports over a year of history with many clients in the table (issue 13): one client's
//! `get_usage_by_user` over 90 and 365 days, `get_usage_by_model` and the stats, with 20 and
//! with 100 clients of 300 users each, every user active every day, on SQLite and PostgreSQL.
//!
//! Each report runs beside two raw-SQL references on a dedicated connection, in the same run:
//! * `floor`: the library's own statements (the client look-up, then the report's query; for
//!   by-user the month-rollup statement `orgusage_db::rollup::USER_REPORT` with the same binds)
//!   prepared once, decoded into tuples: what the library adds is the ratio to it;
//! * `days` (by-user only): the previous read, `GROUP BY user_id` over every user-day row of the
//!   range, prepared once: what the rollups save.
//!
//! Seeding writes the rows day by day for all clients, as production does, so that on
//! PostgreSQL one client's rows lie among everyone else's in the heap: one `INSERT … SELECT` per
//! day. The user-month rollups are filled the way an existing database gets them: on SQLite by
//! the triggers as the rows arrive; on PostgreSQL the seeding connection runs with
//! `session_replication_role = replica` (triggers off: firing 11 M deferred row triggers would
//! take most of an hour here) and then runs the migration's own back-fill statement (taken from
//! its `up.sql`), followed by `VACUUM ANALYZE`, which autovacuum would do on a real server. The
//! client-day and model-day rows are seeded on their own (they do not add up to the user rows;
//! no report here compares the levels).
//!
//! In criterion's test mode (`cargo test --benches`) and debug builds the shapes are tiny.
//! `ORGUSAGE_BENCH_YEAR_CLIENTS=20` (or `100`) and `ORGUSAGE_BENCH_YEAR_BACKEND=sqlite` (or
//! `postgres`) run one size or one backend.

mod common;

use std::hint::black_box;

use chrono::{Datelike, Duration, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Date, Nullable, Text};
use orgusage_db::rollup::{Bind, USER_REPORT, user_binds};
use orgusage_testkit::TestStore;

use common::report_sql::{BY_MODEL, BY_USER_DAYS, CLIENT_ZONE, STATS_DAYS};
use common::{RawConn, RawRef, Val, in_tx, profile, stmt, with_raw};

/// One day of user rows for every client of the bench: binds the date, the day number, the last
/// user number and the timestamp. Ordered by user, then client, as a day of production traffic
/// arrives (every client's users all day long), so that on PostgreSQL the rows of one client
/// and day are spread over as many heap pages as there are rows, not packed together.
const SEED_USERS: &str = "WITH RECURSIVE s(u) AS (SELECT 0 UNION ALL SELECT u + 1 FROM s WHERE u < ?) \
     INSERT INTO client_user_daily_usage (client_org_id, user_id, openrouter_user_id, usage_date, \
     total_tokens, input_tokens, output_tokens, total_requests, raw_cost, markup_cost, created_at, \
     updated_at) \
     SELECT c.id, 'user-' || CAST(s.u AS TEXT), 'or-user-' || CAST(s.u AS TEXT), ?, \
     150 + (s.u * 7 + d.n * 13) % 900 + (s.u * 3 + d.n * 5) % 400, \
     100 + (s.u * 7 + d.n * 13) % 900, 50 + (s.u * 3 + d.n * 5) % 400, 1 + (s.u + d.n) % 5, \
     ((100 + (s.u * 7 + d.n * 13) % 900) * 3 + (50 + (s.u * 3 + d.n * 5) % 400) * 15) * 1000, \
     ((100 + (s.u * 7 + d.n * 13) % 900) * 3 + (50 + (s.u * 3 + d.n * 5) % 400) * 15) * 1300, \
     d.t, d.t FROM client_organizations c CROSS JOIN s \
     CROSS JOIN (SELECT CAST(? AS BIGINT) AS n, CAST(? AS BIGINT) AS t) d \
     WHERE c.name LIKE 'yr-%' ORDER BY s.u, c.id";

/// One day of model rows (12 models) for every client: binds the date, the day number and the
/// timestamp.
const SEED_MODELS: &str = "WITH RECURSIVE s(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM s WHERE m < 11) \
     INSERT INTO client_model_daily_usage (client_org_id, model_name, usage_date, total_tokens, \
     input_tokens, output_tokens, total_requests, raw_cost, markup_cost, provider, created_at, \
     updated_at) \
     SELECT c.id, 'vendor/model-' || CAST(s.m AS TEXT), ?, 3000 + s.m + d.n, 2000 + s.m, 1000 + d.n, \
     25 + s.m, 7000000 + s.m * 1000, 9100000 + s.m * 1300, 'vendor', d.t, d.t \
     FROM client_organizations c CROSS JOIN s \
     CROSS JOIN (SELECT CAST(? AS BIGINT) AS n, CAST(? AS BIGINT) AS t) d \
     WHERE c.name LIKE 'yr-%' ORDER BY s.m, c.id";

/// One day of client rows for every client: binds the date, the number of users and the
/// timestamp.
const SEED_CLIENTS: &str = "INSERT INTO client_daily_usage (client_org_id, usage_date, \
     total_tokens, input_tokens, output_tokens, total_requests, raw_cost, markup_cost, \
     unique_users, created_at, updated_at) \
     SELECT c.id, ?, 900000, 600000, 300000, 900, 1000000000, 1300000000, d.u, d.t, d.t \
     FROM client_organizations c \
     CROSS JOIN (SELECT CAST(? AS BIGINT) AS u, CAST(? AS BIGINT) AS t) d \
     WHERE c.name LIKE 'yr-%'";

type GroupSt = (Text, Nullable<Text>, BigInt, BigInt, BigInt, BigInt, BigInt);
type GroupRow = (String, Option<String>, i64, i64, i64, i64, i64);

/// The migration's back-fill of the user-month rollups, from its `up.sql`.
fn backfill_sql() -> &'static str {
    let up = include_str!(
        "../crates/orgusage-db/migrations/postgres/2026-11-29-000004_month_rollups/up.sql"
    );
    up.split(';')
        .map(str::trim)
        .map(|s| {
            s.lines()
                .skip_while(|l| l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .find(|s| s.starts_with("INSERT INTO client_user_monthly_usage"))
        .map(|s| &*Box::leak(s.into_boxed_str()))
        .expect("the back-fill statement")
}

/// Seeds `clients` clients x `users` users x `days` days ending `today`; returns the first
/// client (the one the reports read).
fn seed(
    t: &TestStore,
    conn: &mut RawConn,
    clients: u64,
    users: i64,
    days: i64,
    today: NaiveDate,
    now: i64,
) -> String {
    let ids: Vec<String> = (0..clients)
        .map(|c| common::create_client(&t.store, &format!("yr-{c:03}")))
        .collect();
    let started = std::time::Instant::now();
    let pg = t.backend() == "postgres";
    with_raw!(conn.as_ref(), |c| {
        if pg {
            c.batch_execute("SET session_replication_role = replica")
                .expect("triggers off");
        }
        let mut day = days - 1;
        while day >= 0 {
            let last = (day - 29).max(0);
            in_tx(c, |c| {
                for d in (last..=day).rev() {
                    let date = today - Duration::days(d);
                    let n = days - d;
                    stmt::<30, ()>(
                        SEED_USERS,
                        &[
                            Val::Int(users - 1),
                            Val::Date(date),
                            Val::Int(n),
                            Val::Int(now),
                        ],
                        true,
                    )
                    .execute(c)?;
                    stmt::<31, ()>(
                        SEED_MODELS,
                        &[Val::Date(date), Val::Int(n), Val::Int(now)],
                        true,
                    )
                    .execute(c)?;
                    stmt::<32, ()>(
                        SEED_CLIENTS,
                        &[Val::Date(date), Val::Int(users), Val::Int(now)],
                        true,
                    )
                    .execute(c)?;
                }
                Ok(())
            })
            .expect("seed days");
            day = last - 1;
        }
        if pg {
            c.batch_execute("SET session_replication_role = origin")
                .expect("triggers on");
            c.batch_execute(backfill_sql()).expect("back-fill");
            // One statement each: VACUUM cannot run inside the implicit transaction of a
            // multi-statement string.
            for table in [
                "client_user_daily_usage",
                "client_model_daily_usage",
                "client_daily_usage",
                "client_user_monthly_usage",
            ] {
                c.batch_execute(&format!("VACUUM ANALYZE {table}"))
                    .expect("vacuum");
            }
        } else {
            c.batch_execute("ANALYZE").expect("analyze");
        }
    });
    eprintln!(
        "seeded {}: {clients} clients x {users} users x {days} days in {:.1?}",
        t.backend(),
        started.elapsed()
    );
    ids.into_iter().next().expect("a client")
}

#[derive(Clone, Copy, PartialEq)]
enum Report {
    Stats,
    ByUser,
    ByModel,
}

/// `floor`: the library's statements; `days`: the previous by-user read over the day rows.
fn raw_report(
    conn: RawRef<'_>,
    r: Report,
    client: &str,
    range: (NaiveDate, NaiveDate),
    days: bool,
) -> usize {
    let zone_binds = [Val::Text(client), Val::Bool(true), Val::Int(1)];
    let binds = [Val::Text(client), Val::Date(range.0), Val::Date(range.1)];
    let rollup: Vec<Val<'_>> = user_binds(range.0, range.1)
        .into_iter()
        .map(|b| match b {
            Bind::Client => Val::Text(client),
            Bind::Date(d) => Val::Date(d),
            Bind::Flag(f) => Val::Int(f),
        })
        .collect();
    with_raw!(conn, |c| {
        let zone: (String, String) = stmt::<10, (Text, Text)>(CLIENT_ZONE, &zone_binds, true)
            .get_result(c)
            .expect("zone");
        black_box(zone);
        match (r, days) {
            (Report::Stats, _) => {
                let rows: Vec<(NaiveDate, i64, i64, i64, i64)> =
                    stmt::<11, (Date, BigInt, BigInt, BigInt, BigInt)>(STATS_DAYS, &binds, true)
                        .load(c)
                        .expect("stats");
                rows.len()
            }
            (Report::ByUser, false) => {
                let rows: Vec<(GroupRow, i64)> =
                    stmt::<12, (GroupSt, BigInt)>(USER_REPORT, &rollup, true)
                        .load(c)
                        .expect("by user");
                rows.len()
            }
            (Report::ByUser, true) => {
                let rows: Vec<GroupRow> = stmt::<14, GroupSt>(BY_USER_DAYS, &binds, true)
                    .load(c)
                    .expect("by user, days");
                rows.len()
            }
            (Report::ByModel, _) => {
                let rows: Vec<GroupRow> = stmt::<13, GroupSt>(BY_MODEL, &binds, true)
                    .load(c)
                    .expect("by model");
                rows.len()
            }
        }
    })
}

fn bench_store(c: &mut Criterion, t: &TestStore, clients: u64) {
    let (today, now) = common::today_and_now(t);
    let mut conn = RawConn::open(t);
    let (users, days) = if common::full_run() {
        (300, 365)
    } else {
        (4, 40)
    };
    let client = seed(t, &mut conn, clients, users, days, today, now);
    let span = |n: i64| (today - Duration::days(n.min(days) - 1), today);
    let (d90, d365) = (span(90), span(365));
    // The library and both references agree before anything is measured.
    let usage = t.store.usage();
    for range in [d90, d365] {
        let lib = usage
            .get_usage_by_user(&client, Some(range.0), Some(range.1))
            .expect("by user");
        assert_eq!(lib.len() as i64, users);
        assert_eq!(
            lib.iter().map(|u| u.days_active).sum::<i64>(),
            users * (range.1 - range.0).num_days().saturating_add(1)
        );
        let n = raw_report(conn.as_ref(), Report::ByUser, &client, range, false);
        let m = raw_report(conn.as_ref(), Report::ByUser, &client, range, true);
        assert_eq!((n, m), (lib.len(), lib.len()));
    }
    let library = |report: Report, range: (NaiveDate, NaiveDate)| match report {
        Report::Stats => {
            black_box(usage.get_usage_stats_by_client_blocking(&client, None)).expect("stats");
        }
        Report::ByUser => {
            black_box(usage.get_usage_by_user(&client, Some(range.0), Some(range.1)))
                .expect("by user");
        }
        Report::ByModel => {
            black_box(usage.get_usage_by_model(&client, Some(range.0), Some(range.1)))
                .expect("by model");
        }
    };
    let history = (
        today
            .with_day0(0)
            .expect("day 1")
            .min(today - Duration::days(29)),
        today,
    );
    let cases = [
        ("by_user_90d", Report::ByUser, d90),
        ("by_user_365d", Report::ByUser, d365),
        ("by_model_90d", Report::ByModel, d90),
        ("by_model_365d", Report::ByModel, d365),
        ("stats", Report::Stats, history),
    ];
    if profile::enabled() {
        let n = if common::full_run() { 60 } else { 2 };
        for (name, report, range) in cases {
            // The previous day-row read runs on its own: interleaved with the others it would
            // evict their pages from PostgreSQL's shared buffers (128 MB here) on every round,
            // and whichever ran next would pay for it.
            let timings = profile::interleaved(
                n,
                5,
                &mut [
                    ("library", &mut |_| library(report, range)),
                    ("floor", &mut |_| {
                        raw_report(conn.as_ref(), report, &client, range, false);
                    }),
                ],
            );
            profile::report(
                &format!("report_year/{}/{clients}_clients/{name}", t.backend()),
                n,
                &timings,
            );
            if report != Report::ByUser {
                continue;
            }
            let days_n = (n / 4).max(1);
            let timings = profile::interleaved(
                days_n,
                2,
                &mut [("days", &mut |_| {
                    raw_report(conn.as_ref(), report, &client, range, true);
                })],
            );
            profile::report(
                &format!("report_year/{}/{clients}_clients/{name}/days", t.backend()),
                days_n,
                &timings,
            );
        }
        return;
    }
    for (name, report, range) in cases {
        let mut g = c.benchmark_group(format!(
            "report_year/{}/{clients}_clients/{name}",
            t.backend()
        ));
        g.bench_function("library", |b| b.iter(|| library(report, range)));
        g.bench_function("floor", |b| {
            b.iter(|| raw_report(conn.as_ref(), report, &client, range, false))
        });
        if report == Report::ByUser {
            g.bench_function("days", |b| {
                b.iter(|| raw_report(conn.as_ref(), report, &client, range, true))
            });
        }
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    if profile::enabled() {
        profile::install();
    }
    let sizes: &[u64] = if common::full_run() {
        &[20, 100]
    } else {
        &[2, 3]
    };
    let only = std::env::var("ORGUSAGE_BENCH_YEAR_CLIENTS").ok();
    for &clients in sizes {
        if only.as_deref().is_some_and(|o| o != clients.to_string()) {
            continue;
        }
        // One fresh database per size and backend, dropped (and its files removed) after it.
        let backend = std::env::var("ORGUSAGE_BENCH_YEAR_BACKEND").ok();
        for t in common::stores() {
            if backend.as_deref().is_some_and(|b| b != t.backend()) {
                continue;
            }
            bench_store(c, &t, clients);
        }
    }
}

criterion_group! {
    name = report_year;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(report_year);
