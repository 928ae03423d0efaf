//! The five handles act on the global store: `NotInitialized` before `init`, `AlreadyInitialized`
//! on a second `init`. One test per binary, because the global store is per process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage::{
    ClientOrganizationDb, ClientOrganizationForm, Error, GlobalSettingsDb, GlobalSettingsForm,
    UserClientMappingDb, UserClientMappingForm,
};

#[test]
fn handles_follow_the_global_store() {
    assert!(matches!(
        GlobalSettingsDb.get_settings(),
        Err(Error::NotInitialized)
    ));
    assert!(matches!(
        ClientOrganizationDb.get_all_active_clients(),
        Err(Error::NotInitialized)
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("global.db").display());
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
}
