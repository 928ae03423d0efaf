//! The bad-input table: one row per (write path, bad value, expected typed error).

use chrono::{NaiveDate, TimeZone, Utc};
use orgusage::{
    ClientOrganizationForm, ClientOrganizationUpdate, Decimal, GlobalSettingsForm, UsageRecord,
    UserClientMappingForm, UserClientMappingUpdate,
};
use rust_decimal_macros::dec;

use super::{
    ACME_KEY, Case, Fx, GONE_KEY, Want, case, date, whale_markup_day, whale_raw_day,
    whale_tokens_day,
};
use Want::{Conflict, Invalid, NotFound, Overflow, Timezone};

pub const BIG: usize = 100 * 1024;

pub fn big() -> String {
    "a".repeat(BIG)
}

/// Every case of the table.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(clients());
    v.extend(updates());
    v.extend(mappings());
    v.extend(settings());
    v.extend(usage());
    v.extend(generations());
    v.extend(super::payloads::ingestion());
    v
}

fn form(f: impl Fn(&mut ClientOrganizationForm)) -> ClientOrganizationForm {
    let mut form = ClientOrganizationForm::new("New Client");
    f(&mut form);
    form
}

fn clients() -> Vec<Case> {
    let mut v = vec![
        case("create_client: empty name", Invalid("name"), |x| {
            x.create(ClientOrganizationForm::new(""), "sk-new-0123456789")
        }),
        case("create_client: blank name", Invalid("name"), |x| {
            x.create(ClientOrganizationForm::new(" \t "), "sk-new-0123456789")
        }),
        case("create_client: NUL in name", Invalid("name"), |x| {
            x.create(ClientOrganizationForm::new("Ac\0me"), "sk-new-0123456789")
        }),
        case("create_client: 100 KB name", Invalid("name"), |x| {
            x.create(ClientOrganizationForm::new(big()), "sk-new-0123456789")
        }),
        case(
            "create_client: empty key",
            Invalid("openrouter_api_key"),
            |x| x.create(ClientOrganizationForm::new("New"), ""),
        ),
        case(
            "create_client: NUL in key",
            Invalid("openrouter_api_key"),
            |x| x.create(ClientOrganizationForm::new("New"), "sk-new\0-0123456789"),
        ),
        case(
            "create_client: 100 KB key",
            Invalid("openrouter_api_key"),
            |x| x.create(ClientOrganizationForm::new("New"), &big()),
        ),
        case(
            "create_client: key with a space",
            Invalid("openrouter_api_key"),
            |x| x.create(ClientOrganizationForm::new("New"), "sk-new 0123456789"),
        ),
        case("create_client: duplicate key", Conflict, |x| {
            x.create(ClientOrganizationForm::new("Copy"), ACME_KEY)
        }),
        case(
            "create_client: key of a deactivated client",
            Conflict,
            |x| x.create(ClientOrganizationForm::new("Copy"), GONE_KEY),
        ),
        case("create_client: markup 0", Invalid("markup_rate"), |x| {
            x.create(form(|f| f.markup_rate = dec!(0)), "sk-new-0123456789")
        }),
        case(
            "create_client: negative markup",
            Invalid("markup_rate"),
            |x| x.create(form(|f| f.markup_rate = dec!(-1.3)), "sk-new-0123456789"),
        ),
        case(
            "create_client: markup over 1000",
            Invalid("markup_rate"),
            |x| {
                x.create(
                    form(|f| f.markup_rate = dec!(1000.000000001)),
                    "sk-new-0123456789",
                )
            },
        ),
        case(
            "create_client: markup with 10 decimals",
            Invalid("markup_rate"),
            |x| {
                x.create(
                    form(|f| f.markup_rate = dec!(1.3000000001)),
                    "sk-new-0123456789",
                )
            },
        ),
        case(
            "create_client: negative limit",
            Invalid("monthly_limit"),
            |x| {
                x.create(
                    form(|f| f.monthly_limit = Some(dec!(-0.01))),
                    "sk-new-0123456789",
                )
            },
        ),
        case("create_client: limit beyond i64 nano-USD", Overflow, |x| {
            x.create(
                form(|f| f.monthly_limit = Some(dec!(10000000000))),
                "sk-new-0123456789",
            )
        }),
        case("create_client: limit Decimal::MAX", Overflow, |x| {
            x.create(
                form(|f| f.monthly_limit = Some(Decimal::MAX)),
                "sk-new-0123456789",
            )
        }),
        case(
            "create_client: e-mail without @",
            Invalid("billing_email"),
            |x| {
                x.create(
                    form(|f| f.billing_email = Some("billing.acme.pl".into())),
                    "sk-new-0123456789",
                )
            },
        ),
        case(
            "create_client: NUL in e-mail",
            Invalid("billing_email"),
            |x| {
                x.create(
                    form(|f| f.billing_email = Some("b@acme\0.pl".into())),
                    "sk-new-0123456789",
                )
            },
        ),
        case("create_client: NUL in key hash", Invalid("key_hash"), |x| {
            x.store
                .clients()
                .create_client(&form(|_| {}), &"sk-new-0123456789".into(), Some("h\0sh"))
                .map(drop)
        }),
        case("create_client: 100 KB key hash", Invalid("key_hash"), |x| {
            x.store
                .clients()
                .create_client(&form(|_| {}), &"sk-new-0123456789".into(), Some(&big()))
                .map(drop)
        }),
    ];
    // Every invalid zone form: abbreviations, legacy links, offsets, unknown, empty, case.
    for tz in [
        "CET",
        "Poland",
        "US/Eastern",
        "utc+1",
        "UTC+1",
        "Europe/Nowhere",
        "",
        " ",
        " Europe/Warsaw",
        "europe/warsaw",
        "EUROPE/WARSAW",
        "Europe/Warsaw\0",
        "Etc/GMT-1/",
    ] {
        v.push(case(
            format!("create_client: timezone {tz:?}"),
            Timezone,
            move |x| x.create(form(|f| f.timezone = tz.into()), "sk-new-0123456789"),
        ));
    }
    v
}

fn update(x: &Fx, u: ClientOrganizationUpdate) -> Result<(), orgusage::Error> {
    x.store.clients().update_client(&x.acme, &u).map(drop)
}

fn updates() -> Vec<Case> {
    vec![
        case("update_client: empty name", Invalid("name"), |x| {
            update(
                x,
                ClientOrganizationUpdate {
                    name: Some(String::new()),
                    ..Default::default()
                },
            )
        }),
        case("update_client: NUL in name", Invalid("name"), |x| {
            update(
                x,
                ClientOrganizationUpdate {
                    name: Some("A\0".into()),
                    ..Default::default()
                },
            )
        }),
        case("update_client: markup 0", Invalid("markup_rate"), |x| {
            update(
                x,
                ClientOrganizationUpdate {
                    markup_rate: Some(dec!(0)),
                    ..Default::default()
                },
            )
        }),
        case(
            "update_client: markup with 10 decimals",
            Invalid("markup_rate"),
            |x| {
                let rate = Some(dec!(1.0000000001));
                update(
                    x,
                    ClientOrganizationUpdate {
                        markup_rate: rate,
                        ..Default::default()
                    },
                )
            },
        ),
        case(
            "update_client: negative limit",
            Invalid("monthly_limit"),
            |x| {
                let limit = Some(Some(dec!(-5)));
                update(
                    x,
                    ClientOrganizationUpdate {
                        monthly_limit: limit,
                        ..Default::default()
                    },
                )
            },
        ),
        case("update_client: limit beyond i64 nano-USD", Overflow, |x| {
            let limit = Some(Some(dec!(99999999999)));
            update(
                x,
                ClientOrganizationUpdate {
                    monthly_limit: limit,
                    ..Default::default()
                },
            )
        }),
        case("update_client: timezone Poland", Timezone, |x| {
            let tz = Some("Poland".into());
            update(
                x,
                ClientOrganizationUpdate {
                    timezone: tz,
                    ..Default::default()
                },
            )
        }),
        case("update_client: lower-case timezone", Timezone, |x| {
            let tz = Some("europe/warsaw".into());
            update(
                x,
                ClientOrganizationUpdate {
                    timezone: tz,
                    ..Default::default()
                },
            )
        }),
        case(
            "update_client: NUL in key hash",
            Invalid("openrouter_key_hash"),
            |x| {
                let h = Some(Some("h\0".into()));
                update(
                    x,
                    ClientOrganizationUpdate {
                        openrouter_key_hash: h,
                        ..Default::default()
                    },
                )
            },
        ),
        case("update_client: bad e-mail", Invalid("billing_email"), |x| {
            let e = Some(Some("@".into()));
            update(
                x,
                ClientOrganizationUpdate {
                    billing_email: e,
                    ..Default::default()
                },
            )
        }),
    ]
}

fn mapping(x: &Fx, user: &str, client: &str, or_user: &str) -> Result<(), orgusage::Error> {
    x.store
        .mappings()
        .create_mapping(&UserClientMappingForm {
            user_id: user.into(),
            client_org_id: client.into(),
            openrouter_user_id: or_user.into(),
        })
        .map(drop)
}

fn mappings() -> Vec<Case> {
    vec![
        case("create_mapping: empty user id", Invalid("user_id"), |x| {
            mapping(x, "", &x.acme, "or-x")
        }),
        case("create_mapping: NUL in user id", Invalid("user_id"), |x| {
            mapping(x, "u\0x", &x.acme, "or-x")
        }),
        case("create_mapping: 100 KB user id", Invalid("user_id"), |x| {
            mapping(x, &big(), &x.acme, "or-x")
        }),
        case(
            "create_mapping: NUL in openrouter user id",
            Invalid("openrouter_user_id"),
            |x| mapping(x, "ux", &x.acme, "or\0x"),
        ),
        case("create_mapping: unknown client", NotFound, |x| {
            mapping(x, "ux", "client_nope", "or-x")
        }),
        case("create_mapping: deactivated client", NotFound, |x| {
            mapping(x, "ux", &x.gone, "or-x")
        }),
        case("create_mapping: user mapped elsewhere", Conflict, |x| {
            mapping(x, "u2", &x.acme, "or-u2")
        }),
        case(
            "update_mapping: NUL in openrouter user id",
            Invalid("openrouter_user_id"),
            |x| {
                let u = UserClientMappingUpdate {
                    openrouter_user_id: Some("or\0".into()),
                };
                x.store.mappings().update_mapping("u1", &u).map(drop)
            },
        ),
        case(
            "update_mapping: empty openrouter user id",
            Invalid("openrouter_user_id"),
            |x| {
                let u = UserClientMappingUpdate {
                    openrouter_user_id: Some(String::new()),
                };
                x.store.mappings().update_mapping("u1", &u).map(drop)
            },
        ),
    ]
}

fn settings_with(f: impl Fn(&mut GlobalSettingsForm)) -> GlobalSettingsForm {
    let mut form = GlobalSettingsForm::default();
    f(&mut form);
    form
}

fn settings() -> Vec<Case> {
    let key = "openrouter_provisioning_key";
    let cases: [(&str, Want, GlobalSettingsForm); 7] = [
        (
            "NUL in provisioning key",
            Invalid(key),
            settings_with(|f| {
                f.openrouter_provisioning_key = Some("sk-prov\0".into());
            }),
        ),
        (
            "empty provisioning key",
            Invalid(key),
            settings_with(|f| {
                f.openrouter_provisioning_key = Some("".into());
            }),
        ),
        (
            "markup 0",
            Invalid("markup_rate"),
            settings_with(|f| f.default_markup_rate = dec!(0)),
        ),
        (
            "markup over 1000",
            Invalid("markup_rate"),
            settings_with(|f| {
                f.default_markup_rate = dec!(1001);
            }),
        ),
        (
            "lower-case currency",
            Invalid("billing_currency"),
            settings_with(|f| {
                f.billing_currency = "usd".into();
            }),
        ),
        (
            "NUL in currency",
            Invalid("billing_currency"),
            settings_with(|f| {
                f.billing_currency = "US\0".into();
            }),
        ),
        (
            "empty currency",
            Invalid("billing_currency"),
            settings_with(|f| {
                f.billing_currency = String::new();
            }),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, want, form)| {
            case(
                format!("create_or_update_settings: {name}"),
                want,
                move |x| {
                    x.store
                        .settings()
                        .create_or_update_settings(&form)
                        .map(drop)
                },
            )
        })
        .collect()
}

type Edit = fn(&Fx, UsageRecord) -> UsageRecord;

fn usage_edits() -> Vec<(&'static str, Want, Edit)> {
    vec![
        ("negative input tokens", Invalid("tokens"), |_, r| {
            r.tokens(-1, 5)
        }),
        ("negative output tokens", Invalid("tokens"), |_, r| {
            r.tokens(5, -1)
        }),
        ("input tokens over 10^9", Invalid("input_tokens"), |_, r| {
            r.tokens(1_000_000_001, 0)
        }),
        (
            "output tokens i64::MAX",
            Invalid("output_tokens"),
            |_, r| r.tokens(0, i64::MAX),
        ),
        ("input + output tokens past i64", Overflow, |_, r| {
            r.tokens(i64::MAX, 1)
        }),
        ("negative raw cost", Invalid("raw_cost"), |_, r| {
            r.raw_cost(dec!(-0.01))
        }),
        (
            "raw cost just over 1,000,000 USD",
            Invalid("raw_cost"),
            |_, r| r.raw_cost(dec!(1000000.000000001)),
        ),
        ("raw cost 5,000,000,000 USD", Invalid("raw_cost"), |_, r| {
            r.raw_cost(dec!(5000000000))
        }),
        ("raw cost beyond i64 nano-USD", Overflow, |_, r| {
            r.raw_cost(dec!(10000000000))
        }),
        ("raw cost Decimal::MAX", Overflow, |_, r| {
            r.raw_cost(Decimal::MAX)
        }),
        ("negative markup cost", Invalid("markup_cost"), |_, r| {
            r.markup_cost(dec!(-1))
        }),
        (
            "markup cost over 10^9 USD",
            Invalid("markup_cost"),
            |_, r| r.markup_cost(dec!(1000000000.000000001)),
        ),
        ("markup cost beyond i64 nano-USD", Overflow, |_, r| {
            r.markup_cost(dec!(1e11))
        }),
        ("NUL in user id", Invalid("user_id"), |_, r| UsageRecord {
            user_id: "u\0x".into(),
            ..r
        }),
        ("100 KB user id", Invalid("user_id"), |_, r| UsageRecord {
            user_id: big(),
            ..r
        }),
        (
            "NUL in openrouter user id",
            Invalid("openrouter_user_id"),
            |_, r| UsageRecord {
                openrouter_user_id: "or\0".into(),
                ..r
            },
        ),
        ("NUL in model", Invalid("model_name"), |_, r| UsageRecord {
            model_name: "gpt\0".into(),
            ..r
        }),
        ("100 KB model", Invalid("model_name"), |_, r| UsageRecord {
            model_name: big(),
            ..r
        }),
        ("blank model", Invalid("model_name"), |_, r| UsageRecord {
            model_name: " ".into(),
            ..r
        }),
        ("NUL in provider", Invalid("provider"), |_, r| {
            r.provider("open\0ai")
        }),
        ("NUL in client id", Invalid("client_org_id"), |_, r| {
            UsageRecord {
                client_org_id: "client\0".into(),
                ..r
            }
        }),
        (
            "usage_date NaiveDate::MIN",
            Invalid("usage_date"),
            |_, r| r.on(NaiveDate::MIN),
        ),
        (
            "usage_date NaiveDate::MAX",
            Invalid("usage_date"),
            |_, r| r.on(NaiveDate::MAX),
        ),
        ("usage_date 1999-12-31", Invalid("usage_date"), |_, r| {
            r.on(date(1999, 12, 31))
        }),
        ("usage_date 2100-01-01", Invalid("usage_date"), |_, r| {
            r.on(date(2100, 1, 1))
        }),
        ("occurred_at in year 0", Invalid("occurred_at"), |_, r| {
            UsageRecord {
                usage_date: None,
                ..r.at(Utc.with_ymd_and_hms(0, 1, 1, 12, 0, 0).unwrap())
            }
        }),
        (
            "occurred_at that is 1999-12-31 in New York",
            Invalid("usage_date"),
            |x, r| UsageRecord {
                client_org_id: x.gotham.clone(),
                usage_date: None,
                ..r.at(Utc.with_ymd_and_hms(2000, 1, 1, 2, 0, 0).unwrap())
            },
        ),
        ("unknown client", NotFound, |_, r| UsageRecord {
            client_org_id: "client_nope".into(),
            ..r
        }),
        ("deactivated client", NotFound, |x, r| UsageRecord {
            client_org_id: x.gone.clone(),
            ..r
        }),
        ("day's marked-up cost past i64", Overflow, |x, r| {
            UsageRecord {
                client_org_id: x.whale.clone(),
                ..r.on(whale_markup_day()).markup_cost(dec!(1000000000))
            }
        }),
        ("day's tokens past i64", Overflow, |x, r| UsageRecord {
            client_org_id: x.whale.clone(),
            ..r.on(whale_tokens_day()).tokens(1000, 0)
        }),
        ("day's raw cost past i64", Overflow, |x, r| UsageRecord {
            client_org_id: x.whale.clone(),
            ..r.on(whale_raw_day()).raw_cost(dec!(0.000000808))
        }),
    ]
}

fn usage() -> Vec<Case> {
    usage_edits()
        .into_iter()
        .map(|(name, want, edit)| {
            case(format!("record_usage: {name}"), want, move |x| {
                x.record(edit(x, x.rec()))
            })
        })
        .collect()
}

fn generations() -> Vec<Case> {
    let mut v: Vec<Case> = usage_edits()
        .into_iter()
        .filter(|(name, ..)| name.contains("past i64") || name.contains("NaiveDate::MIN"))
        .map(|(name, want, edit)| {
            case(format!("record_generation: {name}"), want, move |x| {
                x.generation("gen-new", edit(x, x.rec()))
            })
        })
        .collect();
    v.extend([
        case(
            "record_generation: empty id",
            Invalid("generation_id"),
            |x| x.generation("", x.rec()),
        ),
        case(
            "record_generation: NUL in id",
            Invalid("generation_id"),
            |x| x.generation("gen\0-2", x.rec()),
        ),
        case(
            "record_generation: 100 KB id",
            Invalid("generation_id"),
            |x| x.generation(&big(), x.rec()),
        ),
    ]);
    let mark = |x: &Fx, id: &str, day: NaiveDate, cost: Decimal, tokens: i64| {
        x.store
            .generations()
            .mark_generation_processed(id, &x.acme, day, cost, tokens)
            .map(drop)
    };
    let d = date(2025, 7, 24);
    v.extend([
        case(
            "mark_generation_processed: NUL in id",
            Invalid("generation_id"),
            move |x| mark(x, "g\0", d, dec!(1), 1),
        ),
        case(
            "mark_generation_processed: negative cost",
            Invalid("total_cost"),
            move |x| mark(x, "g-m", d, dec!(-1), 1),
        ),
        case(
            "mark_generation_processed: cost over bound",
            Invalid("total_cost"),
            move |x| mark(x, "g-m", d, dec!(1000001), 1),
        ),
        case(
            "mark_generation_processed: negative tokens",
            Invalid("total_tokens"),
            move |x| mark(x, "g-m", d, dec!(1), -1),
        ),
        case(
            "mark_generation_processed: i64::MAX tokens",
            Invalid("total_tokens"),
            move |x| mark(x, "g-m", d, dec!(1), i64::MAX),
        ),
        case(
            "mark_generation_processed: year -262143",
            Invalid("generation_date"),
            move |x| mark(x, "g-m", NaiveDate::MIN, dec!(1), 1),
        ),
        case(
            "mark_generation_processed: unknown client",
            NotFound,
            move |x| {
                x.store
                    .generations()
                    .mark_generation_processed("g-m", "client_nope", d, dec!(1), 1)
                    .map(drop)
            },
        ),
    ]);
    v
}
