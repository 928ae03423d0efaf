//! The report statements the report benches' floors send, shared by `reports` and
//! `report_year`: the client look-up, the stats days, by-model, and the by-user read over the
//! day rows as the library sent it before the month rollups (the floor of the rollup read is
//! the library's own text, `orgusage_db::statements::UserReport`).

/// The client look-up every report starts with.
pub const CLIENT_ZONE: &str = "SELECT client_organizations.name, client_organizations.timezone \
     FROM client_organizations \
     WHERE client_organizations.id = ? AND client_organizations.is_active = ? LIMIT ?";

/// The stats report's days.
pub const STATS_DAYS: &str = "SELECT usage_date, total_tokens, total_requests, markup_cost, \
     updated_at FROM client_daily_usage WHERE client_org_id = ? AND usage_date BETWEEN ? AND ? \
     ORDER BY usage_date DESC";

/// By-user over the user-day rows (the read before the month rollups).
pub const BY_USER_DAYS: &str = "SELECT user_id, MAX(openrouter_user_id), \
     CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(total_requests), 0) AS BIGINT), \
     CAST(COALESCE(SUM(raw_cost), 0) AS BIGINT), \
     CAST(COALESCE(SUM(markup_cost), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) \
     FROM client_user_daily_usage WHERE client_org_id = ? AND usage_date BETWEEN ? AND ? \
     GROUP BY user_id";

/// By-model over the model-day rows.
pub const BY_MODEL: &str = "SELECT model_name, MAX(provider), \
     CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(total_requests), 0) AS BIGINT), \
     CAST(COALESCE(SUM(raw_cost), 0) AS BIGINT), \
     CAST(COALESCE(SUM(markup_cost), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) \
     FROM client_model_daily_usage WHERE client_org_id = ? AND usage_date BETWEEN ? AND ? \
     GROUP BY model_name";
