//! The fetcher's tracing: one span per attempt with the generation id, and never the API key.
//!
//! A minimal subscriber records every span and event field as text; it lives in its own test
//! binary so no other test's callsites interfere.

mod common;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{API_KEY, FakeOpenRouter, Reply, answer};
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

#[test]
fn spans_carry_the_generation_id_and_no_event_carries_the_key() {
    let id = "gen-1761951600-TraceMe";
    let server = FakeOpenRouter::start(vec![
        Reply::not_found(),
        Reply::new(503, "busy"),
        Reply::ok(answer(id)),
    ]);
    let (fetcher, _) = server.fetcher();
    let capture = Capture::default();
    let result = tracing::subscriber::with_default(capture.clone(), || fetcher.fetch(API_KEY, id));
    result.expect("found on the third attempt");

    let lines = capture.text();
    let spans: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("span openrouter_generation_fetch"))
        .collect();
    assert_eq!(spans.len(), 3, "{lines:#?}");
    for (n, span) in spans.iter().enumerate() {
        assert!(span.contains(&format!("generation_id=\"{id}\"")), "{span}");
        assert!(span.contains(&format!("attempt={}", n + 1)), "{span}");
    }
    assert!(lines.iter().any(|l| l.contains("will retry")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("generation fetched")),
        "{lines:#?}"
    );
    for line in &lines {
        assert!(!line.contains(API_KEY), "{line}");
        assert!(!line.contains("TOPSECRET"), "{line}");
        assert!(!line.contains("Bearer"), "{line}");
    }

    // Failures are logged too, still without the key.
    let server = FakeOpenRouter::start(vec![Reply::new(401, "no")]);
    let (fetcher, _) = server.fetcher();
    let capture = Capture::default();
    let result = tracing::subscriber::with_default(capture.clone(), || fetcher.fetch(API_KEY, id));
    assert!(result.is_err());
    let lines = capture.text();
    assert!(lines.iter().any(|l| l.contains("failed")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("TOPSECRET")), "{lines:#?}");
}
