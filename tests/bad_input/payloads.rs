//! The ingestion rows of the bad-input table, and the malformed OpenRouter and NBP payloads
//! fed to the parsers (which have nothing to write, so they only must fail typed).

use orgusage::ClientRef;
use orgusage::openrouter::Generation;

use super::{Case, Want, case};
use Want::{Invalid, NotFound};

fn or_json(fields: &str) -> String {
    let base = r#""id":"gen-or-1","model":"openai/gpt-4o","created_at":"2025-07-24T10:00:00Z","total_cost":0.001"#;
    format!("{{{base}{fields}}}")
}

pub fn ingestion() -> Vec<Case> {
    let g = "generation";
    let bad: [(&str, String); 4] = [
        (
            "dated year 0000",
            or_json("").replace("2025-07-24", "0000-01-01"),
        ),
        (
            "dated 2100",
            or_json("").replace("2025-07-24", "2100-01-01"),
        ),
        (
            "prompt tokens over 10^9",
            or_json(r#","tokens_prompt":1000000001"#),
        ),
        (
            "cost beyond i64 nano-USD",
            or_json("").replace("0.001", "1e12"),
        ),
    ];
    let mut v: Vec<Case> = bad
        .into_iter()
        .map(|(name, json)| {
            case(format!("ingest_generation: {name}"), Invalid(g), move |x| {
                x.ingest(&json)
            })
        })
        .collect();
    // Records built or edited by hand: the parser would have refused these texts.
    type Mutate = fn(&mut Generation);
    let edits: [(&str, Mutate); 4] = [
        ("NUL in id", |g| g.id = "gen\0".into()),
        ("NUL in model", |g| g.model = "gpt\0".into()),
        ("NUL in provider", |g| {
            g.provider_name = Some("open\0ai".into())
        }),
        ("NUL in external user", |g| {
            g.external_user = Some("u\0".into())
        }),
    ];
    for (name, edit) in edits {
        v.push(case(
            format!("ingest_generation (hand-built): {name}"),
            Invalid(g),
            move |x| {
                let mut gen_ = Generation::from_json(&or_json("")).unwrap();
                edit(&mut gen_);
                x.store
                    .ingest_generation(ClientRef::Id(&x.acme), &gen_)
                    .map(drop)
            },
        ));
    }
    v.push(case(
        "ingest_generation: unknown client key",
        NotFound,
        |x| {
            let g = Generation::from_json(&or_json("")).unwrap();
            x.store
                .ingest_generation(ClientRef::ApiKey("sk-or-v1-nobody-0123456789"), &g)
                .map(drop)
        },
    ));
    v
}

/// Malformed payloads at the parser level: each is a typed error (there is nothing to write).
pub fn malformed_openrouter() -> Vec<(&'static str, String)> {
    vec![
        ("empty body", String::new()),
        ("truncated", or_json("")[..30].to_string()),
        ("array instead of object", "[]".into()),
        ("id is a number", or_json("").replace(r#""gen-or-1""#, "5")),
        (
            "missing created_at",
            or_json("").replace(r#""created_at":"2025-07-24T10:00:00Z","#, ""),
        ),
        (
            "created_at not a date",
            or_json("").replace("2025-07-24T10:00:00Z", "yesterday"),
        ),
        ("cost is text", or_json("").replace("0.001", r#""abc""#)),
        ("negative cost", or_json("").replace("0.001", "-0.001")),
        ("negative tokens", or_json(r#","tokens_prompt":-1"#)),
        (
            "tokens past i64",
            or_json(r#","tokens_prompt":9223372036854775808"#),
        ),
        ("cost past Decimal", or_json("").replace("0.001", "1e40")),
        ("NUL in id", or_json("").replace("gen-or-1", "gen\\u0000")),
        ("NUL in model", or_json("").replace("gpt-4o", "gpt\\u0000")),
        (
            "NUL in external user",
            or_json(r#","external_user":"u\u0000""#),
        ),
        ("lone surrogate", or_json("").replace("gen-or-1", "\\ud800")),
    ]
}

/// Malformed NBP answers at the parser level.
pub fn malformed_nbp() -> Vec<(&'static str, String)> {
    let ok = r#"{"table":"A","currency":"dolar","code":"USD","rates":[{"no":"001/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.1012}]}"#;
    vec![
        ("empty body", String::new()),
        ("HTML error page", "<html>404 NotFound</html>".into()),
        ("truncated", ok[..40].to_string()),
        ("table B", ok.replace(r#""table":"A""#, r#""table":"B""#)),
        ("mid is text", ok.replace("4.1012", r#""abc""#)),
        ("mid zero", ok.replace("4.1012", "0")),
        ("mid negative", ok.replace("4.1012", "-4.1012")),
        ("mid null", ok.replace("4.1012", "null")),
        ("mid past Decimal", ok.replace("4.1012", "1e40")),
        ("impossible date", ok.replace("2025-01-02", "2025-02-30")),
        (
            "rates not a list",
            ok.replace(r#"[{"no""#, r#"{"x":[{"no""#)
                .replace("}]}", "}]}}"),
        ),
        (
            "two rates for one day",
            ok.replace(
                r#"4.1012}]"#,
                r#"4.1012},{"no":"002/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.2}]"#,
            ),
        ),
    ]
}
