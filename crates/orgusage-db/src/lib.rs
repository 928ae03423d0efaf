//! Storage layer of orgusage: the diesel schema, per-backend embedded migrations, r2d2 pools with
//! the right SQLite pragmas, and one repository module per table. Only this crate and the
//! importer (`orgusage-import`, which reads the original's tables with diesel and bulk-writes
//! orgusage's through [`bulk`]) name diesel; the schema, the backend dispatch and the
//! prepared-statement machinery stay private here.
//!
//! Money is stored as BIGINT nano-units (see `orgusage_domain::money`); every write is one
//! transaction; SQLite writes take the write lock up front (`BEGIN IMMEDIATE`). The fixed SQL
//! texts of the hot paths are in [`statements`], one marker type each.
#![deny(missing_docs)]

pub mod admin;
pub mod budget;
pub mod bulk;
pub mod conn;
pub mod detect;
#[cfg(test)]
mod drift;
mod error;
mod exact;
pub mod group_commit;
mod prepared;
pub mod repo;
pub mod rollup;
mod schema;
pub mod statements;

pub(crate) use conn::{with_conn, write_tx};

/// diesel's backend types, named once for `check_for_backend` and trait bounds. With one backend
/// compiled in, both names are that backend, so the same attribute serves every feature set.
pub(crate) mod backends {
    #[cfg(feature = "postgres")]
    pub(crate) use diesel::pg::Pg;
    #[cfg(feature = "sqlite")]
    pub(crate) use diesel::sqlite::Sqlite;
    /// Stands in for PostgreSQL in a build without it.
    #[cfg(not(feature = "postgres"))]
    pub(crate) type Pg = Sqlite;
    /// Stands in for SQLite in a build without it.
    #[cfg(not(feature = "sqlite"))]
    pub(crate) type Sqlite = Pg;
}

pub use budget::{ConnectionBudget, ServerLimits, connection_budget};
pub use conn::{Backend, Database, DbConfig, SqliteSynchronous};
pub use group_commit::GroupCommit;
pub use repo::{BATCH_CHUNK, CLEANUP_BATCH, SQLITE_CLEANUP_BATCH};
pub use repo::{
    BillingCache, CleanupLogEntry, ClientRepo, GenerationRepo, MappingRepo, SettingsRepo, UsageRepo,
};
pub use repo::{ClientHeader, DayCosts, RatesRepo, RollupMismatch};
pub use repo::{DEFAULT_KEY_BATCH, KeyMaintenance, KeyMigrationReport};
pub use repo::{DEFAULT_RESERVATION_TTL, SpendRepo};
