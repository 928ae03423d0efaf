//! Taking connections out of the pools: r2d2's errors classified into typed ones, PostgreSQL's
//! idle-only liveness check, and dropping a connection found dead after a failed call.

use std::time::Duration;

#[cfg(feature = "postgres")]
use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use orgusage_domain::{DatabaseErrorKind, Error, Result};

/// Takes a connection from a pool: a timeout is [`DatabaseErrorKind::PoolTimeout`] when every
/// connection was busy, [`DatabaseErrorKind::Connection`] when the pool could not connect.
pub(crate) fn checkout<C>(
    pool: &Pool<ConnectionManager<C>>,
) -> Result<PooledConnection<ConnectionManager<C>>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    pool.get()
        .map_err(|e| pool_error(pool.max_size(), pool.connection_timeout(), &e))
}

/// When a connection was last handed out; kept in r2d2's per-connection extensions, which
/// survive the connection's returns to the pool.
#[cfg(feature = "postgres")]
struct LastCheckout(std::time::Instant);

/// [`checkout`], then a ping for a connection idle at least `idle` or never handed out before.
/// A connection that fails it is marked broken by diesel (the statement runs through its
/// checked path), so r2d2 drops it when the guard goes, and the next one is tried; a server
/// restart so costs each stale connection one failed ping and no caller an error. At most
/// `max_size + 1` tries: by then the pool has had to open new connections.
#[cfg(feature = "postgres")]
pub(super) fn checkout_checked_if_idle<C>(
    pool: &Pool<ConnectionManager<C>>,
    idle: Duration,
) -> Result<PooledConnection<ConnectionManager<C>>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    use diesel::connection::SimpleConnection;
    let mut last_error = None;
    for _ in 0..=pool.max_size() {
        let mut conn = checkout(pool)?;
        let now = std::time::Instant::now();
        let previous = PooledConnection::extensions_mut(&mut conn).insert(LastCheckout(now));
        let recent = previous.is_some_and(|LastCheckout(at)| now.duration_since(at) < idle);
        if recent {
            return Ok(conn);
        }
        match conn.batch_execute("SELECT 1") {
            Ok(()) => return Ok(conn),
            Err(e) => {
                tracing::debug!(error = %e, "dropping a stale pooled connection");
                last_error = Some(e);
            }
        }
    }
    Err(Error::database(
        DatabaseErrorKind::Connection,
        format!(
            "every pooled connection failed its liveness check: {}",
            last_error.map_or_else(String::new, |e| e.to_string())
        ),
    ))
}

/// Classifies an r2d2 error. r2d2 reports every failure as "timed out waiting for connection",
/// and appends the last error of opening or validating a connection when there was one during
/// the wait: then the server is the problem (`Connection`); without one, every connection was
/// busy (`PoolTimeout`).
pub(super) fn pool_error(size: u32, timeout: Duration, e: &diesel::r2d2::PoolError) -> Error {
    let text = e.to_string();
    match text.strip_prefix("timed out waiting for connection: ") {
        Some(cause) => {
            let saturated =
                cause.contains("too many clients") || cause.contains("remaining connection slots");
            let hint = if saturated {
                "; the server has no free connection slot: check the connection budget                  (instances × pool size, docs/operations.md, Topology)"
            } else {
                ""
            };
            Error::database(
                DatabaseErrorKind::Connection,
                format!("could not connect within {timeout:?}: {cause}{hint}"),
            )
        }
        None => Error::database(
            DatabaseErrorKind::PoolTimeout,
            format!(
                "no connection could be had within {timeout:?}: all {size} connections of the                  pool stayed in use; nothing was sent, so the call may be retried. If this                  recurs, raise StoreConfig::max_connections (within the server's connection                  budget) or connection_timeout, or run fewer operations at once"
            ),
        ),
    }
}

/// After a call failed with a lost connection, makes sure the pool drops that connection instead
/// of handing it out again.
///
/// Why: r2d2 keeps a returned connection unless diesel reports it broken, and diesel marks a
/// PostgreSQL connection broken only when a statement it *executes* finds libpq's connection
/// gone. A statement that fails while being *prepared* (the first use of a query on that
/// connection) returns the error without that check, so with the checkout ping off a dead
/// connection went back to the pool and failed every later call ("no connection to the
/// server", found by `tests/faults_restart.rs`). One simple statement runs through diesel's
/// checked path: on a dead connection it fails at once and marks it broken; on a live one it
/// succeeds and the connection stays. Its own result is deliberately not returned: the caller
/// gets the original error, which is what happened to its call.
#[cfg(feature = "postgres")]
pub(crate) fn discard_if_dead<T>(conn: &mut PgConnection, result: &Result<T>) {
    use diesel::connection::SimpleConnection;
    let lost = matches!(
        result.as_ref().err().and_then(Error::database_kind),
        Some(DatabaseErrorKind::Connection | DatabaseErrorKind::CommitUnknown)
    );
    if lost {
        if let Err(e) = conn.batch_execute("SELECT 1") {
            tracing::debug!(error = %e, "dropping a dead PostgreSQL connection from the pool");
        }
    }
}
