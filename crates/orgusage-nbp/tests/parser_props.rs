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

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Splice(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 1_usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Splice(i, t)),
        (any::<usize>(), 1_usize..96).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn mutate(base: &str, edits: &[Edit]) -> String {
    let mut b = base.as_bytes().to_vec();
    for e in edits {
        let at = |i: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { i % (b.len() + 1) };
        match e {
            Edit::Flip(i, x) if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Edit::Flip(..) => {}
            Edit::Delete(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Insert(i, bytes) => {
                let i = at(*i, &b);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Splice(i, t) => {
                let i = at(*i, &b);
                b.splice(i..i, TOKENS[*t].bytes());
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                let copy = b[i..end].to_vec();
                b.splice(end..end, copy);
            }
            Edit::Truncate(i) => {
                let i = at(*i, &b);
                b.truncate(i);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

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
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let base = [MARCH, APRIL, SMALL][which];
        check(parse_rates_answer(&mutate(base, &edits)));
    }
}
