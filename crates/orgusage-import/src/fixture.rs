//! Original-schema databases for tests, the example and the bench, built from the DDL that the
//! spec documents for the original (V3 with the timezone script applied; see
//! `docs/migrating.md`). Not part of the import API: it writes an *original* database.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let url = dir.path().join("mai.db").to_string_lossy().into_owned();
//! orgusage_import::fixture::create(&url, &orgusage_import::fixture::Shape::default()).unwrap();
//! orgusage_import::fixture::seed_scenario(&url).unwrap();
//! ```

use orgusage_db::Backend;

use crate::error::Result;
use crate::source::SourceConn;

/// Which optional parts of the original to create (the versions differ in exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `client_organizations.timezone` (V3+, added by a script).
    pub timezone: bool,
    /// `client_live_counters` (V1–V4).
    pub live_counters: bool,
    /// `processed_generations` and the cleanup log (V3–V5).
    pub ledger: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            timezone: true,
            live_counters: true,
            ledger: true,
        }
    }
}

/// The original DDL for `backend`: floats for money, string ids, generic index names.
pub fn ddl(backend: Backend, shape: &Shape) -> String {
    let (float, serial, yes) = match backend {
        Backend::Sqlite => ("FLOAT", "INTEGER PRIMARY KEY AUTOINCREMENT", "1"),
        Backend::Postgres => ("DOUBLE PRECISION", "SERIAL PRIMARY KEY", "TRUE"),
    };
    let tz = if shape.timezone {
        "timezone VARCHAR DEFAULT 'Europe/Warsaw',"
    } else {
        ""
    };
    let mut sql = format!(
        "CREATE TABLE global_settings (id VARCHAR PRIMARY KEY, openrouter_provisioning_key TEXT, \
           default_markup_rate {float} DEFAULT 1.3, billing_currency VARCHAR DEFAULT 'USD', \
           created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
         CREATE TABLE client_organizations (id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, \
           openrouter_api_key TEXT NOT NULL UNIQUE, openrouter_key_hash VARCHAR, \
           markup_rate {float} DEFAULT 1.3, monthly_limit {float}, billing_email VARCHAR, {tz} \
           is_active INTEGER DEFAULT 1, created_at BIGINT, updated_at BIGINT);
         CREATE INDEX idx_api_key ON client_organizations (openrouter_api_key);
         CREATE INDEX idx_active ON client_organizations (is_active);
         CREATE TABLE user_client_mapping (id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, \
           client_org_id VARCHAR NOT NULL, openrouter_user_id VARCHAR NOT NULL, \
           is_active INTEGER DEFAULT 1, created_at BIGINT, updated_at BIGINT);
         CREATE INDEX idx_user_id ON user_client_mapping (user_id);
         CREATE INDEX idx_client_org_id ON user_client_mapping (client_org_id);
         CREATE TABLE client_daily_usage (id VARCHAR PRIMARY KEY, client_org_id VARCHAR NOT NULL, \
           usage_date DATE NOT NULL, total_tokens BIGINT DEFAULT 0, total_requests INTEGER DEFAULT 0, \
           raw_cost {float} DEFAULT 0.0, markup_cost {float} DEFAULT 0.0, primary_model VARCHAR, \
           unique_users INTEGER DEFAULT 1, created_at BIGINT, updated_at BIGINT);
         CREATE INDEX idx_client_date ON client_daily_usage (client_org_id, usage_date);
         CREATE INDEX idx_usage_date ON client_daily_usage (usage_date);
         CREATE TABLE client_user_daily_usage (id VARCHAR PRIMARY KEY, client_org_id VARCHAR NOT NULL, \
           user_id VARCHAR NOT NULL, openrouter_user_id VARCHAR NOT NULL, usage_date DATE NOT NULL, \
           total_tokens BIGINT DEFAULT 0, total_requests INTEGER DEFAULT 0, raw_cost {float} DEFAULT 0.0, \
           markup_cost {float} DEFAULT 0.0, created_at BIGINT, updated_at BIGINT);
         CREATE INDEX idx_client_user_date ON client_user_daily_usage (client_org_id, user_id, usage_date);
         CREATE TABLE client_model_daily_usage (id VARCHAR PRIMARY KEY, client_org_id VARCHAR NOT NULL, \
           model_name VARCHAR NOT NULL, usage_date DATE NOT NULL, total_tokens BIGINT DEFAULT 0, \
           total_requests INTEGER DEFAULT 0, raw_cost {float} DEFAULT 0.0, markup_cost {float} DEFAULT 0.0, \
           provider VARCHAR, created_at BIGINT, updated_at BIGINT);
         CREATE INDEX idx_client_model_date ON client_model_daily_usage (client_org_id, model_name, usage_date);
        "
    );
    if shape.live_counters {
        sql.push_str(&format!(
            "CREATE TABLE client_live_counters (client_org_id VARCHAR PRIMARY KEY, \
               \"current_date\" DATE NOT NULL, today_tokens BIGINT DEFAULT 0, \
               today_requests INTEGER DEFAULT 0, today_raw_cost {float} DEFAULT 0.0, \
               today_markup_cost {float} DEFAULT 0.0, last_updated BIGINT NOT NULL);
             CREATE INDEX idx_client_live_date ON client_live_counters (client_org_id, \"current_date\");
            "
        ));
    }
    if shape.ledger {
        sql.push_str(&format!(
            "CREATE TABLE processed_generations (id VARCHAR PRIMARY KEY, client_org_id VARCHAR NOT NULL, \
               generation_date DATE NOT NULL, processed_at BIGINT NOT NULL, total_cost {float} NOT NULL, \
               total_tokens INTEGER NOT NULL);
             CREATE INDEX idx_processed_at ON processed_generations (processed_at);
             CREATE TABLE processed_generation_cleanup_log (id {serial}, cleanup_date DATE NOT NULL, \
               cutoff_date DATE NOT NULL, days_retained INTEGER NOT NULL, records_before INTEGER NOT NULL, \
               records_deleted INTEGER NOT NULL, records_remaining INTEGER NOT NULL, \
               old_tokens_removed BIGINT NOT NULL, old_cost_removed {float} NOT NULL, \
               storage_saved_kb {float} NOT NULL, cleanup_duration_seconds {float} NOT NULL, \
               success BOOLEAN NOT NULL DEFAULT {yes}, error_message TEXT, created_at BIGINT NOT NULL);
            "
        ));
    }
    sql
}

/// Runs `sql` on the database at `url` in one transaction (SQLite files are created).
pub fn execute(url: &str, sql: &str) -> Result<()> {
    SourceConn::open(url, false)?.execute_in_transaction("fixture", &[sql.to_string()])
}

/// Creates the original tables at `url`.
pub fn create(url: &str, shape: &Shape) -> Result<()> {
    let backend = Backend::from_url(url)?;
    execute(url, &ddl(backend, shape))
}

/// A small deployment with every artefact the importer must handle: `0.1 + 0.2` floats, one day
/// under both id formats, live counters (one on a day that has a row, one on a day without, one
/// empty), B22 ledger rows holding the marked-up cost, a user with two active mappings, `CET`,
/// empty and NULL timezones, an inconsistent day, and a row of an unknown client. Needs the
/// default [`Shape`].
pub fn seed_scenario(url: &str) -> Result<()> {
    let d = |s: &str| match Backend::from_url(url) {
        Ok(Backend::Postgres) => format!("DATE '{s}'"),
        _ => format!("'{s}'"),
    };
    let sql = format!(
        "INSERT INTO global_settings VALUES ('global', 'sk-or-prov-test', 1.3, 'USD', 1000, 1000);
         INSERT INTO client_organizations (id, name, openrouter_api_key, markup_rate, monthly_limit, timezone, is_active, created_at, updated_at) VALUES
           ('c_acme', 'Acme', 'sk-or-acme', 1.3, 500.0, 'Europe/Warsaw', 1, 1000, 1000),
           ('c_beta', 'Beta', 'sk-or-beta', 1.5, NULL, 'CET', 1, 1000, 1000),
           ('c_gamma', 'Gamma', 'sk-or-gamma', 1.3, NULL, '', 1, 1000, 1000),
           ('c_delta', 'Delta', 'sk-or-delta', NULL, NULL, NULL, 0, 1000, 1000);
         INSERT INTO user_client_mapping VALUES
           ('u1_c_acme', 'u1', 'c_acme', 'acme_u1', 1, 1000, 1000),
           ('u2_c_acme', 'u2', 'c_acme', 'acme_u2', 1, 1000, 1000),
           ('u2_c_beta', 'u2', 'c_beta', 'beta_u2', 1, 1000, 2000),
           ('u3_c_gamma', 'u3', 'c_gamma', 'gamma_u3', 0, 1000, 1000);
         INSERT INTO client_daily_usage (id, client_org_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES
           ('c_acme_2025-06-30', 'c_acme', {jun30}, 100, 1, 0.01, 0.013, 1000, 1000),
           ('c_acme_2025-07-01', 'c_acme', {jul1}, 300, 3, {p3}, ({p3}) * 1.3, 1000, 1000),
           ('c_acme:2025-07-01', 'c_acme', {jul1}, 300, 3, {p3}, ({p3}) * 1.3, 1000, 2000),
           ('c_acme:2025-07-02', 'c_acme', {jul2}, 200, 2, 0.01, 0.013, 1000, 1000),
           ('c_beta:2025-07-02', 'c_beta', {jul2}, 1000, 2, 0.3, 0.45, 1000, 1000),
           ('c_ghost:2025-07-02', 'c_ghost', {jul2}, 5, 1, 0.5, 0.65, 1000, 1000);
         INSERT INTO client_user_daily_usage (id, client_org_id, user_id, openrouter_user_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES
           ('c_acme:u1:2025-06-30', 'c_acme', 'u1', 'acme_u1', {jun30}, 100, 1, 0.01, 0.013, 1000, 1000),
           ('c_acme:u1:2025-07-01', 'c_acme', 'u1', 'acme_u1', {jul1}, 100, 1, 0.1, 0.13, 1000, 1000),
           ('c_acme:u2:2025-07-01', 'c_acme', 'u2', 'acme_u2', {jul1}, 200, 2, 0.2, 0.26, 1000, 1000),
           ('c_acme:u1:2025-07-02', 'c_acme', 'u1', 'acme_u1', {jul2}, 200, 2, 0.01, 0.013, 1000, 1000),
           ('c_beta:u2:2025-07-02', 'c_beta', 'u2', 'beta_u2', {jul2}, 900, 2, 0.3, 0.45, 1000, 1000);
         INSERT INTO client_model_daily_usage (id, client_org_id, model_name, usage_date, total_tokens, total_requests, raw_cost, markup_cost, provider, created_at, updated_at) VALUES
           ('c_acme:openai/gpt-4.1:2025-06-30', 'c_acme', 'openai/gpt-4.1', {jun30}, 100, 1, 0.01, 0.013, 'openai', 1000, 1000),
           ('c_acme:anthropic/claude-sonnet-4:2025-07-01', 'c_acme', 'anthropic/claude-sonnet-4', {jul1}, 300, 3, {p3}, ({p3}) * 1.3, 'anthropic', 1000, 1000),
           ('c_acme:openai/gpt-4.1:2025-07-02', 'c_acme', 'openai/gpt-4.1', {jul2}, 200, 2, 0.01, 0.013, 'openai', 1000, 1000),
           ('c_beta:openai/gpt-4.1:2025-07-02', 'c_beta', 'openai/gpt-4.1', {jul2}, 1000, 2, 0.3, 0.45, 'openai', 1000, 1000);
         INSERT INTO client_live_counters VALUES
           ('c_acme', {jul2}, 50, 1, 0.002, 0.0026, 3000),
           ('c_beta', {jul3}, 70, 1, 0.02, 0.03, 3000),
           ('c_gamma', {jul3}, 0, 0, 0.0, 0.0, 3000);
         INSERT INTO processed_generations VALUES
           ('gen-a1', 'c_acme', {jul2}, 2000, 0.01, 200),
           ('gen-b1', 'c_beta', {jul2}, 2000, 0.15, 400),
           ('gen-b2', 'c_beta', {jul2}, 2000, 0.3, 600);
         INSERT INTO processed_generation_cleanup_log (cleanup_date, cutoff_date, days_retained, records_before, records_deleted, records_remaining, old_tokens_removed, old_cost_removed, storage_saved_kb, cleanup_duration_seconds, success, error_message, created_at) VALUES
           ({jul3}, {may4}, 60, 10, 7, 3, 700, 0.07, 0.68359375, 0.0125, {yes}, NULL, 4000);",
        // 0.1 + 0.2 in binary floating point (PostgreSQL would add the literals as NUMERIC).
        p3 = if url.starts_with("postgres") {
            "(CAST(0.1 AS DOUBLE PRECISION) + CAST(0.2 AS DOUBLE PRECISION))"
        } else {
            "(0.1 + 0.2)"
        },
        jun30 = d("2025-06-30"),
        jul1 = d("2025-07-01"),
        jul2 = d("2025-07-02"),
        jul3 = d("2025-07-03"),
        may4 = d("2025-05-04"),
        yes = if url.starts_with("postgres") { "TRUE" } else { "1" },
    );
    execute(url, &sql)
}

/// `days` days of usage for `clients` clients, each day one client row, `users` user rows and
/// `models` model rows (all consistent), written in batches; for the bench and the example.
/// Returns the number of daily rows written (client + user + model rows).
pub fn seed_bulk(
    url: &str,
    clients: usize,
    days: usize,
    users: usize,
    models: usize,
) -> Result<u64> {
    let backend = Backend::from_url(url)?;
    let mut conn = SourceConn::open(url, false)?;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let mut total = 0u64;
    let mut stmts = Vec::new();
    let date = |d: chrono::NaiveDate| match backend {
        Backend::Postgres => format!("DATE '{d}'"),
        Backend::Sqlite => format!("'{d}'"),
    };
    let mut clients_sql = String::from(
        "INSERT INTO client_organizations (id, name, openrouter_api_key, markup_rate, is_active, created_at, updated_at) VALUES ",
    );
    for c in 0..clients {
        if c > 0 {
            clients_sql.push(',');
        }
        clients_sql.push_str(&format!(
            "('client_{c}', 'Client {c}', 'sk-or-{c}', 1.3, 1, 1000, 1000)"
        ));
    }
    stmts.push(clients_sql);
    for day in 0..days {
        let dt = start + chrono::Days::new(day as u64);
        let ds = date(dt);
        let mut daily = Vec::new();
        let mut user_rows = Vec::new();
        let mut model_rows = Vec::new();
        for c in 0..clients {
            // Per user 0.001 * (u + 1) USD; floats as the original computed them.
            let raw_u: Vec<String> = (0..users)
                .map(|u| format!("{}", 0.001 * (u + 1) as f64))
                .collect();
            let raw_sum = raw_u.join(" + ");
            daily.push(format!(
                "('client_{c}:{dt}', 'client_{c}', {ds}, {t}, {r}, {raw_sum}, ({raw_sum}) * 1.3, 1000, 1000)",
                t = 100 * users,
                r = users
            ));
            for (u, raw) in raw_u.iter().enumerate() {
                user_rows.push(format!(
                    "('client_{c}:user{u}:{dt}', 'client_{c}', 'user{u}', 'or_user{u}', {ds}, 100, 1, {raw}, {raw} * 1.3, 1000, 1000)"
                ));
            }
            for m in 0..models {
                // All usage on model 0; the others get empty rows (the level sums still agree).
                let (t, r, raw) = if m == 0 {
                    (100 * users, users, raw_sum.clone())
                } else {
                    (0, 0, "0.0".into())
                };
                model_rows.push(format!(
                    "('client_{c}:vendor/model-{m}:{dt}', 'client_{c}', 'vendor/model-{m}', {ds}, {t}, {r}, {raw}, ({raw}) * 1.3, 'vendor', 1000, 1000)"
                ));
            }
        }
        total += (daily.len() + user_rows.len() + model_rows.len()) as u64;
        stmts.push(format!("INSERT INTO client_daily_usage (id, client_org_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES {}", daily.join(",")));
        if users > 0 {
            stmts.push(format!("INSERT INTO client_user_daily_usage (id, client_org_id, user_id, openrouter_user_id, usage_date, total_tokens, total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES {}", user_rows.join(",")));
        }
        if models > 0 {
            stmts.push(format!("INSERT INTO client_model_daily_usage (id, client_org_id, model_name, usage_date, total_tokens, total_requests, raw_cost, markup_cost, provider, created_at, updated_at) VALUES {}", model_rows.join(",")));
        }
        if stmts.len() > 60 {
            conn.execute_in_transaction("bulk seed", &stmts)?;
            stmts.clear();
        }
    }
    conn.execute_in_transaction("bulk seed", &stmts)?;
    Ok(total)
}
