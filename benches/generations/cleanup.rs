//! The cleanup half of the generation benches: 1,000,000 old ledger rows deleted by the
//! library, by its batch statements alone, and by one set-based `DELETE`, with memory readings.

use super::*;

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

/// The library's statement for PostgreSQL (its `?` placeholders are numbered by the floor's
/// binds, as by the library's).
fn pg_delete_batch() -> &'static str {
    POSTGRES_DELETE_BATCH
}

/// The library's batch statements alone: `DELETE … RETURNING` of one library-sized batch per
/// transaction until a short batch.
fn floor_batched(conn: &mut RawConn, cutoff: i64) -> i64 {
    let batch = match conn.as_ref() {
        #[cfg(feature = "sqlite")]
        RawRef::Sqlite(_) => SQLITE_CLEANUP_BATCH,
        #[cfg(feature = "postgres")]
        RawRef::Pg(_) => CLEANUP_BATCH,
    };
    let binds = [Val::Int(cutoff), Val::Int(batch)];
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
                stmt::<22, Row>(pg_delete_batch(), &binds, true).load(c)
            }),
        }
        .expect("delete batch");
        deleted += rows.len() as i64;
        black_box(rows.iter().map(|r| r.1).sum::<i64>());
        if rows.len() < batch as usize {
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

pub(crate) fn cleanup_bench(t: &TestStore) {
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
pub(crate) fn selected(name: &str) -> bool {
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
