//! Keys at rest (issue 9, item 7): client API keys and the provisioning key encrypted with a
//! host key ring, looked up by keyed hash, migrated, rotated; every failure typed. Both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage::db::KeyRing;
use orgusage::error::EncryptionErrorKind;
use orgusage::{
    ClientOrganizationForm, ClientOrganizationUpdate, Error, GlobalSettingsForm, Secret, Store,
    StoreConfig,
};
use orgusage_db::admin::{stored_client_keys, stored_provisioning_key};
use orgusage_testkit::{TestStore, backend_tests};

const KEY_A: &str = "sk-or-v1-aaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "sk-or-v1-bbbbbbbbbbbbbbbbbbbb";
const PROVISIONING: &str = "sk-or-v1-provisioning-0123456789";

fn ring(id: &str, byte: u8) -> KeyRing {
    KeyRing::new(id, [byte; 32]).unwrap()
}

fn encrypted(t: &TestStore, ring: KeyRing) -> Store {
    t.open_with(|c| c.encryption(ring))
}

fn create(store: &Store, name: &str, key: &str) -> orgusage::Result<orgusage::ClientOrganization> {
    store
        .clients()
        .create_client(&ClientOrganizationForm::new(name), &Secret::new(key), None)
}

/// The kind of an encryption error, after checking its text names no secret.
fn kind(e: Error) -> EncryptionErrorKind {
    let text = format!("{e} {e:?}");
    for secret in [KEY_A, KEY_B, PROVISIONING] {
        assert!(!text.contains(secret), "error leaks a secret: {text}");
    }
    match e {
        Error::Encryption { kind, .. } => kind,
        other => panic!("not an encryption error: {other:?}"),
    }
}

fn assert_no_plaintext(store: &Store) {
    for row in stored_client_keys(store.database()).unwrap() {
        assert!(row.openrouter_api_key.starts_with("enc:v1:"), "{row:?}");
        for secret in [KEY_A, KEY_B] {
            assert!(!row.openrouter_api_key.contains(secret));
        }
        assert!(row.openrouter_api_key_lookup.is_some(), "{row:?}");
    }
    if let Some(p) = stored_provisioning_key(store.database()).unwrap() {
        assert!(p.starts_with("enc:v1:") && !p.contains(PROVISIONING), "{p}");
    }
}

fn settings_form(key: Option<&str>) -> GlobalSettingsForm {
    GlobalSettingsForm {
        openrouter_provisioning_key: key.map(Secret::new),
        ..GlobalSettingsForm::default()
    }
}

backend_tests! {
    fn roundtrip_with_encryption_on(t) {
        let store = encrypted(t, ring("k1", 1));
        let a = create(&store, "Acme", KEY_A).unwrap();
        assert_eq!(a.openrouter_api_key.expose(), KEY_A);
        assert_eq!(store.clients().get_client_by_id(&a.id).unwrap(), Some(a.clone()));
        assert_eq!(store.clients().get_client_by_api_key(KEY_A).unwrap(), Some(a.clone()));
        assert_eq!(store.clients().get_client_by_api_key(KEY_B).unwrap(), None);
        let renamed = store.clients().update_client(&a.id, &ClientOrganizationUpdate {
            name: Some("Acme 2".into()), ..Default::default()
        }).unwrap().unwrap();
        assert_eq!(renamed.openrouter_api_key.expose(), KEY_A);
        let rekeyed = store.clients().update_api_key(&a.id, &Secret::new(KEY_B)).unwrap().unwrap();
        assert_eq!(rekeyed.openrouter_api_key.expose(), KEY_B);
        assert_eq!(store.clients().get_client_by_api_key(KEY_A).unwrap(), None);
        assert_eq!(store.clients().get_client_by_api_key(KEY_B).unwrap().unwrap().id, a.id);
        assert_eq!(store.clients().get_all_active_clients().unwrap()[0].openrouter_api_key.expose(), KEY_B);
        let s = store.settings().create_or_update_settings(&settings_form(Some(PROVISIONING))).unwrap();
        assert_eq!(s.openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
        // A form without a key keeps the encrypted one, readable.
        let s = store.settings().create_or_update_settings(&settings_form(None)).unwrap();
        assert_eq!(s.openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
        assert_eq!(store.settings().get_settings().unwrap().unwrap().openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
        assert_no_plaintext(&store);
        // A ciphertext read from a dump does not work as a key, and cannot be stored as one.
        let raw = stored_client_keys(store.database()).unwrap().remove(0).openrouter_api_key;
        assert_eq!(store.clients().get_client_by_api_key(&raw).unwrap(), None);
        let e = create(&store, "Copy", &raw).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    }

    fn ciphertext_or_lookup_moved_to_another_row_fails(t) {
        let store = encrypted(t, ring("k1", 1));
        let a = create(&store, "A", KEY_A).unwrap();
        let b = create(&store, "B", KEY_B).unwrap();
        // Swap the two ciphertexts (a copy would trip the unique index on the column).
        let raw = stored_client_keys(store.database()).unwrap();
        let ct = |id: &str| raw.iter().find(|r| r.id == id).unwrap().openrouter_api_key.clone();
        t.execute_sql(&format!(
            "UPDATE client_organizations SET openrouter_api_key = 'moving' WHERE id = '{a}';
             UPDATE client_organizations SET openrouter_api_key = '{a_ct}' WHERE id = '{b}';
             UPDATE client_organizations SET openrouter_api_key = '{b_ct}' WHERE id = '{a}';",
            a = a.id, b = b.id, a_ct = ct(&a.id), b_ct = ct(&b.id)
        ));
        for id in [&a.id, &b.id] {
            let e = store.clients().get_client_by_id(id).unwrap_err();
            assert!(e.to_string().contains(id.as_str()), "{e}");
            assert_eq!(kind(e), EncryptionErrorKind::Authentication);
        }
        // A's lookup hash moved onto another row: finding A's key there is an error, never
        // the other client.
        let c = create(&store, "C", "sk-or-v1-cccccccccccccccccccc").unwrap();
        let a_hash = ring("k1", 1).lookup_hash(KEY_A);
        t.execute_sql(&format!(
            "UPDATE client_organizations SET openrouter_api_key_lookup = NULL WHERE id = '{}';
             UPDATE client_organizations SET openrouter_api_key_lookup = '{a_hash}' WHERE id = '{}';",
            a.id, c.id
        ));
        assert_eq!(kind(store.clients().get_client_by_api_key(KEY_A).unwrap_err()), EncryptionErrorKind::Authentication);
    }

    fn wrong_key_and_unknown_key_id_are_typed(t) {
        let store = encrypted(t, ring("k1", 1));
        let a = create(&store, "A", KEY_A).unwrap();
        store.settings().create_or_update_settings(&settings_form(Some(PROVISIONING))).unwrap();
        let wrong = encrypted(t, ring("k1", 2));
        assert_eq!(kind(wrong.clients().get_client_by_id(&a.id).unwrap_err()), EncryptionErrorKind::Authentication);
        assert_eq!(kind(wrong.settings().get_settings().unwrap_err()), EncryptionErrorKind::Authentication);
        // A wrong key also computes other hashes: the client is simply not found by key.
        assert_eq!(wrong.clients().get_client_by_api_key(KEY_A).unwrap(), None);
        let other = encrypted(t, ring("k9", 1));
        let e = other.clients().get_all_active_clients().unwrap_err();
        assert!(e.to_string().contains("k1"), "{e}");
        assert_eq!(kind(e), EncryptionErrorKind::UnknownKeyId);
    }

    fn encrypted_database_opened_without_key(t) {
        let store = encrypted(t, ring("k1", 1));
        let a = create(&store, "A", KEY_A).unwrap();
        store.settings().create_or_update_settings(&settings_form(Some(PROVISIONING))).unwrap();
        // Opening succeeds (it reads no secret, it warns through tracing); every read of an
        // encrypted secret fails typed.
        assert!(orgusage_db::admin::encrypted_keys_present(store.database()).unwrap());
        let keyless = t.second_instance();
        assert_eq!(kind(keyless.clients().get_client_by_id(&a.id).unwrap_err()), EncryptionErrorKind::NoKey);
        assert_eq!(kind(keyless.clients().get_all_active_clients().unwrap_err()), EncryptionErrorKind::NoKey);
        assert_eq!(kind(keyless.settings().get_settings().unwrap_err()), EncryptionErrorKind::NoKey);
        // Writing plaintext next to encrypted rows is refused, and nothing is written.
        assert_eq!(kind(create(&keyless, "B", KEY_B).unwrap_err()), EncryptionErrorKind::NoKey);
        assert_eq!(stored_client_keys(store.database()).unwrap().len(), 1);
        let e = keyless.settings().create_or_update_settings(&settings_form(Some("sk-or-v1-other-provisioning"))).unwrap_err();
        assert_eq!(kind(e), EncryptionErrorKind::NoKey);
        assert_eq!(kind(keyless.encrypt_existing_keys().unwrap_err()), EncryptionErrorKind::NoKey);
        assert_no_plaintext(&store);
        assert_eq!(store.settings().get_settings().unwrap().unwrap().openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
    }

    fn plaintext_rows_migrate_in_batches(t) {
        let plain = &t.store;
        let keys: Vec<String> = (0..5).map(|i| format!("sk-or-v1-plain-{i:020}")).collect();
        for (i, k) in keys.iter().enumerate() {
            create(plain, &format!("C{i}"), k).unwrap();
        }
        plain.settings().create_or_update_settings(&settings_form(Some(PROVISIONING))).unwrap();
        assert!(!orgusage_db::admin::encrypted_keys_present(plain.database()).unwrap());
        let store = encrypted(t, ring("k1", 1));
        // Before the migration: plaintext rows are found and their keys stay unique.
        assert!(store.clients().get_client_by_api_key(&keys[3]).unwrap().is_some());
        assert!(matches!(create(&store, "Dup", &keys[3]).unwrap_err(), Error::Conflict(_)));
        let report = store.key_maintenance().unwrap().batch_size(2).encrypt_existing_keys().unwrap();
        assert_eq!((report.clients_updated, report.clients_scanned), (5, 5));
        assert!(report.provisioning_key_updated);
        assert_eq!(report.batches, 4, "{report:?}"); // 2 + 2 + 1 rows, then the settings row
        assert_no_plaintext(&store);
        assert!(orgusage_db::admin::encrypted_keys_present(plain.database()).unwrap());
        let again = store.encrypt_existing_keys().unwrap();
        assert_eq!((again.clients_updated, again.provisioning_key_updated), (0, false));
        for k in &keys {
            assert_eq!(store.clients().get_client_by_api_key(k).unwrap().unwrap().openrouter_api_key.expose(), k);
        }
        assert!(matches!(create(&store, "Dup", &keys[0]).unwrap_err(), Error::Conflict(_)));
        assert_eq!(store.settings().get_settings().unwrap().unwrap().openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
    }

    fn rotation_then_old_key_removed(t) {
        let v1 = encrypted(t, ring("k1", 1));
        let a = create(&v1, "A", KEY_A).unwrap();
        v1.settings().create_or_update_settings(&settings_form(Some(PROVISIONING))).unwrap();
        let both = encrypted(t, KeyRing::new("k2", [2; 32]).unwrap().with_previous_key("k1", [1; 32]).unwrap());
        // Old rows stay readable and findable; new rows use k2; a key under k1 is still unique.
        assert_eq!(both.clients().get_client_by_api_key(KEY_A).unwrap().unwrap().id, a.id);
        assert!(matches!(create(&both, "Dup", KEY_A).unwrap_err(), Error::Conflict(_)));
        let b = create(&both, "B", KEY_B).unwrap();
        let report = both.rotate_keys().unwrap();
        assert_eq!(report.clients_updated, 1);
        assert!(report.provisioning_key_updated);
        assert_eq!(both.rotate_keys().unwrap().clients_updated, 0);
        for row in stored_client_keys(both.database()).unwrap() {
            assert!(row.openrouter_api_key.starts_with("enc:v1:k2:"), "{row:?}");
            assert!(row.openrouter_api_key_lookup.unwrap().starts_with("v1:k2:"));
        }
        let v2 = encrypted(t, ring("k2", 2));
        assert_eq!(v2.clients().get_client_by_api_key(KEY_A).unwrap().unwrap().id, a.id);
        assert_eq!(v2.clients().get_client_by_api_key(KEY_B).unwrap().unwrap().id, b.id);
        assert_eq!(v2.settings().get_settings().unwrap().unwrap().openrouter_provisioning_key.unwrap().expose(), PROVISIONING);
        // The retired key no longer opens anything.
        assert_eq!(kind(v1.clients().get_client_by_id(&a.id).unwrap_err()), EncryptionErrorKind::UnknownKeyId);
    }

    fn uniqueness_enforced_with_encryption_on(t) {
        let store = encrypted(t, ring("k1", 1));
        let a = create(&store, "A", KEY_A).unwrap();
        let e = create(&store, "Copy", KEY_A).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e:?}");
        assert!(!e.to_string().contains(KEY_A));
        let b = create(&store, "B", KEY_B).unwrap();
        let e = store.clients().update_api_key(&b.id, &Secret::new(KEY_A)).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e:?}");
        // Re-setting a client's own key is not a conflict.
        assert!(store.clients().update_api_key(&a.id, &Secret::new(KEY_A)).unwrap().is_some());
        // The database index itself refuses a duplicate hash (a writer that skips the check).
        let hash = ring("k1", 1).lookup_hash(KEY_A);
        let dup = orgusage_db::admin::batch_execute(store.database(), &format!(
            "UPDATE client_organizations SET openrouter_api_key_lookup = '{hash}' WHERE id = '{}'", b.id
        ));
        assert!(dup.is_err());
        assert_eq!(store.clients().get_all_active_clients().unwrap().len(), 2);
    }

    fn secrets_never_printed(t) {
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let config = StoreConfig::new(t.url.clone()).encryption(KeyRing::from_base64("k1", b64).unwrap());
        let shown = format!("{config:?}");
        assert!(!shown.contains(b64) && shown.contains("k1"), "{shown}");
        let store = Store::open(config).unwrap();
        let a = create(&store, "A", KEY_A).unwrap();
        for text in [format!("{a:?}"), format!("{}", a.openrouter_api_key), format!("{store:?}")] {
            assert!(!text.contains(KEY_A) && !text.contains(b64), "{text}");
        }
    }
}
