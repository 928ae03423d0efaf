//! Contention is typed and transient on both backends, with real databases rather than
//! hand-made errors: SQLite's write lock held by another connection past `busy_timeout`, and a
//! PostgreSQL row lock held past `lock_timeout`. The call fails with
//! `Database { kind: Contention }`, wrote nothing, and succeeds when repeated after the lock
//! is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use orgusage::error::DatabaseErrorKind;
use orgusage::{ClientOrganizationForm, Store, StoreConfig, UsageRecord};
use orgusage_testkit::backend_tests;
use orgusage_testkit::start_day as day;
use rust_decimal_macros::dec;

fn record(client: &str) -> UsageRecord {
    UsageRecord::new(client, "u1", "or-u1", "openai/gpt-4.1")
        .on(day())
        .tokens(10, 5)
        .raw_cost(dec!(0.0015))
}

/// Holds a write lock on the test database until dropped (then rolls back).
enum Holder {
    Sqlite(diesel::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(diesel::PgConnection),
}

impl Drop for Holder {
    fn drop(&mut self) {
        let r = match self {
            Self::Sqlite(c) => c.batch_execute("ROLLBACK"),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => c.batch_execute("ROLLBACK"),
        };
        r.expect("release the lock");
    }
}

/// Takes the lock a `record_usage` of `client`'s user `u1` needs: SQLite's database write lock,
/// or on PostgreSQL the user-day row, which every recording transaction locks first.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
fn hold_lock(t: &orgusage_testkit::TestStore, client: &str) -> Holder {
    match t.backend() {
        "sqlite" => {
            let mut c = diesel::SqliteConnection::establish(&t.url).unwrap();
            c.batch_execute("BEGIN IMMEDIATE").unwrap();
            Holder::Sqlite(c)
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let mut c = diesel::PgConnection::establish(&t.url).unwrap();
            // The client ids are the library's own ASCII slugs; no quoting issue.
            c.batch_execute(&format!(
                "BEGIN; UPDATE client_user_daily_usage SET total_tokens = total_tokens \
                 WHERE client_org_id = '{client}' AND user_id = 'u1'"
            ))
            .unwrap();
            Holder::Postgres(c)
        }
        other => panic!("unexpected backend {other}"),
    }
}

/// A second store on the test database that gives up waiting for a lock quickly.
fn impatient_store(t: &orgusage_testkit::TestStore) -> Store {
    let url = match t.backend() {
        // Appended to the `options` parameter the test URL already carries (search_path).
        "postgres" => t
            .url
            .replacen("options=", "options=-c%20lock_timeout%3D200%20", 1),
        _ => t.url.clone(),
    };
    Store::open(
        StoreConfig::new(url)
            .clock(t.clock.clone())
            .max_connections(1)
            .sqlite_busy_timeout(Duration::from_millis(200)),
    )
    .unwrap()
}

backend_tests! {
    fn a_held_lock_is_transient_contention_and_writes_nothing(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("lock"), &"sk-or-v1-lock-0001".into(), None).unwrap().id;
        // The user-day row must exist for PostgreSQL's row lock to have something to hold.
        t.store.usage().record_usage(&record(&c)).unwrap();
        let store = impatient_store(t);
        let holder = hold_lock(t, &c);
        let e = store.usage().record_usage(&record(&c)).unwrap_err();
        assert_eq!(e.database_kind(), Some(DatabaseErrorKind::Contention), "{e:?}");
        assert!(e.is_transient() && !e.may_have_committed(), "{e:?}");
        drop(holder);
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!(d.total_requests, 1, "the failed call wrote nothing");
        // The same call, repeated once the lock is gone, succeeds.
        store.usage().record_usage(&record(&c)).unwrap();
        let d = t.store.usage().get_daily_usage(&c, day(), day()).unwrap().pop().unwrap();
        assert_eq!(d.total_requests, 2);
    }
}
