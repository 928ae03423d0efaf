//! A fingerprint of every table, read with raw SQL on its own connection, to prove that a
//! rejected call wrote nothing: row counts plus checksums of every number and of the lengths of
//! the texts a write could touch. Key columns are left out on purpose (their storage form is
//! not this test's business).

use diesel::Connection;
use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;

/// Modulus of the checksums: keeps `SUM` inside `i64` even over saturated rows.
const P: &str = "1000000007";

/// (table, expressions summed modulo `P`).
const TABLES: &[(&str, &[&str])] = &[
    (
        "global_settings",
        &[
            "default_markup_rate",
            "updated_at",
            "LENGTH(billing_currency)",
        ],
    ),
    (
        "client_organizations",
        &[
            "markup_rate",
            "COALESCE(monthly_limit, 0)",
            "LENGTH(name)",
            "LENGTH(COALESCE(billing_email, ''))",
            "LENGTH(timezone)",
            "LENGTH(COALESCE(openrouter_key_hash, ''))",
            "CASE WHEN is_active THEN 1 ELSE 0 END",
            "updated_at",
        ],
    ),
    (
        "user_client_mapping",
        &[
            "LENGTH(openrouter_user_id)",
            "LENGTH(client_org_id)",
            "CASE WHEN is_active THEN 1 ELSE 0 END",
            "updated_at",
        ],
    ),
    (
        "client_daily_usage",
        &[
            "total_tokens",
            "input_tokens",
            "output_tokens",
            "total_requests",
            "raw_cost",
            "markup_cost",
            "unique_users",
            "updated_at",
        ],
    ),
    (
        "client_user_daily_usage",
        &[
            "total_tokens",
            "input_tokens",
            "output_tokens",
            "total_requests",
            "raw_cost",
            "markup_cost",
            "LENGTH(openrouter_user_id)",
            "updated_at",
        ],
    ),
    (
        "client_model_daily_usage",
        &[
            "total_tokens",
            "input_tokens",
            "output_tokens",
            "total_requests",
            "raw_cost",
            "markup_cost",
            "LENGTH(COALESCE(provider, ''))",
            "updated_at",
        ],
    ),
    (
        "processed_generations",
        &["total_cost", "total_tokens", "LENGTH(id)", "processed_at"],
    ),
    ("processed_generation_cleanup_log", &[]),
    ("daily_exchange_rates", &[]),
];

/// A raw connection to the test database.
pub enum Raw {
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::SqliteConnection),
    #[cfg(feature = "postgres")]
    Pg(diesel::PgConnection),
}

impl Raw {
    /// Opens a second, raw connection to the test store's database.
    pub fn open(t: &orgusage_testkit::TestStore) -> Self {
        match t.backend() {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                Self::Sqlite(diesel::SqliteConnection::establish(&t.url).expect("raw sqlite"))
            }
            #[cfg(feature = "postgres")]
            "postgres" => Self::Pg(diesel::PgConnection::establish(&t.url).expect("raw postgres")),
            other => panic!("no raw connection for {other}"),
        }
    }

    /// One BIGINT scalar.
    pub fn scalar(&mut self, sql: &str) -> i64 {
        let q = diesel::select(diesel::dsl::sql::<BigInt>(sql));
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(c) => q.get_result(c),
            #[cfg(feature = "postgres")]
            Self::Pg(c) => q.get_result(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The fingerprint of every table: (label, value) pairs.
    pub fn fingerprint(&mut self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for (table, exprs) in TABLES {
            let count = format!("(SELECT CAST(COUNT(*) AS BIGINT) FROM {table})");
            out.push((format!("{table}.count"), self.scalar(&count)));
            for e in *exprs {
                let sum =
                    format!("(SELECT CAST(COALESCE(SUM(({e}) % {P}), 0) AS BIGINT) FROM {table})");
                out.push((format!("{table}.{e}"), self.scalar(&sum)));
            }
        }
        out
    }
}
