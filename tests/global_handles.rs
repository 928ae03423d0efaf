//! The five handles act on the process-wide store: the one `init` installed, else the one opened
//! from `ORGUSAGE_DATABASE_URL` on first use, else `NotInitialized`. Exactly one store is opened
//! per process, even when threads race, and a second `init` is `AlreadyInitialized`.
//!
//! The store is per process, so each scenario runs in a child process of its own: the test
//! binary re-runs itself with `ORGUSAGE_GLOBAL_SCENARIO` set, and only `child_scenario` acts
//! then. The parent never touches the process-wide store, so these tests cannot disturb each
//! other or anything else in this binary.
//!
//! Stores opened are counted by the library's own `tracing` spans: every `Store::open` enters
//! `orgusage.db.connect` once and `orgusage.db.migrate` once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use orgusage::{
    ClientOrganizationDb, ClientOrganizationForm, ClientUsageDb, Error, GlobalSettingsDb,
    GlobalSettingsForm, UsageRecord, UserClientMappingDb, UserClientMappingForm,
};
use orgusage_testkit::child_test;

const THREADS: usize = 16;

/// Runs `scenario` in a child process with `env` (`None` removes the variable) and asserts that
/// it ran and passed.
fn run_child(scenario: &str, database_url: Option<&str>) {
    let mut cmd = child_test("child_scenario");
    cmd.env("ORGUSAGE_GLOBAL_SCENARIO", scenario);
    match database_url {
        Some(url) => cmd.env("ORGUSAGE_DATABASE_URL", url),
        None => cmd.env_remove("ORGUSAGE_DATABASE_URL"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "scenario {scenario} failed:\n{stdout}\n{stderr}"
    );
}

fn temp_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

#[test]
fn handles_answer_not_initialized_before_init_then_use_the_initialized_store() {
    run_child("init_then_handles", None);
}

#[test]
fn racing_inits_open_exactly_one_store() {
    run_child("racing_inits", None);
}

#[test]
fn first_handle_use_opens_the_store_from_the_environment_once() {
    let dir = tempfile::tempdir().unwrap();
    run_child("from_environment", Some(&temp_url(&dir, "env.db")));
}

#[test]
fn unset_or_empty_environment_leaves_the_handles_not_initialized() {
    run_child("not_initialized", None);
    run_child("not_initialized", Some(""));
}

#[test]
fn a_failed_open_from_the_environment_is_returned_and_retried() {
    run_child("bad_environment", Some("mysql://nowhere/usage"));
}

// ---------------------------------------------------------------------------------------------
// The child side.

static CONNECTS: AtomicUsize = AtomicUsize::new(0);
static MIGRATES: AtomicUsize = AtomicUsize::new(0);

/// Counts the library's `orgusage.db.connect` and `orgusage.db.migrate` spans (a minimal
/// subscriber, so the test needs no subscriber crate).
struct CountOpens;

impl tracing::Subscriber for CountOpens {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        match span.metadata().name() {
            "orgusage.db.connect" => CONNECTS.fetch_add(1, Ordering::SeqCst),
            "orgusage.db.migrate" => MIGRATES.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn opens() -> (usize, usize) {
    (
        CONNECTS.load(Ordering::SeqCst),
        MIGRATES.load(Ordering::SeqCst),
    )
}

/// Runs `f` on `THREADS` threads released at once; their answers in thread order.
fn race<T: Send + 'static>(f: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The body of a child process; does nothing unless `ORGUSAGE_GLOBAL_SCENARIO` is set.
#[test]
fn child_scenario() {
    let Ok(scenario) = std::env::var("ORGUSAGE_GLOBAL_SCENARIO") else {
        return;
    };
    tracing::subscriber::set_global_default(CountOpens).unwrap();
    match scenario.as_str() {
        "init_then_handles" => init_then_handles(),
        "racing_inits" => racing_inits(),
        "from_environment" => from_environment(),
        "not_initialized" => not_initialized(),
        "bad_environment" => bad_environment(),
        other => panic!("unknown scenario {other}"),
    }
}

fn init_then_handles() {
    assert!(matches!(
        GlobalSettingsDb.get_settings(),
        Err(Error::NotInitialized)
    ));
    assert!(matches!(
        ClientOrganizationDb.get_all_active_clients(),
        Err(Error::NotInitialized)
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = temp_url(&dir, "global.db");
    orgusage::init(url.as_str()).unwrap();
    assert!(matches!(
        orgusage::init(url.as_str()),
        Err(Error::AlreadyInitialized)
    ));

    GlobalSettingsDb
        .create_or_update_settings(&GlobalSettingsForm::default())
        .unwrap();
    assert_eq!(
        GlobalSettingsDb.get_settings().unwrap().unwrap().id,
        "global"
    );
    let c = ClientOrganizationDb
        .create_client(
            &ClientOrganizationForm::new("Acme"),
            "sk-or-v1-A",
            Some("hash-1"),
        )
        .unwrap();
    assert_eq!(c.openrouter_key_hash.as_deref(), Some("hash-1"));
    assert_eq!(
        ClientOrganizationDb
            .get_client_by_api_key("sk-or-v1-A")
            .unwrap()
            .unwrap()
            .id,
        c.id
    );
    UserClientMappingDb
        .create_mapping(&UserClientMappingForm {
            user_id: "u1".into(),
            client_org_id: c.id.clone(),
            openrouter_user_id: "or-u1".into(),
        })
        .unwrap();
    assert_eq!(
        UserClientMappingDb
            .get_mappings_by_client_id(&c.id)
            .unwrap()
            .len(),
        1
    );
    assert!(UserClientMappingDb.deactivate_mapping("u1").unwrap());
    assert!(ClientOrganizationDb.deactivate_client(&c.id).unwrap());
    assert!(
        ClientOrganizationDb
            .get_all_active_clients()
            .unwrap()
            .is_empty()
    );
    assert_eq!(opens(), (1, 1));
}

fn racing_inits() {
    let dir = tempfile::tempdir().unwrap();
    let url = temp_url(&dir, "race.db");
    let answers = race(move || orgusage::init(url.as_str()).map(|s| s as *const _ as usize));
    let opened: Vec<usize> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .copied()
        .collect();
    assert_eq!(opened.len(), 1, "exactly one init opens the store");
    assert!(
        answers
            .iter()
            .filter(|a| a.is_err())
            .all(|a| matches!(a, Err(Error::AlreadyInitialized))),
        "every other init is AlreadyInitialized"
    );
    assert_eq!(opens(), (1, 1), "one connect, one migration run");
    let global = orgusage::global_store().unwrap() as *const _ as usize;
    assert_eq!(global, opened[0]);
}

fn from_environment() {
    // Every thread's first handle call races to open the store from ORGUSAGE_DATABASE_URL.
    let answers = race(|| {
        ClientOrganizationDb
            .get_all_active_clients()
            .map(|c| c.len())
    });
    assert!(answers.iter().all(|a| matches!(a, Ok(0))), "{answers:?}");
    assert_eq!(opens(), (1, 1), "one connect, one migration run");

    let c = ClientOrganizationDb
        .create_client(&ClientOrganizationForm::new("Acme"), "sk-or-v1-A", None)
        .unwrap();
    let recorded = ClientUsageDb
        .record_usage(&UsageRecord::new(&c.id, "u1", "or-u1", "openai/gpt-4.1").tokens(10, 5))
        .unwrap();
    assert_eq!(recorded.total_tokens, 15);

    // An explicit init after the environment opened the store is refused and opens nothing.
    let other = tempfile::tempdir().unwrap();
    let other_path = other.path().join("other.db");
    assert!(matches!(
        orgusage::init(format!("sqlite://{}", other_path.display())),
        Err(Error::AlreadyInitialized)
    ));
    assert!(!other_path.exists(), "the second URL was never opened");
    assert_eq!(opens(), (1, 1));
    let url = std::env::var("ORGUSAGE_DATABASE_URL").unwrap();
    assert!(
        url.ends_with("env.db")
            && ClientOrganizationDb
                .get_client_by_id(&c.id)
                .unwrap()
                .is_some()
    );
}

fn not_initialized() {
    assert!(matches!(
        GlobalSettingsDb.get_settings(),
        Err(Error::NotInitialized)
    ));
    assert!(matches!(
        orgusage::global_store(),
        Err(Error::NotInitialized)
    ));
    let records = [
        UsageRecord::new("c", "u1", "or-u1", "openai/gpt-4.1"),
        UsageRecord::new("c", "u2", "or-u2", "openai/gpt-4.1"),
    ];
    let batch = ClientUsageDb.record_usage_batch(&records);
    assert_eq!(batch.len(), 2);
    assert!(
        batch
            .iter()
            .all(|r| matches!(r, Err(Error::NotInitialized)))
    );
    assert_eq!(opens(), (0, 0), "nothing was opened");
}

fn bad_environment() {
    // The open error itself, not NotInitialized, and the store stays unopened…
    let err = GlobalSettingsDb.get_settings().unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    let batch = ClientUsageDb.record_usage_batch(&[
        UsageRecord::new("c", "u1", "or-u1", "openai/gpt-4.1"),
        UsageRecord::new("c", "u2", "or-u2", "openai/gpt-4.1"),
    ]);
    assert!(
        batch
            .iter()
            .all(|r| matches!(r, Err(Error::Database { .. }))),
        "{batch:?}"
    );
    // …so an explicit init still installs one.
    let dir = tempfile::tempdir().unwrap();
    orgusage::init(temp_url(&dir, "after.db").as_str()).unwrap();
    assert!(GlobalSettingsDb.get_settings().unwrap().is_none());
}
