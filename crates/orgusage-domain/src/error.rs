//! The one error type of orgusage.
//!
//! Every fallible call returns [`Result<T>`]. "Not found" is `Ok(None)` / `Ok(false)`, never an error;
//! a database failure is always [`Error::Database`], never `None` or `false` (the original's bug B35).
//! Messages never contain API keys or the provisioning key.

use std::fmt;

/// Result alias used across orgusage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in orgusage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument or form field was rejected; nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field or argument.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A time-zone name that is not a canonical IANA name (`Area/City` or `UTC`).
    #[error("invalid timezone: {0:?} is not a canonical IANA time-zone name")]
    InvalidTimezone(String),
    /// A computation left the range of the storage unit (about 9.2 billion USD in nano-USD).
    #[error("numeric overflow: {0}")]
    Overflow(String),
    /// A uniqueness rule was violated, e.g. the API key already belongs to another client.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The referenced entity does not exist or is inactive, where the operation needs it.
    #[error("{entity} not found: {id}")]
    NotFound {
        /// What was looked up (e.g. `client`).
        entity: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// `orgusage::init` has not been called yet.
    #[error("orgusage is not initialized: call orgusage::init(database_url) first")]
    NotInitialized,
    /// `orgusage::init` was called a second time.
    #[error("orgusage is already initialized")]
    AlreadyInitialized,
    /// No exchange rate could be obtained for a cost date: the rate source (NBP) failed or has
    /// no table in the window the rule allows, no rate is stored, and no fallback rate is
    /// configured. A PLN figure is never computed from an invented rate instead.
    #[error("exchange rate unavailable for {date}: {reason}")]
    RateUnavailable {
        /// The cost date the rate was needed for.
        date: chrono::NaiveDate,
        /// What was tried and why it failed (including whether the holiday calendar expected
        /// NBP to have no table).
        reason: String,
    },
    /// The database holds the original system's (mAI, `organization_usage.py`) tables under
    /// orgusage's table names, recognised by their columns. orgusage refuses to migrate, alter or
    /// write them: run the importer (`orgusage-import`, `cargo run --example import_mai`) into a
    /// separate database, or in place, which first renames the original tables. See
    /// `docs/migrating.md`.
    #[error(
        "the database holds the original mAI tables ({found}); orgusage did not migrate or write \
         anything. Import them first: cargo run --example import_mai -- <this-url> <new-url> \
         (see docs/migrating.md)"
    )]
    ForeignSchema {
        /// What was found, e.g. `client_daily_usage.id, client_live_counters`.
        found: String,
    },
    /// The database could not be reached or answered with an error.
    #[error("database error ({kind}): {source}")]
    Database {
        /// Which part of the database access failed.
        kind: DatabaseErrorKind,
        /// The underlying driver, pool or migration error.
        #[source]
        source: BoxError,
    },
}

/// A boxed error from a lower layer (diesel, r2d2, migrations).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The part of database access that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseErrorKind {
    /// Connecting, or taking a connection from the pool.
    Connection,
    /// Running the embedded migrations.
    Migration,
    /// A query or a transaction.
    Query,
    /// The URL or configuration is not usable (e.g. a backend feature that is not compiled in).
    Configuration,
}

impl fmt::Display for DatabaseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connection => "connection",
            Self::Migration => "migration",
            Self::Query => "query",
            Self::Configuration => "configuration",
        })
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Database`].
    pub fn database(kind: DatabaseErrorKind, source: impl Into<BoxError>) -> Self {
        Self::Database {
            kind,
            source: source.into(),
        }
    }
}
