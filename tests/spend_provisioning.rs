//! Client onboarding with per-client OpenRouter keys (issue 11, step 2) against a loopback
//! stand-in of the management API: create with the derived key limit, compensation when the
//! insert fails (and when the compensation fails too), limit update, disable on deactivation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgusage::keys::{KeyManager, ManagementConfig};
use orgusage::provision::ProvisionError;
use orgusage::{ClientOrganizationForm, Error};
use orgusage_stub_http::{Request, Response, StubServer};
use orgusage_testkit::backend_tests;
use rust_decimal_macros::dec;

/// The fake's state: keys by hash (name, limit JSON text, disabled).
#[derive(Default)]
struct Fake {
    keys: Mutex<BTreeMap<String, (String, String, bool)>>,
    next: AtomicUsize,
    /// Hand out the same plaintext key every time (to make the database insert conflict).
    same_key: AtomicBool,
    /// Answer every DELETE with 500.
    fail_delete: AtomicBool,
    /// Answer every PATCH with 503.
    fail_patch: AtomicBool,
}

fn key_json(hash: &str, (name, limit, disabled): &(String, String, bool)) -> String {
    format!(
        r#"{{"hash":"{hash}","name":{},"label":"sk-or-v1-...","disabled":{disabled},"limit":{limit},
            "limit_remaining":{limit},"limit_reset":"monthly","usage":0,"usage_daily":0,"usage_weekly":0,
            "usage_monthly":0,"created_at":"2025-07-24T10:00:00Z"}}"#,
        serde_json::to_string(name).unwrap()
    )
}

/// The value of `"field":` in a flat JSON body, as text.
fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &body[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| &quoted[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn serve(fake: Arc<Fake>) -> StubServer {
    StubServer::start(move |r: &Request| {
        let hash = r.path.strip_prefix("/api/v1/keys/").map(str::to_string);
        let mut keys = fake.keys.lock().unwrap();
        match (r.method.as_str(), hash) {
            ("POST", None) => {
                let n = fake.next.fetch_add(1, Ordering::SeqCst);
                let hash = format!("hash{n}");
                let limit = field(&r.body, "limit").unwrap_or("null").to_string();
                let name = field(&r.body, "name").unwrap_or_default().to_string();
                let key = if fake.same_key.load(Ordering::SeqCst) {
                    0
                } else {
                    n
                };
                let entry = (name, limit, false);
                let body = format!(
                    r#"{{"data":{},"key":"sk-or-v1-provisioned-{key:04}-abcdef"}}"#,
                    key_json(&hash, &entry)
                );
                keys.insert(hash, entry);
                Response::new(201, body)
            }
            ("PATCH", Some(_)) if fake.fail_patch.load(Ordering::SeqCst) => Response::new(503, ""),
            ("DELETE", Some(_)) if fake.fail_delete.load(Ordering::SeqCst) => {
                Response::new(500, "")
            }
            (method, Some(h)) => match keys.get_mut(&h) {
                None => Response::new(404, r#"{"error":{"code":404}}"#),
                Some(entry) => match method {
                    "PATCH" => {
                        if let Some(l) = field(&r.body, "limit") {
                            entry.1 = l.to_string();
                        }
                        if let Some(d) = field(&r.body, "disabled") {
                            entry.2 = d == "true";
                        }
                        Response::new(200, format!(r#"{{"data":{}}}"#, key_json(&h, entry)))
                    }
                    "DELETE" => {
                        keys.remove(&h);
                        Response::new(200, r#"{"deleted":true}"#)
                    }
                    _ => Response::new(200, format!(r#"{{"data":{}}}"#, key_json(&h, entry))),
                },
            },
            _ => Response::new(400, "{}"),
        }
    })
}

fn manager(server: &StubServer) -> KeyManager {
    KeyManager::new(
        ManagementConfig {
            base_url: server.url("/api/v1"),
            max_attempts: 2,
            ..ManagementConfig::default()
        },
        "sk-or-v1-management-0123456789".into(),
    )
    .with_sleeper(|_d: Duration| {})
}

fn acme() -> ClientOrganizationForm {
    ClientOrganizationForm {
        markup_rate: dec!(1.3),
        monthly_limit: Some(dec!(500)),
        ..ClientOrganizationForm::new("Acme")
    }
}

backend_tests! {
    fn create_stores_key_and_hash_with_the_derived_limit(t) {
        let fake = Arc::new(Fake::default());
        let server = serve(fake.clone());
        let p = t.store.provisioning(manager(&server));
        let made = p.create_client(&acme()).unwrap();
        // 500 / 1.3 x 1.1 = 423.0769… -> 423.08 raw USD, monthly (UTC) reset.
        assert_eq!(made.key.limit, Some(dec!(423.08)));
        assert_eq!(made.client.openrouter_key_hash.as_deref(), Some("hash0"));
        assert_eq!(made.client.openrouter_api_key.expose(), "sk-or-v1-provisioned-0000-abcdef");
        let sent = &server.requests()[0];
        assert_eq!(sent.body, r#"{"name":"Client: Acme","limit":423.08,"limit_reset":"monthly"}"#);
        let stored = t.store.clients().get_client_by_api_key("sk-or-v1-provisioned-0000-abcdef").unwrap().unwrap();
        assert_eq!(stored.id, made.client.id);
        // An invalid form never reaches OpenRouter.
        let bad = ClientOrganizationForm { markup_rate: dec!(0), ..acme() };
        assert!(matches!(p.create_client(&bad), Err(ProvisionError::Database(Error::InvalidInput { .. }))));
        assert_eq!(server.request_count(), 1);
    }

    fn a_failed_insert_deletes_the_new_key(t) {
        let fake = Arc::new(Fake::default());
        fake.same_key.store(true, Ordering::SeqCst);
        let server = serve(fake.clone());
        let p = t.store.provisioning(manager(&server));
        p.create_client(&acme()).unwrap();
        // OpenRouter hands out a key that is already stored: the insert conflicts, the key goes.
        let e = p.create_client(&ClientOrganizationForm::new("Beta")).unwrap_err();
        assert!(matches!(e, ProvisionError::Database(Error::Conflict(_))), "{e:?}");
        assert_eq!(fake.keys.lock().unwrap().keys().cloned().collect::<Vec<_>>(), ["hash0"]);
        let deletes: Vec<String> = server.requests().iter().filter(|r| r.method == "DELETE").map(|r| r.path.clone()).collect();
        assert_eq!(deletes, ["/api/v1/keys/hash1"]);
        // And when the compensation fails too, the orphan's hash is in the error, never a key.
        fake.fail_delete.store(true, Ordering::SeqCst);
        let e = p.create_client(&ClientOrganizationForm::new("Gamma")).unwrap_err();
        match &e {
            ProvisionError::CompensationFailed { key_hash, database: Error::Conflict(_), cleanup } => {
                assert_eq!(key_hash, "hash2");
                assert!(cleanup.is_retryable());
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{e} {e:?}").contains("provisioned-0000"));
        assert_eq!(t.store.clients().get_all_active_clients().unwrap().len(), 1);
    }

    fn limit_changes_and_deactivation_update_the_key(t) {
        let fake = Arc::new(Fake::default());
        let server = serve(fake.clone());
        let p = t.store.provisioning(manager(&server));
        let id = p.create_client(&acme()).unwrap().client.id;
        let updated = p.update_client_limit(&id, Some(dec!(650))).unwrap().unwrap();
        assert_eq!(updated.monthly_limit, Some(dec!(650)));
        assert_eq!(fake.keys.lock().unwrap()["hash0"].1, "550"); // 650 / 1.3 x 1.1
        // Removing the limit removes the key's limit.
        p.update_client_limit(&id, None).unwrap();
        assert_eq!(fake.keys.lock().unwrap()["hash0"].1, "null");
        // OpenRouter down: the database keeps the old limit, the call can be repeated.
        fake.fail_patch.store(true, Ordering::SeqCst);
        assert!(matches!(p.update_client_limit(&id, Some(dec!(13))), Err(ProvisionError::Upstream(_))));
        assert_eq!(t.store.clients().get_client_by_id(&id).unwrap().unwrap().monthly_limit, None);
        assert!(matches!(p.deactivate_client(&id), Err(ProvisionError::Upstream(_))));
        assert!(t.store.clients().get_client_by_id(&id).unwrap().is_some(), "still active");
        fake.fail_patch.store(false, Ordering::SeqCst);
        assert!(p.deactivate_client(&id).unwrap());
        assert!(fake.keys.lock().unwrap()["hash0"].2, "key disabled");
        assert!(t.store.clients().get_client_by_id(&id).unwrap().is_none());
        assert!(!p.deactivate_client(&id).unwrap());
    }
}
