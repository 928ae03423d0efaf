//! Small builders the integration tests share: dates, the test day, clients with their own keys.

use chrono::NaiveDate;
use orgusage::{ClientOrganizationForm, Store};

/// The date `y`-`m`-`d`; panics when it does not exist.
///
/// ```
/// assert_eq!(orgusage_testkit::date(2025, 7, 24).to_string(), "2025-07-24");
/// ```
pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// 2025-07-24: the Warsaw day (and UTC day) of [`default_start`](crate::default_start), i.e.
/// "today" for every fresh test store.
pub fn start_day() -> NaiveDate {
    date(2025, 7, 24)
}

/// The OpenRouter key the fixtures give a client named `name`: `sk-or-v1-<name>-0123456789`,
/// spaces replaced by `_` (keys may not hold white space).
pub fn client_key(name: &str) -> String {
    format!("sk-or-v1-{}-0123456789", name.replace(' ', "_"))
}

/// Creates an active client named `name` with default settings (markup 1.3, Europe/Warsaw, no
/// limit) and the key [`client_key`]`(name)`; its id. Panics on failure.
pub fn client(store: &Store, name: &str) -> String {
    client_with(store, ClientOrganizationForm::new(name))
}

/// Creates an active client from `form` with the key [`client_key`]`(&form.name)`; its id.
/// Panics on failure.
///
/// ```
/// use orgusage::{ClientOrganizationForm, Decimal};
///
/// let t = orgusage_testkit::sqlite();
/// let form = ClientOrganizationForm { monthly_limit: Some(Decimal::ONE), ..ClientOrganizationForm::new("Acme") };
/// let id = orgusage_testkit::client_with(&t.store, form);
/// let acme = t.store.clients().get_client_by_id(&id).unwrap().unwrap();
/// assert_eq!(acme.openrouter_api_key.expose(), "sk-or-v1-Acme-0123456789");
/// ```
pub fn client_with(store: &Store, form: ClientOrganizationForm) -> String {
    let key = client_key(&form.name);
    store
        .clients()
        .create_client(&form, &key.as_str().into(), None)
        .expect("create test client")
        .id
}
