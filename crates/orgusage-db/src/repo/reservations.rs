//! The spend guard: `authorize` reserves a request's marked-up estimate against a limited
//! client's month, or refuses; the request's record settles the reservation in its own
//! transaction (see [`settle_reservation!`]); `release` drops it; expiry frees it.
//!
//! # The guarantee
//! For a limited client, `authorize` is one transaction that holds the client's month lock
//! (the advisory lock of `MonthLock` on PostgreSQL, the database write lock on SQLite) while it
//! sums the month's recorded spend and live reservations and inserts the new reservation, so
//! two authorizations can never both take the last of the budget. A record deletes its
//! reservation in the same transaction that adds its cost, so a concurrent `authorize` sees
//! either the reservation or the cost, never both and never neither. Hence, at every commit,
//!
//! `spent + live reservations <= limit + Σ max(0, actual − estimate)`
//!
//! over the records that settled a reservation, plus whatever was recorded with no (or an
//! expired) reservation: the guard limits what is *authorized*, the record always books what
//! was *spent*.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use orgusage_domain::money::{mul_rate_to_units, units_to_decimal, validate_amount};
use orgusage_domain::spend::{Authorization, Refusal, Reservation};
use orgusage_domain::timezone::{local_date_at, month_end, month_start, parse_timezone};
use orgusage_domain::{Clock, Error, Result};
use rust_decimal::Decimal;

use diesel::query_dsl::methods::ExecuteDsl;
use orgusage_domain::usage::UsageRecord;

use super::usage::{MonthLock, find_billing, load_billing, month_markup_units};
use crate::Database;
use crate::error::TxError;
use crate::exact::exact_sum;
use crate::prepared::{Stmt, Val, stmt};
use crate::schema::spend_reservations::dsl as sr;
use crate::statements::{Settle, SqliteReserve};

/// How long a reservation holds budget when the caller does not say: long enough for a slow
/// streamed completion, short enough that a crashed host frees its budget the same hour.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::minutes(15);

/// Deletes the reservation a record settles, inside the record's transaction (the one hook of
/// the record paths); `lock_follows` tells whether [`limit_after_increment`] runs next with the
/// reservation id (it then deletes it on PostgreSQL, in the month lock's statement: no extra
/// round trip). A reservation that already expired or was released is simply not there: the
/// record still books its cost.
///
/// [`limit_after_increment`]: super::usage::limit_after_increment
pub(crate) fn settle_reservation<C>(
    conn: &mut C,
    record: &UsageRecord,
    lock_follows: bool,
) -> Result<(), TxError>
where
    C: Connection + MonthLock,
    for<'a> Stmt<'a, Settle>: ExecuteDsl<C>,
{
    if let Some(id) = record.reservation_id.as_deref() {
        if !(lock_follows && conn.folds_settle()) {
            settle(conn, id, &record.client_org_id)?;
        }
    }
    Ok(())
}

/// Deletes reservation `id` of `client` (prepared once per connection).
pub(crate) fn settle<C>(conn: &mut C, id: &str, client: &str) -> diesel::QueryResult<usize>
where
    C: Connection,
    for<'a> Stmt<'a, Settle>: ExecuteDsl<C>,
{
    stmt::<Settle, ()>(&[Val::Text(id), Val::Text(client)]).execute(conn)
}

/// The row `orgusage_authorize` (PostgreSQL) returns.
#[cfg(feature = "postgres")]
#[derive(Debug)]
struct PgAuthorize {
    status: i32,
    limit_units: Option<i64>,
    spent: i64,
    reserved: i64,
    amount: i64,
    month_first: Option<NaiveDate>,
}

/// What one authorization decided, in storage units.
#[derive(Debug)]
enum Decision {
    NotFound,
    Unlimited,
    Refused {
        limit: i64,
        spent: i64,
        reserved: i64,
        amount: i64,
        month: NaiveDate,
    },
    Reserved {
        amount: i64,
        month: NaiveDate,
    },
}

/// Repository of the spend guard.
#[derive(Debug, Clone, Copy)]
pub struct SpendRepo<'a> {
    pub(crate) db: &'a Database,
    pub(crate) clock: &'a dyn Clock,
}

impl<'a> SpendRepo<'a> {
    /// A repository over `db` using `clock`.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// [`SpendRepo::authorize_for`] with [`DEFAULT_RESERVATION_TTL`].
    pub fn authorize(
        &self,
        client_org_id: &str,
        estimated_raw_cost: Decimal,
    ) -> Result<Authorization> {
        self.authorize_for(client_org_id, estimated_raw_cost, DEFAULT_RESERVATION_TTL)
    }

    /// Reserves `estimated_raw_cost × markup_rate` against the client's current local month,
    /// or refuses when recorded spend + live reservations + this estimate would pass
    /// `monthly_limit`. A client without a limit gets [`Authorization::Unlimited`] after one
    /// read: no lock, no write.
    ///
    /// Errors: unknown or inactive client (`NotFound`), a negative estimate or a `ttl` that is
    /// not positive (`InvalidInput`), database errors. A failed call reserved nothing.
    pub fn authorize_for(
        &self,
        client_org_id: &str,
        estimated_raw_cost: Decimal,
        ttl: Duration,
    ) -> Result<Authorization> {
        let _span = tracing::debug_span!("orgusage.spend.authorize", client_org_id).entered();
        orgusage_domain::models::validate_identifier("client_org_id", client_org_id)?;
        validate_amount("estimated_raw_cost", estimated_raw_cost)?;
        orgusage_domain::bounds::validate_at_most(
            "estimated_raw_cost",
            estimated_raw_cost,
            orgusage_domain::bounds::MAX_RECORD_COST,
        )?;
        if ttl <= Duration::zero() {
            return Err(Error::invalid("ttl", "must be positive"));
        }
        let now = self.clock.now();
        let expires = now + ttl;
        let id = format!("res_{}", uuid::Uuid::new_v4().simple());
        let decision = match self.db.backend() {
            crate::Backend::Sqlite => {
                self.decide_sqlite(&id, client_org_id, estimated_raw_cost, now, expires)?
            }
            crate::Backend::Postgres => {
                self.decide_postgres(&id, client_org_id, estimated_raw_cost, now, expires)?
            }
        };
        let outcome = match decision {
            Decision::NotFound => {
                return Err(Error::NotFound {
                    entity: "client",
                    id: client_org_id.to_string(),
                });
            }
            Decision::Unlimited => Authorization::Unlimited,
            Decision::Refused {
                limit,
                spent,
                reserved,
                amount,
                month,
            } => {
                tracing::debug!(limit, spent, reserved, amount, "spend refused");
                Authorization::Refused(Refusal {
                    client_org_id: client_org_id.to_string(),
                    month_start: month,
                    monthly_limit: units_to_decimal(limit),
                    spent: units_to_decimal(spent),
                    reserved: units_to_decimal(reserved),
                    requested: units_to_decimal(amount),
                })
            }
            Decision::Reserved { amount, month } => Authorization::Reserved(Reservation {
                id,
                client_org_id: client_org_id.to_string(),
                month_start: month,
                amount: units_to_decimal(amount),
                expires_at: expires,
            }),
        };
        Ok(outcome)
    }

    /// SQLite: a read decides whether the client is limited at all; a limited client's check
    /// and insert run under `BEGIN IMMEDIATE`, i.e. the database write lock, which every
    /// recording transaction also holds.
    fn decide_sqlite(
        &self,
        id: &str,
        client: &str,
        estimate: Decimal,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Decision> {
        let billing = crate::with_conn!(self.db, |conn| Ok(find_billing(conn, client)?))?;
        match billing {
            Some(b) if b.is_active && b.monthly_limit.is_some() => {}
            Some(b) if b.is_active => return Ok(Decision::Unlimited),
            _ => return Ok(Decision::NotFound),
        }
        crate::write_tx!(self.db, |conn| {
            // Re-read inside the lock: the limit or the client may have changed meanwhile.
            let Ok(billing) = load_billing(conn, client) else {
                return Ok(Decision::NotFound);
            };
            let Some(limit) = billing.monthly_limit else {
                return Ok(Decision::Unlimited);
            };
            let tz = parse_timezone(&billing.timezone)?;
            let today = local_date_at(tz, now);
            let (first, last) = (month_start(today), month_end(today));
            let amount = mul_rate_to_units(estimate, billing.markup_rate)?;
            let (now_s, exp_s) = (now.timestamp(), expires.timestamp());
            // The check and the insert are one prepared statement (re-preparing the DSL's
            // SUM queries on every call cost about as much as the rest of the guard).
            let binds = [
                Val::Text(id),
                Val::Text(client),
                Val::Date(first),
                Val::Int(amount),
                Val::Int(now_s),
                Val::Int(exp_s),
                Val::Text(client),
                Val::Date(first),
                Val::Date(last),
                Val::Text(client),
                Val::Date(first),
                Val::Int(now_s),
                Val::Int(amount),
                Val::Int(limit),
            ];
            let inserted = stmt::<SqliteReserve, ()>(&binds).execute(conn)?;
            if inserted == 1 {
                return Ok(Decision::Reserved {
                    amount,
                    month: first,
                });
            }
            // Refused (the rare path): the figures for the refusal.
            let spent = month_markup_units(conn, client, (first, last))?;
            let reserved: i64 = sr::spend_reservations
                .filter(
                    sr::client_org_id
                        .eq(client)
                        .and(sr::month_start.eq(first))
                        .and(sr::expires_at.gt(now_s)),
                )
                .select(exact_sum(sr::amount))
                .get_result(conn)?;
            Ok(Decision::Refused {
                limit,
                spent,
                reserved,
                amount,
                month: first,
            })
        })
    }

    /// PostgreSQL: one statement, `orgusage_authorize` (see the `spend_control` migration),
    /// which locks the client's month, sums with fresh snapshots and inserts: one round trip.
    #[cfg(feature = "postgres")]
    fn decide_postgres(
        &self,
        id: &str,
        client: &str,
        estimate: Decimal,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Decision> {
        // Irrefutable in a build without the `sqlite` feature.
        #[allow(irrefutable_let_patterns)]
        let crate::conn::PoolKind::Postgres(pool) = self.db.pool() else {
            return Err(Error::database(
                orgusage_domain::DatabaseErrorKind::Configuration,
                "not a PostgreSQL pool",
            ));
        };
        let mut conn = self.db.checkout_pg(pool)?;
        // The estimate travels as text and becomes NUMERIC: exact, never a float. A fixed
        // text with a static id, so it is prepared once per connection.
        let estimate = estimate.to_string();
        let binds = [
            Val::Text(id),
            Val::Text(client),
            Val::Text(&estimate),
            Val::Int(now.timestamp()),
            Val::Int(expires.timestamp()),
        ];
        type Row = (
            diesel::sql_types::Integer,
            diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
            diesel::sql_types::BigInt,
            diesel::sql_types::BigInt,
            diesel::sql_types::BigInt,
            diesel::sql_types::Nullable<diesel::sql_types::Date>,
        );
        let row: Result<PgAuthorize> = stmt::<crate::statements::PgAuthorize, Row>(&binds)
            .get_result::<(i32, Option<i64>, i64, i64, i64, Option<NaiveDate>)>(&mut *conn)
            .map(
                |(status, limit_units, spent, reserved, amount, month_first)| PgAuthorize {
                    status,
                    limit_units,
                    spent,
                    reserved,
                    amount,
                    month_first,
                },
            )
            .map_err(|e| Error::from(TxError::from(e)));
        crate::conn::discard_if_dead(&mut conn, &row);
        let row = row?;
        let month = row.month_first.unwrap_or_else(|| now.date_naive());
        Ok(match (row.status, row.limit_units) {
            (0, _) => Decision::Unlimited,
            (1, _) => Decision::Reserved {
                amount: row.amount,
                month,
            },
            (2, Some(limit)) => Decision::Refused {
                limit,
                spent: row.spent,
                reserved: row.reserved,
                amount: row.amount,
                month,
            },
            _ => Decision::NotFound,
        })
    }

    #[cfg(not(feature = "postgres"))]
    fn decide_postgres(
        &self,
        _id: &str,
        _client: &str,
        _estimate: Decimal,
        _now: DateTime<Utc>,
        _expires: DateTime<Utc>,
    ) -> Result<Decision> {
        Err(Error::database(
            orgusage_domain::DatabaseErrorKind::Configuration,
            "orgusage was built without the `postgres` feature",
        ))
    }

    /// Drops a reservation without recording anything (the request was not sent or failed
    /// before it cost anything). `Ok(false)` if it was already settled, released or purged.
    pub fn release(&self, reservation_id: &str) -> Result<bool> {
        let _span = tracing::debug_span!("orgusage.spend.release", reservation_id).entered();
        let n = crate::write_tx!(self.db, |conn| {
            Ok(
                diesel::delete(sr::spend_reservations.filter(sr::id.eq(reservation_id)))
                    .execute(conn)?,
            )
        })?;
        Ok(n == 1)
    }

    /// The client's reservations that still hold budget now, oldest first.
    pub fn live_reservations(&self, client_org_id: &str) -> Result<Vec<Reservation>> {
        let now = self.clock.now().timestamp();
        let rows: Vec<(String, NaiveDate, i64, i64)> = crate::with_conn!(self.db, |conn| {
            Ok(sr::spend_reservations
                .filter(
                    sr::client_org_id
                        .eq(client_org_id)
                        .and(sr::expires_at.gt(now)),
                )
                .order((sr::created_at.asc(), sr::id.asc()))
                .select((sr::id, sr::month_start, sr::amount, sr::expires_at))
                .load(conn)?)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, month, amount, expires)| Reservation {
                id,
                client_org_id: client_org_id.to_string(),
                month_start: month,
                amount: units_to_decimal(amount),
                expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes expired reservations (they already hold no budget; this only keeps the table
    /// small). Returns how many went. Safe to run from any instance at any time.
    pub fn purge_expired_reservations(&self) -> Result<usize> {
        let now = self.clock.now().timestamp();
        crate::write_tx!(self.db, |conn| {
            Ok(
                diesel::delete(sr::spend_reservations.filter(sr::expires_at.le(now)))
                    .execute(conn)?,
            )
        })
    }
}
