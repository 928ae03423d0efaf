//! One repository per table (Lemmy's "one module per table" shape). Each takes the
//! [`Database`](crate::Database) and the injected clock, validates its input with the domain
//! rules, and performs every write as one transaction.

mod batch;
mod batch_plan;
pub(crate) mod cleanup;
mod clients;
pub(crate) mod generations;
mod health;
mod keys;
mod limits;
mod mappings;
mod one_trip;
mod rates;
mod reconcile;
mod reports;
pub(crate) mod reservations;
mod settings;
pub(crate) mod usage;

pub use batch::BATCH_CHUNK;
pub use cleanup::{CLEANUP_BATCH, CleanupLogEntry, SQLITE_CLEANUP_BATCH};
pub use clients::ClientRepo;
pub use generations::GenerationRepo;
pub use health::RollupMismatch;
pub use keys::{DEFAULT_KEY_BATCH, KeyMaintenance, KeyMigrationReport};
pub use mappings::MappingRepo;
pub use one_trip::BillingCache;
pub use rates::{ClientHeader, DayCosts, RatesRepo};
pub use reservations::{DEFAULT_RESERVATION_TTL, SpendRepo};
pub use settings::SettingsRepo;
pub use usage::UsageRepo;

use orgusage_domain::Clock;

/// Unix seconds of the clock's now.
pub(crate) fn unix_now(clock: &dyn Clock) -> i64 {
    clock.now().timestamp()
}
