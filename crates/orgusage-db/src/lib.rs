//! Storage layer of orgusage: the diesel schema, per-backend embedded migrations, r2d2 pools with
//! the right SQLite pragmas, and one repository module per table. Only this crate and the importer (`orgusage-import`, which reads the original's tables and bulk-writes through [`schema`]) name diesel.
//!
//! Money is stored as BIGINT nano-units (see `orgusage_domain::money`); every write is one
//! transaction; SQLite writes take the write lock up front (`BEGIN IMMEDIATE`).
#![deny(missing_docs)]

pub mod admin;
pub mod budget;
pub mod conn;
pub mod detect;
#[doc(hidden)]
pub mod error;
pub mod group_commit;
mod rawsql;
pub mod repo;
pub mod rollup;
#[allow(missing_docs)]
pub mod schema;
pub mod sql;

pub use budget::{ConnectionBudget, ServerLimits, connection_budget};
pub use conn::{Backend, Database, DbConfig, SqliteSynchronous};
pub use group_commit::GroupCommit;
pub use repo::{
    BillingCache, CleanupLogEntry, ClientRepo, GenerationRepo, MappingRepo, SettingsRepo, UsageRepo,
};
pub use repo::{ClientHeader, DayCosts, RatesRepo, RollupMismatch};
pub use repo::{DEFAULT_KEY_BATCH, KeyMaintenance, KeyMigrationReport};
pub use repo::{DEFAULT_RESERVATION_TTL, SpendRepo};
