//! The error used inside transactions, and its mapping to the public [`orgusage_domain::Error`].
//!
//! The mapping decides [`Error::is_transient`] and [`Error::may_have_committed`], so it is precise:
//!
//! * diesel's typed kinds first: a unique violation is a [`Error::Conflict`], a serialization
//!   failure (`40001`) is [`DatabaseErrorKind::Contention`], a closed connection (libpq reports
//!   the connection as bad, or SQLSTATE class `08`) is [`DatabaseErrorKind::Connection`];
//! * diesel does not expose the SQLSTATE of other errors, so deadlocks (`40P01`), lock timeouts
//!   (`55P03`) and a server shutting down while the connection still looks good (`57P01`,
//!   `57P02`, `57P03`) are recognised by PostgreSQL's primary message. That assumes the server's
//!   `lc_messages` is English (the default `C`/`en_*`); with a translated server the same errors
//!   stay [`DatabaseErrorKind::Query`], i.e. not retried, which is the safe side;
//! * SQLite reports busy and locked databases only as text, but SQLite's texts are fixed
//!   (`sqlite3_errstr`), never translated.

use diesel::result::{DatabaseErrorKind as DieselKind, Error as DieselError};
use orgusage_domain::{DatabaseErrorKind, Error};

/// An error raised inside a transaction body: either diesel's, or a domain error that aborts the
/// transaction (validation, not found, conflict). Either way the transaction rolls back.
#[derive(Debug)]
pub(crate) enum TxError {
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
            TxError::Diesel(e) => match classify(&e) {
                // The connection error's text is kept but not diesel's wrapper: it adds nothing.
                DatabaseErrorKind::Connection => {
                    Error::database(DatabaseErrorKind::Connection, message_of(e))
                }
                kind => Error::database(kind, e),
            },
        }
    }
}

/// SQLite's `SUM` raises "integer overflow"; PostgreSQL's bigint arithmetic and casts raise
/// "bigint out of range".
fn is_integer_overflow(message: &str) -> bool {
    message == "integer overflow" || message.contains("bigint out of range")
}

/// The public kind of a diesel error (unique violations are handled before, as conflicts).
fn classify(e: &DieselError) -> DatabaseErrorKind {
    match e {
        DieselError::DatabaseError(DieselKind::ClosedConnection, _) => {
            DatabaseErrorKind::Connection
        }
        DieselError::DatabaseError(DieselKind::SerializationFailure, _) => {
            DatabaseErrorKind::Contention
        }
        DieselError::DatabaseError(_, info) => classify_message(info.message()),
        // The commit failed and so did the rollback that diesel attempts after it: the commit's
        // error is the one that says what happened.
        DieselError::RollbackErrorOnCommit { commit_error, .. } => classify(commit_error),
        // A connection whose transaction state diesel lost track of (an earlier rollback failed,
        // which only happens when the connection died): the pool discards it, a retry gets a
        // fresh one.
        DieselError::BrokenTransactionManager => DatabaseErrorKind::Connection,
        _ => DatabaseErrorKind::Query,
    }
}

/// Classifies a database message that diesel reports without a typed kind.
fn classify_message(message: &str) -> DatabaseErrorKind {
    // SQLite: SQLITE_BUSY ("database is locked") and SQLITE_LOCKED ("database table is locked",
    // "database schema is locked"); the texts are SQLite's own constants.
    const SQLITE_CONTENTION: [&str; 3] = [
        "database is locked",
        "database table is locked",
        "database schema is locked",
    ];
    // PostgreSQL, by SQLSTATE: 40P01 deadlock_detected; 55P03 lock_not_available (lock_timeout).
    const PG_CONTENTION: [&str; 2] = [
        "deadlock detected",
        "canceling statement due to lock timeout",
    ];
    // 57P01 admin_shutdown ("... due to administrator command", "... due to immediate shutdown
    // command"), 57P02 crash_shutdown, 57P03 cannot_connect_now ("the database system is
    // starting up / shutting down / in recovery mode"), and libpq's own texts when the socket
    // went away but the connection status was not yet bad.
    const PG_CONNECTION: [&str; 9] = [
        "terminating connection due to",
        "terminating connection because of crash",
        "the database system is",
        "server closed the connection unexpectedly",
        "no connection to the server",
        "could not receive data from server",
        "could not send data to server",
        "SSL SYSCALL error",
        "SSL connection has been closed unexpectedly",
    ];
    // Only the start of the message is compared: a message that merely quotes such a text (a
    // syntax error near it, say) is not a lost connection. libpq's own messages may carry the
    // severity in front.
    let mut text = message.trim_start();
    for severity in ["FATAL:", "ERROR:", "PANIC:"] {
        if let Some(rest) = text.strip_prefix(severity) {
            text = rest.trim_start();
        }
    }
    let starts = |texts: &[&str]| texts.iter().any(|t| text.starts_with(t));
    if starts(&SQLITE_CONTENTION) || starts(&PG_CONTENTION) {
        DatabaseErrorKind::Contention
    } else if starts(&PG_CONNECTION) {
        DatabaseErrorKind::Connection
    } else {
        DatabaseErrorKind::Query
    }
}

/// The driver's message of an error, without diesel's wrapper.
fn message_of(e: DieselError) -> String {
    match e {
        DieselError::DatabaseError(_, info) => info.message().to_string(),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => message_of(*commit_error),
        e => e.to_string(),
    }
}

/// Maps the result of a whole write transaction. `body_ok` says whether the transaction body
/// finished without error, so that a failure came from `COMMIT` (or from the rollback diesel
/// attempts after a failed commit). A connection lost at that point leaves the outcome unknown:
/// the server may have committed before the connection went, so the error becomes
/// [`DatabaseErrorKind::CommitUnknown`]. A connection lost in the body is plain
/// [`DatabaseErrorKind::Connection`]: the server rolls back a transaction whose client is gone.
pub(crate) fn tx_result<T>(result: Result<T, TxError>, body_ok: bool) -> Result<T, Error> {
    result.map_err(|e| {
        let e = Error::from(e);
        match e {
            Error::Database {
                kind: DatabaseErrorKind::Connection,
                source,
            } if body_ok => Error::Database {
                kind: DatabaseErrorKind::CommitUnknown,
                source,
            },
            e => e,
        }
    })
}

/// Turns a unique violation of `result` into `conflict()`: a race that the transaction's own
/// check could not see becomes the same typed [`Error::Conflict`] that check reports (the
/// database's own message names a constraint, not what the caller asked for).
pub(crate) fn conflict_on_unique<T>(
    result: diesel::QueryResult<T>,
    conflict: impl FnOnce() -> Error,
) -> Result<T, TxError> {
    result.map_err(|e| match e {
        DieselError::DatabaseError(DieselKind::UniqueViolation, _) => TxError::from(conflict()),
        e => TxError::from(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database error as diesel builds it: a kind and a message.
    fn db_err(kind: DieselKind, message: &str) -> TxError {
        TxError::Diesel(DieselError::DatabaseError(
            kind,
            Box::new(message.to_string()),
        ))
    }

    fn kind_of(e: TxError) -> Option<DatabaseErrorKind> {
        Error::from(e).database_kind()
    }

    #[test]
    fn typed_diesel_kinds_are_classified_without_the_message() {
        let lost = db_err(DieselKind::ClosedConnection, "anything");
        assert_eq!(kind_of(lost), Some(DatabaseErrorKind::Connection));
        let serial = db_err(
            DieselKind::SerializationFailure,
            "could not serialize access",
        );
        assert_eq!(kind_of(serial), Some(DatabaseErrorKind::Contention));
        let unique = Error::from(db_err(DieselKind::UniqueViolation, "duplicate key"));
        assert!(matches!(unique, Error::Conflict(_)));
        assert!(!unique.is_transient());
        let check = db_err(
            DieselKind::CheckViolation,
            "new row violates check constraint",
        );
        assert_eq!(kind_of(check), Some(DatabaseErrorKind::Query));
    }

    #[test]
    fn untyped_messages_are_classified_by_their_fixed_texts() {
        let cases = [
            ("database is locked", DatabaseErrorKind::Contention),
            ("database table is locked", DatabaseErrorKind::Contention),
            ("deadlock detected", DatabaseErrorKind::Contention),
            (
                "canceling statement due to lock timeout",
                DatabaseErrorKind::Contention,
            ),
            (
                "terminating connection due to administrator command",
                DatabaseErrorKind::Connection,
            ),
            (
                "terminating connection due to immediate shutdown command",
                DatabaseErrorKind::Connection,
            ),
            (
                "the database system is shutting down",
                DatabaseErrorKind::Connection,
            ),
            (
                "the database system is starting up",
                DatabaseErrorKind::Connection,
            ),
            (
                "FATAL:  the database system is shutting down",
                DatabaseErrorKind::Connection,
            ),
            (
                "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
                DatabaseErrorKind::Connection,
            ),
            (
                "syntax error at or near \"deadlock detected\"",
                DatabaseErrorKind::Query,
            ),
            (
                "no such table: client_daily_usage",
                DatabaseErrorKind::Query,
            ),
        ];
        for (message, want) in cases {
            assert_eq!(
                kind_of(db_err(DieselKind::Unknown, message)),
                Some(want),
                "{message}"
            );
        }
        // Not a database problem at all: a sum past i64 is the typed overflow.
        for message in ["bigint out of range", "integer overflow"] {
            let e = Error::from(db_err(DieselKind::Unknown, message));
            assert!(matches!(e, Error::Overflow(_)), "{message}: {e:?}");
        }
    }

    #[test]
    fn a_failed_commit_is_classified_by_the_commit_error() {
        let e = TxError::Diesel(DieselError::RollbackErrorOnCommit {
            rollback_error: Box::new(DieselError::DatabaseError(
                DieselKind::ClosedConnection,
                Box::new("no connection to the server".to_string()),
            )),
            commit_error: Box::new(DieselError::DatabaseError(
                DieselKind::ClosedConnection,
                Box::new("server closed the connection unexpectedly".to_string()),
            )),
        });
        let e = tx_result::<()>(Err(e), true).unwrap_err();
        assert_eq!(e.database_kind(), Some(DatabaseErrorKind::CommitUnknown));
        assert!(e.is_transient() && e.may_have_committed());
        assert!(
            e.to_string().contains("server closed the connection"),
            "{e}"
        );
    }

    #[test]
    fn only_a_connection_lost_at_commit_may_have_committed() {
        let lost = || db_err(DieselKind::ClosedConnection, "server closed the connection");
        let in_body = tx_result::<()>(Err(lost()), false).unwrap_err();
        assert!(in_body.is_transient() && !in_body.may_have_committed());
        let at_commit = tx_result::<()>(Err(lost()), true).unwrap_err();
        assert!(at_commit.is_transient() && at_commit.may_have_committed());
        // A commit refused by the server (serialization failure at commit) rolled back: certain.
        let refused = db_err(
            DieselKind::SerializationFailure,
            "could not serialize access",
        );
        let refused = tx_result::<()>(Err(refused), true).unwrap_err();
        assert!(refused.is_transient() && !refused.may_have_committed());
        // Domain errors raised by the body are never transient.
        let invalid = TxError::Domain(Error::invalid("user_id", "empty"));
        let invalid = tx_result::<()>(Err(invalid), false).unwrap_err();
        assert!(!invalid.is_transient() && !invalid.may_have_committed());
    }
}
