//! From a generation to the usage record the store books, and the fixture file.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::{FULL_RECORD, client};
use orgusage_domain::Error as DomainError;
use orgusage_domain::models::UserClientMapping;
use orgusage_domain::timezone::{local_date_at, parse_timezone};
use orgusage_openrouter::{
    Generation, OpenRouterError, ResolvedUser, TokenCounting, UNKNOWN_USER, parse_generation_list,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const FIXTURE: &str = include_str!("../fixtures/generations.json");

fn full() -> Generation {
    Generation::from_response_json(FULL_RECORD).expect("parses")
}

fn mapping(
    user_id: &str,
    client_org_id: &str,
    openrouter_user_id: &str,
    active: bool,
) -> UserClientMapping {
    UserClientMapping {
        id: format!("{user_id}_{client_org_id}"),
        user_id: user_id.into(),
        client_org_id: client_org_id.into(),
        openrouter_user_id: openrouter_user_id.into(),
        is_active: active,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn record_maps_every_field() {
    let g = full();
    let client = client();
    let user = ResolvedUser::new("anna", "or-anna-kowalska");
    let rec = g.to_usage_record(&client, &user).expect("maps");
    assert_eq!(rec.client_org_id, client.id);
    assert_eq!(rec.user_id, "anna");
    assert_eq!(rec.openrouter_user_id, "or-anna-kowalska");
    assert_eq!(rec.model_name, "anthropic/claude-sonnet-4");
    assert_eq!(rec.provider.as_deref(), Some("Anthropic"));
    assert_eq!((rec.input_tokens, rec.output_tokens), (2104, 611));
    assert_eq!(rec.raw_cost, dec!(0.0157362));
    assert_eq!(rec.occurred_at, Some(g.created_at));
    assert_eq!(
        rec.usage_date, None,
        "the store derives the client-local day"
    );
    assert_eq!(
        rec.markup_cost, None,
        "the store applies the client's markup"
    );
    assert_eq!(rec.request_metadata, None);
    assert_eq!(g.generation_id(), "gen-1761951599-Wq3vXc9LkPz2mTbN8aYd");
}

#[test]
fn native_counting_uses_native_tokens() {
    let g = full();
    let rec = g
        .to_usage_record_with(
            &client(),
            &ResolvedUser::new("anna", "or-anna"),
            TokenCounting::Native,
        )
        .expect("maps");
    assert_eq!((rec.input_tokens, rec.output_tokens), (2388, 702));
    assert_eq!(
        rec.raw_cost, g.total_cost,
        "the cost does not depend on the counting"
    );
    assert_eq!(TokenCounting::default(), TokenCounting::Normalized);
}

#[test]
fn null_counts_book_zero_and_no_provider() {
    let mut g = full();
    g.tokens_prompt = None;
    g.tokens_completion = None;
    g.provider_name = None;
    let rec = g
        .to_usage_record(&client(), &ResolvedUser::fallback(&g))
        .expect("maps");
    assert_eq!((rec.input_tokens, rec.output_tokens), (0, 0));
    assert_eq!(rec.provider, None);
}

#[test]
fn invalid_generations_and_records_are_errors() {
    let client = client();
    let user = ResolvedUser::new("anna", "or-anna");
    let mut g = full();
    g.total_cost = dec!(-0.01);
    assert!(matches!(
        g.to_usage_record(&client, &user),
        Err(OpenRouterError::Negative {
            field: "total_cost"
        })
    ));
    let mut g = full();
    g.model = " anthropic/claude-sonnet-4".into();
    assert!(matches!(
        g.to_usage_record(&client, &user),
        Err(OpenRouterError::InvalidRecord(DomainError::InvalidInput {
            field: "model_name",
            ..
        }))
    ));
    let g = full();
    assert!(matches!(
        g.to_usage_record(&client, &ResolvedUser::new("", "or-anna")),
        Err(OpenRouterError::InvalidRecord(DomainError::InvalidInput {
            field: "user_id",
            ..
        }))
    ));
}

#[test]
fn users_resolve_through_active_mappings_of_the_client() {
    let g = full();
    let client = client();
    let other = "client_other_1_deadbeef";
    let mappings = vec![
        mapping("anna-old", &client.id, "or-anna-kowalska", false),
        mapping("anna-elsewhere", other, "or-anna-kowalska", true),
        mapping("anna", &client.id, "or-anna-kowalska", true),
        mapping("piotr", &client.id, "or-piotr-nowak", true),
    ];
    assert_eq!(
        ResolvedUser::resolve(&g, &client, &mappings),
        ResolvedUser::new("anna", "or-anna-kowalska")
    );
    assert_eq!(
        ResolvedUser::resolve(&g, &client, &mappings[..2]),
        ResolvedUser::new("or-anna-kowalska", "or-anna-kowalska"),
        "no active mapping of this client: fall back to the OpenRouter user"
    );
    let mut anonymous = full();
    anonymous.external_user = None;
    assert_eq!(
        ResolvedUser::resolve(&anonymous, &client, &mappings),
        ResolvedUser::new(UNKNOWN_USER, UNKNOWN_USER)
    );
    anonymous.external_user = Some("   ".into());
    assert_eq!(ResolvedUser::fallback(&anonymous).user_id, UNKNOWN_USER);
    assert_eq!(
        ResolvedUser::from_mapping(&mappings[3]),
        ResolvedUser::new("piotr", "or-piotr-nowak")
    );
}

#[test]
fn fixture_parses_with_duplicates_kept() {
    let all = parse_generation_list(FIXTURE).expect("fixture parses");
    assert_eq!(all.len(), 8);
    let ids: BTreeSet<&str> = all.iter().map(Generation::generation_id).collect();
    assert_eq!(ids.len(), 6, "two ids appear twice");
    // The second copy of gen-…Hx7p writes created_at as +01:00: the same instant.
    assert_eq!(all[1], all[6]);
    assert_eq!(all[0], all[2]);
    let models: BTreeSet<&str> = all.iter().map(|g| g.model.as_str()).collect();
    assert_eq!(models.len(), 6);
    let users: BTreeSet<Option<&str>> = all.iter().map(Generation::openrouter_user).collect();
    assert_eq!(users.len(), 4, "{users:?}");
    assert!(users.contains(&None));
    assert!(all.iter().any(|g| g.is_byok));
    assert!(
        all.iter()
            .any(|g| g.cancelled == Some(true) && g.tokens_prompt.is_none())
    );
}

#[test]
fn fixture_costs_are_exact() {
    let all = parse_generation_list(FIXTURE).expect("fixture parses");
    assert_eq!(all[1].total_cost.to_string(), "0.0000123456789012");
    assert_eq!(all[3].total_cost, dec!(0.0000001));
    assert_eq!(all[3].total_cost.to_string(), "0.0000001");
    let unique: Decimal = all
        .iter()
        .enumerate()
        .filter(|(i, g)| all[..*i].iter().all(|p| p.id != g.id))
        .map(|(_, g)| g.total_cost)
        .sum();
    assert_eq!(unique, dec!(0.0183916456789012));
}

#[test]
fn fixture_straddles_a_warsaw_midnight() {
    let all = parse_generation_list(FIXTURE).expect("fixture parses");
    let client = client();
    let warsaw = parse_timezone(&client.timezone).expect("zone");
    let day = |g: &Generation| local_date_at(warsaw, g.created_at);
    let oct31 = NaiveDate::from_ymd_opt(2025, 10, 31).expect("date");
    let nov1 = NaiveDate::from_ymd_opt(2025, 11, 1).expect("date");
    // 22:59:59Z is 23:59:59 CET on 31 October; 23:00:00Z is midnight of 1 November.
    assert_eq!(day(&all[0]), oct31);
    assert_eq!(day(&all[1]), nov1);
    assert_eq!(day(&all[3]), nov1);
    assert_eq!(day(&all[4]), oct31);
    for g in &all {
        let user = ResolvedUser::fallback(g);
        let rec = g
            .to_usage_record(&client, &user)
            .expect("every fixture record maps");
        assert_eq!(rec.occurred_at, Some(g.created_at));
        assert_eq!(rec.raw_cost, g.total_cost);
    }
}

#[test]
fn list_errors_name_the_problem() {
    assert!(matches!(
        parse_generation_list(r#"{"data":[]}"#),
        Err(OpenRouterError::Malformed(_))
    ));
    assert_eq!(parse_generation_list("[]").expect("empty").len(), 0);
    let bad = r#"[{"id":"g","model":"m","created_at":"2025-10-31T23:00:00Z","total_cost":-1}]"#;
    assert!(matches!(
        parse_generation_list(bad),
        Err(OpenRouterError::Negative {
            field: "total_cost"
        })
    ));
}
