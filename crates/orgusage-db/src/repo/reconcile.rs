//! The generation ledger per UTC day and model, for reconciliation with OpenRouter's
//! `/activity` (which is bucketed by UTC day of the request's start).
//!
//! Our usage tables are per client-local day, so they cannot be cut at UTC midnight. The ledger
//! can: since the spend-control migration each row keeps the generation's UTC `created_at`
//! (unix seconds) and model, written in the same transaction as the usage it bills.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::spend::{LedgerDay, LedgerDays};
use orgusage_domain::{Error, Result};

use super::generations::GenerationRepo;
use crate::schema::processed_generations::dsl as pg;

/// A ledger row's UTC instant, model and raw cost (units).
type LedgerRow = (Option<i64>, Option<String>, i64);

impl GenerationRepo<'_> {
    /// The client's ledger for the UTC days `from..=to`, per day and model.
    pub fn ledger_by_utc_day(
        &self,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<LedgerDays> {
        let _span =
            tracing::debug_span!("orgusage.generations.ledger_by_utc_day", client_org_id).entered();
        if from > to {
            return Err(Error::invalid("from", format!("{from} is after {to}")));
        }
        let start = from.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
        let end = (to + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp());
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::invalid("to", "out of range"));
        };
        let (rows, unplaced): (Vec<LedgerRow>, i64) = crate::with_conn!(self.db, |conn| {
            let rows = pg::processed_generations
                .filter(
                    pg::client_org_id
                        .eq(client_org_id)
                        .and(pg::created_at.ge(start))
                        .and(pg::created_at.lt(end)),
                )
                .select((pg::created_at, pg::model_name, pg::total_cost))
                .load(conn)?;
            // A client-local day overlaps the UTC day before or after it.
            let unplaced = pg::processed_generations
                .filter(
                    pg::client_org_id
                        .eq(client_org_id)
                        .and(pg::created_at.is_null())
                        .and(
                            pg::generation_date
                                .between(from - Duration::days(1), to + Duration::days(1)),
                        ),
                )
                .count()
                .get_result(conn)?;
            Ok((rows, unplaced))
        })?;
        let mut days: BTreeMap<(NaiveDate, String), (i128, i64)> = BTreeMap::new();
        for (at, model, cost) in rows {
            let Some(date) = at
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.date_naive())
            else {
                continue;
            };
            let e = days
                .entry((date, model.unwrap_or_default()))
                .or_insert((0, 0));
            e.0 += i128::from(cost);
            e.1 += 1;
        }
        let days = days
            .into_iter()
            .map(|((date, model), (units, requests))| {
                let units = i64::try_from(units)
                    .map_err(|_| Error::Overflow(format!("ledger sum of {model} on {date}")))?;
                Ok(LedgerDay {
                    date,
                    model,
                    raw_cost: units_to_decimal(units),
                    requests,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LedgerDays { days, unplaced })
    }
}
