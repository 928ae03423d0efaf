//! `kill -9` in the middle of an import, twice, then a re-run: the final figures equal those of
//! an uninterrupted import. The import runs in a child process (this test binary, re-executed
//! with `child_import`) that parks itself after its n-th committed batch and is then killed with
//! SIGKILL, so the kill point is deterministic and no timing is involved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod import_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use orgusage_import::{ImportOptions, ImportReport, Target, fixture, import};

const CHILD_ENV: &str = "ORGUSAGE_IMPORT_TEST_CHILD";

fn opts() -> ImportOptions {
    ImportOptions {
        batch_rows: 50,
        ..ImportOptions::default()
    }
}

/// Not a test of its own: the body of the child process.
#[test]
#[ignore = "run as a child process by the kill -9 tests"]
fn child_import() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('\n');
    let (src, tgt) = (parts.next().unwrap(), parts.next().unwrap());
    let stop_at: u32 = parts.next().unwrap().parse().unwrap();
    let mut n = 0;
    let result = import(src, &Target::Separate(tgt.into()), &opts(), &mut |p| {
        n += 1;
        let mut out = std::io::stdout().lock();
        writeln!(out, "BATCH {n} {} {}", p.phase, p.rows_done).unwrap();
        if n == stop_at {
            writeln!(out, "READY").unwrap();
            out.flush().unwrap();
            drop(out);
            loop {
                std::thread::park(); // wait for SIGKILL
            }
        }
        out.flush().unwrap();
    });
    result.unwrap();
    println!("FINISHED");
}

/// Runs the import in a child, waits until it has committed `stop_at` batches, kills it with
/// SIGKILL. Returns whether it was killed (false: it finished first).
fn kill_after(source: &str, target: &str, stop_at: u32) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_import",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{source}\n{target}\n{stop_at}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut killed = false;
    for line in out.lines() {
        let line = line.unwrap();
        if line == "READY" {
            child.kill().unwrap(); // SIGKILL on Unix: no destructor, no rollback code runs
            killed = true;
            break;
        }
        if line == "FINISHED" {
            break;
        }
    }
    child.wait().unwrap();
    killed
}

fn comparable(mut r: ImportReport) -> ImportReport {
    r.rows_written_this_run = 0;
    r.already_complete = false;
    r
}

import_tests! {
    fn kill9_twice_then_resume_gives_the_same_figures(env) {
        let env = env.scenario();
        fixture::seed_bulk(&env.source, 3, 20, 2, 2).unwrap();
        // First kill in the daily phase, the second a few batches later (users/models).
        assert!(kill_after(&env.source, &env.target, 5), "the child was killed mid-import");
        assert!(kill_after(&env.source, &env.target, 4), "the second child was killed too");
        let resumed = import(&env.source, &Target::Separate(env.target.clone()), &opts(), &mut |_| {}).unwrap();
        assert!(!resumed.already_complete);
        assert!(resumed.rows_written_this_run > 0);
        assert!(resumed.verified(), "{resumed}");
        let fresh = import(&env.source, &Target::Separate(env.target2.clone()), &opts(), &mut |_| {}).unwrap();
        assert_eq!(comparable(resumed), comparable(fresh));
        let again = import(&env.source, &Target::Separate(env.target.clone()), &opts(), &mut |_| {}).unwrap();
        assert!(again.already_complete);
        assert_eq!(again.rows_written_this_run, 0);
    }
}

#[test]
fn sqlite_source_into_postgres_target() {
    let Some(pg) = import_common::postgres() else {
        return;
    };
    let env = import_common::sqlite().scenario();
    let r = import(
        &env.source,
        &Target::Separate(pg.target.clone()),
        &ImportOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let local = import(
        &env.source,
        &Target::Separate(env.target.clone()),
        &ImportOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.target_backend, "postgres");
    assert!(r.verified(), "{r}");
    assert_eq!(r.months, local.months);
    assert_eq!(r.inconsistent_days, local.inconsistent_days);
}
