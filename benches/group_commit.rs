//! Group commit: 1, 2, 8 and 32 concurrent callers of `record_usage` on one store, all records of
//! one client (`one_client`) or spread over eight (`8_clients`), on SQLite (file, WAL) and
//! PostgreSQL (when reachable). Three variants per point, measured in the same run:
//!
//! * `grouped`: a store opened with `StoreConfig::group_commit(true)`;
//! * `ungrouped`: the default store, one transaction per record;
//! * `floor`: the per-call floor (`common::floor`), each caller on its own dedicated connection,
//!   one transaction per record (SQLite callers queue on a process mutex like the library's
//!   write gate).
//!
//! Each caller sends a fixed number of records per iteration (`iter_custom`); throughput is in
//! records per second.
//!
//! The machine and its PostgreSQL server are shared, and their speed swings within seconds, so
//! criterion's back-to-back measurements of two variants can differ by more than the variants
//! do. `ORGUSAGE_BENCH_PROFILE=1` instead runs the three variants of each point in alternating
//! rounds (round `r` of each in turn) and prints records per second and the ratios: the figures
//! `docs/performance.md` quotes.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use orgusage::db::SqliteSynchronous;
use orgusage::{Store, StoreConfig};

use common::RawConn;
use common::floor::{Req, floor_record};

/// Records per caller and iteration.
const PER_CALLER: u64 = 4;
const CALLERS: [usize; 4] = [1, 2, 8, 32];

fn benches(c: &mut Criterion) {
    for t in common::stores() {
        let (date, now) = common::today_and_now(&t);
        let clients: Vec<String> = (0..9)
            .map(|k| common::create_client(&t.store, &format!("gc-{k}")))
            .collect();
        let reqs: Vec<Vec<Req>> = clients
            .iter()
            .map(|id| {
                (0..30 * 12)
                    .map(|k| Req::new(id, k / 12, k % 12, date))
                    .collect()
            })
            .collect();
        let pick = |scenario: &str, caller: usize, i: u64| -> &Req {
            let i = i as usize;
            let client = if scenario == "one_client" {
                0
            } else {
                1 + caller % 8
            };
            &reqs[client][((caller * 4 + i) % 30) * 12 + (caller + i * 5) % 12]
        };
        // SQLite's durability level for all three variants: NORMAL (the test stores' level) unless
        // ORGUSAGE_BENCH_SQLITE_SYNC=FULL (the library's default, an fsync per commit).
        let full = std::env::var("ORGUSAGE_BENCH_SQLITE_SYNC")
            .is_ok_and(|v| v.eq_ignore_ascii_case("full"));
        let level = if full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let open = |group: bool| {
            Store::open(
                StoreConfig::new(t.url.clone())
                    .clock(t.clock.clone())
                    .sqlite_synchronous(level)
                    .group_commit(group),
            )
            .expect("bench store")
        };
        let (grouped, ungrouped) = (open(true), open(false));
        let sqlite = t.backend() == "sqlite";
        let gate = Mutex::new(());
        let pragmas = common::sqlite_pragmas(level.pragma());
        let conns: Vec<Mutex<RawConn>> = (0..32)
            .map(|_| Mutex::new(RawConn::open_with(&t, &pragmas)))
            .collect();
        if common::profile::enabled() {
            let rounds = if common::full_run() { 12 } else { 1 };
            for scenario in ["one_client", "8_clients"] {
                for callers in CALLERS {
                    let per = if sqlite { 64 } else { 16 };
                    let mut took = [Duration::ZERO; 3];
                    for _ in 0..rounds {
                        for (v, store) in [&grouped, &ungrouped].into_iter().enumerate() {
                            took[v] += common::run_parallel(callers, per, &|k, i| {
                                let r = pick(scenario, k, i);
                                store.usage().record_usage(&r.record).expect("record");
                            });
                        }
                        took[2] += common::run_parallel(callers, per, &|k, i| {
                            let r = pick(scenario, k, i);
                            let mut conn = conns[k].lock().expect("conn");
                            let _turn = sqlite.then(|| gate.lock().expect("gate"));
                            floor_record(conn.as_ref(), r, date, now);
                        });
                    }
                    let records = (rounds * per * callers as u64) as f64;
                    let rate = |d: Duration| records / d.as_secs_f64();
                    println!(
                        "group_commit/{}{}/{scenario}/{callers}: grouped {:.0}/s, ungrouped {:.0}/s, \
                         floor {:.0}/s; grouped/floor {:.2}, ungrouped/floor {:.2}, grouped/ungrouped {:.2}",
                        t.backend(),
                        if sqlite {
                            format!("-{}", level.pragma())
                        } else {
                            String::new()
                        },
                        rate(took[0]),
                        rate(took[1]),
                        rate(took[2]),
                        rate(took[0]) / rate(took[2]),
                        rate(took[1]) / rate(took[2]),
                        rate(took[0]) / rate(took[1]),
                    );
                }
            }
            continue;
        }
        for scenario in ["one_client", "8_clients"] {
            let mut g = c.benchmark_group(format!("group_commit/{}/{scenario}", t.backend()));
            g.sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(3));
            for callers in CALLERS {
                g.throughput(Throughput::Elements(PER_CALLER * callers as u64));
                for (name, store) in [("grouped", &grouped), ("ungrouped", &ungrouped)] {
                    g.bench_function(format!("{callers}/{name}"), |b| {
                        b.iter_custom(|iters| {
                            common::run_parallel(callers, iters * PER_CALLER, &|k, i| {
                                let r = pick(scenario, k, i);
                                store.usage().record_usage(&r.record).expect("record");
                            })
                        })
                    });
                }
                g.bench_function(format!("{callers}/floor"), |b| {
                    b.iter_custom(|iters| {
                        common::run_parallel(callers, iters * PER_CALLER, &|k, i| {
                            let r = pick(scenario, k, i);
                            let mut conn = conns[k].lock().expect("conn");
                            let _turn = sqlite.then(|| gate.lock().expect("gate"));
                            floor_record(conn.as_ref(), r, date, now);
                        })
                    })
                });
            }
            g.finish();
        }
    }
}

criterion_group! {
    name = group_commit;
    config = common::criterion_config();
    targets = benches
}
criterion_main!(group_commit);
