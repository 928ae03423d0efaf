//! The in-memory half of the batch path: validating items, merging records that share a daily
//! row, and deciding each record's monthly-limit status. Nothing here touches the database, so
//! the rules can be read (and tested) apart from the SQL in `batch.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::models::validate_identifier;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::usage::{RecordedUsage, UsageRecord};
use orgusage_domain::{DatabaseErrorKind, Error, Result};

use super::limits::limit_status;
use super::usage::{ClientBilling, Prepared, prepare};
use crate::prepared::Val;

/// One valid item of a batch, by its position in the caller's slice.
#[derive(Debug, Clone)]
pub(crate) struct Item<'r> {
    pub idx: usize,
    pub gen_id: Option<&'r str>,
    pub record: &'r UsageRecord,
    pub raw_units: i64,
    pub explicit_markup: Option<i64>,
    pub total_tokens: i64,
}

/// The checks `record_usage` / `record_generation` make before opening a transaction.
pub(crate) fn validate_item<'r>(
    idx: usize,
    gen_id: Option<&'r str>,
    record: &'r UsageRecord,
) -> Result<Item<'r>> {
    if let Some(id) = gen_id {
        validate_identifier("generation_id", id)?;
    }
    let (raw_units, explicit_markup) = record.validate()?;
    let total_tokens = record.total_tokens()?;
    Ok(Item {
        idx,
        gen_id,
        record,
        raw_units,
        explicit_markup,
        total_tokens,
    })
}

/// A copy of `e` for another item of a failed chunk (`Error` is not `Clone`: its database
/// variant carries the driver's error). The kind, and so `is_transient` and
/// `may_have_committed`, are kept; the source becomes its message.
pub(crate) fn replicate(e: &Error) -> Error {
    match e {
        Error::Database { kind, source } => Error::database(*kind, source.to_string()),
        Error::InvalidInput { field, reason } => Error::invalid(field, reason.clone()),
        Error::Overflow(m) => Error::Overflow(m.clone()),
        Error::Conflict(m) => Error::Conflict(m.clone()),
        Error::NotFound { entity, id } => Error::NotFound {
            entity,
            id: id.clone(),
        },
        other => Error::database(DatabaseErrorKind::Query, other.to_string()),
    }
}

/// A client-day row, the unit the overflow guard refuses.
pub(crate) type DayKey = (String, NaiveDate);

/// An item whose client is active and whose day and markup are decided.
#[derive(Debug)]
pub(crate) struct Live<'r> {
    pub item: &'r Item<'r>,
    pub prepared: Prepared,
}

/// Sums of one merged daily row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sums {
    pub total_tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub requests: i64,
    pub raw_units: i64,
    pub markup_units: i64,
}

impl Sums {
    /// Total, input and output tokens, requests, raw and marked-up cost: the binds every batch
    /// daily upsert takes in this order.
    pub(crate) fn vals(&self) -> [Val<'static>; 6] {
        [
            Val::Int(self.total_tokens),
            Val::Int(self.input_tokens),
            Val::Int(self.output_tokens),
            Val::Int(self.requests),
            Val::Int(self.raw_units),
            Val::Int(self.markup_units),
        ]
    }

    /// Adds another row's sums; `None` when a sum would leave `i64`.
    pub(crate) fn merge(&mut self, o: &Sums) -> Option<()> {
        self.total_tokens = self.total_tokens.checked_add(o.total_tokens)?;
        self.input_tokens = self.input_tokens.checked_add(o.input_tokens)?;
        self.output_tokens = self.output_tokens.checked_add(o.output_tokens)?;
        self.requests = self.requests.checked_add(o.requests)?;
        self.raw_units = self.raw_units.checked_add(o.raw_units)?;
        self.markup_units = self.markup_units.checked_add(o.markup_units)?;
        Some(())
    }

    /// Adds one record; `None` when a sum would leave `i64` (the caller reports `Overflow`).
    fn add(&mut self, l: &Live<'_>) -> Option<()> {
        let r = l.item.record;
        self.total_tokens = self.total_tokens.checked_add(l.item.total_tokens)?;
        self.input_tokens = self.input_tokens.checked_add(r.input_tokens)?;
        self.output_tokens = self.output_tokens.checked_add(r.output_tokens)?;
        self.requests = self.requests.checked_add(1)?;
        self.raw_units = self.raw_units.checked_add(l.item.raw_units)?;
        self.markup_units = self.markup_units.checked_add(l.prepared.markup_units)?;
        Some(())
    }
}

/// The distinct daily rows of a chunk, each written once. `BTreeMap`s, so every transaction
/// locks rows in key order (user rows, then client-day rows, then model rows, as the
/// single-record path does): two batches, or a batch and a single record, cannot deadlock on
/// PostgreSQL. User rows are written in (client, month, user, day) order instead of the map's
/// (client, day, user), so that the user-month rows the rollup trigger locks at commit are
/// taken in key order too.
#[derive(Debug, Default)]
pub(crate) struct Merged<'r> {
    /// (client, day, user) -> sums and the greatest `openrouter_user_id` of the batch.
    pub users: BTreeMap<(&'r str, NaiveDate, &'r str), (Sums, &'r str)>,
    /// (client, day) -> sums and the users whose first request of the day is in this chunk.
    pub clients: BTreeMap<(&'r str, NaiveDate), (Sums, i64)>,
    /// (client, day, model) -> sums and the first provider given in batch order.
    pub models: BTreeMap<(&'r str, NaiveDate, &'r str), (Sums, Option<&'r str>)>,
}

/// Merges the live items into their daily rows; `Err(key)` names a client-day whose merged sums
/// would leave `i64`.
///
/// The greatest `openrouter_user_id` is chosen by byte order, which is the comparison the
/// upsert makes on SQLite and on PostgreSQL databases with the `C` collation; under another
/// collation the stored value could differ from a one-by-one replay when one user sends
/// several OpenRouter ids on one day (the sums never differ).
pub(crate) fn merge<'r>(live: &[Live<'r>]) -> std::result::Result<Merged<'r>, DayKey> {
    let mut m = Merged::default();
    for l in live {
        let r = l.item.record;
        let (c, d) = (r.client_org_id.as_str(), l.prepared.usage_date);
        let overflow = || (c.to_string(), d);
        let user = m
            .users
            .entry((c, d, r.user_id.as_str()))
            .or_insert((Sums::default(), r.openrouter_user_id.as_str()));
        user.0.add(l).ok_or_else(overflow)?;
        if r.openrouter_user_id.as_str() > user.1 {
            user.1 = r.openrouter_user_id.as_str();
        }
        let client = m.clients.entry((c, d)).or_default();
        client.0.add(l).ok_or_else(overflow)?;
        let model = m
            .models
            .entry((c, d, r.model_name.as_str()))
            .or_insert((Sums::default(), None));
        model.0.add(l).ok_or_else(overflow)?;
        if model.1.is_none() {
            model.1 = r.provider.as_deref();
        }
    }
    Ok(m)
}

/// Decides day and markup of each item from its client's settings. Items of unknown or
/// inactive clients, with a bad day, or of a client-day in `refused` get their error in `out`.
pub(crate) fn prepare_all<'r>(
    items: &'r [Item<'r>],
    billing: &HashMap<String, ClientBilling>,
    now: chrono::DateTime<chrono::Utc>,
    refused: &HashSet<DayKey>,
    out: &mut Vec<(usize, Result<GenerationOutcome>)>,
) -> Vec<Live<'r>> {
    let mut live = Vec::with_capacity(items.len());
    for item in items {
        let client = item.record.client_org_id.as_str();
        let prepared = match billing.get(client) {
            Some(b) if b.is_active => {
                prepare(b, item.record, item.explicit_markup, now).map_err(Error::from)
            }
            _ => Err(Error::NotFound {
                entity: "client",
                id: client.to_string(),
            }),
        };
        match prepared {
            Ok(p) if refused.contains(&(client.to_string(), p.usage_date)) => {
                out.push((item.idx, Err(overflow_error(client, p.usage_date))));
            }
            Ok(prepared) => live.push(Live { item, prepared }),
            Err(e) => out.push((item.idx, Err(e))),
        }
    }
    live
}

/// The error of a record whose client-day row would leave the `i64` storage range.
pub(crate) fn overflow_error(client: &str, day: NaiveDate) -> Error {
    Error::Overflow(format!(
        "the daily totals of client {client} on {day} would exceed the i64 storage range"
    ))
}

/// The outcomes of the live items once the rows are written. `month_after` holds, for each
/// limited client and booked month, the month's marked-up spend after this chunk (read under the
/// client's month lock); the chunk's own records are then replayed in batch order from
/// `after - chunk's share`, so exactly one of them, the first to reach the limit, reports the
/// crossing, as if they had been recorded one by one.
pub(crate) fn outcomes(
    live: &[Live<'_>],
    billing: &HashMap<String, ClientBilling>,
    month_after: &HashMap<(&str, NaiveDate), i64>,
    out: &mut Vec<(usize, Result<GenerationOutcome>)>,
) {
    let mut share: HashMap<(&str, NaiveDate), i64> = HashMap::new();
    for l in live {
        let key = (l.item.record.client_org_id.as_str(), l.prepared.month.0);
        let s = share.entry(key).or_default();
        *s = s.saturating_add(l.prepared.markup_units);
    }
    let mut running: HashMap<(&str, NaiveDate), i64> = HashMap::new();
    for l in live {
        let client = l.item.record.client_org_id.as_str();
        let key = (client, l.prepared.month.0);
        let limit = billing.get(client).and_then(|b| b.monthly_limit);
        let status = match (limit, month_after.get(&key)) {
            (Some(_), Some(after)) => {
                let before = *running
                    .entry(key)
                    .or_insert_with(|| after.saturating_sub(share[&key]));
                let now = before.saturating_add(l.prepared.markup_units);
                running.insert(key, now);
                Some(limit_status(
                    client,
                    limit,
                    l.prepared.month.0,
                    now,
                    Some(before),
                ))
            }
            _ => None,
        };
        out.push((
            l.item.idx,
            Ok(GenerationOutcome::Recorded(RecordedUsage {
                usage_date: l.prepared.usage_date,
                total_tokens: l.item.total_tokens,
                raw_cost: units_to_decimal(l.item.raw_units),
                markup_cost: units_to_decimal(l.prepared.markup_units),
                limit_crossed: status.as_ref().is_some_and(|s| s.1),
                monthly_limit: status.map(|s| s.0),
            })),
        ));
    }
}
