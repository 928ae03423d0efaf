//! PLN conversion of one client-month: `monthly_statement` on SQLite (file, WAL) and PostgreSQL
//! (when reachable), each beside a raw-SQL floor measured in the same run.
//!
//! * `library_warm`: a statement with the rates in the in-process cache (the steady state of a
//!   long-running host): the client look-up, the month's day rows, the exact arithmetic.
//! * `library_cold`: the cache cleared before each statement, so the month's rates are read from
//!   `daily_exchange_rates` as well (a fresh instance). NBP is never called: the rates were
//!   stored by a warm-up run from an in-memory source.
//! * `floor_warm` / `floor_cold`: the same statements (`floor_cold` adds the rate query) as plain
//!   SQL on a dedicated connection, decoded into tuples, plus the same i128 arithmetic and one
//!   rounding. What the library adds over them is its pool checkout, diesel's query builder,
//!   the cache and building the typed statement.
//! * `arithmetic_only`: the exact conversion of 31 days without any I/O.
//!
//! The month has 31 days of usage (3 users, 3 models, ~20 requests a day) recorded through the
//! library. The floor's PLN total is checked against the library's before measuring.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::sql_types::{BigInt, Bool, Date, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use orgusage::nbp::StaticRates;
use orgusage::pln::{PlnBilling, PlnConfig, PlnSum};
use orgusage::{ClientOrganizationForm, Decimal, UsageRecord};
use orgusage_testkit::TestStore;

#[derive(QueryableByName)]
struct Header {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
}

#[derive(QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    usage_date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    total_tokens: i64,
    #[diesel(sql_type = BigInt)]
    total_requests: i64,
    #[diesel(sql_type = BigInt)]
    raw_cost: i64,
    #[diesel(sql_type = BigInt)]
    markup_cost: i64,
}

#[derive(QueryableByName)]
struct Rate {
    #[diesel(sql_type = Date)]
    rate_date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    rate: i64,
    #[diesel(sql_type = Text)]
    table_no: String,
    #[diesel(sql_type = Date)]
    effective_date: NaiveDate,
}

/// The floor's SQL, with `?` placeholders (SQLite) or `$n` (PostgreSQL).
struct Sql {
    header: &'static str,
    days: &'static str,
    rates: &'static str,
}

const SQLITE_SQL: Sql = Sql {
    header: "SELECT name, timezone, is_active FROM client_organizations WHERE id = ? LIMIT 1",
    days: "SELECT usage_date, total_tokens, total_requests, raw_cost, markup_cost \
           FROM client_daily_usage WHERE client_org_id = ? AND usage_date BETWEEN ? AND ? \
           ORDER BY usage_date",
    rates: "SELECT rate_date, rate, table_no, effective_date FROM daily_exchange_rates \
            WHERE currency_from = ? AND currency_to = ? AND rate_rule = ? \
            AND rate_date BETWEEN ? AND ? ORDER BY rate_date",
};

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
const PG_SQL: Sql = Sql {
    header: "SELECT name, timezone, is_active FROM client_organizations WHERE id = $1 LIMIT 1",
    days: "SELECT usage_date, total_tokens, total_requests, raw_cost, markup_cost \
           FROM client_daily_usage WHERE client_org_id = $1 AND usage_date BETWEEN $2 AND $3 \
           ORDER BY usage_date",
    rates: "SELECT rate_date, rate, table_no, effective_date FROM daily_exchange_rates \
            WHERE currency_from = $1 AND currency_to = $2 AND rate_rule = $3 \
            AND rate_date BETWEEN $4 AND $5 ORDER BY rate_date",
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The floor: the same reads and the same exact arithmetic, returning the rounded PLN total.
macro_rules! floor {
    ($conn:expr, $sql:expr, $client:expr, $rates:expr, $cached:expr) => {{
        let conn = $conn;
        let (first, last) = (date(2025, 7, 1), date(2025, 7, 31));
        let header: Vec<Header> = diesel::sql_query($sql.header)
            .bind::<Text, _>($client)
            .load(conn)
            .unwrap_or_default();
        let days: Vec<Day> = diesel::sql_query($sql.days)
            .bind::<Text, _>($client)
            .bind::<Date, _>(first)
            .bind::<Date, _>(last)
            .load(conn)
            .unwrap_or_default();
        let rates: &[(NaiveDate, i64)] = $rates;
        let loaded: Vec<Rate> = if $cached {
            Vec::new()
        } else {
            diesel::sql_query($sql.rates)
                .bind::<Text, _>("USD")
                .bind::<Text, _>("PLN")
                .bind::<Text, _>("previous_business_day")
                .bind::<Date, _>(first)
                .bind::<Date, _>(last)
                .load(conn)
                .unwrap_or_default()
        };
        black_box(
            loaded
                .iter()
                .map(|r| (&r.table_no, r.effective_date))
                .count(),
        );
        let mut total = PlnSum::default();
        for (i, day) in days.iter().enumerate() {
            let rate = if $cached {
                rates.get(i).map(|r| r.1)
            } else {
                loaded
                    .get(i)
                    .filter(|r| r.rate_date == day.usage_date)
                    .map(|r| r.rate)
            };
            let _ = total.add(day.markup_cost, rate.unwrap_or(0));
            black_box((day.total_tokens, day.total_requests, day.raw_cost));
        }
        black_box(header.first().map(|h| (&h.name, &h.timezone, h.is_active)));
        total.rounded().unwrap_or_default()
    }};
}

fn seed(t: &TestStore) -> (String, PlnBilling) {
    let client = t
        .store
        .clients()
        .create_client(
            &ClientOrganizationForm::new("Bench Sp. z o.o."),
            &"sk-or-v1-bench-pln-0000001".into(),
            None,
        )
        .map(|c| c.id)
        .unwrap_or_default();
    let models = [
        "anthropic/claude-sonnet-4",
        "openai/gpt-4.1",
        "google/gemini-2.5-flash",
    ];
    for day in date(2025, 7, 1).iter_days().take(31) {
        for i in 0..20_i64 {
            let model = models[(i % 3) as usize];
            let rec = UsageRecord::new(&client, format!("u{}", i % 3), "or-u", model)
                .on(day)
                .tokens(1000 + i, 200)
                .raw_cost(Decimal::new(1_234_567 + i * 1_001, 9));
            let _ = t.store.usage().record_usage(&rec);
        }
    }
    let source = Arc::new(StaticRates::on_polish_business_days(
        "USD",
        date(2025, 5, 1),
        date(2025, 8, 31),
        Decimal::new(37654, 4),
    ));
    let pln = t.store.pln(source, PlnConfig::default());
    let pln = pln.unwrap_or_else(|e| panic!("pln billing: {e}"));
    (client, pln)
}

fn bench_backend(c: &mut Criterion, t: &TestStore) {
    let (client, pln) = seed(t);
    // After the month, so every day's rate is final and the warm-up stores all 31 of them.
    let after = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 8, 6, 10, 0, 0);
    t.clock.set(after.single().unwrap_or_default());
    let statement = pln
        .monthly_statement(&client, 2025, 7)
        .unwrap_or_else(|e| panic!("statement: {e}"));
    assert!(!statement.any_provisional && statement.lines.len() == 31);
    let cached: Vec<(NaiveDate, i64)> = statement
        .lines
        .iter()
        .map(|l| {
            (
                l.date,
                orgusage::money::rate_to_units("rate", l.rate).unwrap_or(0),
            )
        })
        .collect();
    let backend = t.backend();
    let mut g = c.benchmark_group(format!("pln_month/{backend}"));
    g.bench_function("library_warm", |b| {
        b.iter(|| {
            black_box(
                pln.monthly_statement(&client, 2025, 7)
                    .map(|s| s.totals.pln),
            )
        })
    });
    g.bench_function("library_cold", |b| {
        b.iter(|| {
            pln.clear_cache();
            black_box(
                pln.monthly_statement(&client, 2025, 7)
                    .map(|s| s.totals.pln),
            )
        })
    });
    match backend {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use diesel::connection::SimpleConnection;
            let mut conn =
                diesel::SqliteConnection::establish(&t.url).unwrap_or_else(|e| panic!("{e}"));
            let _ = conn.batch_execute("PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL;");
            for cached_rates in [true, false] {
                let got = floor!(&mut conn, SQLITE_SQL, &client, &cached, cached_rates);
                assert_eq!(got, statement.totals.pln, "floor and library agree");
            }
            g.bench_function("floor_warm", |b| {
                b.iter(|| floor!(&mut conn, SQLITE_SQL, &client, &cached, true))
            });
            g.bench_function("floor_cold", |b| {
                b.iter(|| floor!(&mut conn, SQLITE_SQL, &client, &cached, false))
            });
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let mut conn =
                diesel::PgConnection::establish(&t.url).unwrap_or_else(|e| panic!("{e}"));
            for cached_rates in [true, false] {
                let got = floor!(&mut conn, PG_SQL, &client, &cached, cached_rates);
                assert_eq!(got, statement.totals.pln, "floor and library agree");
            }
            g.bench_function("floor_warm", |b| {
                b.iter(|| floor!(&mut conn, PG_SQL, &client, &cached, true))
            });
            g.bench_function("floor_cold", |b| {
                b.iter(|| floor!(&mut conn, PG_SQL, &client, &cached, false))
            });
        }
        _ => {}
    }
    let units: Vec<(i64, i64)> = statement
        .lines
        .iter()
        .zip(&cached)
        .map(|(l, r)| {
            (
                orgusage::money::amount_to_units(l.markup_usd).unwrap_or(0),
                r.1,
            )
        })
        .collect();
    g.bench_function("arithmetic_only", |b| {
        b.iter(|| {
            let mut sum = PlnSum::default();
            for (markup, rate) in &units {
                let _ = sum.add(*markup, *rate);
            }
            black_box(sum.rounded())
        })
    });
    g.finish();
}

fn pln_month(c: &mut Criterion) {
    let mut stores = vec![orgusage_testkit::sqlite()];
    #[cfg(feature = "postgres")]
    {
        let url = orgusage_testkit::postgres_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        match diesel::PgConnection::establish(&format!("{url}{sep}connect_timeout=3")) {
            Ok(_) => stores.extend(orgusage_testkit::postgres()),
            Err(e) => eprintln!("SKIP postgres: {e}"),
        }
    }
    for t in &stores {
        bench_backend(c, t);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = pln_month }
criterion_main!(benches);
