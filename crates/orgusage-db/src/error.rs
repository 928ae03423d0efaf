//! The error used inside transactions, and its mapping to the public [`orgusage_domain::Error`].

use diesel::result::{DatabaseErrorKind as DieselKind, Error as DieselError};
use orgusage_domain::{DatabaseErrorKind, Error};

/// An error raised inside a transaction body: either diesel's, or a domain error that aborts the
/// transaction (validation, not found, conflict). Either way the transaction rolls back.
#[derive(Debug)]
#[doc(hidden)]
pub enum TxError {
    /// A diesel error.
    Diesel(DieselError),
    /// A domain error.
    Domain(Error),
}

impl TxError {
    pub(crate) fn migration(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Domain(Error::database(DatabaseErrorKind::Migration, e))
    }
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Diesel(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        Self::Domain(e)
    }
}

impl From<TxError> for Error {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Domain(e) => e,
            TxError::Diesel(DieselError::DatabaseError(DieselKind::UniqueViolation, info)) => {
                // The message names the constraint, never the offending value (keys stay secret).
                Error::Conflict(info.message().to_string())
            }
            TxError::Diesel(DieselError::DatabaseError(DieselKind::ClosedConnection, info)) => {
                Error::database(DatabaseErrorKind::Connection, info.message().to_string())
            }
            TxError::Diesel(DieselError::DatabaseError(_, info))
                if is_integer_overflow(info.message()) =>
            {
                // A backstop behind the write path's own guard: a SUM over many days that
                // leaves i64 in a report. diesel exposes no SQLSTATE (22003 on PostgreSQL), so
                // the two engines' fixed messages are matched instead.
                Error::Overflow(info.message().to_string())
            }
            TxError::Diesel(DieselError::DatabaseError(_, info))
                if info.message().contains("invalid byte sequence")
                    && info.message().contains("0x00") =>
            {
                // PostgreSQL refuses a NUL in any text parameter, also in a lookup. Writes
                // reject NUL during validation; this keeps the reads typed as well.
                Error::invalid("text", "must not contain a NUL character")
            }
            TxError::Diesel(e) => Error::database(DatabaseErrorKind::Query, e),
        }
    }
}

/// SQLite's `SUM` raises "integer overflow"; PostgreSQL's bigint arithmetic and casts raise
/// "bigint out of range".
fn is_integer_overflow(message: &str) -> bool {
    message == "integer overflow" || message.contains("bigint out of range")
}

/// True when `e` is a unique-constraint violation (used to turn races into typed conflicts).
pub(crate) fn is_unique_violation(e: &TxError) -> bool {
    matches!(
        e,
        TxError::Diesel(DieselError::DatabaseError(DieselKind::UniqueViolation, _))
    )
}
