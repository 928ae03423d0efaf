//! The management client's tracing: one span per attempt, and never the management key or a
//! created key, also when a call fails or an answer is malformed.
//!
//! A minimal subscriber records every span and event field as text; it lives in its own test
//! binary so no other test's callsites interfere.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: Arc<AtomicU64>,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Capture {
    fn push(&self, line: String) {
        self.lines.lock().expect("lock").push(line);
    }

    fn text(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = Line(format!("span {}", span.metadata().name()));
        span.record(&mut line);
        self.push(line.0);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = Line("record".into());
        values.record(&mut line);
        self.push(line.0);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("event {}", event.metadata().level()));
        event.record(&mut line);
        self.push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

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
