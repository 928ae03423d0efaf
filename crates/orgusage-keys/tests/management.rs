//! The management API client against the loopback stub, with bodies shaped like OpenRouter's
//! documented ones: create, read, update, disable, delete, list, credits, activity; 429 with
//! `Retry-After`, 5xx, 401 and malformed bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgusage_keys::{KeyManager, KeyUpdate, KeysError, LimitReset, ManagementConfig, NewKey};
use orgusage_stub_http::{Request, Response, StubServer};
use rust_decimal_macros::dec;

const MANAGEMENT_KEY: &str = "sk-or-v1-mgmt-0123456789abcdef";
const NEW_KEY: &str = "sk-or-v1-client-fedcba9876543210";

fn key_json(hash: &str, limit: &str, disabled: bool) -> String {
    format!(
        r#"{{"hash":"{hash}","name":"Client: Acme","label":"sk-or-v1-cli...210","disabled":{disabled},
            "limit":{limit},"limit_remaining":{limit},"limit_reset":"monthly","include_byok_in_limit":false,
            "usage":0.0123456789,"usage_daily":0,"usage_weekly":0.01,"usage_monthly":0.0123456789,
            "byok_usage":0,"created_at":"2025-07-24T10:00:00.000Z","updated_at":null}}"#
    )
}

/// A manager on `server` whose pauses are recorded instead of slept.
fn manager(server: &StubServer) -> (KeyManager, Arc<Mutex<Vec<Duration>>>) {
    let slept = Arc::new(Mutex::new(Vec::new()));
    let record = slept.clone();
    let keys = KeyManager::new(
        ManagementConfig {
            base_url: server.url("/api/v1"),
            ..ManagementConfig::default()
        },
        MANAGEMENT_KEY.into(),
    )
    .with_sleeper(move |d: Duration| record.lock().unwrap().push(d));
    (keys, slept)
}

fn assert_no_secret(e: &KeysError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(!text.contains("fedcba9876543210"), "{text}");
}

#[test]
fn create_sends_name_limit_and_reset_and_returns_the_key_once() {
    let server = StubServer::start(|_| {
        Response::new(
            201,
            format!(
                r#"{{"data":{},"key":"{NEW_KEY}"}}"#,
                key_json("h-acme", "423.08", false)
            ),
        )
    });
    let (keys, _) = manager(&server);
    let created = keys
        .create(&NewKey {
            name: "Client: Acme \"Sp\"".into(),
            limit: Some(dec!(423.080)),
            limit_reset: Some(LimitReset::Monthly),
        })
        .unwrap();
    assert_eq!(created.key.expose(), NEW_KEY);
    assert!(!format!("{created:?}").contains("fedcba9876543210"));
    assert_eq!(created.info.hash, "h-acme");
    assert_eq!(created.info.limit, Some(dec!(423.08)));
    assert_eq!(created.info.usage, dec!(0.0123456789));
    let seen = server.requests();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/v1/keys")
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {MANAGEMENT_KEY}").as_str())
    );
    assert_eq!(
        seen[0].body,
        r#"{"name":"Client: Acme \"Sp\"","limit":423.08,"limit_reset":"monthly"}"#
    );
}

#[test]
fn read_update_disable_delete_list() {
    let server = StubServer::start(|r: &Request| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/keys/h-1") => Response::new(
            200,
            format!(r#"{{"data":{}}}"#, key_json("h-1", "10", false)),
        ),
        ("PATCH", "/api/v1/keys/h-1") => {
            let disabled = r.body.contains("\"disabled\":true");
            Response::new(
                200,
                format!(r#"{{"data":{}}}"#, key_json("h-1", "12.5", disabled)),
            )
        }
        ("DELETE", "/api/v1/keys/h-1") => Response::new(200, r#"{"deleted":true}"#),
        ("DELETE", _) | ("GET", "/api/v1/keys/h-gone") => {
            Response::new(404, r#"{"error":{"code":404,"message":"Not found"}}"#)
        }
        ("GET", "/api/v1/keys") => Response::new(
            200,
            format!(
                r#"{{"data":[{},{}]}}"#,
                key_json("h-1", "10", false),
                key_json("h-2", "null", true)
            ),
        ),
        _ => Response::new(400, "{}"),
    });
    let (keys, _) = manager(&server);
    assert_eq!(keys.get("h-1").unwrap().limit, Some(dec!(10)));
    assert!(matches!(keys.get("h-gone"), Err(KeysError::NotFound { hash }) if hash == "h-gone"));
    let updated = keys
        .update(
            "h-1",
            &KeyUpdate {
                limit: Some(Some(dec!(12.50))),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!((updated.limit, updated.disabled), (Some(dec!(12.5)), false));
    let disabled = keys
        .update(
            "h-1",
            &KeyUpdate {
                disabled: Some(true),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert!(disabled.disabled);
    keys.update(
        "h-1",
        &KeyUpdate {
            limit: Some(None),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    assert!(keys.delete("h-1").unwrap());
    assert!(
        !keys.delete("h-other").unwrap(),
        "already gone is not an error"
    );
    let page = keys.list(0).unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!((page[1].limit, page[1].disabled), (None, true));
    let bodies: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        bodies,
        [
            r#"{"limit":12.5}"#,
            r#"{"disabled":true}"#,
            r#"{"limit":null}"#
        ]
    );
    assert_eq!(
        server.requests().last().unwrap().target,
        "/api/v1/keys?offset=0"
    );
    // Nothing that cannot be a hash is ever put in a path.
    assert!(matches!(
        keys.get("../credits"),
        Err(KeysError::InvalidRequest(_))
    ));
}

#[test]
fn rate_limit_honours_retry_after_then_succeeds() {
    let server = StubServer::start(|r: &Request| {
        if r.index == 0 {
            Response::new(429, r#"{"error":{"code":429}}"#).with_header("Retry-After", "3")
        } else {
            Response::new(
                200,
                format!(r#"{{"data":{}}}"#, key_json("h-1", "1", false)),
            )
        }
    });
    let (keys, slept) = manager(&server);
    keys.get("h-1").unwrap();
    assert_eq!(*slept.lock().unwrap(), [Duration::from_secs(3)]);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn retry_after_beyond_max_backoff_gives_up_at_once() {
    let server = StubServer::start(|_| Response::new(429, "{}").with_header("Retry-After", "3600"));
    let (keys, slept) = manager(&server);
    let e = keys.get("h-1").unwrap_err();
    assert!(
        matches!(e, KeysError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600))
    );
    assert!(e.is_retryable());
    assert!(slept.lock().unwrap().is_empty());
    assert_eq!(server.request_count(), 1);
}

#[test]
fn server_errors_back_off_exponentially_then_fail() {
    let server = StubServer::start(|_| Response::new(503, "busy"));
    let (keys, slept) = manager(&server);
    let e = keys.credits().unwrap_err();
    assert!(matches!(e, KeysError::Server { status: 503 }), "{e:?}");
    assert_eq!(server.request_count(), 4);
    assert_eq!(
        *slept.lock().unwrap(),
        [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
}

#[test]
fn a_5xx_then_success_is_one_answer() {
    let server = StubServer::start(|r: &Request| {
        if r.index < 2 {
            Response::new(502, "")
        } else {
            Response::new(
                200,
                r#"{"data":{"total_credits":100.5,"total_usage":25.123456789}}"#,
            )
        }
    });
    let (keys, _) = manager(&server);
    let credits = keys.credits().unwrap();
    assert_eq!(credits.balance(), dec!(75.376543211));
}

#[test]
fn unauthorized_is_final_and_never_quotes_the_key() {
    let server = StubServer::start(|_| Response::new(401, r#"{"error":{"message":"No auth"}}"#));
    let (keys, slept) = manager(&server);
    let e = keys.list(0).unwrap_err();
    assert!(matches!(e, KeysError::Unauthorized { status: 401 }));
    assert_no_secret(&e);
    assert_eq!(server.request_count(), 1);
    assert!(slept.lock().unwrap().is_empty());
}

#[test]
fn malformed_bodies_are_typed_and_never_quote_a_key() {
    let bodies = [
        "not json".to_string(),
        r#"{"data":null}"#.to_string(),
        format!(r#"{{"data":{{"name":"x"}},"key":"{NEW_KEY}"}}"#),
        format!(r#"{{"data":{}}}"#, key_json("h", "10", false)),
        format!(
            r#"{{"data":{},"key":{{"v":"{NEW_KEY}"}}}}"#,
            key_json("h", "10", false)
        ),
        format!(
            r#"{{"data":{},"key":"{NEW_KEY}"}}"#,
            key_json("h", "\"ten\"", false)
        ),
        format!(
            r#"{{"data":{},"key":"{NEW_KEY}"}}"#,
            key_json("h", "10", false)
        )
        .replace("false", "\"no\""),
    ];
    for body in bodies {
        let server = StubServer::start(move |_| Response::new(200, body.clone()));
        let (keys, _) = manager(&server);
        let e = keys
            .create(&NewKey {
                name: "n".into(),
                limit: None,
                limit_reset: None,
            })
            .unwrap_err();
        assert!(matches!(e, KeysError::Malformed(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert_no_secret(&e);
    }
}

#[test]
fn activity_is_filtered_by_day_and_key_and_parsed_exactly() {
    let server = StubServer::start(|_| {
        Response::new(
            200,
            r#"{"data":[
                {"date":"2025-07-23","model":"openai/gpt-4.1","model_permaslug":"openai/gpt-4.1-2025-04-14",
                 "endpoint_id":"e1","provider_name":"OpenAI","usage":0.123456789012,"byok_usage_inference":0,
                 "requests":12,"prompt_tokens":1000,"completion_tokens":200,"reasoning_tokens":0},
                {"date":"2025-07-23 00:00:00","model":"anthropic/claude-sonnet-4","usage":"1.5","requests":1}
            ]}"#,
        )
    });
    let (keys, _) = manager(&server);
    let day = chrono::NaiveDate::from_ymd_opt(2025, 7, 23).unwrap();
    let rows = keys.activity(Some(day), Some("h-acme")).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].usage, rows[0].requests),
        (dec!(0.123456789012), 12)
    );
    assert_eq!(
        (rows[1].date, rows[1].usage, rows[1].prompt_tokens),
        (day, dec!(1.5), 0)
    );
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/api/v1/activity");
    assert_eq!(
        seen.query_pairs(),
        [("date", "2025-07-23"), ("api_key_hash", "h-acme")]
    );
}
