//! Ingesting OpenRouter generation records through the facade, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use orgusage::openrouter::{Generation, parse_generation_list};
use orgusage::{ClientOrganizationForm, ClientRef, Error, UserClientMappingForm};
use orgusage_testkit::backend_tests;
use rust_decimal_macros::dec;

const FILE: &str = include_str!("../examples/data/openrouter_generations.json");

fn generation(id: &str, user: &str, created_at: &str, cost: &str) -> Generation {
    Generation::from_json(&format!(
        r#"{{"id":"{id}","model":"openai/gpt-4.1","provider_name":"OpenAI","created_at":"{created_at}",
            "tokens_prompt":100,"tokens_completion":20,"total_cost":{cost},"external_user":"{user}"}}"#
    ))
    .unwrap()
}

backend_tests! {
    fn generation_of_a_deactivated_or_unknown_client_records_nothing(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("gone"), &"sk-or-v1-gone-000".into(), None).unwrap();
        t.store.clients().deactivate_client(&c.id).unwrap();
        let g = generation("gen-a", "or-u1", "2025-07-24T10:00:00Z", "0.01");
        for client in [ClientRef::ApiKey("sk-or-v1-gone-000"), ClientRef::Id(&c.id), ClientRef::ApiKey("sk-or-v1-never")] {
            let err = t.store.ingest_generation(client, &g).unwrap_err();
            assert!(matches!(err, Error::NotFound { entity: "client", .. }), "{err:?}");
            assert!(!err.to_string().contains("sk-or-v1"), "key leaked: {err}");
        }
        assert!(!t.store.generations().is_generation_processed("gen-a", &c.id).unwrap());
    }

    fn ingest_maps_users_days_and_markup(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("c1"), &"sk-or-v1-c1-000".into(), None).unwrap();
        t.store.mappings().create_mapping(&UserClientMappingForm { user_id: "anna".into(), client_org_id: c.id.clone(), openrouter_user_id: "or-anna".into() }).unwrap();
        let key = ClientRef::ApiKey("sk-or-v1-c1-000");
        // 2025-10-31T23:00:00Z is 1 November in Warsaw.
        let g = generation("gen-b", "or-anna", "2025-10-31T23:00:00Z", "0.5");
        let done = t.store.ingest_generation(key, &g).unwrap();
        let orgusage::GenerationOutcome::Recorded(r) = done else { panic!("recorded") };
        assert_eq!((r.usage_date, r.markup_cost), (NaiveDate::from_ymd_opt(2025, 11, 1).unwrap(), dec!(0.65)));
        assert!(!t.store.ingest_generation(key, &g).unwrap().is_recorded());
        let day = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        let users = t.store.usage().get_usage_by_user(&c.id, Some(day), Some(day)).unwrap();
        assert_eq!((users[0].user_id.as_str(), users[0].total_tokens), ("anna", 120));
        // An unmapped external user is booked under its own id.
        t.store.ingest_generation(key, &generation("gen-c", "or-stranger", "2025-11-01T10:00:00Z", "0.1")).unwrap();
        let users = t.store.usage().get_usage_by_user(&c.id, Some(day), Some(day)).unwrap();
        assert!(users.iter().any(|u| u.user_id == "or-stranger"));
    }

    fn shipped_file_counts_each_generation_once(t) {
        let c = t.store.clients().create_client(&ClientOrganizationForm::new("c1"), &"sk-or-v1-c1-000".into(), None).unwrap();
        let all = parse_generation_list(FILE).unwrap();
        let unique: std::collections::BTreeSet<_> = all.iter().map(|g| g.generation_id().to_string()).collect();
        let recorded = all.iter().filter(|g| t.store.ingest_generation(ClientRef::Id(&c.id), g).unwrap().is_recorded()).count();
        assert_eq!(recorded, unique.len());
        let again = all.iter().filter(|g| t.store.ingest_generation(ClientRef::Id(&c.id), g).unwrap().is_recorded()).count();
        assert_eq!(again, 0);
        let stats = t.store.generations().get_processed_generations_stats(&c.id, None, None).unwrap();
        assert_eq!(stats.total_processed, unique.len() as i64);
    }
}
