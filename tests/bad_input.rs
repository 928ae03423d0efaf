//! Bad input, table-driven (issue 9, items 5 and 6), on SQLite and PostgreSQL.
//!
//! Every case names one public write path, the bad value, and the typed error it must get; after
//! each case a raw-SQL fingerprint of every table (see `bad_input/snapshot.rs`) must be exactly
//! what it was before, which proves that nothing was written. The fixture holds a client-day
//! close to the `i64` limits so that the overflow cases hit the store's guard, not validation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bad_input/cases.rs"]
mod cases;
#[path = "bad_input/payloads.rs"]
mod payloads;
#[path = "bad_input/snapshot.rs"]
mod snapshot;

use chrono::NaiveDate;
use orgusage::openrouter::Generation;
use orgusage::{
    ClientOrganizationForm, ClientRef, Decimal, Error, GlobalSettingsForm, Store, UsageRecord,
    UserClientMappingForm,
};
pub use orgusage_testkit::date;
use orgusage_testkit::{TestStore, backend_tests};
use rust_decimal_macros::dec;

use snapshot::Raw;

/// The error a case must get.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// `InvalidInput` naming this field.
    Invalid(&'static str),
    /// `InvalidTimezone`.
    Timezone,
    /// `Overflow`.
    Overflow,
    /// `Conflict`.
    Conflict,
    /// `NotFound`.
    NotFound,
}

impl Want {
    fn matches(self, e: &Error) -> bool {
        match (self, e) {
            (Want::Invalid(f), Error::InvalidInput { field, .. }) => *field == f,
            (Want::Timezone, Error::InvalidTimezone(_)) => true,
            (Want::Overflow, Error::Overflow(_)) => true,
            (Want::Conflict, Error::Conflict(_)) => true,
            (Want::NotFound, Error::NotFound { .. }) => true,
            _ => false,
        }
    }
}

/// A write of one case; its `Ok` is a failure of the case.
pub type Op = Box<dyn Fn(&Fx) -> Result<(), Error>>;

/// One row of the table.
pub struct Case {
    /// What is tried.
    pub name: String,
    /// The expected error.
    pub want: Want,
    /// The write; its `Ok` is a failure of the case.
    pub op: Op,
}

/// A case row.
pub fn case(
    name: impl Into<String>,
    want: Want,
    op: impl Fn(&Fx) -> Result<(), Error> + 'static,
) -> Case {
    Case {
        name: name.into(),
        want,
        op: Box::new(op),
    }
}

/// The fixture the cases write against.
pub struct Fx {
    /// The store under test.
    pub store: Store,
    /// An active client in Europe/Warsaw with a monthly limit, usage and a generation.
    pub acme: String,
    /// An active client in America/New_York.
    pub gotham: String,
    /// A deactivated client.
    pub gone: String,
    /// A client whose days sit at the edge of the `i64` range.
    pub whale: String,
}

/// The API key of the fixture's Acme.
pub const ACME_KEY: &str = "sk-or-v1-acme-0123456789";
/// The API key of the deactivated client.
pub const GONE_KEY: &str = "sk-or-v1-gone-0123456789";
/// The day of the fixture's ordinary usage.
pub fn day() -> NaiveDate {
    orgusage_testkit::start_day()
}

/// 9 × 10^18 nano-USD of marked-up cost on this Whale day: one more maximal record overflows.
pub fn whale_markup_day() -> NaiveDate {
    date(2025, 7, 10)
}
/// A Whale day whose `total_tokens` is 807 below `i64::MAX`.
pub fn whale_tokens_day() -> NaiveDate {
    date(2025, 7, 11)
}
/// A Whale day whose `raw_cost` is 807 nano-USD below `i64::MAX`.
pub fn whale_raw_day() -> NaiveDate {
    date(2025, 7, 12)
}

impl Fx {
    /// A valid record of Acme on the fixture day.
    pub fn rec(&self) -> UsageRecord {
        UsageRecord::new(&self.acme, "u1", "or-u1", "openai/gpt-4.1")
            .on(day())
            .tokens(10, 5)
            .raw_cost(dec!(0.01))
    }

    /// `create_client` with a form and key, the result dropped.
    pub fn create(&self, form: ClientOrganizationForm, key: &str) -> Result<(), Error> {
        self.store
            .clients()
            .create_client(&form, &key.into(), None)
            .map(drop)
    }

    /// `record_usage`, the result dropped.
    pub fn record(&self, rec: UsageRecord) -> Result<(), Error> {
        self.store.usage().record_usage(&rec).map(drop)
    }

    /// `record_generation`, the result dropped.
    pub fn generation(&self, id: &str, rec: UsageRecord) -> Result<(), Error> {
        self.store.usage().record_generation(id, &rec).map(drop)
    }

    /// Parses an OpenRouter record (which must parse) and ingests it for Acme.
    pub fn ingest(&self, json: &str) -> Result<(), Error> {
        let g = Generation::from_json(json).expect("the record itself parses");
        self.store
            .ingest_generation(ClientRef::Id(&self.acme), &g)
            .map(drop)
    }
}

fn key(name: &str) -> String {
    format!("sk-or-v1-{name}-0123456789")
}

fn fixture(t: &TestStore) -> Fx {
    let store = t.store.clone();
    store
        .settings()
        .create_or_update_settings(&GlobalSettingsForm {
            openrouter_provisioning_key: Some("sk-or-prov-0123456789".into()),
            ..GlobalSettingsForm::default()
        })
        .unwrap();
    let new = |name: &str, form: ClientOrganizationForm| {
        store
            .clients()
            .create_client(&form, &key(name).as_str().into(), None)
            .unwrap()
            .id
    };
    let acme = new(
        "acme",
        ClientOrganizationForm {
            monthly_limit: Some(dec!(500)),
            ..ClientOrganizationForm::new("Acme")
        },
    );
    let gotham = new(
        "gotham",
        ClientOrganizationForm {
            timezone: "America/New_York".into(),
            ..ClientOrganizationForm::new("Gotham")
        },
    );
    let gone = new("gone", ClientOrganizationForm::new("Gone"));
    assert!(store.clients().deactivate_client(&gone).unwrap());
    let whale = new("whale", ClientOrganizationForm::new("Whale"));
    for (user, client) in [("u1", &acme), ("u2", &gotham)] {
        store
            .mappings()
            .create_mapping(&UserClientMappingForm {
                user_id: user.into(),
                client_org_id: client.clone(),
                openrouter_user_id: format!("or-{user}"),
            })
            .unwrap();
    }
    let fx = Fx {
        store,
        acme,
        gotham,
        gone,
        whale,
    };
    fx.record(fx.rec()).unwrap();
    fx.generation("gen-1", fx.rec()).unwrap();
    // Nine records at the per-record maximum of marked-up cost: 9 × 10^18 nano-USD.
    let max_markup = || {
        UsageRecord::new(&fx.whale, "w1", "or-w1", "big/model")
            .on(whale_markup_day())
            .markup_cost(dec!(1000000000))
    };
    for _ in 0..9 {
        fx.record(max_markup()).unwrap();
    }
    // Sums that only years of traffic could reach, set directly.
    for (d, col) in [
        (whale_tokens_day(), "total_tokens"),
        (whale_raw_day(), "raw_cost"),
    ] {
        fx.record(
            UsageRecord::new(&fx.whale, "w1", "or-w1", "big/model")
                .on(d)
                .tokens(1, 0),
        )
        .unwrap();
        t.execute_sql(&format!(
            "UPDATE client_daily_usage SET {col} = 9223372036854775000 \
             WHERE client_org_id = '{}' AND usage_date = '{d}'",
            fx.whale
        ));
    }
    fx
}

/// Runs every case: the expected error, then an unchanged fingerprint.
fn run_table(t: &TestStore, cases: Vec<Case>) -> usize {
    let fx = fixture(t);
    let mut raw = Raw::open(t);
    let before = raw.fingerprint();
    let mut failures = Vec::new();
    for c in &cases {
        match (c.op)(&fx) {
            Ok(()) => failures.push(format!("{}: accepted, wanted {:?}", c.name, c.want)),
            Err(e) if !c.want.matches(&e) => {
                failures.push(format!("{}: got {e:?}, wanted {:?}", c.name, c.want));
            }
            Err(_) => {}
        }
        let after = raw.fingerprint();
        if after != before {
            let diff: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
            failures.push(format!("{}: wrote something: {diff:?}", c.name));
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn malformed_openrouter_records_are_typed_parse_errors() {
    let cases = payloads::malformed_openrouter();
    for (name, json) in &cases {
        let got = Generation::from_json(json);
        assert!(got.is_err(), "{name}: parsed {got:?}");
        let wrapped = format!(r#"{{"data":{json}}}"#);
        assert!(
            Generation::from_response_json(&wrapped).is_err(),
            "{name} (wrapped)"
        );
    }
    eprintln!("{} malformed OpenRouter payloads", cases.len());
}

#[test]
fn malformed_nbp_answers_are_typed_parse_errors() {
    let cases = payloads::malformed_nbp();
    for (name, body) in &cases {
        let got = orgusage::nbp::parse_rates_answer(body);
        assert!(
            matches!(got, Err(orgusage::nbp::NbpError::Parse(_))),
            "{name}: {got:?}"
        );
    }
    eprintln!("{} malformed NBP payloads", cases.len());
}

backend_tests! {
    fn every_bad_input_is_a_typed_error_and_writes_nothing(t) {
        let cases = cases::all();
        assert!(cases.len() >= 60, "the table has {} cases", cases.len());
        let n = run_table(t, cases);
        eprintln!("{}: {n} bad-input cases", t.backend());
    }

    fn sql_looking_and_unusual_strings_round_trip_verbatim(t) {
        let fx = fixture(t);
        let strange = [
            "'; DROP TABLE client_organizations; --",
            "Robert'); DROP TABLE students;--",
            "\" OR 1=1 --",
            "%_\\%",
            "zażółć/gęślą-jaźń 🦀",
        ];
        for (i, s) in strange.iter().enumerate() {
            let rec = UsageRecord::new(&fx.acme, *s, *s, *s)
                .on(date(2025, 7, 1))
                .tokens(1, 1)
                .provider(*s);
            fx.record(rec.clone()).unwrap();
            fx.generation(s, rec).unwrap();
            let name = format!("{s} {i}");
            let c = fx.store.clients().create_client(
                &ClientOrganizationForm::new(name.clone()),
                &key(&format!("odd{i}")).as_str().into(),
                Some(s),
            ).unwrap();
            let back = fx.store.clients().get_client_by_id(&c.id).unwrap().unwrap();
            assert_eq!((back.name.as_str(), back.openrouter_key_hash.as_deref()), (name.as_str(), Some(*s)));
        }
        let d = Some(date(2025, 7, 1));
        let models = fx.store.usage().get_usage_by_model(&fx.acme, d, d).unwrap();
        let users = fx.store.usage().get_usage_by_user(&fx.acme, d, d).unwrap();
        for s in strange {
            let m = models.iter().find(|m| m.model_name == s).unwrap();
            assert_eq!((m.provider.as_deref(), m.total_requests, m.total_tokens), (Some(s), 2, 4));
            let u = users.iter().find(|u| u.user_id == s).unwrap();
            assert_eq!(u.openrouter_user_id, s);
            assert!(fx.store.generations().is_generation_processed(s, &fx.acme).unwrap());
        }
        // The tables are all still there.
        assert_eq!(fx.store.clients().get_all_active_clients().unwrap().len(), 3 + strange.len());
    }

    fn boundary_values_are_accepted(t) {
        let fx = fixture(t);
        let long = "x".repeat(255);
        let rec = UsageRecord::new(&fx.acme, long.as_str(), long.as_str(), long.as_str())
            .on(orgusage::bounds::MIN_USAGE_DATE)
            .tokens(orgusage::bounds::MAX_RECORD_TOKENS, orgusage::bounds::MAX_RECORD_TOKENS)
            .raw_cost(orgusage::bounds::MAX_RECORD_COST)
            .markup_cost(orgusage::bounds::MAX_RECORD_MARKUP_COST);
        let done = fx.store.usage().record_usage(&rec).unwrap();
        assert_eq!(done.total_tokens, 2 * orgusage::bounds::MAX_RECORD_TOKENS);
        fx.record(fx.rec().on(orgusage::bounds::MAX_USAGE_DATE)).unwrap();
        // More than nine decimal places in a cost is rounded half-up once, not rejected.
        let fine = fx.store.usage().record_usage(
            &fx.rec().on(date(2025, 7, 2)).raw_cost(dec!(0.0000000015)).markup_cost(dec!(0.00000000249)),
        ).unwrap();
        assert_eq!((fine.raw_cost, fine.markup_cost), (dec!(0.000000002), dec!(0.000000002)));
        // The last record that still fits the guarded day.
        let d = whale_raw_day();
        let top = UsageRecord::new(&fx.whale, "w1", "or-w1", "big/model").on(d).raw_cost(dec!(0.000000807));
        fx.record(top).unwrap();
        let day = fx.store.usage().get_daily_usage(&fx.whale, d, d).unwrap();
        assert_eq!(day[0].raw_cost, Decimal::new(i64::MAX, 9));
    }

    fn nul_in_a_lookup_is_never_an_untyped_database_error(t) {
        let fx = fixture(t);
        let typed = |r: Result<bool, Error>, what: &str| match r {
            Ok(found) => assert!(!found, "{what} found something"),
            Err(Error::InvalidInput { .. } | Error::NotFound { .. }) => {}
            Err(e) => panic!("{what}: {e:?}"),
        };
        typed(fx.store.clients().get_client_by_id("client\0").map(|c| c.is_some()), "client by id");
        typed(fx.store.clients().get_client_by_api_key("sk\0").map(|c| c.is_some()), "client by key");
        typed(fx.store.mappings().get_mapping_by_user_id("u\0").map(|m| m.is_some()), "mapping");
        typed(fx.store.generations().is_generation_processed("g\0", &fx.acme), "ledger");
        typed(fx.store.usage().get_usage_by_user("c\0", None, None).map(|r| !r.is_empty()), "by user");
    }

    fn report_sums_past_i64_are_overflow_errors(t) {
        let fx = fixture(t);
        // A second day of 9 × 10^18 nano-USD: each day fits, their sum does not.
        for _ in 0..9 {
            fx.record(
                UsageRecord::new(&fx.whale, "w1", "or-w1", "big/model")
                    .on(date(2025, 7, 13))
                    .markup_cost(dec!(1000000000)),
            ).unwrap();
        }
        let (from, to) = (Some(date(2025, 7, 1)), Some(date(2025, 7, 31)));
        let by_user = fx.store.usage().get_usage_by_user(&fx.whale, from, to);
        assert!(matches!(by_user, Err(Error::Overflow(_))), "{by_user:?}");
        let by_model = fx.store.usage().get_usage_by_model(&fx.whale, from, to);
        assert!(matches!(by_model, Err(Error::Overflow(_))), "{by_model:?}");
    }
}
