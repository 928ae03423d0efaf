//! Quickstart: creates settings, two clients and their mapped users, and prints what it made.
//!
//! Runs with no arguments on a SQLite file in the system temp directory (recreated on every run),
//! or on `ORGUSAGE_DATABASE_URL` when set (e.g. `postgres://postgres@127.0.0.1:5432/test`).

use orgusage::{
    ClientOrganizationDb, ClientOrganizationForm, GlobalSettingsDb, GlobalSettingsForm,
    UserClientMappingDb, UserClientMappingForm,
};
use rust_decimal::Decimal;

fn main() -> Result<(), orgusage::Error> {
    let url = match std::env::var("ORGUSAGE_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let path = std::env::temp_dir().join("orgusage-quickstart.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            path.display().to_string()
        }
    };
    let store = orgusage::init(url.as_str())?;
    println!("orgusage store on {} ({url})", store.backend().name());

    let settings = GlobalSettingsDb.create_or_update_settings(&GlobalSettingsForm {
        openrouter_provisioning_key: Some("sk-or-prov-quickstart-demo-key".into()),
        ..Default::default()
    })?;
    println!(
        "settings: markup {} {} (provisioning key {})",
        settings.default_markup_rate,
        settings.billing_currency,
        settings
            .openrouter_provisioning_key
            .map(|k| k.masked())
            .unwrap_or_default()
    );

    let suffix = std::process::id();
    let clients = [
        (
            "Kowalski i Synowie Sp. z o.o.",
            Decimal::new(13, 1),
            "Europe/Warsaw",
            &["anna", "piotr"][..],
        ),
        (
            "Nowak Consulting S.A.",
            Decimal::new(15, 1),
            "Europe/Warsaw",
            &["ewa", "jan", "marta"][..],
        ),
    ];
    for (name, markup, tz, users) in clients {
        let form = ClientOrganizationForm {
            markup_rate: markup,
            monthly_limit: Some(Decimal::new(500, 0)),
            timezone: tz.into(),
            ..ClientOrganizationForm::new(name)
        };
        let key = format!("sk-or-v1-demo-{}-{suffix}", name.len());
        let client = ClientOrganizationDb.create_client(&form, &key, None)?;
        println!(
            "client {} ({}): markup {}x, limit {}, tz {}",
            client.name,
            client.id,
            client.markup_rate,
            client
                .monthly_limit
                .map_or("none".to_string(), |l| format!("{l} USD")),
            client.timezone
        );
        for user in users {
            let m = UserClientMappingDb.create_mapping(&UserClientMappingForm {
                user_id: (*user).into(),
                client_org_id: client.id.clone(),
                openrouter_user_id: format!("{}_{user}", &client.id[..12]),
            })?;
            println!(
                "  user {} -> openrouter user {}",
                m.user_id, m.openrouter_user_id
            );
        }
    }
    println!(
        "active clients: {}",
        ClientOrganizationDb.get_all_active_clients()?.len()
    );
    Ok(())
}
