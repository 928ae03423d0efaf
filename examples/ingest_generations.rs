//! Feeds a file of OpenRouter generation records (the `data` objects of
//! `GET /api/v1/generation?id=`, duplicates included) through exactly-once ingestion and prints
//! recorded/duplicate counts and the resulting totals. Then it feeds the same file again, as a
//! retrying worker or a second instance would: everything is a duplicate, nothing changes.
//!
//! `cargo run --example ingest_generations [path/to/generations.json]`; without a path it uses
//! the file shipped in `examples/data/`. Runs on a fresh SQLite file (or `ORGUSAGE_DATABASE_URL`).

use orgusage::openrouter::{Generation, parse_generation_list};
use orgusage::{
    ClientOrganizationForm, ClientRef, GenerationOutcome, Store, UserClientMappingForm,
};

const SHIPPED: &str = include_str!("data/openrouter_generations.json");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(path)?,
        None => SHIPPED.to_string(),
    };
    let generations: Vec<Generation> = parse_generation_list(&json)?;
    let url = std::env::var("ORGUSAGE_DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("orgusage-ingest.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        path.display().to_string()
    });
    let store = Store::open(url.as_str())?;
    let api_key = format!("sk-or-v1-ingest-demo-{}", std::process::id());
    let client = store.clients().create_client(
        &ClientOrganizationForm::new("Kowalski i Synowie Sp. z o.o."),
        &api_key.as_str().into(),
        None,
    )?;
    for (user, or_user) in [
        ("anna", "or-anna-kowalska"),
        ("piotr", "or-piotr-nowak"),
        ("ewa", "or-ewa-wisniewska"),
    ] {
        store.mappings().create_mapping(&UserClientMappingForm {
            user_id: user.into(),
            client_org_id: client.id.clone(),
            openrouter_user_id: or_user.into(),
        })?;
    }
    println!(
        "client {} (markup {}x, {}), {} records in the file\n",
        client.name,
        client.markup_rate,
        client.timezone,
        generations.len()
    );

    for pass in 1..=2 {
        let (mut recorded, mut duplicate) = (0, 0);
        for g in &generations {
            match store.ingest_generation(ClientRef::ApiKey(&api_key), g)? {
                GenerationOutcome::Recorded(r) => {
                    recorded += 1;
                    println!(
                        "  recorded  {:<40} {:<32} {} -> day {} raw {} markup {}",
                        g.generation_id(),
                        g.model,
                        g.created_at.to_rfc3339(),
                        r.usage_date,
                        r.raw_cost,
                        r.markup_cost
                    );
                }
                GenerationOutcome::Duplicate => {
                    duplicate += 1;
                    if pass == 1 {
                        println!("  duplicate {}", g.generation_id());
                    }
                }
            }
        }
        println!("pass {pass}: {recorded} recorded, {duplicate} duplicates\n");
    }

    let ledger = store
        .generations()
        .get_processed_generations_stats(&client.id, None, None)?;
    println!(
        "ledger: {} generations, raw {} USD, {} tokens",
        ledger.total_processed, ledger.total_cost, ledger.total_tokens
    );
    let first = generations
        .iter()
        .map(|g| g.created_at)
        .min()
        .unwrap_or_default()
        .date_naive()
        - chrono::Duration::days(1);
    let last = generations
        .iter()
        .map(|g| g.created_at)
        .max()
        .unwrap_or_default()
        .date_naive()
        + chrono::Duration::days(1);
    for day in store.usage().get_daily_usage(&client.id, first, last)? {
        println!(
            "  {}: {} requests, {} tokens, raw {} USD, markup {} USD, {} users, primary model {}",
            day.usage_date,
            day.total_requests,
            day.total_tokens,
            day.raw_cost,
            day.markup_cost,
            day.unique_users,
            day.primary_model.unwrap_or_default()
        );
    }
    for u in store
        .usage()
        .get_usage_by_user(&client.id, Some(first), Some(last))?
    {
        println!(
            "  user {:<28} {:>3} requests, markup {} USD",
            u.user_id, u.total_requests, u.markup_cost
        );
    }
    Ok(())
}
