//! The mAI importer against raw-SQL floors measured in the same run (printed, not a criterion
//! benchmark: every run needs a fresh target).
//!
//! * Source: an original SQLite database with 1,000,200 daily rows (50 clients × 3,334 days,
//!   each day one client row, 3 user rows and 2 model rows), built from the original DDL.
//! * `import/<target>/library`: `orgusage_import::import` into a fresh, migrated target
//!   (SQLite file, or PostgreSQL when reachable), including its verification.
//! * `import/sqlite/floor_insert_select`: the same rows copied with three set-based
//!   `INSERT … SELECT` over an `ATTACH`ed source (floats scaled by `ROUND(x * 1e9)`), one
//!   transaction: the fastest any SQLite import could be.
//! * `import/<target>/floor_bulk_insert`: the same rows read in 10,000-row pages and written as
//!   500-row multi-row `INSERT`s of literal values, one transaction per page: what any client-side
//!   copy between two databases costs.
//!
//! The SQLite floors use the library's connection pragmas (WAL, `synchronous = NORMAL`,
//! `foreign_keys = ON`: the usage tables' foreign keys are checked for every row, as in the
//! library) plus the importer's 64 MiB page cache.
//!
//! Each is run once per mode, with the process's RSS before / peak during (`VmHWM` reset via
//! `/proc/self/clear_refs`) / after. Smoke mode (`cargo test --benches`): 5 clients × 20 days.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use orgusage_import::{ImportOptions, Target, fixture, import};

fn full_run() -> bool {
    !cfg!(debug_assertions) && std::env::args().any(|a| a == "--bench")
}

fn mem_kib(field: &str) -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

fn measure(label: &str, rows: u64, f: impl FnOnce()) -> Duration {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = mem_kib("VmRSS:");
    let t = Instant::now();
    f();
    let took = t.elapsed();
    println!(
        "{label:<42} {:>9.2} s {:>10.0} rows/s   RSS before {:>7} KiB, peak {:>7} KiB, after {:>7} KiB",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        before,
        mem_kib("VmHWM:"),
        mem_kib("VmRSS:")
    );
    took
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    d: String,
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    t: i64,
    #[diesel(sql_type = BigInt)]
    r: i64,
    #[diesel(sql_type = Double)]
    rc: f64,
    #[diesel(sql_type = Double)]
    mc: f64,
}

/// The floor's conversion: the same once-rounding as the library, without its checks.
fn units(x: f64) -> i64 {
    // Bench floor only: the library converts through Decimal (exact), this is the cheap bound.
    (x * 1e9).round() as i64
}

/// Pages of the source table read by id and written as literal multi-row INSERTs.
fn bulk_copy(
    src: &mut diesel::SqliteConnection,
    dst: &mut dyn SimpleConnection,
    table: &str,
    key: &str,
) {
    let mut last = String::new();
    loop {
        let sql = format!(
            "SELECT id, client_org_id AS c, usage_date AS d, {key} AS k, total_tokens AS t, \
             total_requests AS r, raw_cost AS rc, markup_cost AS mc FROM {table} \
             WHERE id > '{}' ORDER BY id LIMIT 10000",
            last.replace('\'', "''")
        );
        let page: Vec<Row> = diesel::sql_query(sql).load(src).expect("source page");
        let Some(l) = page.last() else { break };
        last = l.id.clone();
        let mut stmts = String::from("BEGIN;");
        for chunk in page.chunks(500) {
            let (cols, extra) = match table {
                "client_daily_usage" => ("client_org_id, usage_date, unique_users", ""),
                "client_user_daily_usage" => (
                    "client_org_id, usage_date, user_id, openrouter_user_id",
                    ", ''",
                ),
                _ => ("client_org_id, usage_date, model_name", ""),
            };
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let k = if table == "client_daily_usage" {
                        "0".to_string()
                    } else {
                        format!("'{}'", r.k)
                    };
                    format!(
                        "('{}', '{}', {k}{extra}, {}, {}, {}, {}, 1000, 1000)",
                        r.c,
                        r.d,
                        r.t,
                        r.r,
                        units(r.rc),
                        units(r.mc)
                    )
                })
                .collect();
            stmts.push_str(&format!(
                "INSERT INTO {table} ({cols}, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES {};",
                values.join(",")
            ));
        }
        stmts.push_str("COMMIT;");
        dst.batch_execute(&stmts).expect("floor insert");
        if page.len() < 10000 {
            break;
        }
    }
}

fn copy_clients(dst: &mut dyn SimpleConnection, clients: usize) {
    let values: Vec<String> = (0..clients)
        .map(|c| format!("('client_{c}', 'Client {c}', 'sk-or-{c}', 1300000000, 'Europe/Warsaw', TRUE, 1000, 1000)"))
        .collect();
    dst.batch_execute(&format!(
        "INSERT INTO client_organizations (id, name, openrouter_api_key, markup_rate, timezone, is_active, created_at, updated_at) VALUES {}",
        values.join(",")
    ))
    .expect("clients");
}

fn floor_bulk(source: &str, target_url: &str, clients: usize) {
    let mut src = diesel::SqliteConnection::establish(source).expect("source");
    // The same 64 MiB page cache the importer gives its SQLite connections.
    src.batch_execute("PRAGMA cache_size = -65536;")
        .expect("cache");
    orgusage_db::Database::connect(&orgusage_db::DbConfig::new(target_url)).expect("migrate");
    #[cfg(feature = "postgres")]
    if target_url.starts_with("postgres") {
        let mut dst = diesel::PgConnection::establish(target_url).expect("pg");
        copy_clients(&mut dst, clients);
        for (t, k) in [
            ("client_daily_usage", "''"),
            ("client_user_daily_usage", "user_id"),
            ("client_model_daily_usage", "model_name"),
        ] {
            bulk_copy(&mut src, &mut dst, t, k);
        }
        return;
    }
    let mut dst = diesel::SqliteConnection::establish(target_url).expect("sqlite");
    dst.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
    )
    .expect("pragmas");
    copy_clients(&mut dst, clients);
    for (t, k) in [
        ("client_daily_usage", "''"),
        ("client_user_daily_usage", "user_id"),
        ("client_model_daily_usage", "model_name"),
    ] {
        bulk_copy(&mut src, &mut dst, t, k);
    }
}

fn floor_insert_select(source: &str, target_url: &str) {
    orgusage_db::Database::connect(&orgusage_db::DbConfig::new(target_url)).expect("migrate");
    let mut dst = diesel::SqliteConnection::establish(target_url).expect("sqlite");
    let money = |c: &str| format!("CAST(ROUND({c} * 1000000000) AS INTEGER)");
    dst.batch_execute(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA foreign_keys = ON; ATTACH '{source}' AS src; BEGIN;
         INSERT INTO client_organizations (id, name, openrouter_api_key, markup_rate, timezone, is_active, created_at, updated_at)
           SELECT id, name, openrouter_api_key, {mr}, 'Europe/Warsaw', is_active, created_at, updated_at FROM src.client_organizations;
         INSERT INTO client_daily_usage (client_org_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at)
           SELECT client_org_id, usage_date, total_tokens, total_requests, {rc}, {mc}, created_at, updated_at FROM src.client_daily_usage;
         INSERT INTO client_user_daily_usage (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at)
           SELECT client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, total_requests, {rc}, {mc}, created_at, updated_at FROM src.client_user_daily_usage;
         INSERT INTO client_model_daily_usage (client_org_id, usage_date, model_name, provider, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at)
           SELECT client_org_id, usage_date, model_name, provider, total_tokens, total_requests, {rc}, {mc}, created_at, updated_at FROM src.client_model_daily_usage;
         COMMIT; DETACH src;",
        mr = money("markup_rate"),
        rc = money("raw_cost"),
        mc = money("markup_cost"),
    ))
    .expect("insert select");
}

/// A fresh PostgreSQL schema URL (dropped by the returned guard), or `None`.
#[cfg(feature = "postgres")]
fn pg_schema(tag: &str) -> Option<(String, impl Drop)> {
    struct G(String);
    impl Drop for G {
        fn drop(&mut self) {
            let _ = orgusage_db::admin::pg_batch_execute(
                &orgusage_testkit::postgres_url(),
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0),
            );
        }
    }
    let base = orgusage_testkit::postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    if let Err(e) =
        orgusage_db::admin::pg_batch_execute(&format!("{base}{sep}connect_timeout=3"), "SELECT 1")
    {
        println!("SKIP postgres: {e}");
        return None;
    }
    let schema = format!("bench_import_{tag}_{}", std::process::id());
    orgusage_db::admin::pg_batch_execute(
        &base,
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    )
    .ok()?;
    Some((
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        G(schema),
    ))
}

fn bench_import(_c: &mut Criterion) {
    let (clients, days) = if full_run() { (50, 3334) } else { (5, 20) };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let source = path("webui.db");
    fixture::create(
        &source,
        &fixture::Shape {
            timezone: true,
            live_counters: false,
            ledger: false,
        },
    )
    .expect("ddl");
    let t = Instant::now();
    let rows = fixture::seed_bulk(&source, clients, days, 3, 2).expect("seed");
    println!(
        "\nimport bench: {rows} daily rows ({clients} clients x {days} days x (1 + 3 users + 2 models)), seeded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let opts = ImportOptions::default();
    let lib_sqlite = measure("import/sqlite/library", rows, || {
        let r = import(
            &source,
            &Target::Separate(path("lib.db")),
            &opts,
            &mut |_| {},
        )
        .expect("import");
        assert!(r.verified());
    });
    let select = measure("import/sqlite/floor_insert_select", rows, || {
        floor_insert_select(&source, &path("floor1.db"))
    });
    let bulk = measure("import/sqlite/floor_bulk_insert", rows, || {
        floor_bulk(&source, &path("floor2.db"), clients)
    });
    println!(
        "import/sqlite: library / insert_select = {:.2}x, library / bulk_insert = {:.2}x",
        lib_sqlite.as_secs_f64() / select.as_secs_f64(),
        lib_sqlite.as_secs_f64() / bulk.as_secs_f64()
    );
    #[cfg(feature = "postgres")]
    if let (Some((lib_url, _g1)), Some((floor_url, _g2))) = (pg_schema("lib"), pg_schema("floor")) {
        let lib = measure("import/postgres/library", rows, || {
            let r = import(
                &source,
                &Target::Separate(lib_url.clone()),
                &opts,
                &mut |_| {},
            )
            .expect("import");
            assert!(r.verified());
        });
        let floor = measure("import/postgres/floor_bulk_insert", rows, || {
            floor_bulk(&source, &floor_url, clients)
        });
        println!(
            "import/postgres: library / bulk_insert = {:.2}x",
            lib.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
