//! The PostgreSQL connection budget: how many server connections the pools of every instance may
//! open together, checked against the server's limits when a store opens.
//!
//! The formula: `instances × pool size ≤ max_connections − superuser_reserved_connections −
//! reserved_connections` (the last exists from PostgreSQL 16 on). What is left over is the
//! headroom for everything else that connects: the host application, `psql`, backups,
//! monitoring. With the defaults (20 instances, pools of [`DEFAULT_POSTGRES_POOL`] = 4) the
//! pools need 80 of the 97 slots a default server (`max_connections = 100`, 3 reserved) gives
//! ordinary roles, leaving 17.

/// Default pool size per store on PostgreSQL: 20 instances × 4 = 80 connections fit a default
/// server (`max_connections = 100`) with room to spare for the host application.
pub const DEFAULT_POSTGRES_POOL: u32 = 4;

/// Default number of instances (processes opening a store on the same server) that the budget
/// check at `open` assumes.
pub const DEFAULT_EXPECTED_INSTANCES: u32 = 20;

/// What a PostgreSQL server lets ordinary (non-superuser) roles open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// The server's `max_connections`.
    pub max_connections: u32,
    /// Slots ordinary roles cannot use: `superuser_reserved_connections` plus, on PostgreSQL
    /// 16 and later, `reserved_connections`.
    pub reserved: u32,
    /// Client connections open on the whole server when it was asked (this store's included).
    pub in_use: u32,
}

/// The verdict of [`connection_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// Instances assumed to open a store on the server.
    pub instances: u32,
    /// The pool size of each.
    pub pool_size: u32,
    /// `instances × pool_size`: the connections the pools may open together.
    pub needed: u64,
    /// `max_connections − reserved`: the connections ordinary roles may open.
    pub available: u64,
}

impl ConnectionBudget {
    /// True when the pools of every instance fit in what the server allows.
    pub fn fits(&self) -> bool {
        self.needed <= self.available
    }

    /// Connections left for everything else (host application, `psql`, backups); negative
    /// when the pools alone can exhaust the server.
    pub fn headroom(&self) -> i64 {
        // `needed` can exceed i64::MAX (u32::MAX²); saturate rather than wrap.
        let available = i64::try_from(self.available).unwrap_or(i64::MAX);
        let needed = i64::try_from(self.needed).unwrap_or(i64::MAX);
        available.saturating_sub(needed)
    }
}

/// Applies the formula `instances × pool_size ≤ max_connections − reserved`.
///
/// ```
/// use orgusage_db::budget::{ServerLimits, connection_budget};
///
/// let server = ServerLimits { max_connections: 100, reserved: 3, in_use: 5 };
/// let ok = connection_budget(20, 4, server);
/// assert!(ok.fits());
/// assert_eq!((ok.needed, ok.available, ok.headroom()), (80, 97, 17));
/// // The old default pool of 10 cannot hold 20 instances.
/// assert!(!connection_budget(20, 10, server).fits());
/// ```
pub fn connection_budget(instances: u32, pool_size: u32, server: ServerLimits) -> ConnectionBudget {
    ConnectionBudget {
        instances,
        pool_size,
        needed: u64::from(instances) * u64::from(pool_size),
        available: u64::from(server.max_connections.saturating_sub(server.reserved)),
    }
}

/// Emits the `tracing` warning for a budget that does not fit (and a debug event for one that
/// does); returns whether it fits.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn report(budget: &ConnectionBudget, server: &ServerLimits) -> bool {
    if budget.fits() {
        tracing::debug!(
            instances = budget.instances,
            pool_size = budget.pool_size,
            needed = budget.needed,
            available = budget.available,
            "orgusage connection budget fits the server"
        );
        return true;
    }
    tracing::warn!(
        instances = budget.instances,
        pool_size = budget.pool_size,
        needed = budget.needed,
        available = budget.available,
        max_connections = server.max_connections,
        reserved = server.reserved,
        in_use = server.in_use,
        "orgusage connection budget exceeded: {} instances × a pool of {} = {} connections, but the \
         server allows {} (max_connections {} − {} reserved; {} in use now). Under load the server \
         will refuse connections (\"too many clients\") to these instances and to every other \
         client. Lower StoreConfig::max_connections, put PgBouncer in front, raise the server's \
         max_connections, or set StoreConfig::expected_instances to the real count.",
        budget.instances,
        budget.pool_size,
        budget.needed,
        budget.available,
        server.max_connections,
        server.reserved,
        server.in_use,
    );
    false
}

/// Asks a PostgreSQL server for its [`ServerLimits`].
#[cfg(feature = "postgres")]
pub(crate) fn server_limits(conn: &mut diesel::PgConnection) -> diesel::QueryResult<ServerLimits> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Integer;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        max_connections: i32,
        #[diesel(sql_type = Integer)]
        reserved: i32,
        #[diesel(sql_type = Integer)]
        in_use: i32,
    }
    // `current_setting(…, true)` is NULL where the setting does not exist (before PostgreSQL 16
    // there is no `reserved_connections`), so one statement serves every supported version.
    let row: Row = diesel::sql_query(
        "SELECT current_setting('max_connections')::int AS max_connections, \
         current_setting('superuser_reserved_connections')::int \
           + COALESCE(current_setting('reserved_connections', true)::int, 0) AS reserved, \
         (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use",
    )
    .get_result(conn)?;
    let non_negative = |v: i32| u32::try_from(v).unwrap_or(0);
    Ok(ServerLimits {
        max_connections: non_negative(row.max_connections),
        reserved: non_negative(row.reserved),
        in_use: non_negative(row.in_use),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_SERVER: ServerLimits = ServerLimits {
        max_connections: 100,
        reserved: 3,
        in_use: 0,
    };

    #[test]
    fn defaults_fit_a_default_server_with_headroom() {
        let b = connection_budget(
            DEFAULT_EXPECTED_INSTANCES,
            DEFAULT_POSTGRES_POOL,
            DEFAULT_SERVER,
        );
        assert!(b.fits());
        assert_eq!((b.needed, b.available, b.headroom()), (80, 97, 17));
    }

    #[test]
    fn the_old_default_of_ten_does_not_fit() {
        let b = connection_budget(20, 10, DEFAULT_SERVER);
        assert!(!b.fits());
        assert_eq!(b.headroom(), -103);
    }

    #[test]
    fn exactly_full_fits_and_one_more_does_not() {
        let server = ServerLimits {
            max_connections: 43,
            reserved: 3,
            in_use: 0,
        };
        assert!(connection_budget(10, 4, server).fits());
        assert_eq!(connection_budget(10, 4, server).headroom(), 0);
        assert!(!connection_budget(41, 1, server).fits());
    }

    #[test]
    fn extremes_neither_overflow_nor_wrap() {
        let b = connection_budget(u32::MAX, u32::MAX, DEFAULT_SERVER);
        assert!(!b.fits());
        assert!(b.headroom() < 0);
        let tiny = ServerLimits {
            max_connections: 2,
            reserved: 3,
            in_use: 0,
        };
        assert_eq!(connection_budget(1, 1, tiny).available, 0);
        assert!(!connection_budget(1, 1, tiny).fits());
    }

    #[test]
    fn report_says_whether_it_fits() {
        assert!(report(
            &connection_budget(20, 4, DEFAULT_SERVER),
            &DEFAULT_SERVER
        ));
        assert!(!report(
            &connection_budget(20, 10, DEFAULT_SERVER),
            &DEFAULT_SERVER
        ));
    }
}
