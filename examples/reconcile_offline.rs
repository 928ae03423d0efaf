//! Spend control end to end, offline: a client is onboarded with its own OpenRouter key
//! (created through a stand-in of the management API on 127.0.0.1), requests are authorized
//! against its monthly limit and settled by their generation records, and the last three
//! completed UTC days are reconciled with the stand-in's `/activity`
//! (`examples/data/openrouter_activity.json`, in OpenRouter's documented shape).
//!
//! The database is a fresh SQLite file and the clock is pinned to 2025-07-24 10:00 UTC, so
//! every run prints the same report. One generation is missing locally on purpose (OpenRouter
//! billed it, we never ingested it) and one drifts.
//!
//! ```sh
//! cargo run --example reconcile_offline
//! ```

use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use orgusage::clock::ManualClock;
use orgusage::keys::{KeyManager, ManagementConfig};
use orgusage::openrouter::Generation;
use orgusage::reconcile::Tolerance;
use orgusage::spend::Authorization;
use orgusage::{ClientOrganizationForm, ClientRef, Decimal, Store, StoreConfig};
use orgusage_stub_http::{Request, Response, StubServer};

type AnyError = Box<dyn std::error::Error>;

const ACTIVITY: &str = include_str!("data/openrouter_activity.json");

/// (generation id, model, created_at, prompt, completion, raw cost)
const GENERATIONS: [(&str, &str, &str, i64, i64, &str); 5] = [
    (
        "gen-1",
        "openai/gpt-4.1",
        "2025-07-21T08:15:00Z",
        2600,
        1000,
        "0.0132",
    ),
    (
        "gen-2",
        "openai/gpt-4.1",
        "2025-07-21T16:40:00Z",
        2600,
        1000,
        "0.0132",
    ),
    // 23:30 in Warsaw on 22 July, 21:30 UTC: OpenRouter's 22 July.
    (
        "gen-3",
        "anthropic/claude-sonnet-4",
        "2025-07-22T21:30:00Z",
        3100,
        1200,
        "0.0273",
    ),
    // 00:20 in Warsaw on 23 July but 22:20 UTC on 22 July; OpenRouter charged 0.0152.
    (
        "gen-4",
        "openai/gpt-4.1",
        "2025-07-22T22:20:00Z",
        3600,
        1000,
        "0.0150",
    ),
    (
        "gen-5",
        "google/gemini-2.5-flash",
        "2025-07-23T12:00:00Z",
        1500,
        1040,
        "0.00305",
    ),
    // A second claude-sonnet-4 request on 22 July (0.0273) was never ingested.
];

/// A stand-in for the management API: creates one key, describes it, serves `/activity`.
fn stand_in() -> StubServer {
    let limit = Arc::new(Mutex::new(String::from("null")));
    StubServer::start(move |r: &Request| {
        let key = |limit: &str| {
            format!(
                r#"{{"hash":"5f0e3c2a9b","name":"Client: Acme Sp. z o.o.","label":"sk-or-v1-a1b...f00","disabled":false,
                    "limit":{limit},"limit_remaining":{limit},"limit_reset":"monthly","usage":0.09965,
                    "usage_daily":0,"usage_weekly":0.09965,"usage_monthly":0.09965,"created_at":"2025-07-01T08:00:00Z"}}"#
            )
        };
        let mut stored = limit.lock().unwrap_or_else(|p| p.into_inner());
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/api/v1/keys") => {
                let from = r.body.find("\"limit\":").map(|i| i + 8).unwrap_or(0);
                let to = r.body[from..].find([',', '}']).map_or(from, |n| from + n);
                *stored = r.body[from..to].to_string();
                Response::new(
                    201,
                    format!(
                        r#"{{"data":{},"key":"sk-or-v1-a1b2c3d4e5f6a7b8c9d0e1f2f00"}}"#,
                        key(&stored)
                    ),
                )
            }
            ("GET", "/api/v1/keys/5f0e3c2a9b") => {
                Response::new(200, format!(r#"{{"data":{}}}"#, key(&stored)))
            }
            ("GET", "/api/v1/activity") => Response::new(200, ACTIVITY),
            _ => Response::new(404, r#"{"error":{"code":404,"message":"Not found"}}"#),
        }
    })
}

fn main() -> Result<(), AnyError> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("orgusage.db");
    let now = Utc
        .with_ymd_and_hms(2025, 7, 24, 10, 0, 0)
        .single()
        .ok_or("bad instant")?;
    let store = Store::open(
        StoreConfig::new(db.display().to_string()).clock(Arc::new(ManualClock::new(now))),
    )?;
    let server = stand_in();
    let keys = KeyManager::new(
        ManagementConfig {
            base_url: server.url("/api/v1"),
            ..ManagementConfig::default()
        },
        "sk-or-v1-management-example-0000".into(),
    );

    // Onboarding: the key is created with the client's limit in OpenRouter's terms.
    let form = ClientOrganizationForm {
        markup_rate: Decimal::new(13, 1),
        monthly_limit: Some(Decimal::new(50, 0)),
        ..ClientOrganizationForm::new("Acme Sp. z o.o.")
    };
    let made = store.provisioning(keys.clone()).create_client(&form)?;
    let acme = made.client;
    println!(
        "client {} ({}): limit {} USD marked up per local month -> key {} limit {} USD raw per UTC month",
        acme.id,
        acme.openrouter_api_key,
        form.monthly_limit.unwrap_or_default(),
        made.key.hash,
        or_none(made.key.limit)
    );

    // Each request: authorize an estimate, send it, ingest its generation (which settles).
    for (id, model, created, prompt, completion, cost) in GENERATIONS {
        let estimate = Decimal::new(5, 2); // 0.05 USD raw, the worst case for these models
        let Authorization::Reserved(held) = store.spend().authorize(&acme.id, estimate)? else {
            println!("{id}: refused, not sent");
            continue;
        };
        let generation = Generation::from_json(&format!(
            r#"{{"id":"{id}","model":"{model}","created_at":"{created}","tokens_prompt":{prompt},"tokens_completion":{completion},"total_cost":{cost}}}"#
        ))?;
        store.ingest_generation_settling(ClientRef::Id(&acme.id), &generation, &held.id)?;
        println!("{id}: held {} USD, booked {cost} USD raw", held.amount);
    }
    let status = store.usage().get_monthly_limit_status(&acme.id)?;
    println!(
        "July so far: {} of {} USD ({} %)",
        status.spent,
        or_none(status.monthly_limit),
        or_none(status.percent_used)
    );

    let day = |d| NaiveDate::from_ymd_opt(2025, 7, d).ok_or("bad day");
    let report = store.reconcile(&keys, &acme.id, day(21)?, day(23)?, Tolerance::default())?;
    println!(
        "\nreconciliation {}..={} (UTC days): OpenRouter {} USD, ours {} USD, key usage this UTC month {} USD",
        report.from,
        report.to,
        report.upstream_total,
        report.local_total,
        or_none(report.key_usage_monthly)
    );
    for line in report.differences() {
        println!(
            "  {} {:<28} {}: upstream {} ({} req), ours {} ({} req)",
            line.date,
            line.model,
            line.verdict,
            line.upstream_cost,
            line.upstream_requests,
            line.local_cost,
            line.local_requests
        );
    }
    println!("\n{}", report.to_csv());
    Ok(())
}

/// An optional amount for people: the value, or `none`.
fn or_none(value: Option<Decimal>) -> String {
    value.map_or("none".to_string(), |v| v.to_string())
}
