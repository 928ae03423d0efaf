//! Every fixed SQL statement the library sends through diesel's prepared-statement cache, each
//! as its own marker type carrying its text.
//!
//! Why marker types: diesel caches a prepared statement under its query's *type* when the type
//! says its id is static. A statement's id here is its marker type (see `crate::prepared`), so
//! two different texts can never share a cache entry, and a new statement cannot silently run
//! another one's prepared text. Why fixed texts at all: diesel refuses to cache any
//! `INSERT … ON CONFLICT DO UPDATE` or `UPDATE` built with its DSL, so each call re-prepared (and
//! on PostgreSQL re-planned) the usage upserts: measured +120-140 µs per record on SQLite and
//! about +380 µs on PostgreSQL.
//!
//! The texts are portable: every `?` becomes `$n` on PostgreSQL through diesel's binds. The
//! three daily upserts appear in four statements (one record, a batch, PostgreSQL's one-trip
//! record); their column lists and `ON CONFLICT … DO UPDATE SET` clauses are written once below
//! and joined at compile time, so the paths cannot drift apart. The benchmarks' raw-SQL floors
//! run these same texts.

/// A fixed SQL text with `?` placeholders, prepared once per pooled connection.
pub trait Statement: 'static {
    /// The statement's text.
    const SQL: &'static str;
}

/// A multi-row statement: [`MultiRow::HEAD`], then [`MultiRow::ROW`] once per row
/// (comma-separated), then [`MultiRow::TAIL`]. Its text depends on the row count, so it is
/// cached by text (see `crate::prepared::DynStmt`), not by type.
pub trait MultiRow: 'static {
    /// Up to the first row.
    const HEAD: &'static str;
    /// One row's placeholders.
    const ROW: &'static str;
    /// After the last row.
    const TAIL: &'static str;

    /// The text for `rows` rows.
    fn sql(rows: usize) -> String {
        let mut sql = String::with_capacity(
            Self::HEAD.len() + rows * (Self::ROW.len() + 2) + Self::TAIL.len(),
        );
        sql.push_str(Self::HEAD);
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(Self::ROW);
        }
        sql.push_str(Self::TAIL);
        sql
    }
}

/// The length of `parts` joined.
pub(crate) const fn joined_len(parts: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// `parts` joined, as bytes (`N` = [`joined_len`]); a compile-time `concat!` of constants.
pub(crate) const fn join<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let (mut k, mut i) = (0, 0);
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            out[k] = bytes[j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// The joined bytes as text (they are always UTF-8: joined from `&str`s).
pub(crate) const fn text(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("statement text is not UTF-8"),
    }
}

// ---- Shared fragments of the daily upserts ----

/// The user-day row's columns (`total_requests` is the 8th).
const USER_DAY_INSERT: &str = "INSERT INTO client_user_daily_usage \
    (client_org_id, usage_date, user_id, openrouter_user_id, total_tokens, input_tokens, output_tokens, \
    total_requests, raw_cost, markup_cost, created_at, updated_at) ";

/// The user-day increment. The day keeps the greatest `openrouter_user_id` it was given (a
/// portable `CASE`, the same comparison as the reports' `MAX`), so the by-user report's value
/// does not depend on the order of the writes. `excluded` is the row the INSERT proposed, on
/// SQLite and PostgreSQL alike; a single record proposes `total_requests` 1.
const USER_DAY_CONFLICT: &str = " ON CONFLICT (client_org_id, usage_date, user_id) DO UPDATE SET \
    openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_daily_usage.openrouter_user_id \
    THEN excluded.openrouter_user_id ELSE client_user_daily_usage.openrouter_user_id END, \
    total_tokens = client_user_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_user_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_user_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_user_daily_usage.total_requests + excluded.total_requests, \
    raw_cost = client_user_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_user_daily_usage.markup_cost + excluded.markup_cost, \
    updated_at = excluded.updated_at";

/// The client-day row's columns (`total_requests` is the 6th, `unique_users` the last).
const CLIENT_DAY_INSERT: &str = "INSERT INTO client_daily_usage \
    (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost, \
    markup_cost, created_at, updated_at, unique_users) ";

/// The client-day increment with its overflow guard: when a sum would leave `i64`, the row is
/// left alone and the statement affects (or returns) no row, which the caller turns into
/// `Overflow` and a rollback. Without it SQLite silently turns an overflowing integer sum into a
/// REAL (stored `1.0e19`, read back saturated) and PostgreSQL fails with an untyped "bigint out
/// of range". `MAX - excluded.x` cannot overflow because every increment is non-negative.
/// Guarding this row is enough: the user and model rows of the day partition its sums, so none
/// of them can exceed it (and if the user row, written first, went REAL, this guard rolls it
/// back).
const CLIENT_DAY_CONFLICT: &str = " ON CONFLICT (client_org_id, usage_date) DO UPDATE SET \
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
    AND client_daily_usage.markup_cost <= 9223372036854775807 - excluded.markup_cost";

/// The model-day row's columns (`total_requests` is the 7th).
const MODEL_DAY_INSERT: &str = "INSERT INTO client_model_daily_usage \
    (client_org_id, usage_date, model_name, total_tokens, input_tokens, output_tokens, total_requests, \
    raw_cost, markup_cost, provider, created_at, updated_at) ";

/// The model-day increment; the first non-null provider of the day is kept.
const MODEL_DAY_CONFLICT: &str = " ON CONFLICT (client_org_id, usage_date, model_name) DO UPDATE SET \
    total_tokens = client_model_daily_usage.total_tokens + excluded.total_tokens, \
    input_tokens = client_model_daily_usage.input_tokens + excluded.input_tokens, \
    output_tokens = client_model_daily_usage.output_tokens + excluded.output_tokens, \
    total_requests = client_model_daily_usage.total_requests + excluded.total_requests, \
    raw_cost = client_model_daily_usage.raw_cost + excluded.raw_cost, \
    markup_cost = client_model_daily_usage.markup_cost + excluded.markup_cost, \
    provider = COALESCE(client_model_daily_usage.provider, excluded.provider), \
    updated_at = excluded.updated_at";

/// The ledger row's columns.
const LEDGER_INSERT: &str = "INSERT INTO processed_generations \
    (client_org_id, id, generation_date, processed_at, total_cost, total_tokens, created_at, model_name) ";

// ---- One record ----

/// The user-day upsert of one request; `RETURNING total_requests` is 1 exactly for the user's
/// first request of the day. Binds: client, day, user, OpenRouter user, total, input and output
/// tokens, raw and marked-up cost, created and updated at.
#[derive(Debug, Clone, Copy)]
pub struct UpsertUserDay;

impl Statement for UpsertUserDay {
    const SQL: &'static str = {
        const P: &[&str] = &[
            USER_DAY_INSERT,
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            USER_DAY_CONFLICT,
            " RETURNING total_requests",
        ];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

/// The client-day upsert; `unique_users` grows by the last bind (1 for a user's first request
/// of the day, else 0). Affects 0 rows when the overflow guard refuses the update.
#[derive(Debug, Clone, Copy)]
pub struct UpsertClientDay;

impl Statement for UpsertClientDay {
    const SQL: &'static str = {
        const P: &[&str] = &[
            CLIENT_DAY_INSERT,
            "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            CLIENT_DAY_CONFLICT,
        ];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

/// The model-day upsert.
#[derive(Debug, Clone, Copy)]
pub struct UpsertModelDay;

impl Statement for UpsertModelDay {
    const SQL: &'static str = {
        const P: &[&str] = &[
            MODEL_DAY_INSERT,
            "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            MODEL_DAY_CONFLICT,
        ];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

/// PostgreSQL: a whole `record_usage` or `record_generation` of a client without a limit as one
/// statement (see `repo::one_trip`). Binds, in order: the client check (id, markup rate, time
/// zone); the ledger row (client, generation id, day, now, raw cost, tokens, the request's
/// instant, model) and the generation id again (NULL for `record_usage`: no ledger row); the user
/// upsert (11, as [`UpsertUserDay`]) and the generation id again (the usage is written only when
/// there is no id or its ledger row was new); the client-day upsert (9: its `unique_users` comes
/// from the user upsert's `RETURNING`); the model upsert (11); the user-month rollup (7: the
/// month start of the usage date, the OpenRouter user, total, input and output tokens, raw and
/// marked-up cost). Returns (client matched: 0 or 1, ledger rows inserted, 1); when the overflow
/// guard refuses the client-day row of a written user row, the last column divides by zero and
/// the whole statement fails.
///
/// The user-month rollup (`client_user_monthly_usage`) is written here, by CTE `um`, with the
/// same upsert as [`BatchUserMonth`], instead of by the deferred rollup trigger (a PL/pgSQL call
/// at commit cost about +35 % of this statement). CTE `cfg` turns the trigger off with
/// `set_config(…, true)`, local to the statement's own (autocommit) transaction, so the day row
/// queues no trigger event and the month is not counted twice. Two orderings matter, and both
/// follow from data dependencies, not from the order the CTEs are written in:
/// - `cfg` runs before `u` writes its row. The trigger's `WHEN` is evaluated when the row is
///   written, so the setting must already be `on` then. PostgreSQL evaluates a CTE when a query
///   referencing it pulls its rows (`cfg` calls a volatile function, so it is never inlined),
///   and `u`'s INSERT … SELECT needs `cfg`'s row, which its `WHERE cfg.x = 'on'` reads, before
///   it can produce the row it writes. (Checked on PostgreSQL 15: with `cfg` not referenced by
///   `u` the trigger fires; referenced, it does not.)
/// - `um` locks its month row after every day row of the statement, as the trigger (at commit)
///   and the batch path (at the end of its transaction) do, which rules out deadlocks between the
///   paths (migration `2026-11-29-000004_month_rollups`): `um` reads `FROM u, c, m`, and a join
///   produces its row only after each of them produced theirs, i.e. wrote and locked its row.
///
/// `days_active` grows by 1 exactly when `u` inserted the day row: a single record adds 1 request,
/// so the returned `total_requests` is 1 only for a new row (as `c`'s `unique_users`). A
/// duplicate generation (`g` inserted nothing) writes no day row, hence no month row.
#[derive(Debug, Clone, Copy)]
pub struct PgRecordOne;

impl Statement for PgRecordOne {
    const SQL: &'static str = {
        const P: &[&str] = &[
            "WITH b AS (SELECT 1 AS ok FROM client_organizations \
             WHERE id = ? AND is_active AND monthly_limit IS NULL AND markup_rate = ? AND timezone = ?), \
             cfg AS (SELECT set_config('orgusage.rollups_by_caller', 'on', true) AS x), \
             g AS (",
            LEDGER_INSERT,
            "SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM b WHERE ? IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1 AS ok), \
             u AS (",
            USER_DAY_INSERT,
            "SELECT ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ? FROM b, cfg \
             WHERE cfg.x = 'on' AND (? IS NULL OR EXISTS (SELECT 1 FROM g))",
            USER_DAY_CONFLICT,
            " RETURNING client_org_id, user_id, total_requests), c AS (",
            CLIENT_DAY_INSERT,
            "SELECT ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, CASE WHEN u.total_requests = 1 THEN 1 ELSE 0 END FROM u",
            CLIENT_DAY_CONFLICT,
            " RETURNING 1 AS ok), m AS (",
            MODEL_DAY_INSERT,
            "SELECT ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ? FROM u",
            MODEL_DAY_CONFLICT,
            " RETURNING 1 AS ok), um AS (",
            USER_MONTH_INSERT,
            "SELECT u.client_org_id, ?, u.user_id, ?, ?, ?, ?, 1, ?, ?, \
             CASE WHEN u.total_requests = 1 THEN 1 ELSE 0 END FROM u, c, m",
            USER_MONTH_CONFLICT,
            ") SELECT CAST((SELECT COUNT(*) FROM b) AS BIGINT), CAST((SELECT COUNT(*) FROM g) AS BIGINT), \
             CAST(1 / ((SELECT COUNT(*) FROM c) + 1 - (SELECT COUNT(*) FROM u)) AS BIGINT)",
        ];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

// ---- Batches (multi-row) ----

/// The batch user-day upsert. Unlike [`UpsertUserDay`] the request count is a bind (a merged
/// row stands for several records), and the key comes back with the new `total_requests`,
/// because neither engine promises `RETURNING` rows in `VALUES` order. A returned count equal to
/// the row's own count means the row was inserted: the user's first requests of the day.
#[derive(Debug, Clone, Copy)]
pub struct BatchUserDay;

impl MultiRow for BatchUserDay {
    const HEAD: &'static str = {
        const P: &[&str] = &[USER_DAY_INSERT, "VALUES "];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
    const ROW: &'static str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const TAIL: &'static str = {
        const P: &[&str] = &[
            USER_DAY_CONFLICT,
            " RETURNING client_org_id, usage_date, user_id, total_requests",
        ];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

/// The batch client-day upsert, with the overflow guard of [`UpsertClientDay`]. It returns the
/// key of every row it wrote; a merged row missing from the answer was refused by the guard.
#[derive(Debug, Clone, Copy)]
pub struct BatchClientDay;

impl MultiRow for BatchClientDay {
    const HEAD: &'static str = {
        const P: &[&str] = &[CLIENT_DAY_INSERT, "VALUES "];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
    const ROW: &'static str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const TAIL: &'static str = {
        const P: &[&str] = &[CLIENT_DAY_CONFLICT, " RETURNING client_org_id, usage_date"];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
}

/// The batch model-day upsert.
#[derive(Debug, Clone, Copy)]
pub struct BatchModelDay;

impl MultiRow for BatchModelDay {
    const HEAD: &'static str = {
        const P: &[&str] = &[MODEL_DAY_INSERT, "VALUES "];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
    const ROW: &'static str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const TAIL: &'static str = MODEL_DAY_CONFLICT;
}

/// Whether adding the incoming user-month row (`excluded`) to the stored one would leave `i64`
/// in a sum, or the stored month already did: such a month keeps its sums and is flagged
/// `overflowed`, as the rollup trigger does.
const MONTH_OVERFLOWS: &str = "(client_user_monthly_usage.overflowed \
    OR CASE WHEN excluded.total_tokens > 0 THEN client_user_monthly_usage.total_tokens > 9223372036854775807 - excluded.total_tokens ELSE FALSE END \
    OR CASE WHEN excluded.raw_cost > 0 THEN client_user_monthly_usage.raw_cost > 9223372036854775807 - excluded.raw_cost ELSE FALSE END \
    OR CASE WHEN excluded.markup_cost > 0 THEN client_user_monthly_usage.markup_cost > 9223372036854775807 - excluded.markup_cost ELSE FALSE END)";

/// The user-month row's columns (`days_active` is the last).
const USER_MONTH_INSERT: &str = "INSERT INTO client_user_monthly_usage \
    (client_org_id, month_start, user_id, openrouter_user_id, total_tokens, input_tokens, \
    output_tokens, total_requests, raw_cost, markup_cost, days_active) ";

/// The user-month increment: the sums grow unless [`MONTH_OVERFLOWS`] (then the month keeps its
/// sums and is flagged), `days_active` grows by the incoming row's, and the greatest
/// `openrouter_user_id` is kept, as in the day upsert. Shared by [`BatchUserMonth`] and
/// [`PgRecordOne`].
const USER_MONTH_CONFLICT: &str = {
    const P: &[&str] = &[
        " ON CONFLICT (client_org_id, month_start, user_id) DO UPDATE SET \
        openrouter_user_id = CASE WHEN excluded.openrouter_user_id > client_user_monthly_usage.openrouter_user_id \
        THEN excluded.openrouter_user_id ELSE client_user_monthly_usage.openrouter_user_id END, ",
        "total_tokens = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.total_tokens ELSE client_user_monthly_usage.total_tokens + excluded.total_tokens END, ",
        "input_tokens = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.input_tokens ELSE client_user_monthly_usage.input_tokens + excluded.input_tokens END, ",
        "output_tokens = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.output_tokens ELSE client_user_monthly_usage.output_tokens + excluded.output_tokens END, ",
        "total_requests = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.total_requests ELSE client_user_monthly_usage.total_requests + excluded.total_requests END, ",
        "raw_cost = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.raw_cost ELSE client_user_monthly_usage.raw_cost + excluded.raw_cost END, ",
        "markup_cost = CASE WHEN ",
        MONTH_OVERFLOWS,
        " THEN client_user_monthly_usage.markup_cost ELSE client_user_monthly_usage.markup_cost + excluded.markup_cost END, ",
        "days_active = client_user_monthly_usage.days_active + excluded.days_active, overflowed = ",
        MONTH_OVERFLOWS,
    ];
    const B: [u8; joined_len(P)] = join(P);
    text(&B)
};

/// PostgreSQL, batch path: the user-month rollup rows of a chunk, one per (client, month, user),
/// sent in key order at the end of the transaction. The chunk has turned the rollup trigger off
/// for its own transaction ([`BatchRollupsByCaller`]), so these rows carry the chunk's sums and
/// the number of user-day rows it created; the greatest `openrouter_user_id` only grows, as in
/// the day upsert. On SQLite the trigger does this.
#[derive(Debug, Clone, Copy)]
pub struct BatchUserMonth;

impl MultiRow for BatchUserMonth {
    const HEAD: &'static str = {
        const P: &[&str] = &[USER_MONTH_INSERT, "VALUES "];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
    const ROW: &'static str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const TAIL: &'static str = USER_MONTH_CONFLICT;
}

/// PostgreSQL, batch path: turns the rollup trigger off for the rest of this transaction only
/// (see [`BatchUserMonth`] and migration `2026-11-29-000004_month_rollups`).
#[derive(Debug, Clone, Copy)]
pub struct BatchRollupsByCaller;

impl Statement for BatchRollupsByCaller {
    const SQL: &'static str = "SELECT set_config('orgusage.rollups_by_caller', 'on', true)";
}

/// `get_usage_by_user`: whole months from the user-month rollups, edge months from the rollup
/// or the days (text and binds in [`crate::rollup`]).
#[derive(Debug, Clone, Copy)]
pub struct UserReport;

impl Statement for UserReport {
    const SQL: &'static str = crate::rollup::USER_REPORT;
}

/// The batch ledger insert: the ids it returns are new, the others were already billed.
#[derive(Debug, Clone, Copy)]
pub struct BatchLedger;

impl MultiRow for BatchLedger {
    const HEAD: &'static str = {
        const P: &[&str] = &[LEDGER_INSERT, "VALUES "];
        const B: [u8; joined_len(P)] = join(P);
        text(&B)
    };
    const ROW: &'static str = "(?, ?, ?, ?, ?, ?, ?, ?)";
    const TAIL: &'static str = " ON CONFLICT DO NOTHING RETURNING client_org_id, id";
}

/// The billing settings of a batch's clients, one `?` per client.
#[derive(Debug, Clone, Copy)]
pub struct BatchBilling;

impl MultiRow for BatchBilling {
    const HEAD: &'static str = "SELECT id, timezone, markup_rate, monthly_limit, is_active \
        FROM client_organizations WHERE id IN (";
    const ROW: &'static str = "?";
    const TAIL: &'static str = ")";
}

// ---- Spend guard ----

/// SQLite's reservation: insert only if the month's spend plus live reservations plus this
/// amount stays within the limit. Runs under `BEGIN IMMEDIATE`, so nothing changes between the
/// sums and the insert. Integer sums: exact.
#[derive(Debug, Clone, Copy)]
pub struct SqliteReserve;

impl Statement for SqliteReserve {
    const SQL: &'static str = "INSERT INTO spend_reservations \
        (id, client_org_id, month_start, amount, created_at, expires_at) \
        SELECT ?, ?, ?, ?, ?, ? WHERE \
        (SELECT COALESCE(SUM(markup_cost), 0) FROM client_daily_usage \
          WHERE client_org_id = ? AND usage_date BETWEEN ? AND ?) \
        + (SELECT COALESCE(SUM(amount), 0) FROM spend_reservations \
          WHERE client_org_id = ? AND month_start = ? AND expires_at > ?) \
        + ? <= ?";
}

/// PostgreSQL's authorization: one call of the `spend_control` migration's function. The
/// estimate travels as text and becomes NUMERIC: exact, never a float.
#[derive(Debug, Clone, Copy)]
pub struct PgAuthorize;

impl Statement for PgAuthorize {
    const SQL: &'static str = "SELECT status, limit_units, spent, reserved, amount, month_first \
        FROM orgusage_authorize(?, ?, CAST(? AS NUMERIC), ?, ?)";
}

/// A record settles its spend reservation (binds: reservation id, client).
#[derive(Debug, Clone, Copy)]
pub struct Settle;

impl Statement for Settle {
    const SQL: &'static str = "DELETE FROM spend_reservations WHERE id = ? AND client_org_id = ?";
}

/// PostgreSQL: the transaction-scoped month lock of a limited client (binds: client). The first
/// key, 1869768565 ("orgu"), keeps orgusage's two-key advisory locks apart from a host's
/// single-key ones; two clients whose ids hash alike merely share a lock.
#[derive(Debug, Clone, Copy)]
pub struct PgLockClientMonth;

impl Statement for PgLockClientMonth {
    const SQL: &'static str = "SELECT pg_advisory_xact_lock(1869768565, hashtext(?))";
}

/// PostgreSQL: settle a reservation and take the month lock in one statement (binds:
/// reservation id, client, client). A data-modifying CTE always runs to completion, and before
/// the lock here: the reservation row is deleted, then the month lock taken.
#[derive(Debug, Clone, Copy)]
pub struct PgSettleAndLock;

impl Statement for PgSettleAndLock {
    const SQL: &'static str = "WITH settled AS (DELETE FROM spend_reservations \
        WHERE id = ? AND client_org_id = ? RETURNING 1) \
        SELECT pg_advisory_xact_lock(1869768565, hashtext(?)) FROM (SELECT COUNT(*) FROM settled) AS s";
}

// ---- Ledger cleanup ----

/// One cleanup batch on SQLite: binds the cut-off and the batch size.
#[derive(Debug, Clone, Copy)]
pub struct SqliteDeleteBatch;

impl Statement for SqliteDeleteBatch {
    const SQL: &'static str = "DELETE FROM processed_generations WHERE rowid IN \
        (SELECT rowid FROM processed_generations WHERE processed_at < ? LIMIT ?) \
        RETURNING client_org_id, total_tokens, total_cost, \
        LENGTH(CAST(id AS BLOB)) + LENGTH(CAST(client_org_id AS BLOB)) AS payload";
}

/// One cleanup batch on PostgreSQL: binds the cut-off and the batch size. `SKIP LOCKED` lets
/// several instances clean at once without waiting on each other's batches.
#[derive(Debug, Clone, Copy)]
pub struct PostgresDeleteBatch;

impl Statement for PostgresDeleteBatch {
    const SQL: &'static str = "DELETE FROM processed_generations WHERE ctid = ANY(ARRAY( \
        SELECT ctid FROM processed_generations WHERE processed_at < ? LIMIT ? FOR UPDATE SKIP LOCKED)) \
        RETURNING client_org_id, total_tokens, total_cost, \
        CAST(octet_length(id) + octet_length(client_org_id) AS BIGINT) AS payload";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_texts_keep_their_fragments_in_order_and_their_binds() {
        assert!(UpsertUserDay::SQL.starts_with(USER_DAY_INSERT));
        assert!(
            UpsertUserDay::SQL
                .ends_with("updated_at = excluded.updated_at RETURNING total_requests")
        );
        let binds = |sql: &str| sql.matches('?').count();
        assert_eq!(binds(UpsertUserDay::SQL), 11);
        assert_eq!(binds(UpsertClientDay::SQL), 10);
        assert_eq!(binds(UpsertModelDay::SQL), 11);
        assert_eq!(binds(PgRecordOne::SQL), 51);
        let two = BatchModelDay::sql(2);
        assert_eq!(binds(&two), 24);
        assert!(two.contains("?), (?"), "{two}");
    }
}
