//! Property tests of every OpenRouter parser (issue 9, item 6): arbitrary bytes and mutated real
//! payloads (the crate's fixture and the shipped example) never panic; the answer is always a
//! parsed record that keeps the parser's invariants, or a typed [`OpenRouterError`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage_openrouter::{Generation, OpenRouterError, parse_generation_list};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("../fixtures/generations.json");
const EXAMPLE: &str = include_str!("../../../examples/data/openrouter_generations.json");

/// Texts that are likely to hit an edge of the parser when spliced into a payload.
const TOKENS: &[&str] = &[
    "null",
    "-1",
    "-0",
    "1e400",
    "1e-400",
    "9223372036854775808",
    "\"\"",
    "\"\\u0000\"",
    "\\ud800",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"0000-01-01T00:00:00Z\"",
    "\"2025-02-30\"",
    "0.0000000000000000000000000001",
    "true",
    "\"abc\"",
    "79228162514264337593543950336",
];

#[path = "mutation/mod.rs"]
mod mutation;
use mutation::{edit, mutate};

/// The single records of the fixture and the example, each bare and wrapped in `data`.
fn records() -> Vec<String> {
    let mut out = Vec::new();
    for list in [FIXTURE, EXAMPLE] {
        let items: Vec<serde_json::Value> = serde_json::from_str(list).expect("a JSON list");
        for item in items {
            let bare = serde_json::to_string(&item).unwrap();
            out.push(format!(r#"{{"data":{bare}}}"#));
            out.push(bare);
        }
    }
    out
}

/// A parsed record keeps the invariants the parser promises.
fn check(result: Result<Generation, OpenRouterError>) {
    if let Ok(g) = result {
        g.validate().expect("a parsed record passes validate()");
        assert!(!g.id.contains('\0') && !g.model.contains('\0'));
    }
}

fn check_all(text: &str) {
    check(Generation::from_json(text));
    check(Generation::from_response_json(text));
    if let Ok(list) = parse_generation_list(text) {
        for g in list {
            check(Ok(g));
        }
    }
}

#[test]
fn the_real_payloads_parse() {
    assert!(parse_generation_list(FIXTURE).is_ok());
    assert!(parse_generation_list(EXAMPLE).is_ok());
    for r in records() {
        let ok = r.starts_with(r#"{"data""#) && Generation::from_response_json(&r).is_ok()
            || Generation::from_json(&r).is_ok();
        assert!(ok, "{r}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_shaped_text_never_panics(text in r#"[\[\]{}":,0-9a-z_\-\.eE\\ ]{0,200}"#) {
        check_all(&text);
    }

    #[test]
    fn mutated_records_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(TOKENS.len()), 1..6),
    ) {
        let records = records();
        let base = pick.get(&records);
        check_all(&mutate(base, &edits, TOKENS));
    }

    #[test]
    fn mutated_lists_never_panic(
        example in any::<bool>(),
        edits in proptest::collection::vec(edit(TOKENS.len()), 1..6),
    ) {
        let base = if example { EXAMPLE } else { FIXTURE };
        check_all(&mutate(base, &edits, TOKENS));
    }
}
