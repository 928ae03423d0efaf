//! Property tests of the NBP parser (issue 9, item 6): arbitrary bytes and mutated real answers
//! (the shipped examples in `examples/data/`) never panic; the answer is always rates that keep
//! the parser's invariants (table A, positive mids, sorted, one per day), or a typed
//! [`NbpError`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orgusage_nbp::{MidRate, NbpError, parse_rates_answer};
use proptest::prelude::*;

const MARCH: &str = include_str!("../../../examples/data/nbp_usd_a_2025-03-01_2025-03-31.json");
const APRIL: &str = include_str!("../../../examples/data/nbp_usd_a_2025-04-01_2025-04-30.json");
const SMALL: &str = r#"{"table":"A","currency":"dolar","code":"USD","rates":[{"no":"001/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.1012}]}"#;

/// Texts that are likely to hit an edge of the parser when spliced into an answer.
const TOKENS: &[&str] = &[
    "null",
    "-1",
    "0",
    "-0",
    "1e400",
    "1e-400",
    "\"\"",
    "\"4.1\"",
    "\"abc\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"2025-02-30\"",
    "\"0000-01-01\"",
    "\"B\"",
    "79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "\\u0000",
    "true",
];

#[path = "../../orgusage-openrouter/tests/mutation/mod.rs"]
mod mutation;
use mutation::{edit, mutate};

/// Parsed rates keep the parser's promises.
fn check(result: Result<Vec<MidRate>, NbpError>) {
    if let Ok(rates) = result {
        for r in &rates {
            assert!(r.mid > rust_decimal::Decimal::ZERO, "{r:?}");
            assert_eq!(r.currency, r.currency.to_ascii_uppercase());
        }
        for w in rates.windows(2) {
            assert!(w[0].effective_date < w[1].effective_date, "{w:?}");
        }
    }
}

#[test]
fn the_real_answers_parse() {
    for body in [MARCH, APRIL, SMALL] {
        assert!(!parse_rates_answer(body).unwrap().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(parse_rates_answer(&String::from_utf8_lossy(&bytes)));
    }

    #[test]
    fn arbitrary_json_shaped_text_never_panics(text in r#"[\[\]{}":,0-9a-zA-Z_\-\.eE\\ ]{0,200}"#) {
        check(parse_rates_answer(&text));
    }

    #[test]
    fn mutated_answers_never_panic(
        which in 0_usize..3,
        edits in proptest::collection::vec(edit(TOKENS.len()), 1..6),
    ) {
        let base = [MARCH, APRIL, SMALL][which];
        check(parse_rates_answer(&mutate(base, &edits, TOKENS)));
    }
}
