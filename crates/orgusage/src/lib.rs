//! # orgusage
//!
//! Multi-tenant LLM usage tracking and billing for an OpenRouter reseller: client organizations
//! with their own API keys and markups, users mapped to clients, exact money (`Decimal`), days and
//! months in each client's time zone, on SQLite (embedded default) or PostgreSQL (many instances).
//!
//! The API mirrors the original Python module: five handles ([`GlobalSettingsDb`],
//! [`ClientOrganizationDb`], [`UserClientMappingDb`], …) act on the store installed by [`init`],
//! and the same operations exist on an explicit [`Store`] for dependency injection.
//!
//! ```
//! use orgusage::{ClientOrganizationForm, Store, UserClientMappingForm};
//!
//! let store = Store::open(":memory:")?;
//! let acme = store.clients().create_client(&ClientOrganizationForm::new("Acme Sp. z o.o."), &"sk-or-v1-A".into(), None)?;
//! store.mappings().create_mapping(&UserClientMappingForm {
//!     user_id: "u1".into(),
//!     client_org_id: acme.id.clone(),
//!     openrouter_user_id: "or-u1".into(),
//! })?;
//! assert_eq!(store.mappings().get_mapping_by_user_id("u1")?.unwrap().client_org_id, acme.id);
//! # Ok::<(), orgusage::Error>(())
//! ```
#![deny(missing_docs)]

mod global;
mod handles;
#[cfg(feature = "openrouter")]
mod ingest;
mod pln;
#[cfg(feature = "keys")]
pub mod provision;
#[cfg(feature = "keys")]
pub mod reconcile;
pub mod spend;
mod store;
mod usage;

pub use global::{global_store, init};
pub use handles::{
    ClientOrganizationDb, ClientUsageDb, GlobalSettingsDb, ProcessedGenerationDb,
    UserClientMappingDb,
};
#[cfg(feature = "openrouter")]
pub use ingest::ClientRef;
pub use orgusage_db::sql::BATCH_CHUNK;
pub use orgusage_db::{
    Backend, CleanupLogEntry, ConnectionBudget, Database, GenerationRepo, RollupMismatch,
    ServerLimits, SqliteSynchronous, connection_budget,
};
pub use orgusage_domain::generations::{
    CleanupBreakdown, CleanupStatsResult, DateRange, GenerationOutcome, ProcessedGenerationInfo,
    ProcessedGenerationStats,
};
pub use orgusage_domain::health::{
    DayTotals, DoubleCountingValidation, HealthCheck, MonthHealthReport, RolloverHealth,
    RolloverResult,
};
pub use orgusage_domain::pln::{
    ClientBillingPln, ClientUsageStatsPln, DailyRate, DayPln, ModelUsagePln, MonthlyStatement,
    PlnReport, PlnSum, RateRule, StatementLine, StatementTotals, UserUsagePln, convert_to_pln,
    display_rate, round_pln,
};
pub use orgusage_domain::usage::{
    CatalogueModel, ClientBillingResponse, ClientDailyUsage, ClientUsageStatsResponse,
    DailyHistoryItem, ModelUsage, MonthUsage, MonthlyLimitStatus, RecordedUsage, TodayUsage,
    UsageRecord, UserUsage,
};
pub use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Clock, DatabaseErrorKind,
    Error, GlobalSettings, GlobalSettingsForm, ManualClock, Result, Secret, SystemClock,
    UserClientMapping, UserClientMappingForm, UserClientMappingUpdate, bounds, clock, holidays,
    money, timezone,
};
/// OpenRouter key management and `/activity` (feature `keys`).
#[cfg(feature = "keys")]
pub use orgusage_keys as keys;
/// The NBP rates crate: [`RateSource`], the rule functions, [`StaticRates`], [`CachedSource`]
/// and, with the `nbp-http` feature, `NbpClient`.
pub use orgusage_nbp as nbp;
pub use orgusage_nbp::{CachedSource, MidRate, NbpError, RateSource, StaticRates};
#[cfg(feature = "nbp-http")]
pub use orgusage_nbp::{NbpClient, NbpConfig};
/// OpenRouter generation records: parsing, mapping and the fetcher (feature `openrouter`).
#[cfg(feature = "openrouter")]
pub use orgusage_openrouter as openrouter;
pub use pln::{PlnBilling, PlnConfig};
pub use rust_decimal::Decimal;
pub use store::{Store, StoreConfig};
// Keys at rest (docs/operations.md): the key ring, the typed failure kinds, the migration report.
pub use orgusage_crypto::KeyRing;
pub use orgusage_db::KeyMigrationReport;
pub use orgusage_domain::EncryptionErrorKind;
pub use usage::Usage;
