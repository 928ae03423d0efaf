//! The batch path: many records in one transaction per chunk of [`BATCH_CHUNK`] records, each
//! distinct daily row written once by a multi-row upsert.
//!
//! Guarantees are those of the single-record calls, per item: an invalid item, or one of an
//! unknown or inactive client, gets its own error and writes nothing; the valid items of a chunk
//! commit together or not at all; a generation id is billed at most once (repeats inside the
//! batch and ids already in the ledger are `Duplicate`); `unique_users` stays exact; and
//! `limit_crossed` is set on exactly one record per client and booked month, the first in batch
//! order that reaches the limit (on PostgreSQL under the same per-client advisory lock as
//! `record_usage`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Nullable, Text, Untyped};
use orgusage_domain::Result;
use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::timezone::month_start;
use orgusage_domain::usage::{RecordedUsage, UsageRecord};

use super::batch_plan::{
    DayKey, Item, Sums, merge, outcomes, overflow_error, prepare_all, replicate, validate_item,
};
use super::usage::MonthLock;
use super::usage::{ClientBilling, UsageRepo};
use crate::error::TxError;
use crate::prepared::{DynStmt, Val, stmt};
use crate::statements::{
    BatchBilling, BatchClientDay, BatchLedger, BatchModelDay, BatchRollupsByCaller, BatchUserDay,
    BatchUserMonth,
};

/// Records per transaction of the batch path (`record_usage_batch`, `record_generations`,
/// group commit). Its widest statement, the user-day upsert, binds 12 values per distinct
/// (client, day, user) row, so a chunk binds at most 12,000 values in one statement: well under
/// SQLite's 32,766 and PostgreSQL's (and diesel's) 65,535. Larger chunks gained nothing
/// measurable; smaller ones pay the per-transaction cost (a WAL flush) more often.
pub const BATCH_CHUNK: usize = 1000;

/// A batch item: an optional OpenRouter generation id and the record.
pub(crate) type BatchItem<'r> = (Option<&'r str>, &'r UsageRecord);

impl UsageRepo<'_> {
    /// Records many requests, one result per record in input order (see the module docs for
    /// the guarantees). Records sharing a client-day, user-day or model-day row are added to
    /// it by one statement.
    pub fn record_usage_batch(&self, records: &[UsageRecord]) -> Vec<Result<RecordedUsage>> {
        let items: Vec<BatchItem<'_>> = records.iter().map(|r| (None, r)).collect();
        self.record_items(&items)
            .into_iter()
            .map(|r| {
                r.map(|o| match o {
                    GenerationOutcome::Recorded(u) => u,
                    // Only items with a generation id can be duplicates.
                    GenerationOutcome::Duplicate => {
                        unreachable!("usage items are never duplicates")
                    }
                })
            })
            .collect()
    }

    /// Records many OpenRouter generations exactly once per (client, generation id), one
    /// outcome per item in input order. An id repeated inside the batch counts once (its first
    /// valid occurrence); the others, and ids already in the ledger, are `Duplicate`.
    pub fn record_generations(
        &self,
        generations: &[(String, UsageRecord)],
    ) -> Vec<Result<GenerationOutcome>> {
        let items: Vec<BatchItem<'_>> = generations
            .iter()
            .map(|(id, r)| (Some(id.as_str()), r))
            .collect();
        self.record_items(&items)
    }

    /// The engine of both batch calls and of group commit: validates every item, then writes
    /// the valid ones chunk by chunk.
    pub(crate) fn record_items(&self, items: &[BatchItem<'_>]) -> Vec<Result<GenerationOutcome>> {
        let _span =
            tracing::debug_span!("orgusage.usage.record_batch", items = items.len()).entered();
        let mut results: Vec<Option<Result<GenerationOutcome>>> =
            std::iter::repeat_with(|| None).take(items.len()).collect();
        let mut valid = Vec::with_capacity(items.len());
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for (idx, (gen_id, record)) in items.iter().enumerate() {
            match validate_item(idx, *gen_id, record) {
                Err(e) => results[idx] = Some(Err(e)),
                Ok(item) => match gen_id {
                    // A repeat inside the batch: the first valid occurrence is the one billed.
                    Some(id) if !seen.insert((record.client_org_id.as_str(), id)) => {
                        results[idx] = Some(Ok(GenerationOutcome::Duplicate));
                    }
                    _ => valid.push(item),
                },
            }
        }
        for chunk in valid.chunks(BATCH_CHUNK) {
            for (idx, r) in self.write_chunk(chunk) {
                results[idx] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(orgusage_domain::Error::database(
                        orgusage_domain::DatabaseErrorKind::Query,
                        "batch item without an outcome",
                    ))
                })
            })
            .collect()
    }

    /// One chunk in one transaction. When the overflow guard refuses client-day rows, the
    /// transaction is rolled back and the chunk is written again without the records of those
    /// rows, which get `Overflow`: the other records must not fail for them.
    fn write_chunk(&self, chunk: &[Item<'_>]) -> Vec<(usize, Result<GenerationOutcome>)> {
        let _span =
            tracing::debug_span!("orgusage.usage.record_chunk", items = chunk.len()).entered();
        let mut refused: HashSet<DayKey> = HashSet::new();
        loop {
            let mut newly_refused: Vec<DayKey> = Vec::new();
            match self.try_chunk(chunk, &refused, &mut newly_refused) {
                Ok(out) => return out,
                Err(_) if !newly_refused.is_empty() => refused.extend(newly_refused),
                Err(e) => {
                    return chunk
                        .iter()
                        .map(|item| (item.idx, Err(replicate(&e))))
                        .collect();
                }
            }
        }
    }

    fn try_chunk(
        &self,
        chunk: &[Item<'_>],
        refused: &HashSet<DayKey>,
        newly_refused: &mut Vec<DayKey>,
    ) -> Result<Vec<(usize, Result<GenerationOutcome>)>> {
        let clients: BTreeSet<&str> = chunk
            .iter()
            .map(|i| i.record.client_org_id.as_str())
            .collect();
        let clients: Vec<&str> = clients.into_iter().collect();
        let now = self.clock.now();
        let ts = now.timestamp();
        // PostgreSQL: this transaction writes its month rollups itself (see `BatchUserMonth`).
        let own_rollups = self.db.backend() == crate::Backend::Postgres;
        crate::write_tx!(self.db, |conn| {
            let binds = clients.iter().map(|c| Val::Text(c)).collect();
            type Billing = (Text, Text, BigInt, Nullable<BigInt>, Bool);
            let rows: Vec<(String, String, i64, Option<i64>, bool)> =
                DynStmt::<Billing>::rows::<BatchBilling>(clients.len(), binds).load(conn)?;
            let billing: HashMap<String, ClientBilling> = rows
                .into_iter()
                .map(|(id, timezone, markup_rate, monthly_limit, is_active)| {
                    let b = ClientBilling {
                        timezone,
                        markup_rate,
                        monthly_limit,
                        is_active,
                    };
                    (id, b)
                })
                .collect();
            let mut out = Vec::with_capacity(chunk.len());
            let mut live = prepare_all(chunk, &billing, now, refused, &mut out);

            // The ledger first, as in `record_generation`: only ids it accepts are billed.
            // Key order again, so concurrent batches insert (and wait on) ledger rows in one order.
            type LedgerRow<'m> = (NaiveDate, i64, i64, Option<i64>, &'m str);
            let ledger: BTreeMap<(&str, &str), LedgerRow<'_>> = live
                .iter()
                .filter_map(|l| {
                    let id = l.item.gen_id?;
                    let record = l.item.record;
                    let row = (
                        l.prepared.usage_date,
                        l.item.raw_units,
                        l.item.total_tokens,
                        super::generations::ledger_instant(record, now),
                        record.model_name.as_str(),
                    );
                    Some(((record.client_org_id.as_str(), id), row))
                })
                .collect();
            // Spend reservations of every item that reached this point: settled with the usage
            // it books, or released when the generation turns out to be a duplicate (as the
            // single-record paths do). Rare in batches, so one small statement each.
            for l in &live {
                if let Some(id) = l.item.record.reservation_id.as_deref() {
                    super::reservations::settle(conn, id, &l.item.record.client_org_id)?;
                }
            }
            if !ledger.is_empty() {
                let mut binds = Vec::with_capacity(ledger.len() * 8);
                for ((client, id), (day, raw, tokens, created_at, model)) in &ledger {
                    binds.extend([
                        Val::Text(client),
                        Val::Text(id),
                        Val::Date(*day),
                        Val::Int(ts),
                        Val::Int(*raw),
                        Val::Int(*tokens),
                        Val::OptInt(*created_at),
                        Val::Text(model),
                    ]);
                }
                let new: Vec<(String, String)> =
                    DynStmt::<(Text, Text)>::rows::<BatchLedger>(ledger.len(), binds).load(conn)?;
                let new: HashSet<(String, String)> = new.into_iter().collect();
                live.retain(|l| match l.item.gen_id {
                    Some(id) => {
                        let key = (l.item.record.client_org_id.clone(), id.to_string());
                        let fresh = new.contains(&key);
                        if !fresh {
                            out.push((l.item.idx, Ok(GenerationOutcome::Duplicate)));
                        }
                        fresh
                    }
                    None => true,
                });
            }
            if live.is_empty() {
                return Ok(out);
            }
            let mut merged = match merge(&live) {
                Ok(m) => m,
                Err(key) => {
                    let e = overflow_error(&key.0, key.1);
                    newly_refused.push(key);
                    return Err(e.into());
                }
            };

            // User rows first: their returned counts tell which users are new today. They are
            // sent ordered by (client, month, user, day): PostgreSQL's month-rollup trigger
            // locks their user-month rows at commit in this order, so month rows are locked in
            // key order as well (see `Merged`).
            let mut users: Vec<_> = merged.users.iter().collect();
            users.sort_by_key(|((client, day, user), _)| (*client, month_start(*day), *user, *day));
            let mut binds = Vec::with_capacity(merged.users.len() * 12);
            for ((client, day, user), (s, or_user)) in users {
                binds.extend([
                    Val::Text(client),
                    Val::Date(*day),
                    Val::Text(user),
                    Val::Text(or_user),
                ]);
                binds.extend(s.vals());
                binds.extend([Val::Int(ts), Val::Int(ts)]);
            }
            if own_rollups {
                stmt::<BatchRollupsByCaller, Untyped>(&[]).execute(conn)?;
            }
            type Counts = (Text, Date, Text, BigInt);
            let counts: Vec<(String, NaiveDate, String, i64)> =
                DynStmt::<Counts>::rows::<BatchUserDay>(merged.users.len(), binds).load(conn)?;
            let counts: HashMap<(String, NaiveDate, String), i64> = counts
                .into_iter()
                .map(|(c, d, u, total)| ((c, d, u), total))
                .collect();
            for ((client, day, user), (s, _)) in &merged.users {
                let key = (client.to_string(), *day, user.to_string());
                if counts.get(&key) == Some(&s.requests) {
                    if let Some(c) = merged.clients.get_mut(&(*client, *day)) {
                        c.1 += 1;
                    }
                }
            }

            let mut binds = Vec::with_capacity(merged.clients.len() * 11);
            for ((client, day), (s, new_users)) in &merged.clients {
                binds.extend([Val::Text(client), Val::Date(*day)]);
                binds.extend(s.vals());
                binds.extend([Val::Int(ts), Val::Int(ts), Val::Int(*new_users)]);
            }
            let written: Vec<(String, NaiveDate)> =
                DynStmt::<(Text, Date)>::rows::<BatchClientDay>(merged.clients.len(), binds)
                    .load(conn)?;
            if written.len() < merged.clients.len() {
                // The overflow guard refused these rows (see `UPSERT_CLIENT_DAY`).
                let written: HashSet<(String, NaiveDate)> = written.into_iter().collect();
                newly_refused.extend(
                    merged
                        .clients
                        .keys()
                        .map(|(c, d)| (c.to_string(), *d))
                        .filter(|k| !written.contains(k)),
                );
                let (c, d) = &newly_refused[0];
                return Err(overflow_error(c, *d).into());
            }

            let mut binds = Vec::with_capacity(merged.models.len() * 12);
            for ((client, day, model), (s, provider)) in &merged.models {
                binds.extend([Val::Text(client), Val::Date(*day), Val::Text(model)]);
                binds.extend(s.vals());
                binds.extend([Val::OptText(*provider), Val::Int(ts), Val::Int(ts)]);
            }
            DynStmt::<()>::rows::<BatchModelDay>(merged.models.len(), binds).execute(conn)?;

            // Limited clients: the month lock, then the month's sum, as in `record_usage`;
            // clients in key order, so two batches take their locks in the same order.
            let mut months: BTreeMap<&str, BTreeSet<(NaiveDate, NaiveDate)>> = BTreeMap::new();
            for l in &live {
                let client = l.item.record.client_org_id.as_str();
                if billing
                    .get(client)
                    .is_some_and(|b| b.monthly_limit.is_some())
                {
                    months.entry(client).or_default().insert(l.prepared.month);
                }
            }
            let mut month_after: HashMap<(&str, NaiveDate), i64> = HashMap::new();
            for (client, spans) in &months {
                conn.lock_client_month(client)?;
                for &span in spans {
                    let after = super::usage::month_markup_units(conn, client, span)?;
                    month_after.insert((*client, span.0), after);
                }
            }
            if own_rollups {
                // Last, in key order, like the rollup trigger's locks at the commit of the
                // other paths: no month row is held while a day row is waited for.
                let mut months: BTreeMap<(&str, NaiveDate, &str), (Sums, &str, i64)> =
                    BTreeMap::new();
                for ((client, day, user), (s, or_user)) in &merged.users {
                    let key = (client.to_string(), *day, user.to_string());
                    let created = i64::from(counts.get(&key) == Some(&s.requests));
                    let m = months
                        .entry((*client, month_start(*day), *user))
                        .or_insert((Sums::default(), or_user, 0));
                    m.0.merge(s)
                        .ok_or_else(|| TxError::from(overflow_error(client, *day)))?;
                    m.1 = m.1.max(or_user);
                    m.2 += created;
                }
                let mut binds = Vec::with_capacity(months.len() * 11);
                for ((client, month, user), (s, or_user, created)) in &months {
                    binds.extend([
                        Val::Text(client),
                        Val::Date(*month),
                        Val::Text(user),
                        Val::Text(or_user),
                        Val::Int(s.total_tokens),
                        Val::Int(s.input_tokens),
                        Val::Int(s.output_tokens),
                        Val::Int(s.requests),
                        Val::Int(s.raw_units),
                        Val::Int(s.markup_units),
                        Val::Int(*created),
                    ]);
                }
                DynStmt::<()>::rows::<BatchUserMonth>(months.len(), binds).execute(conn)?;
            }
            outcomes(&live, &billing, &month_after, &mut out);
            Ok(out)
        })
    }
}
