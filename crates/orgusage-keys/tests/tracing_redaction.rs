//! The management client's tracing: one span per attempt, and never the management key or a
//! created key, also when a call fails or an answer is malformed.
//!
//! `orgusage_stub_http::capture::Capture` records every span and event field as text; it lives
//! in its own test binary so no other test's callsites interfere.

use orgusage_stub_http::capture::Capture;

const MANAGEMENT_KEY: &str = "sk-or-v1-mgmt-TOPSECRET-0001";
const NEW_KEY: &str = "sk-or-v1-client-TOPSECRET-0002";

#[test]
fn no_span_or_event_carries_a_key() {
    use orgusage_keys::{KeyManager, ManagementConfig, NewKey};
    use orgusage_stub_http::{Request, Response, StubServer};
    let server = StubServer::start(|r: &Request| match r.index {
        0 => Response::new(503, "busy"),
        1 => Response::new(
            201,
            format!(r#"{{"data":{{"hash":"h1","name":"n","limit":1}},"key":"{NEW_KEY}"}}"#),
        ),
        // Malformed: the key where a number belongs.
        _ => Response::new(
            200,
            format!(r#"{{"data":{{"hash":"h1","limit":"{NEW_KEY}"}},"key":"{NEW_KEY}"}}"#),
        ),
    });
    let keys = KeyManager::new(
        ManagementConfig {
            base_url: server.url("/api/v1"),
            ..ManagementConfig::default()
        },
        MANAGEMENT_KEY.into(),
    )
    .with_sleeper(|_d: std::time::Duration| {});
    let capture = Capture::default();
    let new = NewKey {
        name: "n".into(),
        limit: None,
        limit_reset: None,
    };
    let (first, second) = tracing::subscriber::with_default(capture.clone(), || {
        (keys.create(&new), keys.create(&new))
    });
    assert!(first.is_ok());
    let e = second.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("TOPSECRET"));
    let lines = capture.text();
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("span openrouter_keys_call"))
            .count()
            >= 3,
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("will retry")), "{lines:#?}");
    for line in &lines {
        assert!(!line.contains("TOPSECRET"), "{line}");
        assert!(!line.contains("Bearer"), "{line}");
    }
}
