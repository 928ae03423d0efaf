//! kill -9 of writer processes at random points, on SQLite (one file, several processes) and
//! PostgreSQL. The test binary re-runs itself as child processes (the `child_process` test acts
//! only when `ORGUSAGE_FAULT_CHILD` is set), as `tests/multiprocess.rs` does.
//!
//! * `record_usage`: each child prints `ack` (flushed) after every `Ok`; the parent kills it
//!   with SIGKILL once it has read a random number of acks. A transaction is all or nothing and
//!   an `Ok` means committed, so after every round `acknowledged <= stored <= acknowledged +
//!   in flight` (at most one per killed single-threaded child) and the health check is valid.
//! * `record_generation`: children killed at random points, then one fresh process replays every
//!   id: exactly one ledger row and one request per id, exact totals.
//!
//! The "random point" is a random count of acknowledgements, not a timer: the SIGKILL then lands
//! wherever the child happens to be in its next call. The seeds are printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use orgusage::{ClientOrganizationForm, GenerationOutcome, Store, StoreConfig, UsageRecord};
use orgusage_testkit::start_day as day;
use orgusage_testkit::{TestStore, backend_tests, child_test};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const CHILDREN: usize = 4;
/// Records a `record_usage` child would write if it were never killed.
const PER_CHILD: usize = 200;
const ROUNDS: usize = 3;
/// Generation ids of the replay test: round `r` works on the `r`-th third of them.
const GENERATIONS: usize = 600;
/// Ids per round.
const SLICE: usize = GENERATIONS / ROUNDS;

fn usage_record(client: &str, user: &str) -> UsageRecord {
    UsageRecord::new(
        client,
        user,
        format!("or-{user}"),
        "anthropic/claude-sonnet-4",
    )
    .on(day())
    .tokens(2, 1)
    .raw_cost(dec!(0.000000777))
}

fn generation_record(client: &str) -> UsageRecord {
    UsageRecord::new(client, "u1", "or-u1", "openai/gpt-4.1")
        .on(day())
        .tokens(10, 5)
        .raw_cost(dec!(0.0015))
}

/// The ids of round `round`, in the one order all of that round's children follow, so that they
/// race on the same id at the same time (one records it, the others get `Duplicate`).
fn generation_order(round: usize) -> Vec<usize> {
    let mut ids: Vec<usize> = (round * SLICE..(round + 1) * SLICE).collect();
    ids.rotate_left(round * 37 % SLICE);
    ids
}

/// The body of a child process: `ORGUSAGE_FAULT_CHILD=<mode>;<url>;<client>;<index>`.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var("ORGUSAGE_FAULT_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(4, ';').collect();
    let (mode, url, client, index) = (parts[0], parts[1], parts[2], parts[3]);
    let index: usize = index.parse().unwrap();
    let store = Store::open(StoreConfig::new(url).max_connections(1)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut ack = || {
        // Written and flushed only after the call returned Ok, i.e. after COMMIT.
        writeln!(out, "ack").unwrap();
        out.flush().unwrap();
    };
    match mode {
        "usage" => {
            for i in 0..PER_CHILD {
                // Hot rows shared by every process, and a user of its own.
                let user = if i % 2 == 0 {
                    "shared".to_string()
                } else {
                    format!("p{index}")
                };
                store
                    .usage()
                    .record_usage(&usage_record(client, &user))
                    .unwrap();
                ack();
            }
        }
        "generations" => {
            let rec = generation_record(client);
            // For this mode the index is the round.
            for n in generation_order(index) {
                store
                    .usage()
                    .record_generation(&format!("gen-{n}"), &rec)
                    .unwrap();
                ack();
            }
        }
        "replay" => {
            let rec = generation_record(client);
            let mut recorded = 0;
            for n in 0..GENERATIONS {
                match store
                    .usage()
                    .record_generation(&format!("gen-{n}"), &rec)
                    .unwrap()
                {
                    GenerationOutcome::Recorded(_) => recorded += 1,
                    GenerationOutcome::Duplicate => {}
                }
            }
            writeln!(out, "replay recorded={recorded}").unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// A random number below `n` from std's randomly keyed hasher (no extra dependency).
fn random_below(n: usize) -> usize {
    let r = RandomState::new().hash_one(std::process::id());
    usize::try_from(r % u64::try_from(n).unwrap()).unwrap()
}

/// Starts a child and returns its stdout lines once it has ended. With `kill_after: Some(k)`
/// the child gets SIGKILL as soon as `k` acks have been read (at once for 0); every ack it
/// flushed before dying is still read from the pipe.
fn run_child(spec: String, kill_after: Option<usize>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut child = child_test("child_process")
            .env("ORGUSAGE_FAULT_CHILD", &spec)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acks = 0;
        let mut killed = false;
        let mut kill_now = |acks: usize, child: &mut std::process::Child| {
            if !killed && kill_after == Some(acks) {
                // std's kill is SIGKILL on Unix. It fails only if the child already exited.
                let _ = child.kill();
                killed = true;
            }
        };
        kill_now(0, &mut child);
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // The harness prints "test child_process ... " without a newline before the test
            // body runs, so the first ack shares its line.
            if line.ends_with("ack") {
                acks += 1;
                kill_now(acks, &mut child);
            }
            lines.push(line);
        }
        let status = child.wait().unwrap();
        // A child either ran to the end or died of our SIGKILL; anything else (a panic on an
        // error) fails the test.
        assert!(
            status.success() || (killed && status.signal() == Some(9)),
            "child {spec:?} ended with {status:?}"
        );
        lines
    })
}

fn acks(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.ends_with("ack")).count()
}

/// The URL a child uses. On PostgreSQL it carries an application name, so that the parent can
/// wait until the killed children's server sessions are gone (see [`wait_for_sessions_gone`]).
fn child_url(t: &TestStore, tag: &str) -> String {
    match t.backend() {
        "postgres" => format!("{}&application_name={tag}", t.url),
        _ => t.url.clone(),
    }
}

/// A killed client's server session may still be finishing its last COMMIT when the child is
/// reaped; its outcome is settled only when the session has ended. So the parent waits for that
/// before it counts (SQLite has no server: a reaped process wrote all it ever will).
fn wait_for_sessions_gone(t: &TestStore, tag: &str) {
    #[cfg(feature = "postgres")]
    if t.backend() == "postgres" {
        use diesel::{Connection, QueryableByName, RunQueryDsl};
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = diesel::PgConnection::establish(&t.url).unwrap();
        let sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1";
        // Bounded, so a stuck session fails the test instead of hanging it.
        for _ in 0..3000 {
            let left: Count = diesel::sql_query(sql)
                .bind::<diesel::sql_types::Text, _>(tag)
                .get_result(&mut conn)
                .unwrap();
            if left.n == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("sessions of killed children ({tag}) did not end");
    }
    let _ = (t, tag);
}

fn new_tag() -> String {
    format!("faultkill{}", random_below(1 << 30))
}

/// Requests stored on the test day (0 before the first commit).
fn stored_requests(t: &TestStore, client: &str) -> i64 {
    let days = t
        .store
        .usage()
        .get_daily_usage(client, day(), day())
        .unwrap();
    days.first().map_or(0, |d| d.total_requests)
}

backend_tests! {
    fn kill_9_record_usage_writers_loses_nothing_acknowledged(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("kill"), &"sk-or-v1-kill-0001".into(), None).unwrap().id;
        let (mut acked, mut killed) = (0usize, 0usize);
        for round in 0..ROUNDS {
            let tag = new_tag();
            let url = child_url(t, &tag);
            let points: Vec<usize> = (0..CHILDREN).map(|_| random_below(PER_CHILD)).collect();
            eprintln!("round {round}: kill after {points:?} acks");
            let children: Vec<_> = points.iter().enumerate()
                .map(|(i, &k)| run_child(format!("usage;{url};{c};{i}"), Some(k)))
                .collect();
            for child in children {
                acked += acks(&child.join().unwrap());
            }
            killed += CHILDREN;
            wait_for_sessions_gone(t, &tag);

            let stored = usize::try_from(stored_requests(t, &c)).unwrap();
            eprintln!("round {round}: acknowledged {acked}, stored {stored}");
            assert!(acked <= stored && stored <= acked + killed, "acked {acked}, stored {stored}, in flight <= {killed}");
            if stored > 0 {
                // Every transaction was all or nothing: the client row, the user rows and the
                // model row agree on the same count.
                let n = i64::try_from(stored).unwrap();
                let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
                assert_eq!((d.total_tokens, d.raw_cost), (3 * n, dec!(0.000000777) * Decimal::from(n)));
                let users = t.store.usage().get_usage_by_user(&c, Some(day()), Some(day())).unwrap();
                assert_eq!(users.iter().map(|u| u.total_requests).sum::<i64>(), n);
                let health = t.store.usage().create_month_total_health_check(&c).unwrap();
                assert_eq!(health.overall_status, "healthy", "{health:?}");
                assert!(t.store.usage().validate_no_double_counting(&c, day()).unwrap().valid);
            }
        }
    }

    fn kill_9_during_record_generation_then_replay_is_exact(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("killg"), &"sk-or-v1-killg-0001".into(), None).unwrap().id;
        let mut ledger = 0;
        for round in 0..ROUNDS {
            let tag = new_tag();
            let url = child_url(t, &tag);
            // Below SLICE - 1, so that every round leaves ids for the replay.
            let points: Vec<usize> = (0..CHILDREN).map(|_| random_below(SLICE - 1)).collect();
            eprintln!("round {round}: kill after {points:?} acks");
            let children: Vec<_> = points.iter()
                .map(|&k| run_child(format!("generations;{url};{c};{round}"), Some(k)))
                .collect();
            let most = children.into_iter().map(|h| acks(&h.join().unwrap())).max().unwrap();
            wait_for_sessions_gone(t, &tag);
            let now = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap().total_processed;
            // The ledger row and the usage are one transaction: they agree after any kill.
            assert_eq!(stored_requests(t, &c), now);
            // All children follow one order, so the stored ids are a prefix of it: at least the
            // longest acknowledged run, plus at most the one id in flight after it.
            let most = i64::try_from(most).unwrap();
            assert!((most..=most + 1).contains(&(now - ledger)), "round {round}: {most} acknowledged, {} stored", now - ledger);
            ledger = now;
        }
        let before = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap().total_processed;

        // A fresh process replays every id, as a host does after a crash.
        let lines = run_child(format!("replay;{};{c};0", t.url), None).join().unwrap();
        let summary = lines.iter().find_map(|l| l.split("replay recorded=").nth(1)).expect("replay summary");
        let recorded: i64 = summary.parse().unwrap();
        let n = i64::try_from(GENERATIONS).unwrap();
        eprintln!("replay: {before} ids stored before, {recorded} recorded by the replay");
        assert_eq!(before + recorded, n);
        let ledger = t.store.generations().get_processed_generations_stats(&c, None, None).unwrap();
        assert_eq!(ledger.total_processed, n);
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!((d.total_requests, d.total_tokens, d.raw_cost), (n, 15 * n, dec!(0.0015) * Decimal::from(n)));
        assert_eq!(t.store.usage().create_month_total_health_check(&c).unwrap().overall_status, "healthy");
    }
}
