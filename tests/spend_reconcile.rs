//! Reconciliation with OpenRouter (issue 11, step 3): our ledger per UTC day and model beside
//! `/activity` for the client's key, served by the loopback stub, with missing and drifting days.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::NaiveDate;
use orgusage::keys::{KeyManager, ManagementConfig};
use orgusage::openrouter::Generation;
use orgusage::provision::ProvisionError;
use orgusage::reconcile::{Tolerance, Verdict};
use orgusage::{ClientOrganizationForm, ClientRef, Error};
use orgusage_stub_http::{Request, Response, StubServer};
use orgusage_testkit::backend_tests;
use rust_decimal_macros::dec;

const ACTIVITY: &str = r#"{"data":[
  {"date":"2025-07-21","model":"openai/gpt-4.1","model_permaslug":"openai/gpt-4.1-2025-04-14","endpoint_id":"e1",
   "provider_name":"OpenAI","usage":0.1,"byok_usage_inference":0,"requests":1,"prompt_tokens":100,"completion_tokens":20,"reasoning_tokens":0},
  {"date":"2025-07-22","model":"openai/gpt-4.1","usage":0.15,"requests":1},
  {"date":"2025-07-22","model":"openai/gpt-4.1","endpoint_id":"e2","usage":0.05,"requests":0},
  {"date":"2025-07-22","model":"google/gemini-2.5-flash","usage":0.02,"requests":2},
  {"date":"2025-07-23","model":"anthropic/claude-sonnet-4","usage":0.5,"requests":2},
  {"date":"2025-07-23","model":"openai/gpt-4.1","usage":0.07,"requests":1},
  {"date":"2025-07-20","model":"openai/gpt-4.1","usage":9,"requests":9}
]}"#;

fn generation(id: &str, model: &str, created_at: &str, cost: &str) -> Generation {
    Generation::from_json(&format!(
        r#"{{"id":"{id}","model":"{model}","created_at":"{created_at}","tokens_prompt":100,"tokens_completion":20,"total_cost":{cost}}}"#
    ))
    .unwrap()
}

fn stub() -> StubServer {
    StubServer::start(|r: &Request| match r.path.as_str() {
        "/api/v1/activity" if r.query_param("api_key_hash") == Some("hash-acme") => {
            Response::new(200, ACTIVITY)
        }
        "/api/v1/keys/hash-acme" => Response::new(
            200,
            r#"{"data":{"hash":"hash-acme","name":"Client: Acme","limit":423.08,"usage":12.5,"usage_monthly":0.89,"disabled":false}}"#,
        ),
        _ => Response::new(404, "{}"),
    })
}

fn keys(server: &StubServer) -> KeyManager {
    KeyManager::new(
        ManagementConfig {
            base_url: server.url("/api/v1"),
            ..ManagementConfig::default()
        },
        "sk-or-v1-management-0123456789".into(),
    )
    .with_sleeper(|_d: Duration| {})
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 7, d).unwrap()
}

backend_tests! {
    fn ledger_is_compared_per_utc_day_and_model(t) {
        let acme = t.store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-acme-key-0001".into(), Some("hash-acme")).unwrap();
        let ingest = |g: Generation| assert!(t.store.ingest_generation(ClientRef::Id(&acme.id), &g).unwrap().is_recorded());
        ingest(generation("gen-a", "openai/gpt-4.1", "2025-07-21T12:00:00Z", "0.1"));
        // 00:30 on 23 July in Warsaw, but 22 July in UTC: compared with OpenRouter's 22 July.
        ingest(generation("gen-b", "openai/gpt-4.1", "2025-07-22T22:30:00Z", "0.2"));
        ingest(generation("gen-c", "openai/gpt-4.1", "2025-07-23T08:00:00Z", "0.05"));
        ingest(generation("gen-d", "mistralai/mistral-large", "2025-07-21T09:00:00Z", "0.01"));
        ingest(generation("gen-e", "google/gemini-2.5-flash", "2025-07-22T10:00:00Z", "0.02"));
        // Outside the range: ignored on both sides.
        ingest(generation("gen-f", "openai/gpt-4.1", "2025-07-24T01:00:00Z", "1"));
        let server = stub();
        let report = t.store.reconcile(&keys(&server), &acme.id, day(21), day(23), Tolerance::default()).unwrap();
        let got: Vec<(NaiveDate, &str, Verdict)> = report.lines.iter().map(|l| (l.date, l.model.as_str(), l.verdict)).collect();
        assert_eq!(got, [
            (day(21), "mistralai/mistral-large", Verdict::MissingUpstream),
            (day(21), "openai/gpt-4.1", Verdict::Match),
            (day(22), "google/gemini-2.5-flash", Verdict::RequestDrift),
            (day(22), "openai/gpt-4.1", Verdict::Match),
            (day(23), "anthropic/claude-sonnet-4", Verdict::MissingLocally),
            (day(23), "openai/gpt-4.1", Verdict::CostDrift),
        ]);
        let drift = &report.lines[5];
        assert_eq!((drift.upstream_cost, drift.local_cost, drift.cost_difference), (dec!(0.07), dec!(0.05), dec!(0.02)));
        assert_eq!((report.upstream_total, report.local_total), (dec!(0.89), dec!(0.38)));
        assert_eq!(report.key_usage_monthly, Some(dec!(0.89)));
        assert_eq!(report.differences().count(), 4);
        assert_eq!(report.unplaced_local_generations, 0);
        let csv = report.to_csv();
        assert!(csv.starts_with("date,model,upstream_cost,upstream_requests,local_cost,local_requests,cost_difference,verdict\n"));
        assert!(csv.contains("2025-07-23,openai/gpt-4.1,0.07,1,0.05,1,0.02,cost_drift\n"), "{csv}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["lines"][4]["verdict"], "missing_locally");
        // A generous tolerance turns the drift into a match.
        let loose = t.store.reconcile(&keys(&server), &acme.id, day(23), day(23), Tolerance { cost: dec!(0.05) }).unwrap();
        assert_eq!(loose.lines[1].verdict, Verdict::Match);
    }

    fn only_completed_days_of_a_provisioned_client(t) {
        let server = stub();
        let plain = t.store.clients().create_client(&ClientOrganizationForm::new("NoHash"), &"sk-or-v1-nohash-0001".into(), None).unwrap();
        let e = t.store.reconcile(&keys(&server), &plain.id, day(21), day(23), Tolerance::default()).unwrap_err();
        assert!(matches!(e, ProvisionError::Database(Error::InvalidInput { .. })), "{e:?}");
        // 24 July is today on the test clock: not a completed UTC day.
        let e = t.store.reconcile(&keys(&server), &plain.id, day(21), day(24), Tolerance::default()).unwrap_err();
        assert!(matches!(e, ProvisionError::Database(Error::InvalidInput { .. })), "{e:?}");
        assert_eq!(server.request_count(), 0);
    }
}

#[test]
fn a_request_gap_with_a_cost_gap_names_the_side_that_lacks_requests() {
    use orgusage::keys::parse_activity;
    use orgusage::reconcile::compare;
    use orgusage::spend::LedgerDay;
    let upstream = parse_activity(
        r#"{"data":[{"date":"2025-07-22","model":"m/a","usage":0.2,"requests":2},
                    {"date":"2025-07-22","model":"m/b","usage":0.1,"requests":1}]}"#,
    )
    .unwrap();
    let ours = [
        LedgerDay {
            date: day(22),
            model: "m/a".into(),
            raw_cost: dec!(0.1),
            requests: 1,
        },
        LedgerDay {
            date: day(22),
            model: "m/b".into(),
            raw_cost: dec!(0.3),
            requests: 3,
        },
    ];
    let lines = compare(&upstream, &ours, day(22), day(22), Tolerance::default());
    let verdicts: Vec<Verdict> = lines.iter().map(|l| l.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::MissingLocally, Verdict::MissingUpstream]
    );
    assert_eq!(lines[1].cost_difference, dec!(-0.2));
}
