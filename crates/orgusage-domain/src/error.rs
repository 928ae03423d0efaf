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
    /// `orgusage::init` has not been called yet and `ORGUSAGE_DATABASE_URL` is unset or empty.
    #[error(
        "orgusage is not initialized: call orgusage::init(database_url) first or set ORGUSAGE_DATABASE_URL"
    )]
    NotInitialized,
    /// `orgusage::init` was called after the process-wide store was already opened (by an
    /// earlier `init`, whatever its URL, or by a handle from `ORGUSAGE_DATABASE_URL`).
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
    /// A stored secret (a client API key, the provisioning key) could not be encrypted or
    /// decrypted: no key ring is configured for an encrypted row, the row names a key id the
    /// ring does not hold, the ciphertext fails authentication (wrong key, altered, or copied
    /// from another row), or the stored value is malformed. Never carries key material or a
    /// plaintext secret; `detail` names the table, column, row and key id only.
    #[error("encryption error ({kind}): {detail}")]
    Encryption {
        /// What went wrong.
        kind: EncryptionErrorKind,
        /// Where (table, column, row id, key id) and why, without any secret.
        detail: String,
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

/// The part of database access that failed, and with it whether a retry can help
/// ([`Error::is_transient`]) and whether the write may have happened anyway
/// ([`Error::may_have_committed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseErrorKind {
    /// Connecting, taking a connection from the pool, or the connection was lost **before** the
    /// transaction was asked to commit (so the server rolled it back: nothing was written).
    /// Includes a server that is shutting down or starting up. Transient.
    Connection,
    /// The connection was lost while the transaction was committing (`COMMIT` sent, no answer).
    /// The write may or may not be in the database: retry only idempotent calls
    /// (`record_generation`, `ingest_generation`), or check first. Transient.
    CommitUnknown,
    /// The transaction lost a race and was rolled back: a PostgreSQL serialization failure
    /// (`40001`), deadlock (`40P01`) or lock timeout (`55P03`), or SQLite's write lock still held
    /// by another process after `busy_timeout` ("database is locked"). Nothing was written.
    /// Transient.
    Contention,
    /// Every connection of the pool stayed in use for the whole `connection_timeout`: this
    /// process has more concurrent operations than its pool has connections. Nothing was sent
    /// to the database, so the operation may be retried; if it recurs, raise the pool size
    /// (within the server's connection budget) or the timeout, or lower the concurrency.
    PoolTimeout,
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
            Self::CommitUnknown => "commit outcome unknown",
            Self::Contention => "contention",
            Self::PoolTimeout => "pool timeout",
            Self::Migration => "migration",
            Self::Query => "query",
            Self::Configuration => "configuration",
        })
    }
}

/// Why a stored secret could not be encrypted or decrypted (see [`Error::Encryption`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionErrorKind {
    /// The row is encrypted but the store was opened without a key ring.
    NoKey,
    /// The row was encrypted under a key id that the key ring does not hold.
    UnknownKeyId,
    /// Authentication failed: the key is wrong for that key id, or the stored value was altered
    /// or copied from another row or column.
    Authentication,
    /// The stored value claims to be encrypted but is not in a format this version can read.
    Malformed,
    /// The key ring itself is unusable (bad key id, key length, duplicate id).
    Configuration,
    /// The operating system's random number generator failed, so no nonce could be drawn.
    Randomness,
}

impl fmt::Display for EncryptionErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoKey => "no key configured",
            Self::UnknownKeyId => "unknown key id",
            Self::Authentication => "authentication failed",
            Self::Malformed => "malformed stored value",
            Self::Configuration => "invalid key configuration",
            Self::Randomness => "random number generator failed",
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

    /// True when the same call may succeed if simply repeated after a short wait: the database
    /// could not be reached, the connection was lost (a server restart or failover), no pooled
    /// connection was free in time, or the transaction was rolled back by contention
    /// (serialization failure, deadlock, SQLite's lock). Everything else (invalid input,
    /// conflicts, not found, a failing query, migrations, configuration) fails the same way
    /// again, so it is `false`.
    ///
    /// Transient does not mean *safe to repeat blindly*: see [`Error::may_have_committed`] and
    /// the "Retries" section of `docs/operations.md`.
    ///
    /// ```
    /// use orgusage_domain::{DatabaseErrorKind, Error};
    ///
    /// let lost = Error::database(DatabaseErrorKind::Connection, "server closed the connection");
    /// assert!(lost.is_transient());
    /// assert!(!Error::invalid("user_id", "must not be empty").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { kind, .. } => match kind {
                DatabaseErrorKind::Connection
                | DatabaseErrorKind::PoolTimeout
                | DatabaseErrorKind::CommitUnknown
                | DatabaseErrorKind::Contention => true,
                // Exhaustive on purpose: a new kind must be classified here, not default to
                // "not transient" by accident.
                DatabaseErrorKind::Migration
                | DatabaseErrorKind::Query
                | DatabaseErrorKind::Configuration => false,
            },
            // An NBP outage is retried by calling again later (see `RateUnavailable::reason`), but
            // the same variant also carries non-outage failures that must page, so it is not
            // classified as transient here.
            _ => false,
        }
    }

    /// True when a failed write may nevertheless be in the database: the connection was lost
    /// after `COMMIT` was sent and before its answer arrived
    /// ([`DatabaseErrorKind::CommitUnknown`]). Repeating a non-idempotent write
    /// (`record_usage`) after such an error may count it twice; `record_generation` with the
    /// same id counts once either way. For every other error nothing was written.
    ///
    /// ```
    /// use orgusage_domain::{DatabaseErrorKind, Error};
    ///
    /// let ambiguous = Error::database(DatabaseErrorKind::CommitUnknown, "connection lost");
    /// assert!(ambiguous.is_transient() && ambiguous.may_have_committed());
    /// let lost = Error::database(DatabaseErrorKind::Connection, "connection refused");
    /// assert!(!lost.may_have_committed());
    /// ```
    pub fn may_have_committed(&self) -> bool {
        matches!(
            self,
            Self::Database {
                kind: DatabaseErrorKind::CommitUnknown,
                ..
            }
        )
    }

    /// The [`DatabaseErrorKind`] of a database error, `None` for every other error.
    pub fn database_kind(&self) -> Option<DatabaseErrorKind> {
        match self {
            Self::Database { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Shorthand for [`Error::Encryption`].
    pub fn encryption(kind: EncryptionErrorKind, detail: impl Into<String>) -> Self {
        Self::Encryption {
            kind,
            detail: detail.into(),
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
