//! Where the time goes, statement by statement: with `ORGUSAGE_BENCH_PROFILE=1` the benches
//! install a diesel instrumentation on every new connection (the library's pooled ones and the
//! floors' own), time each statement from diesel's `StartQuery` to `FinishQuery` event (for
//! statements prepared on each call that includes the prepare), count `CacheQuery` events
//! (statements diesel put in its prepared-statement cache; `BEGIN`, `COMMIT` are simple queries and
//! show as uncached), print a table and skip the criterion
//! measurements (the hook itself costs a little).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};

/// `true` when `ORGUSAGE_BENCH_PROFILE=1`.
pub fn enabled() -> bool {
    std::env::var("ORGUSAGE_BENCH_PROFILE").is_ok_and(|v| v == "1")
}

#[derive(Default, Clone)]
struct Stat {
    calls: u64,
    total: Duration,
    sql: String,
}

static STATS: Mutex<BTreeMap<(&'static str, String), Stat>> = Mutex::new(BTreeMap::new());
/// `CacheQuery` events per scope and statement, kept across [`reset`].
static CACHED: Mutex<BTreeMap<(&'static str, String), u64>> = Mutex::new(BTreeMap::new());

thread_local! {
    // Unscoped work (fixtures, checks) is the library's: its connections cache statements there.
    static SCOPE: Cell<&'static str> = const { Cell::new("library") };
}

/// Attributes the statements run by `f` on this thread to `scope`.
pub fn scoped<T>(scope: &'static str, f: impl FnOnce() -> T) -> T {
    let old = SCOPE.with(|s| s.replace(scope));
    let out = f();
    SCOPE.with(|s| s.set(old));
    out
}

/// A short label of a statement: `INSERT INTO table`, `UPDATE table`, `SELECT … FROM table`.
fn label(sql: &str) -> String {
    let sql: String = sql
        .split(" -- binds")
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != '"' && *c != '`')
        .collect();
    let words: Vec<&str> = sql.split_whitespace().collect();
    let after = |w: &str| {
        words
            .iter()
            .position(|x| x.eq_ignore_ascii_case(w))
            .and_then(|i| words.get(i + 1))
            .map(|t| t.trim_end_matches(['(', ',']).to_string())
            .unwrap_or_default()
    };
    match words.first().map(|w| w.to_ascii_uppercase()).as_deref() {
        Some("INSERT") => format!("INSERT INTO {}", after("INTO")),
        Some("UPDATE") => format!("UPDATE {}", words.get(1).copied().unwrap_or_default()),
        Some("SELECT") if words.len() > 2 => format!("SELECT … FROM {}", after("FROM")),
        _ => sql.chars().take(40).collect(),
    }
}

struct Probe {
    current: Option<((&'static str, String), String, Instant)>,
}

impl Instrumentation for Probe {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let sql = query.to_string();
                let key = (SCOPE.with(Cell::get), label(&sql));
                self.current = Some((key, sql, Instant::now()));
            }
            InstrumentationEvent::FinishQuery { .. } => {
                if let Some((key, sql, start)) = self.current.take() {
                    let took = start.elapsed();
                    let mut stats = STATS.lock().unwrap_or_else(|p| p.into_inner());
                    let s = stats.entry(key).or_default();
                    s.calls += 1;
                    s.total += took;
                    if s.sql.is_empty() {
                        s.sql = sql.split(" -- binds").next().unwrap_or_default().into();
                    }
                }
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                let key = (SCOPE.with(Cell::get), label(sql));
                let mut cached = CACHED.lock().unwrap_or_else(|p| p.into_inner());
                *cached.entry(key).or_default() += 1;
            }
            _ => {}
        }
    }
}

fn probe() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Probe { current: None }))
}

/// Instruments every connection opened from now on.
pub fn install() {
    set_default_instrumentation(probe).expect("install instrumentation");
}

/// Forgets what was counted so far (after warming up).
pub fn reset() {
    STATS.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Wall time of one scope's operations.
pub struct Timing {
    scope: &'static str,
    total: Duration,
    p50: Duration,
    p99: Duration,
}

/// Runs the scopes' operations interleaved (operation `i` of every scope in turn, so that a
/// change of machine load hits all of them alike), `warm` untimed rounds first; times each
/// operation.
pub fn interleaved(
    n: u64,
    warm: u64,
    ops: &mut [(&'static str, &mut dyn FnMut(u64))],
) -> Vec<Timing> {
    for i in 0..warm {
        for (scope, f) in ops.iter_mut() {
            scoped(scope, || f(i));
        }
    }
    reset();
    let mut took: Vec<Vec<Duration>> = vec![Vec::with_capacity(n as usize); ops.len()];
    for i in warm..warm + n {
        for ((scope, f), took) in ops.iter_mut().zip(&mut took) {
            let start = Instant::now();
            scoped(scope, || f(i));
            took.push(start.elapsed());
        }
    }
    ops.iter()
        .zip(took)
        .map(|((scope, _), mut took)| {
            took.sort();
            let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
            Timing {
                scope,
                total: took.iter().sum(),
                p50: at(0.5),
                p99: at(0.99),
            }
        })
        .collect()
}

/// Prints per-statement mean time of each scope (`ops` operations each), the statements' sum
/// and the rest (time outside any statement: pool, gate, domain code, and this probe's own
/// formatting of each statement), then with `ORGUSAGE_BENCH_PROFILE_SQL=1` each SQL text once.
pub fn report(title: &str, ops: u64, timings: &[Timing]) {
    let stats = STATS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let cached = CACHED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / ops as f64;
    let one = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "\n=== profile: {title} ({ops} interleaved operations per scope; µs per operation) ==="
    );
    for t in timings {
        let (scope, wall) = (t.scope, t.total);
        println!(
            "-- {scope}: mean {:.1} µs/op (p50 {:.1}, p99 {:.1}); x{:.2} of the first scope",
            us(wall),
            one(t.p50),
            one(t.p99),
            wall.as_secs_f64() / timings[0].total.as_secs_f64()
        );
        let mut in_statements = Duration::ZERO;
        for ((s, label), st) in &stats {
            if *s != scope {
                continue;
            }
            in_statements += st.total;
            let key = (scope, label.clone());
            let prepared = match cached.get(&key) {
                Some(_) => "cached  ",
                None => "uncached",
            };
            println!(
                "   {:>8.1} µs  {:>5.2} calls/op  {prepared}  {label}",
                us(st.total),
                st.calls as f64 / ops as f64,
            );
        }
        println!(
            "   {:>8.1} µs  in statements; {:.1} µs outside them",
            us(in_statements),
            us(wall.saturating_sub(in_statements))
        );
    }
    if std::env::var("ORGUSAGE_BENCH_PROFILE_SQL").is_ok_and(|v| v == "1") {
        for ((s, label), st) in &stats {
            println!("[{s}] {label}:\n    {}", st.sql);
        }
    }
}
