//! The fixed SQL texts of the hot paths (usage upserts, cleanup batches).
//!
//! They live in one place so that the library and the benchmarks' raw-SQL floors run exactly
//! the same statements; the floors import them instead of keeping copies.

/// The user-day upsert of one request; `RETURNING total_requests` is 1 exactly for the user's
/// first request of the day. The day keeps the greatest `openrouter_user_id` it was given (a
/// portable `CASE`, the same comparison as the reports' `MAX`), so the by-user report's value
/// does not depend on the order of the writes. All three upserts are prepared once per connection (see
/// `crate::rawsql`); `excluded` is the row the INSERT proposed, on SQLite and PostgreSQL alike.
pub const UPSERT_USER_DAY: &str = "INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_daily_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_daily_usage.openrouter_user_id END, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + 1, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at \
    RETURNING total_requests";

/// The client-day upsert; `unique_users` grows by the last bind (1 for a user's first request
/// of the day, else 0).
///
/// The `WHERE` of the update is the overflow guard: when a sum would leave `i64`, the row is
/// left alone and the statement affects 0 rows, which the caller turns into `Overflow` and a
/// rollback. Without it SQLite silently turns an overflowing integer sum into a REAL (stored
/// `1.0e19`, read back saturated) and PostgreSQL fails with an untyped "bigint out of range".
/// `MAX - excluded.x` cannot overflow because every increment is non-negative. Guarding this
/// row is enough: the user and model rows of the day partition its sums, so none of them can
/// exceed it (and if the user row, written first, went REAL, this guard rolls it back).
pub const UPSERT_CLIENT_DAY: &str = "INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) \
    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
    total_tokens = client_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_daily_usage.total_requests + 1, \
    raw_cost = client_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_daily_usage.markup_cost + excluded.markup_cost, \
    unique_users = client_daily_usage.unique_users + excluded.unique_users, \
    updated_at = excluded.updated_at \
    WHERE client_daily_usage.total_tokens <= 9223372036854775807 - excluded.total_tokens \
    AND client_daily_usage.raw_cost <= 9223372036854775807 - excluded.raw_cost \
    AND client_daily_usage.markup_cost <= 9223372036854775807 - excluded.markup_cost";

/// The model-day upsert; the first non-null provider of the day is kept.
pub const UPSERT_MODEL_DAY: &str = "INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) \
    ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + 1, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at";

/// Records per transaction of the batch path (`record_usage_batch`, `record_generations`,
/// group commit). Its widest statement, the user-day upsert, binds 12 values per distinct
/// (client, day, user) row, so a chunk binds at most 12,000 values in one statement: well under
/// SQLite's 32,766 and PostgreSQL's (and diesel's) 65,535. Larger chunks gained nothing
/// measurable; smaller ones pay the per-transaction cost (a WAL flush) more often.
pub const BATCH_CHUNK: usize = 1000;

/// The batch user-day upsert: `BATCH_USER_DAY.0`, then `BATCH_USER_DAY.1` once per merged row
/// (comma-separated), then `BATCH_USER_DAY.2`. Unlike [`UPSERT_USER_DAY`] the request count is a
/// bind (a merged row stands for several records), and the key comes back with the new
/// `total_requests`, because neither engine promises `RETURNING` rows in `VALUES` order. A
/// returned count equal to the row's own count means the row was inserted: the user's first
/// requests of the day.
pub const BATCH_USER_DAY: (&str, &str, &str) = (
    "INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_daily_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_daily_usage.openrouter_user_id END, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + excluded.total_requests, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at \
    RETURNING client_org_id, usage_date, user_id, total_requests",
);

/// The batch client-day upsert (parts as [`BATCH_USER_DAY`]), with the overflow guard of
/// [`UPSERT_CLIENT_DAY`]. It returns the key of every row it wrote; a merged row missing from
/// the answer was refused by the guard.
pub const BATCH_CLIENT_DAY: (&str, &str, &str) = (
    "INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
    total_tokens = client_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_daily_usage.total_requests + excluded.total_requests, \
    raw_cost = client_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_daily_usage.markup_cost + excluded.markup_cost, \
    unique_users = client_daily_usage.unique_users + excluded.unique_users, \
    updated_at = excluded.updated_at \
    WHERE client_daily_usage.total_tokens <= 9223372036854775807 - excluded.total_tokens \
    AND client_daily_usage.raw_cost <= 9223372036854775807 - excluded.raw_cost \
    AND client_daily_usage.markup_cost <= 9223372036854775807 - excluded.markup_cost \
    RETURNING client_org_id, usage_date",
);

/// The batch model-day upsert (parts as [`BATCH_USER_DAY`]).
pub const BATCH_MODEL_DAY: (&str, &str, &str) = (
    "INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + excluded.total_requests, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at",
);

/// PostgreSQL, batch path: the user-month rollup rows of a chunk (parts as [`BATCH_USER_DAY`]),
/// one per (client, month, user), sent in key order at the end of the transaction. The chunk
/// has turned the rollup trigger off for its own transaction ([`BATCH_ROLLUPS_BY_CALLER`]), so
/// these rows carry the chunk's sums and the number of user-day rows it created; the greatest
/// `openrouter_user_id` only grows, as in the day upsert, and a month whose sums would leave
/// `i64` is flagged `overflowed`, as the trigger does. On SQLite the trigger does this.
pub const BATCH_USER_MONTH: (&str, &str, &str) = (
    "INSERT INTO client_user_monthly_usage \
    (client_org_id, month_start, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, days_active) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (client_org_id, month_start, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_monthly_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_monthly_usage.openrouter_user_id END, \
    total_tokens = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.total_tokens ELSE client_user_monthly_usage.total_tokens + excluded.total_tokens END, \
    input_tokens = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.input_tokens ELSE client_user_monthly_usage.input_tokens + excluded.input_tokens END, \
    output_tokens = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.output_tokens ELSE client_user_monthly_usage.output_tokens + excluded.output_tokens END, \
    total_requests = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.total_requests ELSE client_user_monthly_usage.total_requests + excluded.total_requests END, \
    raw_cost = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.raw_cost ELSE client_user_monthly_usage.raw_cost + excluded.raw_cost END, \
    markup_cost = CASE WHEN (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END) THEN client_user_monthly_usage.markup_cost ELSE client_user_monthly_usage.markup_cost + excluded.markup_cost END, \
    days_active = client_user_monthly_usage.days_active + excluded.days_active, \
    overflowed = (client_user_monthly_usage.overflowed OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END)",
);

/// PostgreSQL, batch path: turns the rollup trigger off for the rest of this transaction only
/// (see [`BATCH_USER_MONTH`] and migration `2026-11-29-000004_month_rollups`).
pub const BATCH_ROLLUPS_BY_CALLER: &str =
    "SELECT set_config('orgusage.rollups_by_caller', 'on', true)";

/// The batch ledger insert (parts as [`BATCH_USER_DAY`]): the ids it returns are new, the others
/// were already billed.
pub const BATCH_LEDGER: (&str, &str, &str) = (
    "INSERT INTO processed_generations \
    (client_org_id, id, generation_date, processed_at, total_cost, total_tokens, created_at, model_name) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT DO NOTHING RETURNING client_org_id, id",
);

/// The billing settings of a batch's clients (parts as [`BATCH_USER_DAY`], one `?` per client).
pub const BATCH_BILLING: (&str, &str, &str) = (
    "SELECT id, timezone, markup_rate, monthly_limit, is_active FROM client_organizations WHERE id IN (",
    "?",
    ")",
);

/// The text of a multi-row statement of `rows` rows from its three parts.
pub fn multi_row(parts: (&str, &str, &str), rows: usize) -> String {
    let mut sql = String::with_capacity(parts.0.len() + rows * (parts.1.len() + 2) + parts.2.len());
    sql.push_str(parts.0);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(parts.1);
    }
    sql.push_str(parts.2);
    sql
}

/// PostgreSQL: a whole `record_usage` or `record_generation` of a client without a limit as one
/// statement (see `repo::one_trip`). Binds, in order: the client check (id, markup rate, time
/// zone); the ledger row (client, generation id, day, now, raw cost, tokens, the request's instant,
/// model) and the generation
/// id again (NULL for `record_usage`: no ledger row); the user upsert (11, as `UPSERT_USER_DAY`)
/// and the generation id again (the usage is written only when there is no id or its ledger row
/// was new); the client-day upsert (9: its `unique_users` comes from the user upsert's
/// `RETURNING`); the model upsert (11). Returns (client matched: 0 or 1, ledger rows inserted,
/// 1); when the overflow guard refuses the client-day row of a written user row, the last
/// column divides by zero and the whole statement fails.
pub const PG_RECORD_ONE: &str = "WITH b AS (SELECT 1 AS ok FROM client_organizations \
    WHERE id = ? AND is_active AND monthly_limit IS NULL AND markup_rate = ? AND timezone = ?), \
    g AS (INSERT INTO processed_generations \
    (client_org_id, id, generation_date, processed_at, total_cost, total_tokens, created_at, model_name) \
    SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM b WHERE ? IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1 AS ok), \
    u AS (INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) \
    SELECT ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ? FROM b WHERE ? IS NULL OR EXISTS (SELECT 1 FROM g) \
    ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_daily_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_daily_usage.openrouter_user_id END, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + 1, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at \
    RETURNING total_requests), \
    c AS (INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) \
    SELECT ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, CASE WHEN u.total_requests = 1 THEN 1 ELSE 0 END FROM u \
    ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
    total_tokens = client_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_daily_usage.total_requests + 1, \
    raw_cost = client_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_daily_usage.markup_cost + excluded.markup_cost, \
    unique_users = client_daily_usage.unique_users + excluded.unique_users, \
    updated_at = excluded.updated_at \
    WHERE client_daily_usage.total_tokens <= 9223372036854775807 - excluded.total_tokens \
    AND client_daily_usage.raw_cost <= 9223372036854775807 - excluded.raw_cost \
    AND client_daily_usage.markup_cost <= 9223372036854775807 - excluded.markup_cost \
    RETURNING 1 AS ok), \
    m AS (INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) \
    SELECT ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ? FROM u \
    ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + 1, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at) \
    SELECT CAST((SELECT COUNT(*) FROM b) AS BIGINT), CAST((SELECT COUNT(*) FROM g) AS BIGINT), \
    CAST(1 / ((SELECT COUNT(*) FROM c) + 1 - (SELECT COUNT(*) FROM u)) AS BIGINT)";

/// One cleanup batch on SQLite: binds the cut-off and the batch size.
pub const SQLITE_DELETE_BATCH: &str = "DELETE FROM processed_generations WHERE rowid IN \
     (SELECT rowid FROM processed_generations WHERE processed_at < ? LIMIT ?) \
     RETURNING client_org_id, total_tokens, total_cost, \
     LENGTH(CAST(id AS BLOB)) + LENGTH(CAST(client_org_id AS BLOB)) AS payload";

// SKIP LOCKED lets several instances clean at once without waiting on each other's batches.
/// One cleanup batch on PostgreSQL: binds the cut-off and the batch size.
pub const POSTGRES_DELETE_BATCH: &str = "DELETE FROM processed_generations WHERE ctid = ANY(ARRAY( \
     SELECT ctid FROM processed_generations WHERE processed_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)) \
     RETURNING client_org_id, total_tokens, total_cost, \
     CAST(octet_length(id) + octet_length(client_org_id) AS BIGINT) AS payload";

pub use crate::repo::cleanup::{CLEANUP_BATCH, SQLITE_CLEANUP_BATCH};
