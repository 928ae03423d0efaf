//! Usage recording and reports: [`Usage`], the `ClientUsageDb` operations of an explicit
//! [`Store`] (see [`Store::usage`]), and the answers of its methods.

use chrono::NaiveDate;
use orgusage_db::UsageRepo;
use orgusage_domain::Result;
use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::usage::UsageRecord;

pub use orgusage_db::{BATCH_CHUNK, RollupMismatch};
pub use orgusage_domain::health::{
    DayTotals, DoubleCountingValidation, HealthCheck, MonthHealthReport, RolloverHealth,
    RolloverResult,
};
pub use orgusage_domain::usage::{
    CatalogueModel, ClientBillingResponse, ClientDailyUsage, ClientUsageStatsResponse,
    DailyHistoryItem, ModelUsage, MonthUsage, MonthlyLimitStatus, RecordedUsage, TodayUsage,
    UserUsage,
};

use crate::store::Store;

/// Usage recording and reports of one [`Store`] (see [`Store::usage`]).
#[derive(Debug, Clone)]
pub struct Usage {
    pub(crate) store: Store,
}

impl Usage {
    fn repo(&self) -> UsageRepo<'_> {
        self.store.usage_repo()
    }

    /// Records one request on the client's day (see [`UsageRecord`]): one transaction, atomic
    /// increments of the client, user and model rows. Tells whether the monthly limit was crossed.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, Store, UsageRecord};
    /// use rust_decimal_macros::dec;
    ///
    /// let store = Store::open(":memory:")?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let rec = UsageRecord::new(&c.id, "u1", "or-u1", "anthropic/claude-sonnet-4").tokens(1000, 500).raw_cost(dec!(0.01));
    /// let done = store.usage().record_usage(&rec)?;
    /// assert_eq!(done.markup_cost, dec!(0.013));
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn record_usage(&self, record: &UsageRecord) -> Result<RecordedUsage> {
        match self.store.group() {
            Some(group) => group.record_usage(&self.repo(), record),
            None => self.repo().record_usage(record),
        }
    }

    /// Records an OpenRouter generation exactly once per (client, generation id): the ledger
    /// row and the usage are written in one transaction, or neither is. A duplicate is
    /// `Ok(GenerationOutcome::Duplicate)`.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, GenerationOutcome, Store, UsageRecord};
    /// use rust_decimal_macros::dec;
    ///
    /// let store = Store::open(":memory:")?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let rec = UsageRecord::new(&c.id, "u1", "or-u1", "openai/gpt-4.1").tokens(10, 5).raw_cost(dec!(0.002));
    /// assert!(store.usage().record_generation("gen-1", &rec)?.is_recorded());
    /// assert_eq!(store.usage().record_generation("gen-1", &rec)?, GenerationOutcome::Duplicate);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn record_generation(
        &self,
        generation_id: &str,
        record: &UsageRecord,
    ) -> Result<GenerationOutcome> {
        match self.store.group() {
            Some(group) => group.record(&self.repo(), Some(generation_id), record),
            None => self.repo().record_generation(generation_id, record),
        }
    }

    /// Records many requests: one result per record, in input order.
    ///
    /// An invalid record (bad input, unknown or inactive client) gets its own error and writes
    /// nothing. The valid records are committed together, in transactions of
    /// [`BATCH_CHUNK`] records; a database error fails its chunk, every record
    /// of which then carries that error and none of which is written. Records sharing a
    /// client-day, user-day or model-day row are merged in memory and the row is written once.
    /// `limit_crossed` is set on exactly one record of a client's booked month: the first, in
    /// batch order, that reaches the limit.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, Error, Store, UsageRecord};
    /// use rust_decimal_macros::dec;
    ///
    /// let store = Store::open(":memory:")?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let rec = |user: &str| UsageRecord::new(&c.id, user, "or", "openai/gpt-4.1").tokens(10, 5).raw_cost(dec!(0.01));
    /// let done = store.usage().record_usage_batch(&[rec("u1"), rec("u2"), rec("u1").tokens(-1, 0)]);
    /// assert_eq!(done[0].as_ref().unwrap().markup_cost, dec!(0.013));
    /// assert!(done[1].is_ok());
    /// assert!(matches!(done[2], Err(Error::InvalidInput { .. }))); // nothing of it written
    /// let stats = store.usage().get_usage_stats_by_client_blocking(&c.id, None)?;
    /// assert_eq!((stats.this_month.requests, stats.this_month.tokens), (2, 30));
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn record_usage_batch(&self, records: &[UsageRecord]) -> Vec<Result<RecordedUsage>> {
        self.repo().record_usage_batch(records)
    }

    /// Records many OpenRouter generations exactly once per (client, generation id): one
    /// outcome per item, in input order, with the guarantees of [`Usage::record_usage_batch`].
    /// An id repeated inside the batch is billed once (its first valid occurrence) and the
    /// repeats are `Duplicate`, like ids already in the ledger.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, GenerationOutcome, Store, UsageRecord};
    /// use rust_decimal_macros::dec;
    ///
    /// let store = Store::open(":memory:")?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let rec = UsageRecord::new(&c.id, "u1", "or-u1", "openai/gpt-4.1").tokens(10, 5).raw_cost(dec!(0.002));
    /// let batch = vec![("gen-1".to_string(), rec.clone()), ("gen-1".to_string(), rec.clone())];
    /// let done = store.usage().record_generations(&batch);
    /// assert!(done[0].as_ref().unwrap().is_recorded());
    /// assert_eq!(*done[1].as_ref().unwrap(), GenerationOutcome::Duplicate);
    /// assert_eq!(store.usage().record_generations(&batch[..1])[0].as_ref().unwrap(), &GenerationOutcome::Duplicate);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn record_generations(
        &self,
        generations: &[(String, UsageRecord)],
    ) -> Vec<Result<GenerationOutcome>> {
        self.repo().record_generations(generations)
    }

    /// Stats of one client (`today`, `this_month`, `daily_history`, `client_org_name`).
    ///
    /// Runs the blocking query on `blocking`'s thread pool, so it never blocks the caller's
    /// executor, on any runtime or none. `use_client_timezone: None` means `true` (the original
    /// default); `false` computes days in UTC.
    pub async fn get_usage_stats_by_client(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        let this = self.clone();
        let client = client_org_id.to_string();
        blocking::unblock(move || {
            this.get_usage_stats_by_client_blocking(&client, use_client_timezone)
        })
        .await
    }

    /// The blocking twin of [`Usage::get_usage_stats_by_client`].
    pub fn get_usage_stats_by_client_blocking(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        self.repo()
            .get_usage_stats_by_client(client_org_id, use_client_timezone.unwrap_or(true))
    }

    /// Per-user totals; the range is inclusive and defaults to the client's month to date.
    pub fn get_usage_by_user(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<UserUsage>> {
        self.repo()
            .get_usage_by_user(client_org_id, start_date, end_date)
    }

    /// Per-model totals; the range is inclusive and defaults to the client's month to date.
    pub fn get_usage_by_model(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ModelUsage>> {
        self.repo()
            .get_usage_by_model(client_org_id, start_date, end_date)
    }

    /// Billing rows of every active client with usage in the range (default: each client's own
    /// month to date).
    pub fn get_all_clients_usage_stats(
        &self,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<Vec<ClientBillingResponse>> {
        self.repo()
            .get_all_clients_usage_stats(start_date, end_date)
    }

    /// Spend of the client's current local month against its `monthly_limit`.
    pub fn get_monthly_limit_status(&self, client_org_id: &str) -> Result<MonthlyLimitStatus> {
        self.repo().get_monthly_limit_status(client_org_id)
    }

    /// The stored client-day rows of an inclusive range, oldest first.
    pub fn get_daily_usage(
        &self,
        client_org_id: &str,
        start_date: NaiveDate,
        end_date: NaiveDate,
    ) -> Result<Vec<ClientDailyUsage>> {
        self.repo()
            .get_daily_usage(client_org_id, start_date, end_date)
    }

    /// Checks that the client row of `date` equals the sums of its user and model rows.
    pub fn validate_no_double_counting(
        &self,
        client_org_id: &str,
        date: NaiveDate,
    ) -> Result<DoubleCountingValidation> {
        self.repo().validate_no_double_counting(client_org_id, date)
    }

    /// The original's enhanced stats; identical to the plain stats (one source of truth per day).
    pub async fn get_enhanced_usage_stats_by_client(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
        prevent_double_counting: Option<bool>,
    ) -> Result<ClientUsageStatsResponse> {
        let this = self.clone();
        let client = client_org_id.to_string();
        blocking::unblock(move || {
            this.repo().get_enhanced_usage_stats_by_client(
                &client,
                use_client_timezone.unwrap_or(true),
                prevent_double_counting.unwrap_or(true),
            )
        })
        .await
    }

    /// The user-months between `from`'s and `to`'s months whose month rollup differs from the
    /// sums of their day rows; empty when the rollups are exact (see
    /// `orgusage_db::rollup`). Read-only.
    pub fn validate_month_rollups(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RollupMismatch>> {
        self.repo().validate_month_rollups(client_org_id, from, to)
    }

    /// Read-only month health report (`overall_status`, `issues_found`, `recommendations`).
    pub fn create_month_total_health_check(
        &self,
        client_org_id: &str,
    ) -> Result<MonthHealthReport> {
        self.repo().create_month_total_health_check(client_org_id)
    }

    /// Compatibility no-op: there are no live counters to roll over.
    pub fn perform_atomic_daily_rollover_all_clients(&self) -> Result<RolloverResult> {
        self.repo().perform_atomic_daily_rollover_all_clients()
    }

    /// Compatibility no-op for one client; reports the client's local today.
    pub fn perform_timezone_aware_rollover_by_client(
        &self,
        client_org_id: &str,
    ) -> Result<RolloverResult> {
        self.repo()
            .perform_timezone_aware_rollover_by_client(client_org_id)
    }

    /// Always healthy: nothing can go stale.
    pub fn get_rollover_health_status(&self) -> Result<RolloverHealth> {
        self.repo().get_rollover_health_status()
    }
}
