//! Global settings, client organizations and user-to-client mappings (`GlobalSettingsDb`,
//! `ClientOrganizationDb`, `UserClientMappingDb`); on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use orgusage::{
    ClientOrganizationForm, ClientOrganizationUpdate, Error, GlobalSettingsForm, Secret, Store,
    UserClientMappingForm, UserClientMappingUpdate,
};
use orgusage_testkit::backend_tests;
use rust_decimal_macros::dec;

fn acme(store: &Store, key: &str) -> orgusage::ClientOrganization {
    store
        .clients()
        .create_client(
            &ClientOrganizationForm::new("Acme Sp. z o.o."),
            &Secret::new(key),
            None,
        )
        .unwrap()
}

fn map(
    store: &Store,
    user: &str,
    client: &str,
    or_user: &str,
) -> orgusage::Result<orgusage::UserClientMapping> {
    store.mappings().create_mapping(&UserClientMappingForm {
        user_id: user.into(),
        client_org_id: client.into(),
        openrouter_user_id: or_user.into(),
    })
}

backend_tests! {
    fn new_client_is_active_with_default_markup_timezone_and_no_limit(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        assert!(c.is_active);
        assert_eq!(c.markup_rate, dec!(1.3));
        assert_eq!(c.timezone, "Europe/Warsaw");
        assert_eq!(c.monthly_limit, None);
        assert_eq!(c.created_at, c.updated_at);
        assert_eq!(c.created_at, t.clock.now_ts());
        assert_eq!(t.store.clients().get_client_by_id(&c.id).unwrap(), Some(c));
    }

    fn reused_api_key_is_a_conflict_that_does_not_leak_the_key(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        let err = t.store.clients()
            .create_client(&ClientOrganizationForm::new("Other"), &Secret::new("sk-or-v1-A"), None)
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert!(!err.to_string().contains("sk-or-v1-A"), "error leaks the key: {err}");
        assert_eq!(t.store.clients().get_client_by_id(&c.id).unwrap(), Some(c));
        assert_eq!(t.store.clients().get_all_active_clients().unwrap().len(), 1);
    }

    fn equal_names_created_in_one_second_get_distinct_ids(t) {
        let a = t.store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"k1-0123456789".into(), None).unwrap();
        let b = t.store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"k2-0123456789".into(), None).unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.created_at, b.created_at);
    }

    fn deactivated_client_is_invisible_to_every_getter(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        let other = t.store.clients().create_client(&ClientOrganizationForm::new("Beta"), &"sk-or-v1-B".into(), None).unwrap();
        assert_eq!(t.store.clients().get_client_by_api_key("sk-or-v1-A").unwrap().unwrap().id, c.id);
        assert!(t.store.clients().deactivate_client(&c.id).unwrap());
        assert_eq!(t.store.clients().get_client_by_api_key("sk-or-v1-A").unwrap(), None);
        assert_eq!(t.store.clients().get_client_by_id(&c.id).unwrap(), None);
        let active: Vec<_> = t.store.clients().get_all_active_clients().unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(active, vec![other.id]);
        assert!(!t.store.clients().deactivate_client("nope").unwrap());
    }

    fn deactivated_client_takes_no_mappings_and_no_updates(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        t.store.clients().deactivate_client(&c.id).unwrap();
        let err = map(&t.store, "u1", &c.id, "or-u1").unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: "client", .. }), "{err:?}");
        assert!(t.store.mappings().get_mapping_by_user_id("u1").unwrap().is_none());
        // An inactive client cannot be updated either: the getters cannot see it.
        let upd = ClientOrganizationUpdate { markup_rate: Some(dec!(2)), ..Default::default() };
        assert_eq!(t.store.clients().update_client(&c.id, &upd).unwrap(), None);
    }

    fn update_changes_only_the_given_fields_and_rejects_invalid_values(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        t.clock.advance(Duration::seconds(5));
        let upd = ClientOrganizationUpdate { markup_rate: Some(dec!(1.5)), ..Default::default() };
        let u = t.store.clients().update_client(&c.id, &upd).unwrap().unwrap();
        assert_eq!(u.markup_rate, dec!(1.5));
        assert!(u.updated_at > c.updated_at);
        assert_eq!((u.created_at, u.id.clone(), u.name.clone()), (c.created_at, c.id.clone(), c.name.clone()));
        assert_eq!(t.store.clients().update_client("nope", &upd).unwrap(), None);
        // Clearing and setting nullable fields.
        let upd = ClientOrganizationUpdate {
            monthly_limit: Some(Some(dec!(250.50))),
            billing_email: Some(Some("faktury@acme.pl".into())),
            timezone: Some("Europe/London".into()),
            ..Default::default()
        };
        let u = t.store.clients().update_client(&c.id, &upd).unwrap().unwrap();
        assert_eq!(u.monthly_limit, Some(dec!(250.50)));
        assert_eq!(u.timezone, "Europe/London");
        let clear = ClientOrganizationUpdate { monthly_limit: Some(None), ..Default::default() };
        assert_eq!(t.store.clients().update_client(&c.id, &clear).unwrap().unwrap().monthly_limit, None);
        // Invalid input writes nothing.
        for bad in [
            ClientOrganizationUpdate { markup_rate: Some(dec!(0)), ..Default::default() },
            ClientOrganizationUpdate { timezone: Some("CET".into()), ..Default::default() },
            ClientOrganizationUpdate { name: Some(" ".into()), ..Default::default() },
            ClientOrganizationUpdate { monthly_limit: Some(Some(dec!(-1))), ..Default::default() },
        ] {
            let before = t.store.clients().get_client_by_id(&c.id).unwrap();
            assert!(matches!(t.store.clients().update_client(&c.id, &bad), Err(Error::InvalidInput { .. } | Error::InvalidTimezone(_))));
            assert_eq!(t.store.clients().get_client_by_id(&c.id).unwrap(), before);
        }
    }

    fn settings_are_one_row_and_keep_the_provisioning_key_when_omitted(t) {
        assert!(t.store.settings().get_settings().unwrap().is_none());
        let s1 = t.store.settings().create_or_update_settings(&GlobalSettingsForm::default()).unwrap();
        assert_eq!((s1.id.as_str(), s1.billing_currency.as_str(), s1.default_markup_rate), ("global", "USD", dec!(1.3)));
        assert!(s1.openrouter_provisioning_key.is_none());
        t.clock.advance(Duration::seconds(10));
        let with_key = GlobalSettingsForm { openrouter_provisioning_key: Some(Secret::new("sk-or-prov-secret-123")), ..Default::default() };
        let s2 = t.store.settings().create_or_update_settings(&with_key).unwrap();
        assert_eq!(s2.created_at, s1.created_at);
        assert!(s2.updated_at > s1.updated_at);
        assert_eq!(s2.openrouter_provisioning_key.as_ref().unwrap().expose(), "sk-or-prov-secret-123");
        let no_key = GlobalSettingsForm { default_markup_rate: dec!(1.4), ..Default::default() };
        let s3 = t.store.settings().create_or_update_settings(&no_key).unwrap();
        assert_eq!(s3.openrouter_provisioning_key.as_ref().unwrap().expose(), "sk-or-prov-secret-123");
        assert_eq!(s3.default_markup_rate, dec!(1.4));
        assert!(!format!("{s3:?}").contains("prov-secret"));
        let bad = GlobalSettingsForm { billing_currency: "usd".into(), ..Default::default() };
        assert!(t.store.settings().create_or_update_settings(&bad).is_err());
        assert_eq!(t.store.settings().get_settings().unwrap(), Some(s3));
    }

    fn mapping_create_read_update_deactivate(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        let m = map(&t.store, "u1", &c.id, "or-u1").unwrap();
        assert_eq!(m.id, format!("u1_{}", c.id));
        assert!(m.is_active);
        assert_eq!(t.store.mappings().get_mapping_by_user_id("u1").unwrap(), Some(m.clone()));
        assert_eq!(t.store.mappings().get_mappings_by_client_id(&c.id).unwrap(), vec![m.clone()]);
        let upd = UserClientMappingUpdate { openrouter_user_id: Some("or-u1-new".into()) };
        assert!(t.store.mappings().update_mapping("u1", &upd).unwrap());
        assert!(t.store.mappings().deactivate_mapping("u1").unwrap());
        assert_eq!(t.store.mappings().get_mapping_by_user_id("u1").unwrap(), None);
        assert_eq!(t.store.mappings().get_mappings_by_client_id(&c.id).unwrap(), vec![]);
        assert!(!t.store.mappings().update_mapping("u1", &upd).unwrap());
        assert!(!t.store.mappings().deactivate_mapping("u1").unwrap());
    }

    fn recreated_mapping_reactivates_and_a_user_has_one_active_client(t) {
        let c = acme(&t.store, "sk-or-v1-A");
        let c2 = t.store.clients().create_client(&ClientOrganizationForm::new("Beta"), &"sk-or-v1-B".into(), None).unwrap();
        map(&t.store, "u1", &c.id, "or-u1").unwrap();
        t.store.mappings().deactivate_mapping("u1").unwrap();
        let again = map(&t.store, "u1", &c.id, "or-u1b").unwrap();
        assert!(again.is_active);
        assert_eq!(again.openrouter_user_id, "or-u1b");
        assert_eq!(t.store.mappings().get_mapping_by_user_id("u1").unwrap().unwrap().id, again.id);
        // Same pair while active: idempotent.
        assert_eq!(map(&t.store, "u1", &c.id, "or-u1b").unwrap().id, again.id);
        // Another client while active: conflict, nothing changes.
        let err = map(&t.store, "u1", &c2.id, "or-u1").unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert_eq!(t.store.mappings().get_mapping_by_user_id("u1").unwrap().unwrap().client_org_id, c.id);
        // After deactivation the user can move.
        t.store.mappings().deactivate_mapping("u1").unwrap();
        assert_eq!(map(&t.store, "u1", &c2.id, "or-u1").unwrap().client_org_id, c2.id);
        assert_eq!(t.store.mappings().get_mappings_by_client_id(&c.id).unwrap(), vec![]);
        let found = t.store.mappings().get_mapping_by_openrouter_user_id(&c2.id, "or-u1").unwrap().unwrap();
        assert_eq!(found.user_id, "u1");
    }

    fn invalid_client_input_writes_nothing(t) {
        let cases: Vec<(ClientOrganizationForm, &str)> = vec![
            (ClientOrganizationForm::new(""), "k-valid-000001"),
            (ClientOrganizationForm { markup_rate: dec!(0), ..ClientOrganizationForm::new("A") }, "k-valid-000002"),
            (ClientOrganizationForm { markup_rate: dec!(-1.5), ..ClientOrganizationForm::new("A") }, "k-valid-000003"),
            (ClientOrganizationForm { timezone: "CET".into(), ..ClientOrganizationForm::new("A") }, "k-valid-000004"),
            (ClientOrganizationForm { timezone: "Poland".into(), ..ClientOrganizationForm::new("A") }, "k-valid-000005"),
            (ClientOrganizationForm { monthly_limit: Some(dec!(-0.01)), ..ClientOrganizationForm::new("A") }, "k-valid-000006"),
            (ClientOrganizationForm::new("A"), ""),
            (ClientOrganizationForm::new("A"), "has space"),
        ];
        for (form, key) in cases {
            let err = t.store.clients().create_client(&form, &Secret::new(key), None).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. } | Error::InvalidTimezone(_)), "{form:?}: {err:?}");
        }
        assert!(t.store.clients().get_all_active_clients().unwrap().is_empty());
        let err = map(&t.store, "", "x", "y").unwrap_err();
        assert!(matches!(err, Error::InvalidInput { field: "user_id", .. }));
    }

    fn secrets_never_appear_in_debug(t) {
        let c = acme(&t.store, "sk-or-v1-verysecretkey-9876");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("verysecretkey"), "{dbg}");
        assert_eq!(c.openrouter_api_key.expose(), "sk-or-v1-verysecretkey-9876");
    }
}

trait NowTs {
    fn now_ts(&self) -> i64;
}

impl NowTs for orgusage::clock::ManualClock {
    fn now_ts(&self) -> i64 {
        use orgusage::clock::Clock;
        self.now().timestamp()
    }
}
