//! PostgreSQL's default checkout rule: a pooled connection that sat idle for
//! `IDLE_CHECK_AFTER` is pinged before it is handed out, so connections the server dropped
//! while they were idle (a restart, an idle-session timeout, `pg_terminate_backend`) never fail
//! a caller; with the ping turned off the first call after such a drop fails, transiently.
//! The server-restart version of this is in `faults_restart.rs` (a private cluster).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use orgusage::db::IDLE_CHECK_AFTER;
use orgusage::error::DatabaseErrorKind;
use orgusage::{ClientOrganizationForm, Error, Store, StoreConfig};

/// Opens a store on a fresh schema whose connections carry a unique `application_name`, so the
/// test can kill exactly its own server connections on the shared server.
fn tagged_store(ping: Option<bool>) -> Option<(orgusage_testkit::TestStore, Store, String)> {
    let t = orgusage_testkit::postgres()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("orgusage_liveness_{}_{nanos}", std::process::id());
    let url = orgusage_testkit::with_param(&t.url, &format!("application_name={tag}"));
    let config = StoreConfig::new(url).clock(t.clock.clone());
    let config = match ping {
        Some(ping) => config.test_connections_on_checkout(ping),
        None => config,
    };
    let store = Store::open(config).unwrap();
    Some((t, store, tag))
}

fn kill_connections(tag: &str) {
    orgusage_db::admin::pg_batch_execute(
        &orgusage_testkit::postgres_url(),
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{tag}'"
        ),
    )
    .unwrap();
}

fn create(store: &Store, name: &str) -> Result<String, Error> {
    store
        .clients()
        .create_client(
            &ClientOrganizationForm::new(name),
            &format!("sk-or-v1-{name}").as_str().into(),
            None,
        )
        .map(|c| c.id)
}

#[test]
fn idle_connections_killed_by_the_server_are_replaced_before_use() {
    let Some((_t, store, tag)) = tagged_store(None) else {
        return;
    };
    create(&store, "before").unwrap();
    std::thread::sleep(IDLE_CHECK_AFTER + Duration::from_millis(200));
    kill_connections(&tag);
    // Every connection of the pool is dead; each is pinged (idle too long), dropped, and a
    // new one opened, so the caller sees no error.
    let id = create(&store, "after").unwrap();
    assert!(store.clients().get_client_by_id(&id).unwrap().is_some());
}

#[test]
fn without_the_ping_the_first_call_after_a_drop_fails_transiently() {
    let Some((_t, store, tag)) = tagged_store(Some(false)) else {
        return;
    };
    create(&store, "before").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    kill_connections(&tag);
    let err = create(&store, "after").unwrap_err();
    assert_eq!(
        err.database_kind(),
        Some(DatabaseErrorKind::Connection),
        "{err:?}"
    );
    assert!(err.is_transient(), "{err:?}");
    // Each failed call drops its dead connection, so within one try per pooled connection
    // (default pool: 4) a call runs on a new one.
    let retried = (0..4).find(|_| create(&store, "after").is_ok());
    assert!(
        retried.is_some(),
        "the pool never replaced its dead connections"
    );
}
