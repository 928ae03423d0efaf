//! Parsing OpenRouter generation records: every documented field, exact amounts, rejections.

mod common;

use chrono::{TimeZone, Utc};
use common::FULL_RECORD;
use orgusage_openrouter::{Generation, OpenRouterError};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn bare(fields: &str) -> String {
    format!(
        r#"{{"id":"gen-1","model":"openai/gpt-4o","created_at":"2025-10-31T23:00:00Z","total_cost":0.001{fields}}}"#
    )
}

#[test]
fn full_record_parses_every_documented_field() {
    let g = Generation::from_response_json(FULL_RECORD).expect("parses");
    assert_eq!(g.id, "gen-1761951599-Wq3vXc9LkPz2mTbN8aYd");
    assert_eq!(g.generation_id(), g.id);
    assert_eq!(
        g.upstream_id.as_deref(),
        Some("msg_01XFDUDYJgAACzvnptvVoYEL")
    );
    assert_eq!(g.model, "anthropic/claude-sonnet-4");
    assert_eq!(g.provider_name.as_deref(), Some("Anthropic"));
    let expected_at = Utc
        .with_ymd_and_hms(2025, 10, 31, 22, 59, 59)
        .single()
        .expect("valid")
        + chrono::Duration::microseconds(812_345);
    assert_eq!(g.created_at, expected_at);
    assert_eq!(g.total_cost, dec!(0.0157362));
    assert_eq!(g.cache_discount, Some(dec!(-0.00037125)));
    assert_eq!(g.upstream_inference_cost, Some(dec!(0.0149)));
    assert_eq!(g.usage, Some(dec!(0.0157362)));
    assert!(!g.is_byok);
    assert_eq!(g.tokens_prompt, Some(2104));
    assert_eq!(g.tokens_completion, Some(611));
    assert_eq!(g.native_tokens_prompt, Some(2388));
    assert_eq!(g.native_tokens_completion, Some(702));
    assert_eq!(g.native_tokens_reasoning, Some(128));
    assert_eq!(g.native_tokens_cached, Some(1536));
    assert_eq!(g.native_tokens_completion_images, Some(0));
    assert_eq!(g.num_media_prompt, Some(1));
    assert_eq!(g.num_input_audio_prompt, Some(0));
    assert_eq!(g.num_media_completion, Some(0));
    assert_eq!(g.num_search_results, Some(0));
    assert_eq!(g.num_fetches, Some(0));
    assert_eq!(g.external_user.as_deref(), Some("or-anna-kowalska"));
    assert_eq!(g.openrouter_user(), Some("or-anna-kowalska"));
    assert_eq!(g.app_id.as_deref(), Some("2764031"));
    assert_eq!(g.streamed, Some(true));
    assert_eq!(g.cancelled, Some(false));
    assert_eq!(g.latency, Some(dec!(1843)));
    assert_eq!(g.moderation_latency, Some(dec!(12.5)));
    assert_eq!(g.generation_time, Some(dec!(9312)));
    assert_eq!(g.finish_reason.as_deref(), Some("stop"));
    assert_eq!(g.native_finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(g.origin.as_deref(), Some("https://chat.example.pl/"));
    assert_eq!(g.api_type.as_deref(), Some("completions"));
    assert_eq!(g.router, None);
    assert_eq!(g.data_region.as_deref(), Some("eu"));
    assert_eq!(g.service_tier.as_deref(), Some("standard"));
    assert_eq!(g.preset_id, None);
}

#[test]
fn wrapped_and_bare_forms_agree() {
    let wrapped = Generation::from_response_json(FULL_RECORD).expect("wrapped");
    let value: serde_json::Value = serde_json::from_str(FULL_RECORD).expect("json");
    // Re-serialising through Value would lose digits; cut the object out of the text instead.
    let start = FULL_RECORD.find("\"data\":").expect("data") + "\"data\":".len();
    let end = FULL_RECORD.rfind('}').expect("end");
    let bare = Generation::from_json(&FULL_RECORD[start..end]).expect("bare");
    assert_eq!(wrapped, bare);
    assert!(value.get("data").is_some());
}

#[test]
fn costs_are_exact_not_floats() {
    let g = Generation::from_json(&bare(
        r#","usage":0.0000123456789012,"cache_discount":1e-7,"upstream_inference_cost":1.0000000000000001"#,
    ))
    .expect("parses");
    assert_eq!(
        g.usage.map(|d| d.to_string()).as_deref(),
        Some("0.0000123456789012")
    );
    assert_eq!(g.cache_discount, Some(dec!(0.0000001)));
    // An f64 would have turned this into exactly 1.
    assert_eq!(g.upstream_inference_cost, Some(dec!(1.0000000000000001)));
    assert_ne!(g.upstream_inference_cost, Some(Decimal::ONE));

    let g = Generation::from_json(
        r#"{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":1e-7}"#,
    )
    .expect("parses");
    assert_eq!(g.total_cost, dec!(0.0000001));
    let g = Generation::from_json(
        r#"{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":0.0000123456789012}"#,
    )
    .expect("parses");
    assert_eq!(g.total_cost, dec!(0.0000123456789012));
    assert_eq!(g.total_cost.scale(), 16);
}

#[test]
fn sums_of_many_tiny_costs_stay_exact() {
    let g = Generation::from_json(&bare("").replace("0.001", "0.0000001")).expect("parses");
    let total: Decimal = std::iter::repeat_n(g.total_cost, 1_000_000).sum();
    assert_eq!(total, dec!(0.1));
}

#[test]
fn missing_required_fields() {
    let cases = [
        (
            r#"{"model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":0}"#,
            "id",
        ),
        (
            r#"{"id":"","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":0}"#,
            "id",
        ),
        (
            r#"{"id":"g","model":null,"created_at":"2025-10-31T23:00:00Z","total_cost":0}"#,
            "model",
        ),
        (
            r#"{"id":"g","model":"  ","created_at":"2025-10-31T23:00:00Z","total_cost":0}"#,
            "model",
        ),
        (r#"{"id":"g","model":"m","total_cost":0}"#, "created_at"),
        (
            r#"{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z"}"#,
            "total_cost",
        ),
        (
            r#"{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":null}"#,
            "total_cost",
        ),
    ];
    for (json, field) in cases {
        let err = Generation::from_json(json).expect_err(json);
        assert!(
            matches!(err, OpenRouterError::MissingField(f) if f == field),
            "{json}: {err:?}"
        );
    }
    for envelope in [r#"{}"#, r#"{"data":null}"#] {
        assert!(matches!(
            Generation::from_response_json(envelope),
            Err(OpenRouterError::MissingField("data"))
        ));
    }
}

#[test]
fn negative_numbers_are_rejected() {
    for field in [
        "tokens_prompt",
        "tokens_completion",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_reasoning",
        "native_tokens_cached",
        "num_search_results",
    ] {
        let err = Generation::from_json(&bare(&format!(r#","{field}":-1"#))).expect_err(field);
        assert!(
            matches!(err, OpenRouterError::Negative { field: f } if f == field),
            "{field}: {err:?}"
        );
    }
    let err = Generation::from_json(&bare("").replace("0.001", "-0.000001")).expect_err("cost");
    assert!(matches!(
        err,
        OpenRouterError::Negative {
            field: "total_cost"
        }
    ));
    // A negative zero is zero, and a negative cache discount is kept.
    let g = Generation::from_json(&bare(r#","cache_discount":-0.5"#).replace("0.001", "-0"))
        .expect("zero cost");
    assert!(g.total_cost.is_zero());
    assert_eq!(g.cache_discount, Some(dec!(-0.5)));
}

#[test]
fn malformed_records() {
    for json in [
        "",
        "[]",
        "not json",
        r#"{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":0"#,
        &bare(r#","tokens_prompt":"12""#),
        &bare(r#","tokens_prompt":12.5"#),
        &bare(r#","is_byok":"yes""#),
        &bare(r#","usage":"abc""#),
        &bare(r#","usage":true"#),
        &bare(r#","usage":1e-40"#),
        &bare(r#","external_user":42"#),
        &bare(r#","model":"dup""#),
        r#"{"id":7,"model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":0}"#,
        r#"{"id":"g","model":"m","created_at":"yesterday","total_cost":0}"#,
        r#"{"id":"g","model":"m","created_at":"2025-10-31 23:00:00","total_cost":0}"#,
    ] {
        let err = Generation::from_json(json).expect_err(json);
        assert!(
            matches!(err, OpenRouterError::Malformed(_)),
            "{json}: {err:?}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let g =
        Generation::from_json(&bare(r#","brand_new":{"a":[1,2]},"another":null"#)).expect("parses");
    assert_eq!(g.id, "gen-1");
}

#[test]
fn serializes_amounts_as_strings() {
    let g = Generation::from_response_json(FULL_RECORD).expect("parses");
    let json = serde_json::to_string(&g).expect("serializes");
    assert!(json.contains(r#""total_cost":"0.0157362""#), "{json}");
    assert!(json.contains(r#""cache_discount":"-0.00037125""#), "{json}");
}

proptest! {
    #[test]
    fn any_plain_or_exponent_cost_round_trips_exactly(
        mantissa in 0_i64..=999_999_999_999_999,
        scale in 0_u32..=18,
    ) {
        let expected = Decimal::new(mantissa, scale);
        let plain = expected.to_string();
        let exponent = format!("{mantissa}e-{scale}");
        for source in [plain, exponent] {
            let json = format!(
                r#"{{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":{source}}}"#
            );
            let g = Generation::from_json(&json).expect("parses");
            prop_assert_eq!(g.total_cost, expected);
        }
    }
}
