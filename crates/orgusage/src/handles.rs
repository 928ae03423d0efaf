//! The five singleton-style handles of the original module, acting on the process-wide store:
//! the one installed by [`init`](crate::init), else the one opened from `ORGUSAGE_DATABASE_URL`
//! on first use (see [`global_store`](crate::global_store)). With neither, every method answers
//! [`Error::NotInitialized`].

use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Error, GlobalSettings,
    GlobalSettingsForm, Result, Secret, UserClientMapping, UserClientMappingForm,
    UserClientMappingUpdate,
};

use chrono::NaiveDate;
use orgusage_domain::usage::{
    ClientBillingResponse, ClientUsageStatsResponse, ModelUsage, MonthlyLimitStatus, RecordedUsage,
    UsageRecord, UserUsage,
};

use orgusage_domain::health::{
    DoubleCountingValidation, MonthHealthReport, RolloverHealth, RolloverResult,
};

use orgusage_domain::generations::{
    CleanupStatsResult, GenerationOutcome, ProcessedGenerationStats,
};

use crate::global::global_store as store;

/// `GlobalSettingsDB` of the original: the single settings row.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalSettingsDb;

impl GlobalSettingsDb {
    /// The settings row, or `None` if it was never created.
    pub fn get_settings(&self) -> Result<Option<GlobalSettings>> {
        store()?.settings().get_settings()
    }

    /// Creates or updates the row; omitting the provisioning key keeps the stored one.
    pub fn create_or_update_settings(
        &self,
        settings_form: &GlobalSettingsForm,
    ) -> Result<GlobalSettings> {
        store()?.settings().create_or_update_settings(settings_form)
    }
}

/// `ClientOrganizationDB` of the original: the paying client organizations.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOrganizationDb;

impl ClientOrganizationDb {
    /// Creates an active client with its own OpenRouter key; a reused key is [`Error::Conflict`].
    pub fn create_client(
        &self,
        client_form: &ClientOrganizationForm,
        api_key: &str,
        key_hash: Option<&str>,
    ) -> Result<ClientOrganization> {
        store()?
            .clients()
            .create_client(client_form, &Secret::new(api_key), key_hash)
    }

    /// The active client with this id.
    pub fn get_client_by_id(&self, client_id: &str) -> Result<Option<ClientOrganization>> {
        store()?.clients().get_client_by_id(client_id)
    }

    /// The active client owning this OpenRouter API key.
    pub fn get_client_by_api_key(&self, api_key: &str) -> Result<Option<ClientOrganization>> {
        store()?.clients().get_client_by_api_key(api_key)
    }

    /// Every active client, oldest first.
    pub fn get_all_active_clients(&self) -> Result<Vec<ClientOrganization>> {
        store()?.clients().get_all_active_clients()
    }

    /// Applies a typed update to an active client; `Ok(None)` if there is none.
    pub fn update_client(
        &self,
        client_id: &str,
        updates: &ClientOrganizationUpdate,
    ) -> Result<Option<ClientOrganization>> {
        store()?.clients().update_client(client_id, updates)
    }

    /// Soft-deletes a client; `false` if it does not exist.
    pub fn deactivate_client(&self, client_id: &str) -> Result<bool> {
        store()?.clients().deactivate_client(client_id)
    }
}

/// `UserClientMappingDB` of the original: which client pays for which user.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserClientMappingDb;

impl UserClientMappingDb {
    /// Maps a user to a client (reactivating a previous mapping of the same pair).
    pub fn create_mapping(
        &self,
        mapping_form: &UserClientMappingForm,
    ) -> Result<UserClientMapping> {
        store()?.mappings().create_mapping(mapping_form)
    }

    /// The user's active mapping.
    pub fn get_mapping_by_user_id(&self, user_id: &str) -> Result<Option<UserClientMapping>> {
        store()?.mappings().get_mapping_by_user_id(user_id)
    }

    /// The client's active mappings, by user id.
    pub fn get_mappings_by_client_id(&self, client_org_id: &str) -> Result<Vec<UserClientMapping>> {
        store()?.mappings().get_mappings_by_client_id(client_org_id)
    }

    /// Deactivates the user's active mapping; `false` if there is none.
    pub fn deactivate_mapping(&self, user_id: &str) -> Result<bool> {
        store()?.mappings().deactivate_mapping(user_id)
    }

    /// Updates the user's active mapping; `false` if there is none.
    pub fn update_mapping(&self, user_id: &str, updates: &UserClientMappingUpdate) -> Result<bool> {
        store()?.mappings().update_mapping(user_id, updates)
    }
}

#[allow(dead_code)]
fn _assert_error_is_send_sync() {
    fn is<T: Send + Sync + 'static>() {}
    is::<Error>();
}

/// The answer of a batch method when the store cannot be had: `n` items, each the error of
/// opening it. [`Error`] is not `Clone`; the first item carries it as it is, the others a copy
/// of its kind and message.
fn every_item<T>(first: Error, n: usize) -> Vec<Result<T>> {
    let copy = || match &first {
        Error::NotInitialized => Error::NotInitialized,
        Error::Database { kind, source } => Error::Database {
            kind: *kind,
            source: source.to_string().into(),
        },
        other => Error::Database {
            kind: orgusage_domain::DatabaseErrorKind::Configuration,
            source: other.to_string().into(),
        },
    };
    let mut items: Vec<Result<T>> = (1..n).map(|_| Err(copy())).collect();
    if n > 0 {
        items.insert(0, Err(first));
    }
    items
}

/// `ClientUsageDB` of the original: usage recording and reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientUsageDb;

impl ClientUsageDb {
    /// Records one request (see [`Usage::record_usage`](crate::usage::Usage::record_usage)).
    pub fn record_usage(&self, record: &UsageRecord) -> Result<RecordedUsage> {
        store()?.usage().record_usage(record)
    }

    /// Records an OpenRouter generation exactly once (ledger row + usage in one transaction).
    pub fn record_generation(
        &self,
        generation_id: &str,
        record: &UsageRecord,
    ) -> Result<GenerationOutcome> {
        store()?.usage().record_generation(generation_id, record)
    }

    /// Records many requests (see [`Usage::record_usage_batch`](crate::usage::Usage::record_usage_batch)).
    /// When the store cannot be had, every item carries that error (`NotInitialized` before
    /// `init` without `ORGUSAGE_DATABASE_URL`).
    pub fn record_usage_batch(&self, records: &[UsageRecord]) -> Vec<Result<RecordedUsage>> {
        match store() {
            Ok(s) => s.usage().record_usage_batch(records),
            Err(e) => every_item(e, records.len()),
        }
    }

    /// Records many generations exactly once (see
    /// [`Usage::record_generations`](crate::usage::Usage::record_generations)). When the store
    /// cannot be had, every item carries that error.
    pub fn record_generations(
        &self,
        generations: &[(String, UsageRecord)],
    ) -> Vec<Result<GenerationOutcome>> {
        match store() {
            Ok(s) => s.usage().record_generations(generations),
            Err(e) => every_item(e, generations.len()),
        }
    }

    /// Records an OpenRouter generation record for a client identified by key or id
    /// (see [`Store::ingest_generation`](crate::Store::ingest_generation)).
    #[cfg(feature = "openrouter")]
    pub fn ingest_generation(
        &self,
        client: crate::ClientRef<'_>,
        generation: &orgusage_openrouter::Generation,
    ) -> Result<GenerationOutcome> {
        store()?.ingest_generation(client, generation)
    }

    /// The stored client-day rows of an inclusive range, oldest first.
    pub fn get_daily_usage(
        &self,
        client_org_id: &str,
        start_date: NaiveDate,
        end_date: NaiveDate,
    ) -> Result<Vec<orgusage_domain::usage::ClientDailyUsage>> {
        store()?
            .usage()
            .get_daily_usage(client_org_id, start_date, end_date)
    }

    /// The blocking twin of [`ClientUsageDb::get_usage_stats_by_client`].
    pub fn get_usage_stats_by_client_blocking(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        store()?
            .usage()
            .get_usage_stats_by_client_blocking(client_org_id, use_client_timezone)
    }

    /// Stats of one client; async, never blocks the caller's executor.
    pub async fn get_usage_stats_by_client(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        store()?
            .usage()
            .get_usage_stats_by_client(client_org_id, use_client_timezone)
            .await
    }

    /// Per-user totals over an inclusive range (default: the client's month to date).
    pub fn get_usage_by_user(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<UserUsage>> {
        store()?
            .usage()
            .get_usage_by_user(client_org_id, start_date, end_date)
    }

    /// Per-model totals over an inclusive range (default: the client's month to date).
    pub fn get_usage_by_model(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ModelUsage>> {
        store()?
            .usage()
            .get_usage_by_model(client_org_id, start_date, end_date)
    }

    /// Billing rows of all active clients with usage in the range.
    pub fn get_all_clients_usage_stats(
        &self,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ClientBillingResponse>> {
        store()?
            .usage()
            .get_all_clients_usage_stats(start_date, end_date)
    }

    /// Spend of the client's current local month against its monthly limit.
    pub fn get_monthly_limit_status(&self, client_org_id: &str) -> Result<MonthlyLimitStatus> {
        store()?.usage().get_monthly_limit_status(client_org_id)
    }

    /// The original's enhanced stats (identical to the plain stats).
    pub async fn get_enhanced_usage_stats_by_client(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
        prevent_double_counting: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        store()?
            .usage()
            .get_enhanced_usage_stats_by_client(
                client_org_id,
                use_client_timezone,
                prevent_double_counting,
            )
            .await
    }

    /// Checks one day's three levels agree.
    pub fn validate_no_double_counting(
        &self,
        client_org_id: &str,
        date: NaiveDate,
    ) -> Result<DoubleCountingValidation> {
        store()?
            .usage()
            .validate_no_double_counting(client_org_id, date)
    }

    /// Read-only month health report.
    pub fn create_month_total_health_check(
        &self,
        client_org_id: &str,
    ) -> Result<MonthHealthReport> {
        store()?
            .usage()
            .create_month_total_health_check(client_org_id)
    }

    /// Compatibility no-op (no live counters).
    pub fn perform_atomic_daily_rollover_all_clients(&self) -> Result<RolloverResult> {
        store()?.usage().perform_atomic_daily_rollover_all_clients()
    }

    /// Compatibility no-op for one client.
    pub fn perform_timezone_aware_rollover_by_client(
        &self,
        client_org_id: &str,
    ) -> Result<RolloverResult> {
        store()?
            .usage()
            .perform_timezone_aware_rollover_by_client(client_org_id)
    }

    /// Always healthy (no live counters).
    pub fn get_rollover_health_status(&self) -> Result<RolloverHealth> {
        store()?.usage().get_rollover_health_status()
    }
}

/// `ProcessedGenerationDB` of the original: the exactly-once ledger of OpenRouter generations.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessedGenerationDb;

impl ProcessedGenerationDb {
    /// True if the client already has this generation; a database error is an error, never false.
    pub fn is_generation_processed(
        &self,
        generation_id: &str,
        client_org_id: &str,
    ) -> Result<bool> {
        store()?
            .generations()
            .is_generation_processed(generation_id, client_org_id)
    }

    /// Marks a generation without recording usage; `Ok(false)` if it was already marked.
    /// Prefer [`ClientUsageDb::record_generation`], which does both atomically.
    pub fn mark_generation_processed(
        &self,
        generation_id: &str,
        client_org_id: &str,
        generation_date: NaiveDate,
        total_cost: rust_decimal::Decimal,
        total_tokens: i64,
    ) -> Result<bool> {
        store()?.generations().mark_generation_processed(
            generation_id,
            client_org_id,
            generation_date,
            total_cost,
            total_tokens,
        )
    }

    /// The ledger row of this client's generation, if any.
    pub fn get_processed_generation(
        &self,
        generation_id: &str,
        client_org_id: &str,
    ) -> Result<Option<orgusage_domain::generations::ProcessedGenerationInfo>> {
        store()?
            .generations()
            .get_processed_generation(generation_id, client_org_id)
    }

    /// The most recent cleanup audit rows, newest first.
    pub fn get_cleanup_log(&self, limit: i64) -> Result<Vec<orgusage_db::CleanupLogEntry>> {
        store()?.generations().get_cleanup_log(limit)
    }

    /// Deletes ledger rows strictly older than `days_to_keep` days (`None` = 60), in batches.
    pub fn cleanup_old_processed_generations(
        &self,
        days_to_keep: Option<u32>,
    ) -> Result<CleanupStatsResult> {
        store()?
            .generations()
            .cleanup_old_processed_generations(days_to_keep)
    }

    /// Ledger totals of a client within an optional inclusive date range.
    pub fn get_processed_generations_stats(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<ProcessedGenerationStats> {
        store()?
            .generations()
            .get_processed_generations_stats(client_org_id, start_date, end_date)
    }
}
