//! Concurrency and migrations of the foundation tables, on a SQLite file and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use orgusage::{ClientOrganizationForm, Error, Secret, UserClientMappingForm};
use orgusage_testkit::backend_tests;

backend_tests! {
    fn eight_threads_create_clients_and_mappings(t) {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 10;
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                // Half the threads use a second, independent pool, like a second app instance.
                let store = if i % 2 == 0 { t.store.clone() } else { t.second_instance() };
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    for j in 0..PER_THREAD {
                        // Equal names on purpose: ids must still be unique.
                        let c = store
                            .clients()
                            .create_client(&ClientOrganizationForm::new("Acme"), &Secret::new(format!("sk-or-v1-{i}-{j}")), None)
                            .expect("create client");
                        // Every thread also maps the same shared user to its own client: exactly
                        // one of those may win while the mapping is active.
                        let shared = store.mappings().create_mapping(&UserClientMappingForm {
                            user_id: "shared-user".into(),
                            client_org_id: c.id.clone(),
                            openrouter_user_id: "or-shared".into(),
                        });
                        match shared {
                            Ok(_) | Err(Error::Conflict(_)) => {}
                            Err(e) => panic!("unexpected error {e:?}"),
                        }
                        let m = store
                            .mappings()
                            .create_mapping(&UserClientMappingForm {
                                user_id: format!("u-{i}-{j}"),
                                client_org_id: c.id.clone(),
                                openrouter_user_id: format!("or-{i}-{j}"),
                            })
                            .expect("create mapping");
                        mine.push((c.id, m.id));
                    }
                    mine
                })
            })
            .collect();
        let created: Vec<_> = handles.into_iter().flat_map(|h| h.join().expect("thread")).collect();
        let ids: HashSet<_> = created.iter().map(|(c, _)| c.clone()).collect();
        assert_eq!(ids.len(), THREADS * PER_THREAD);
        assert_eq!(t.store.clients().get_all_active_clients().unwrap().len(), THREADS * PER_THREAD);
        let shared = t.store.mappings().get_mapping_by_user_id("shared-user").unwrap().expect("one winner");
        let holders: usize = created
            .iter()
            .map(|(c, _)| t.store.mappings().get_mappings_by_client_id(c).unwrap().iter().filter(|m| m.user_id == "shared-user").count())
            .sum();
        assert_eq!(holders, 1, "exactly one active mapping for the shared user");
        assert!(ids.contains(&shared.client_org_id));
    }

    fn migrations_run_up_down_up(t) {
        let db = t.store.database();
        assert_eq!(db.run_pending_migrations().unwrap(), 0, "init applied everything");
        let reverted = db.revert_all_migrations().unwrap();
        assert!(reverted >= 1);
        assert!(t.store.settings().get_settings().is_err(), "tables are gone after down");
        assert_eq!(db.run_pending_migrations().unwrap(), reverted);
        assert!(t.store.settings().get_settings().unwrap().is_none());
        t.store.clients().create_client(&ClientOrganizationForm::new("After"), &"sk-or-v1-after".into(), None).unwrap();
    }

    fn second_instance_migrates_nothing_and_sees_data(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("Shared"), &"sk-or-v1-shared".into(), None).unwrap();
        let other = t.second_instance();
        assert_eq!(other.database().run_pending_migrations().unwrap(), 0);
        assert_eq!(other.clients().get_client_by_id(&c.id).unwrap().unwrap().name, "Shared");
    }
}

#[test]
fn database_down_is_an_error_not_none() {
    // A port where nothing listens: every call must be Err(Database), never Ok(None).
    let err = orgusage::Store::open(
        orgusage::StoreConfig::new("postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
            .connection_timeout(std::time::Duration::from_secs(2)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
}

#[test]
fn unsupported_urls_are_configuration_errors() {
    let err = orgusage::Store::open("mysql://root@127.0.0.1/test").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Database {
                kind: orgusage::error::DatabaseErrorKind::Configuration,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        orgusage::Store::open(""),
        Err(Error::InvalidInput { .. })
    ));
}
