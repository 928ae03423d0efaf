//! `record_usage`: one transaction of atomic upsert increments on the client, user and model
//! daily rows. No read-modify-write, no retry loop: a failed call wrote nothing and may simply be
//! retried by the caller (exactly-once retries are `record_generation`'s job).

use chrono::NaiveDate;
use diesel::dsl::Limit;
use diesel::prelude::*;
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::sql_types::BigInt;
use orgusage_domain::bounds::validate_usage_date;
use orgusage_domain::money::{mul_rate_to_units, units_to_decimal};
use orgusage_domain::timezone::{local_date_at, month_end, month_start, parse_timezone};
use orgusage_domain::usage::{CatalogueModel, MonthlyLimitStatus, RecordedUsage, UsageRecord};
use orgusage_domain::{Clock, Error, Result};

use super::reservations::settle_reservation;
use crate::Database;
use crate::error::TxError;
use crate::exact::exact_sum;
use crate::prepared::{Stmt, Val, stmt};
use crate::schema::client_daily_usage::dsl as d;
use crate::schema::client_organizations::dsl as co;
use crate::statements::{UpsertClientDay, UpsertModelDay, UpsertUserDay};

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
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::client_organizations)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
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

impl<'r> Increment<'r> {
    /// The user-day binds of [`UpsertUserDay`] (also part of `PgRecordOne`).
    pub(crate) fn user_binds(&self) -> [Val<'r>; 11] {
        let key = [
            Val::Text(self.client_org_id),
            Val::Date(self.usage_date),
            Val::Text(self.user_id),
            Val::Text(self.openrouter_user_id),
        ];
        self.row(&key, &[])
    }

    /// The client-day binds of [`UpsertClientDay`] but its last (`unique_users`).
    pub(crate) fn client_binds(&self) -> [Val<'r>; 9] {
        self.row(
            &[Val::Text(self.client_org_id), Val::Date(self.usage_date)],
            &[],
        )
    }

    /// The model-day binds of [`UpsertModelDay`].
    pub(crate) fn model_binds(&self) -> [Val<'r>; 11] {
        let key = [
            Val::Text(self.client_org_id),
            Val::Date(self.usage_date),
            Val::Text(self.model_name),
        ];
        self.row(&key, &[Val::OptText(self.provider)])
    }

    /// A daily row's binds: `key`, then the amounts every daily row adds (total, input and
    /// output tokens, raw and marked-up cost), then `extra`, then `created_at` and
    /// `updated_at`; `N` is their count.
    fn row<const N: usize>(&self, key: &[Val<'r>], extra: &[Val<'r>]) -> [Val<'r>; N] {
        let amounts = [
            Val::Int(self.total_tokens),
            Val::Int(self.input_tokens),
            Val::Int(self.output_tokens),
            Val::Int(self.raw_units),
            Val::Int(self.markup_units),
        ];
        let stamps = [Val::Int(self.now), Val::Int(self.now)];
        let all = key.iter().chain(&amounts).chain(extra).chain(&stamps);
        debug_assert_eq!(all.clone().count(), N, "binds of a daily row");
        let mut out = [Val::Int(0); N];
        for (slot, val) in out.iter_mut().zip(all) {
            *slot = *val;
        }
        out
    }
}

/// Applies one request's increments to the three daily tables: three atomic upserts, no
/// read-modify-write.
///
/// Order: the user row first, because its `RETURNING total_requests` tells whether this is the
/// user's first request of the day (exactly one transaction sees 1), which the client-day upsert
/// then adds to `unique_users`. Every transaction locks user row, client-day row, model row in
/// that order, so PostgreSQL cannot deadlock; the client-day lock also orders the monthly-limit
/// sum that may follow. Day totals past `i64` are `Overflow` (the transaction rolls back).
pub(crate) fn apply_increment<C>(conn: &mut C, inc: &Increment<'_>) -> Result<(), TxError>
where
    C: Connection,
    for<'a> Stmt<'a, UpsertUserDay, BigInt>: LoadQuery<'a, C, i64>,
    for<'a> Stmt<'a, UpsertClientDay>: ExecuteDsl<C>,
    for<'a> Stmt<'a, UpsertModelDay>: ExecuteDsl<C>,
{
    let user_requests: i64 = stmt::<UpsertUserDay, BigInt>(&inc.user_binds()).get_result(conn)?;
    let mut client_binds = [Val::Int(i64::from(user_requests == 1)); 10];
    client_binds[..9].copy_from_slice(&inc.client_binds());
    let client_rows = stmt::<UpsertClientDay, ()>(&client_binds).execute(conn)?;
    if client_rows == 0 {
        // The upsert's overflow guard refused the update (see `UpsertClientDay`).
        return Err(super::batch_plan::overflow_error(inc.client_org_id, inc.usage_date).into());
    }
    stmt::<UpsertModelDay, ()>(&inc.model_binds()).execute(conn)?;
    Ok(())
}

/// The month's marked-up cost of a client: the client-day rows of `from..=to`.
#[diesel::dsl::auto_type]
fn month_markup_query<'a>(client: &'a str, from: NaiveDate, to: NaiveDate) -> _ {
    d::client_daily_usage
        .filter(
            d::client_org_id
                .eq(client)
                .and(d::usage_date.between(from, to)),
        )
        .select(exact_sum(d::markup_cost))
}

/// Sum of marked-up cost (units) of a client over an inclusive date range.
pub(crate) fn month_markup_units<C>(
    conn: &mut C,
    client: &str,
    (from, to): (NaiveDate, NaiveDate),
) -> QueryResult<i64>
where
    C: Connection,
    for<'a> month_markup_query<'a>: LoadQuery<'a, C, i64>,
{
    month_markup_query(client, from, to).get_result(conn)
}

/// Serialises, per client, the writers that sum a limited client's month (see
/// [`limit_after_increment`]). A no-op on SQLite, whose writers are serialised by `BEGIN
/// IMMEDIATE` already.
pub(crate) trait MonthLock {
    /// Waits until no other transaction of this client is between its increment and its commit.
    fn lock_client_month(&mut self, client_org_id: &str) -> diesel::QueryResult<()>;

    /// The same, deleting the spend reservation `settle` in the same statement when
    /// [`MonthLock::folds_settle`] (see `reservations::settle_reservation`).
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
        // The reservation row is deleted, then the month lock taken (see `PgSettleAndLock`).
        // `authorize` never locks existing reservation rows, so the order cannot deadlock with
        // it.
        let binds = [
            Val::Text(reservation),
            Val::Text(client_org_id),
            Val::Text(client_org_id),
        ];
        stmt::<crate::statements::PgSettleAndLock, ()>(&binds)
            .execute(self)
            .map(|_| ())
    }

    fn folds_settle(&self) -> bool {
        true
    }

    fn lock_client_month(&mut self, client_org_id: &str) -> diesel::QueryResult<()> {
        // Transaction-scoped, so it is released by COMMIT/ROLLBACK and is safe behind PgBouncer
        // in transaction mode.
        stmt::<crate::statements::PgLockClientMonth, ()>(&[Val::Text(client_org_id)])
            .execute(self)
            .map(|_| ())
    }
}

/// After [`apply_increment`]: the limit status of the month the record was booked into, and
/// whether this record crossed it (`None` for a client without a limit). `settle`: the spend
/// reservation the record settles, deleted by the month lock's statement when the connection
/// [`MonthLock::folds_settle`].
///
/// Writers of one client-day are already ordered by the client-day row lock, but writers of
/// *different* days of one month are not, and on PostgreSQL each could sum the month without
/// seeing the other's uncommitted increment: neither would report the crossing. So a client
/// with a limit first takes a transaction-scoped lock on its months; the sum, a new statement
/// with a new snapshot, then sees every predecessor, and exactly one writer sees the crossing.
/// Clients without a limit pay nothing.
pub(crate) fn limit_after_increment<C>(
    conn: &mut C,
    client_id: &str,
    billing: &ClientBilling,
    prepared: &Prepared,
    settle: Option<&str>,
) -> Result<Option<(MonthlyLimitStatus, bool)>, TxError>
where
    C: Connection + MonthLock,
    for<'a> month_markup_query<'a>: LoadQuery<'a, C, i64>,
{
    if billing.monthly_limit.is_none() {
        return Ok(None);
    }
    conn.lock_client_month_settling(client_id, settle)?;
    let after = month_markup_units(conn, client_id, prepared.month)?;
    let before = after.saturating_sub(prepared.markup_units);
    Ok(Some(super::limits::limit_status(
        client_id,
        billing.monthly_limit,
        prepared.month.0,
        after,
        Some(before),
    )))
}

/// The billing settings of a client, active or not.
#[diesel::dsl::auto_type]
fn billing_query<'a>(client: &'a str) -> _ {
    co::client_organizations.find(client).select((
        co::timezone,
        co::markup_rate,
        co::monthly_limit,
        co::is_active,
    ))
}

/// The client's billing settings, active or not (`None`: no such client).
pub(crate) fn find_billing<C>(conn: &mut C, client: &str) -> QueryResult<Option<ClientBilling>>
where
    C: Connection,
    for<'a> Limit<billing_query<'a>>: LoadQuery<'a, C, ClientBilling>,
{
    billing_query(client).first(conn).optional()
}

/// The active client's billing settings inside a transaction (`NotFound` otherwise).
pub(crate) fn load_billing<C>(conn: &mut C, client: &str) -> Result<ClientBilling, TxError>
where
    C: Connection,
    for<'a> Limit<billing_query<'a>>: LoadQuery<'a, C, ClientBilling>,
{
    match find_billing(conn, client)? {
        Some(c) if c.is_active => Ok(c),
        _ => Err(Error::NotFound {
            entity: "client",
            id: client.to_string(),
        }
        .into()),
    }
}

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
            let client = load_billing(conn, &record.client_org_id)?;
            let prepared = prepare(&client, record, explicit_markup, now)?;
            let inc = Increment::new(record, &prepared, raw_units, total_tokens, now);
            apply_increment(conn, &inc)?;
            settle_reservation(conn, record, client.monthly_limit.is_some())?;
            let settle = record.reservation_id.as_deref();
            let status =
                limit_after_increment(conn, &record.client_org_id, &client, &prepared, settle)?;
            Ok(prepared.recorded(raw_units, total_tokens, status))
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

impl Prepared {
    /// What a record booked as prepared reports: its day, tokens and costs, and the month's
    /// limit status from [`limit_after_increment`] (`None`: no limit, never crossed).
    pub(crate) fn recorded(
        &self,
        raw_units: i64,
        total_tokens: i64,
        status: Option<(MonthlyLimitStatus, bool)>,
    ) -> RecordedUsage {
        RecordedUsage {
            usage_date: self.usage_date,
            total_tokens,
            raw_cost: units_to_decimal(raw_units),
            markup_cost: units_to_decimal(self.markup_units),
            limit_crossed: status.as_ref().is_some_and(|s| s.1),
            monthly_limit: status.map(|s| s.0),
        }
    }
}

/// Decides day, markup and month of `record` from the client's settings.
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
