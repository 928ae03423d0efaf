//! # orgusage
//!
//! Multi-tenant LLM usage tracking and billing for an OpenRouter reseller: client organizations
//! with their own API keys and markups, users mapped to clients, exact money ([`Decimal`]), days
//! and months in each client's time zone, on SQLite (embedded default) or PostgreSQL (many
//! instances).
//!
//! The API mirrors the original Python module: five handles ([`GlobalSettingsDb`],
//! [`ClientOrganizationDb`], [`UserClientMappingDb`], [`ClientUsageDb`],
//! [`ProcessedGenerationDb`]) act on the process-wide store, and the same operations exist on an
//! explicit [`Store`] for dependency injection.
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
//!
//! # The process-wide store
//!
//! The handles use the store installed by [`init`]. When `init` was never called, the first
//! handle call opens it from the environment variable `ORGUSAGE_DATABASE_URL` (any URL
//! [`Store::open`] accepts); with that unset too, every handle method answers
//! [`Error::NotInitialized`]. Exactly one store is opened per process, even when threads race;
//! a second `init`, whatever its URL, is [`Error::AlreadyInitialized`] and changes nothing.
//!
//! # Where things are
//!
//! The root holds what a host uses daily: [`init`], [`Store`], [`StoreConfig`], the five
//! handles, the forms and rows they take and return, [`UsageRecord`], [`GenerationOutcome`],
//! [`Error`], [`Result`] and [`Decimal`]. Everything else has one path, in a module:
//!
//! | module | what it holds |
//! |---|---|
//! | [`db`] | the storage side of a [`Store`]: backend, pool and durability options, the connection budget, keys at rest, and the operation sets `Store::settings`/`clients`/`mappings` return |
//! | [`usage`] | recording and reports: [`usage::Usage`] (`Store::usage`) and the report, limit and health answers |
//! | [`generations`] | the exactly-once ledger of OpenRouter generations and its cleanup |
//! | [`spend`] | the spend guard: authorize before a request, settle or release after |
//! | [`pln`] | PLN billing at the NBP rate of each cost date |
//! | [`provision`], [`reconcile`] | per-client OpenRouter keys and reconciliation with `/activity` (feature `keys`) |
//! | [`clock`], [`error`], [`bounds`], [`holidays`], [`money`], [`timezone`] | the clock, the error kinds, input bounds, the Polish calendar, money units, time zones |
//! | [`nbp`], [`openrouter`], [`keys`] | the NBP rates crate, OpenRouter generation records, the key management client |
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | the SQLite backend (bundled, no system library) |
//! | `postgres` | no | the PostgreSQL backend (links `libpq`) |
//! | `openrouter` | yes | OpenRouter generation records: [`openrouter`], [`ClientRef`], `Store::ingest_generation` |
//! | `nbp-http` | yes | `nbp::NbpClient`, the HTTP client of api.nbp.pl (ureq + rustls); without it, pass your own [`nbp::RateSource`] |
//! | `keys` | yes | per-client OpenRouter keys through the management API ([`provision`], [`keys`]) and [`reconcile`]; implies `openrouter` |
//!
//! At least one of `sqlite` and `postgres` is needed to open a store; a URL of a backend that
//! was not compiled in is a configuration error.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod global;
mod handles;
#[cfg(feature = "openrouter")]
mod ingest;
pub mod pln;
#[cfg(feature = "keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys")))]
pub mod provision;
#[cfg(feature = "keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys")))]
pub mod reconcile;
pub mod spend;
mod store;
pub mod usage;

pub use global::{global_store, init};
pub use handles::{
    ClientOrganizationDb, ClientUsageDb, GlobalSettingsDb, ProcessedGenerationDb,
    UserClientMappingDb,
};
#[cfg(feature = "openrouter")]
#[cfg_attr(docsrs, doc(cfg(feature = "openrouter")))]
pub use ingest::ClientRef;
pub use orgusage_domain::generations::GenerationOutcome;
pub use orgusage_domain::usage::UsageRecord;
pub use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Error, GlobalSettings,
    GlobalSettingsForm, Result, Secret, UserClientMapping, UserClientMappingForm,
    UserClientMappingUpdate,
};
pub use rust_decimal::Decimal;
pub use store::{Store, StoreConfig};

/// The storage side of a [`Store`]: which backend, pool and durability options
/// ([`StoreConfig`] takes them), the PostgreSQL connection budget, keys at rest, and the
/// operation sets that [`Store::settings`], [`Store::clients`] and [`Store::mappings`] return.
///
/// A host rarely names the operation sets: it calls their methods on what the accessor returns
/// (`store.clients().create_client(…)`), or uses the matching handle.
pub mod db {
    pub use orgusage_crypto::KeyRing;
    pub use orgusage_db::conn::IDLE_CHECK_AFTER;
    pub use orgusage_db::{
        Backend, ClientRepo, ConnectionBudget, DEFAULT_KEY_BATCH, Database, KeyMaintenance,
        KeyMigrationReport, MappingRepo, ServerLimits, SettingsRepo, SqliteSynchronous,
        connection_budget,
    };
}

/// The exactly-once ledger of OpenRouter generations ([`Store::generations`],
/// [`ProcessedGenerationDb`]): its rows, statistics and the
/// retention cleanup with its audit log.
pub mod generations {
    pub use orgusage_db::{CleanupLogEntry, GenerationRepo};
    pub use orgusage_domain::generations::{
        CleanupBreakdown, CleanupStatsResult, DateRange, ProcessedGenerationInfo,
        ProcessedGenerationStats,
    };
}

/// The error kinds behind [`Error`]'s variants.
pub mod error {
    pub use orgusage_domain::error::BoxError;
    pub use orgusage_domain::{DatabaseErrorKind, EncryptionErrorKind};
}

pub use orgusage_domain::{bounds, clock, holidays, money, timezone};

/// OpenRouter key management and `/activity` (feature `keys`).
#[cfg(feature = "keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys")))]
pub use orgusage_keys as keys;
/// The NBP rates crate: [`RateSource`](nbp::RateSource), the rule functions,
/// [`StaticRates`](nbp::StaticRates), [`CachedSource`](nbp::CachedSource) and, with the
/// `nbp-http` feature, `NbpClient`.
pub use orgusage_nbp as nbp;
/// OpenRouter generation records: parsing, mapping and the fetcher (feature `openrouter`).
#[cfg(feature = "openrouter")]
#[cfg_attr(docsrs, doc(cfg(feature = "openrouter")))]
pub use orgusage_openrouter as openrouter;
