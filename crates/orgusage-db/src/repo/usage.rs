//! `record_usage`: one transaction of atomic upsert increments on the client, user and model
//! daily rows. No read-modify-write, no retry loop: a failed call wrote nothing and may simply be
//! retried by the caller (exactly-once retries are `record_generation`'s job).

use chrono::NaiveDate;
use diesel::prelude::*;
use orgusage_domain::bounds::validate_usage_date;
use orgusage_domain::money::{mul_rate_to_units, units_to_decimal};
use orgusage_domain::timezone::{local_date_at, month_end, month_start, parse_timezone};
use orgusage_domain::usage::{CatalogueModel, RecordedUsage, UsageRecord};
use orgusage_domain::{Clock, Result};

use crate::Database;
use crate::error::TxError;

/// The increments one request adds to the three daily tables.
#[derive(Debug, Clone)]
pub(crate) struct Increment<'r> {
    pub client_org_id: &'r str,
    pub user_id: &'r str,
    pub openrouter_user_id: &'r str,
    pub model_name: &'r str,
    pub provider: Option<&'r str>,
    pub usage_date: NaiveDate,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub raw_units: i64,
    pub markup_units: i64,
    pub now: i64,
}

/// What the transaction needs to know about the client.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct ClientBilling {
    pub timezone: String,
    pub markup_rate: i64,
    pub monthly_limit: Option<i64>,
    pub is_active: bool,
}

impl<'r> Increment<'r> {
    /// The increments of `record`, booked as `prepared` decided.
    pub(crate) fn new(
        record: &'r UsageRecord,
        prepared: &Prepared,
        raw_units: i64,
        total_tokens: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            client_org_id: &record.client_org_id,
            user_id: &record.user_id,
            openrouter_user_id: &record.openrouter_user_id,
            model_name: &record.model_name,
            provider: record.provider.as_deref(),
            usage_date: prepared.usage_date,
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            total_tokens,
            raw_units,
            markup_units: prepared.markup_units,
            now: now.timestamp(),
        }
    }
}

/// Applies one request's increments to the three daily tables on a concrete connection: three
/// atomic upserts, no read-modify-write.
///
/// Order: the user row first, because its `RETURNING total_requests` tells whether this is the
/// user's first request of the day (exactly one transaction sees 1), which the client-day upsert
/// then adds to `unique_users`. Every transaction locks user row, client-day row, model row in
/// that order, so PostgreSQL cannot deadlock; the client-day lock also orders the monthly-limit
/// sum that may follow.
macro_rules! apply_increment {
    ($conn:ident, $inc:expr) => {{
        use $crate::rawsql::{Val, stmt};
        use $crate::sql::{UPSERT_CLIENT_DAY, UPSERT_MODEL_DAY, UPSERT_USER_DAY};
        let inc: &$crate::repo::usage::Increment<'_> = $inc;
        let user_binds = [
            Val::Text(inc.client_org_id),
            Val::Date(inc.usage_date),
            Val::Text(inc.user_id),
            Val::Text(inc.openrouter_user_id),
            Val::Int(inc.total_tokens),
            Val::Int(inc.input_tokens),
            Val::Int(inc.output_tokens),
            Val::Int(inc.raw_units),
            Val::Int(inc.markup_units),
            Val::Int(inc.now),
            Val::Int(inc.now),
        ];
        let user_requests: i64 = ::diesel::RunQueryDsl::get_result(
            stmt::<1, ::diesel::sql_types::BigInt>(UPSERT_USER_DAY, &user_binds),
            $conn,
        )?;
        let client_binds = [
            Val::Text(inc.client_org_id),
            Val::Date(inc.usage_date),
            Val::Int(inc.total_tokens),
            Val::Int(inc.input_tokens),
            Val::Int(inc.output_tokens),
            Val::Int(inc.raw_units),
            Val::Int(inc.markup_units),
            Val::Int(inc.now),
            Val::Int(inc.now),
            Val::Int(i64::from(user_requests == 1)),
        ];
        let client_rows =
            ::diesel::RunQueryDsl::execute(stmt::<2, ()>(UPSERT_CLIENT_DAY, &client_binds), $conn)?;
        if client_rows == 0 {
            // The upsert's overflow guard refused the update (see `UPSERT_CLIENT_DAY`).
            return Err($crate::error::TxError::from(
                ::orgusage_domain::Error::Overflow(format!(
                    "the daily totals of client {} on {} would exceed the i64 storage range",
                    inc.client_org_id, inc.usage_date
                )),
            ));
        }
        let model_binds = [
            Val::Text(inc.client_org_id),
            Val::Date(inc.usage_date),
            Val::Text(inc.model_name),
            Val::Int(inc.total_tokens),
            Val::Int(inc.input_tokens),
            Val::Int(inc.output_tokens),
            Val::Int(inc.raw_units),
            Val::Int(inc.markup_units),
            Val::OptText(inc.provider),
            Val::Int(inc.now),
            Val::Int(inc.now),
        ];
        ::diesel::RunQueryDsl::execute(stmt::<3, ()>(UPSERT_MODEL_DAY, &model_binds), $conn)?;
    }};
}
pub(crate) use apply_increment;

/// Sum of marked-up cost (units) of a client over an inclusive date range.
macro_rules! month_markup_units {
    ($conn:ident, $client:expr, $from:expr, $to:expr) => {{
        $crate::schema::client_daily_usage::dsl::client_daily_usage
            .filter(
                $crate::schema::client_daily_usage::dsl::client_org_id
                    .eq($client)
                    .and($crate::schema::client_daily_usage::dsl::usage_date.between($from, $to)),
            )
            .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(SUM(markup_cost), 0) AS BIGINT)",
            ))
            .get_result::<i64>($conn)?
    }};
}
pub(crate) use month_markup_units;

/// Serialises, per client, the writers that sum a limited client's month (see
/// `limit_after_increment!`). A no-op on SQLite, whose writers are serialised by `BEGIN
/// IMMEDIATE` already.
pub(crate) trait MonthLock {
    /// Waits until no other transaction of this client is between its increment and its commit.
    fn lock_client_month(&mut self, client_org_id: &str) -> diesel::QueryResult<()>;

    /// The same, deleting the spend reservation `settle` in the same statement when
    /// [`MonthLock::folds_settle`] (see `settle_reservation!`).
    fn lock_client_month_settling(
        &mut self,
        client_org_id: &str,
        _settle: Option<&str>,
    ) -> diesel::QueryResult<()> {
        self.lock_client_month(client_org_id)
    }

    /// Whether `lock_client_month_settling` deletes the reservation itself.
    fn folds_settle(&self) -> bool {
        false
    }
}

impl<C> MonthLock for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
where
    C: MonthLock + diesel::r2d2::R2D2Connection + 'static,
{
    fn lock_client_month(&mut self, client_org_id: &str) -> diesel::QueryResult<()> {
        (**self).lock_client_month(client_org_id)
    }

    fn lock_client_month_settling(
        &mut self,
        client_org_id: &str,
        settle: Option<&str>,
    ) -> diesel::QueryResult<()> {
        (**self).lock_client_month_settling(client_org_id, settle)
    }

    fn folds_settle(&self) -> bool {
        (**self).folds_settle()
    }
}

#[cfg(feature = "sqlite")]
impl MonthLock for diesel::SqliteConnection {
    fn lock_client_month(&mut self, _client_org_id: &str) -> diesel::QueryResult<()> {
        Ok(())
    }
}

/// First key of the two-key advisory locks that orgusage takes ("orgu"), so they cannot collide
/// with a host's single-key locks.
#[cfg(feature = "postgres")]
const ADVISORY_NAMESPACE: i32 = 0x6f72_6775;

/// Settle a reservation and take the month lock in one statement (`ADVISORY_NAMESPACE` is
/// 1869768565).
#[cfg(feature = "postgres")]
const PG_SETTLE_AND_LOCK: &str = "WITH settled AS (DELETE FROM spend_reservations \
    WHERE id = ? AND client_org_id = ? RETURNING 1) \
    SELECT pg_advisory_xact_lock(1869768565, hashtext(?)) FROM (SELECT COUNT(*) FROM settled) AS s";

#[cfg(feature = "postgres")]
impl MonthLock for diesel::PgConnection {
    fn lock_client_month_settling(
        &mut self,
        client_org_id: &str,
        settle: Option<&str>,
    ) -> diesel::QueryResult<()> {
        let Some(reservation) = settle else {
            return self.lock_client_month(client_org_id);
        };
        // A data-modifying CTE always runs to completion, and before the lock here: the
        // reservation row is deleted, then the month lock taken. `authorize` never locks
        // existing reservation rows, so the order cannot deadlock with it. A fixed text with a
        // static id: prepared once per connection.
        use crate::rawsql::{Val, stmt};
        let binds = [
            Val::Text(reservation),
            Val::Text(client_org_id),
            Val::Text(client_org_id),
        ];
        diesel::RunQueryDsl::execute(stmt::<43, ()>(PG_SETTLE_AND_LOCK, &binds), self).map(|_| ())
    }

    fn folds_settle(&self) -> bool {
        true
    }

    fn lock_client_month(&mut self, client_org_id: &str) -> diesel::QueryResult<()> {
        // Transaction-scoped, so it is released by COMMIT/ROLLBACK and is safe behind PgBouncer
        // in transaction mode. Two clients whose ids hash alike merely share a lock.
        diesel::sql_query(format!(
            "SELECT pg_advisory_xact_lock({ADVISORY_NAMESPACE}, hashtext($1))"
        ))
        .bind::<diesel::sql_types::Text, _>(client_org_id)
        .execute(self)
        .map(|_| ())
    }
}

/// After `apply_increment!`: the limit status of the month the record was booked into, and
/// whether this record crossed it.
///
/// Writers of one client-day are already ordered by the client-day row lock, but writers of
/// *different* days of one month are not, and on PostgreSQL each could sum the month without
/// seeing the other's uncommitted increment: neither would report the crossing. So a client
/// with a limit first takes a transaction-scoped lock on its months; the sum, a new statement
/// with a new snapshot, then sees every predecessor, and exactly one writer sees the crossing.
/// Clients without a limit pay nothing.
macro_rules! limit_after_increment {
    ($conn:ident, $client_id:expr, $billing:expr, $prepared:expr) => {
        $crate::repo::usage::limit_after_increment!($conn, $client_id, $billing, $prepared, None)
    };
    ($conn:ident, $client_id:expr, $billing:expr, $prepared:expr, $settle:expr) => {{
        let billing: &$crate::repo::usage::ClientBilling = $billing;
        let prepared: &$crate::repo::usage::Prepared = $prepared;
        match billing.monthly_limit {
            None => None,
            Some(_) => {
                $crate::repo::usage::MonthLock::lock_client_month_settling(
                    $conn, $client_id, $settle,
                )?;
                let after = $crate::repo::usage::month_markup_units!(
                    $conn,
                    $client_id,
                    prepared.month.0,
                    prepared.month.1
                );
                let before = after.saturating_sub(prepared.markup_units);
                Some($crate::repo::limits::limit_status(
                    $client_id,
                    billing.monthly_limit,
                    prepared.month.0,
                    after,
                    Some(before),
                ))
            }
        }
    }};
}
pub(crate) use limit_after_increment;

/// Loads the active client's billing settings inside a transaction (`NotFound` otherwise).
macro_rules! load_billing {
    ($conn:ident, $client:expr) => {{
        let row: Option<$crate::repo::usage::ClientBilling> =
            $crate::schema::client_organizations::dsl::client_organizations
                .find($client)
                .select((
                    $crate::schema::client_organizations::dsl::timezone,
                    $crate::schema::client_organizations::dsl::markup_rate,
                    $crate::schema::client_organizations::dsl::monthly_limit,
                    $crate::schema::client_organizations::dsl::is_active,
                ))
                .first($conn)
                .optional()?;
        match row {
            Some(c) if c.is_active => Ok(c),
            _ => Err($crate::error::TxError::from(
                ::orgusage_domain::Error::NotFound {
                    entity: "client",
                    id: $client.to_string(),
                },
            )),
        }
    }};
}

pub(crate) use load_billing;

/// Repository of the usage tables.
#[derive(Debug, Clone, Copy)]
pub struct UsageRepo<'a> {
    pub(crate) db: &'a Database,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) catalogue: &'a [CatalogueModel],
    pub(crate) billing_cache: Option<&'a super::one_trip::BillingCache>,
}

impl<'a> UsageRepo<'a> {
    /// A repository over `db`; `catalogue` lists models shown with zeros in by-model reports.
    pub fn new(db: &'a Database, clock: &'a dyn Clock, catalogue: &'a [CatalogueModel]) -> Self {
        Self {
            db,
            clock,
            catalogue,
            billing_cache: None,
        }
    }

    /// Lets `record_usage` on PostgreSQL decide day and markup from `cache` and send the whole
    /// record as one statement, which re-checks the cached settings (see `repo::one_trip`).
    pub fn with_billing_cache(mut self, cache: &'a super::one_trip::BillingCache) -> Self {
        self.billing_cache = Some(cache);
        self
    }

    /// Records one request: adds tokens, one request, raw and marked-up cost to the client, user
    /// and model rows of its client-local day, in one transaction.
    ///
    /// Errors (nothing written): unknown or inactive client
    /// ([`NotFound`](orgusage_domain::Error::NotFound)); negative tokens or costs, values past
    /// the per-record bounds, a day outside the accepted range, blank or NUL-containing ids
    /// ([`InvalidInput`](orgusage_domain::Error::InvalidInput), see `orgusage_domain::bounds`);
    /// day totals that would leave the `i64` storage range
    /// ([`Overflow`](orgusage_domain::Error::Overflow)).
    pub fn record_usage(&self, record: &UsageRecord) -> Result<RecordedUsage> {
        let _span =
            tracing::debug_span!("orgusage.usage.record", client_org_id = %record.client_org_id)
                .entered();
        let (raw_units, explicit_markup) = record.validate()?;
        let total_tokens = record.total_tokens()?;
        let now = self.clock.now();
        // PostgreSQL, client without a limit: one statement instead of a transaction.
        let parts = (raw_units, explicit_markup, total_tokens);
        if let Some(done) = self.record_usage_one_trip(record, parts, now)? {
            return Ok(done);
        }
        crate::write_tx!(self.db, |conn| {
            let client: ClientBilling = load_billing!(conn, &record.client_org_id)?;
            let prepared = prepare(&client, record, explicit_markup, now)?;
            let inc = Increment::new(record, &prepared, raw_units, total_tokens, now);
            apply_increment!(conn, &inc);
            crate::repo::reservations::settle_reservation!(
                conn,
                record,
                client.monthly_limit.is_some()
            );
            let settle = record.reservation_id.as_deref();
            let status =
                limit_after_increment!(conn, &record.client_org_id, &client, &prepared, settle);
            Ok(RecordedUsage {
                usage_date: prepared.usage_date,
                total_tokens,
                raw_cost: units_to_decimal(raw_units),
                markup_cost: units_to_decimal(prepared.markup_units),
                limit_crossed: status.as_ref().is_some_and(|s| s.1),
                monthly_limit: status.map(|s| s.0),
            })
        })
    }
}

/// Day, markup and month of a record, decided from the client's settings.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub usage_date: NaiveDate,
    pub markup_units: i64,
    /// The whole client-local month the record is booked into: (first day, last day). The
    /// limit is checked against that month, whatever day of it (past, today or later) the
    /// record names, so exactly one record reports each month's crossing.
    pub month: (NaiveDate, NaiveDate),
}

pub(crate) fn prepare(
    client: &ClientBilling,
    record: &UsageRecord,
    explicit_markup: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Prepared, TxError> {
    let tz = parse_timezone(&client.timezone)?;
    let usage_date = match (record.usage_date, record.occurred_at) {
        (Some(date), _) => date,
        (None, Some(at)) => local_date_at(tz, at),
        (None, None) => local_date_at(tz, now),
    };
    // The client-local day, known only now, may sit just outside the range validate() saw.
    validate_usage_date("usage_date", usage_date)?;
    // The exact raw cost as given, not its stored (rounded) units: one rounding, at 1e-9.
    let markup_units = match explicit_markup {
        Some(m) => m,
        None => mul_rate_to_units(record.raw_cost, client.markup_rate)?,
    };
    Ok(Prepared {
        usage_date,
        markup_units,
        month: (month_start(usage_date), month_end(usage_date)),
    })
}
