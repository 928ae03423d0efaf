//! The fetcher's tracing: one span per attempt with the generation id, and never the API key.
//!
//! `orgusage_stub_http::capture::Capture` records every span and event field as text; it lives
//! in its own test binary so no other test's callsites interfere.

mod common;

use common::{API_KEY, FakeOpenRouter, Reply, answer};
use orgusage_stub_http::capture::Capture;

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
