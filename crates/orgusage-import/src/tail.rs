//! The last phases: live counters, the `unique_users` recount, the ledger (with the B22 rule)
//! and the cleanup log.

use chrono::NaiveDate;
use orgusage_db::Backend;
use rust_decimal::Decimal;

use crate::error::Result;
use crate::phases::{Units, ledger_day_marked_up, ledger_raw_units};
use crate::report::LiveCounterLine;
use crate::rows::*;
use crate::run::Run;
use crate::source::{Kind, keyset_after};
use crate::state::{Batch, NewCleanup, NewDaily, NewLedger};
use crate::{LedgerCostRule, Phase};
use orgusage_db::bulk::Value;

/// A client, a generation day, and the day's raw and marked-up cost when its ledger is marked up.
type LedgerDayKey = (String, String, Option<(i64, i64)>);

/// A source aggregate: a float sum and a row count.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct SumCount {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub v: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

impl Run<'_> {
    /// `?` for a date parameter, cast on PostgreSQL.
    pub(crate) fn date_param(&self) -> &'static str {
        match self.src.backend() {
            Backend::Postgres => "CAST(? AS DATE)",
            Backend::Sqlite => "?",
        }
    }

    /// The decision for every live counter: `imported` only when its day has no daily row in the
    /// source (under either id format); otherwise adding it would double count (B7/B9).
    pub(crate) fn live_counter_plan(
        &mut self,
    ) -> Result<Vec<(LiveCounterLine, Option<NewDaily>, Units)>> {
        if !self.shape.has("client_live_counters") {
            return Ok(Vec::new());
        }
        let known = self.known_clients()?;
        // "current_date" is quoted by the select list: unquoted, SQLite reads today's date (B25).
        let sql = format!(
            "SELECT {} FROM {} ORDER BY client_org_id",
            self.shape.select("client_live_counters", LIVE_COLS),
            self.shape.table("client_live_counters")
        );
        let counters: Vec<SrcLive> = self.src.load("client_live_counters", &sql, &[])?;
        let exists_sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {} WHERE client_org_id = ? AND usage_date = {}",
            self.shape.table("client_daily_usage"),
            self.date_param()
        );
        let mut out = Vec::new();
        for c in counters {
            let u = Units::of(
                "client_live_counters",
                &c.client_org_id,
                c.today_tokens,
                c.today_requests,
                c.today_raw_cost,
                c.today_markup_cost,
            )?;
            let date_text = c.current_date.clone().unwrap_or_default();
            let mut line = LiveCounterLine {
                client_org_id: c.client_org_id.clone(),
                counter_date: date_text.clone(),
                action: String::new(),
                totals: u.totals(),
            };
            let row_exists = self.shape.has("client_daily_usage") && {
                let n: Vec<Count> = self.src.load(
                    "daily row of a live counter",
                    &exists_sql,
                    &[c.client_org_id.clone(), date_text.clone()],
                )?;
                n.first().is_some_and(|n| n.n > 0)
            };
            let mut row = None;
            line.action = if !known.contains(&c.client_org_id) {
                "skipped_unknown_client".into()
            } else if u.tokens == 0 && u.requests == 0 && u.raw == 0 && u.markup == 0 {
                "skipped_empty".into()
            } else if row_exists {
                "skipped_day_exists".into()
            } else {
                let date = parse_date(&date_text, "client_live_counters", &c.client_org_id)?;
                let at = c.last_updated.unwrap_or(self.now);
                row = Some(NewDaily {
                    client_org_id: c.client_org_id.clone(),
                    usage_date: date,
                    total_tokens: u.tokens,
                    total_requests: u.requests,
                    raw_cost: u.raw,
                    markup_cost: u.markup,
                    unique_users: 0,
                    created_at: at,
                    updated_at: at,
                });
                "imported".into()
            };
            out.push((line, row, u));
        }
        Ok(out)
    }

    pub(crate) fn live_counters(&mut self) -> Result<()> {
        let plan = self.live_counter_plan()?;
        let mut batch = Batch::default();
        let n = plan.len() as u64;
        for (_, row, u) in plan {
            if let Some(row) = row {
                let (client, date) = (row.client_org_id.clone(), row.usage_date.to_string());
                self.add_rounding_pub(&mut batch, &client, &date, &u);
                batch.rows.daily.push(row);
            }
        }
        self.finish_pub(Phase::LiveCounters, batch, n)
    }

    /// `unique_users` = the number of user rows of the day. The original's column defaulted to
    /// 1 and was never maintained (B28), so it is recomputed, in one statement.
    pub(crate) fn unique_users(&mut self) -> Result<()> {
        let batch = Batch {
            statements: vec![
                "UPDATE client_daily_usage SET unique_users = (SELECT COUNT(*) \
                 FROM client_user_daily_usage u WHERE u.client_org_id = client_daily_usage.client_org_id \
                 AND u.usage_date = client_daily_usage.usage_date)"
                    .into(),
            ],
            ..Batch::default()
        };
        self.finish_pub(Phase::UniqueUsers, batch, 0)
    }

    /// The imported day's raw and marked-up cost (nano-units), if the day exists.
    pub(crate) fn target_day(&self, client: &str, date: NaiveDate) -> Result<Option<(i64, i64)>> {
        #[derive(diesel::QueryableByName)]
        struct Day {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            raw_cost: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            markup_cost: i64,
        }
        let rows: Vec<Day> = orgusage_db::bulk::query(
            &self.db,
            "SELECT raw_cost, markup_cost FROM client_daily_usage \
             WHERE client_org_id = ? AND usage_date = ?",
            &[Value::Text(client), Value::Date(date)],
        )?;
        Ok(rows.first().map(|d| (d.raw_cost, d.markup_cost)))
    }

    /// The B22 decision for one client and day: `Some((day raw, day markup))` when the day's
    /// ledger sum looks marked up, with the day's row count and sum.
    pub(crate) fn ledger_day(
        &mut self,
        client: &str,
        date_text: &str,
    ) -> Result<(Option<(i64, i64)>, SumCount)> {
        let sql = format!(
            "SELECT CAST(SUM(total_cost) AS DOUBLE PRECISION) AS v, CAST(COUNT(*) AS BIGINT) AS n \
             FROM {} WHERE client_org_id = ? AND generation_date = {}",
            self.shape.table("processed_generations"),
            self.date_param()
        );
        let sc: Vec<SumCount> = self.src.load(
            "ledger day",
            &sql,
            &[client.to_string(), date_text.to_string()],
        )?;
        let sc = sc.into_iter().next().unwrap_or(SumCount { v: None, n: 0 });
        let date = parse_date(date_text, "processed_generations", client)?;
        let marked = match self.target_day(client, date)? {
            Some((raw, markup))
                if ledger_day_marked_up(float_exact(sc.v.unwrap_or(0.0)), raw, markup) =>
            {
                Some((raw, markup))
            }
            _ => None,
        };
        Ok((marked, sc))
    }

    pub(crate) fn ledger(&mut self) -> Result<()> {
        const KEYS: [(&str, Kind); 3] = [
            ("client_org_id", Kind::Text),
            ("generation_date", Kind::Date),
            ("id", Kind::Text),
        ];
        if !self.shape.has("processed_generations") {
            return self.finish_pub(Phase::Ledger, Batch::default(), 0);
        }
        let known = self.known_clients()?;
        let order = "\"client_org_id\", \"generation_date\", \"id\"";
        // The current (client, day) and its B22 decision: rows arrive ordered by that key.
        let mut day: Option<LedgerDayKey> = None;
        loop {
            let ps = self.phase_state(Phase::Ledger);
            let filter = match ps.cursor {
                Some(_) => format!("WHERE {}", keyset_after(self.src.backend(), &KEYS)),
                None => String::new(),
            };
            let sql = format!(
                "SELECT {} FROM {} {filter} ORDER BY {order} LIMIT {}",
                self.shape.select("processed_generations", LEDGER_COLS),
                self.shape.table("processed_generations"),
                self.opts.batch_rows
            );
            let page: Vec<SrcLedger> = self.src.load(
                "processed_generations",
                &sql,
                &ps.cursor.clone().unwrap_or_default(),
            )?;
            let full = page.len() >= self.opts.batch_rows;
            let mut batch = Batch::default();
            for g in page.iter().filter(|g| known.contains(&g.client_org_id)) {
                if day
                    .as_ref()
                    .is_none_or(|(c, d, _)| *c != g.client_org_id || *d != g.generation_date)
                {
                    let (marked, _) = self.ledger_day(&g.client_org_id, &g.generation_date)?;
                    day = Some((g.client_org_id.clone(), g.generation_date.clone(), marked));
                }
                let marked = day.as_ref().and_then(|d| d.2);
                let total_cost = match (marked, self.opts.ledger_costs) {
                    (Some((raw, markup)), LedgerCostRule::CorrectMarkedUpDays) => {
                        ledger_raw_units(g.total_cost.unwrap_or(0.0), raw, markup)?
                    }
                    _ => {
                        float_to_units(g.total_cost, "processed_generations", "total_cost", &g.id)?
                    }
                };
                batch.rows.ledger.push(NewLedger {
                    client_org_id: g.client_org_id.clone(),
                    id: g.id.clone(),
                    generation_date: parse_date(
                        &g.generation_date,
                        "processed_generations",
                        &g.id,
                    )?,
                    processed_at: g.processed_at.unwrap_or(self.now),
                    total_cost,
                    total_tokens: g.total_tokens.unwrap_or(0),
                });
            }
            let cursor = page.last().map(|g| {
                vec![
                    g.client_org_id.clone(),
                    g.generation_date.clone(),
                    g.id.clone(),
                ]
            });
            let done = !full || cursor.is_none();
            let entry = self.next_state_pub(Phase::Ledger, cursor.or(ps.cursor), done);
            batch.state.push(entry);
            self.commit_keeping_pub(Phase::Ledger, batch, page.len() as u64)?;
            if done {
                return Ok(());
            }
        }
    }

    /// The cleanup audit rows, in their original order. The original had no cut-off instant:
    /// it is taken as midnight UTC of `cutoff_date`. `storage_saved_kb` and the seconds become
    /// bytes and milliseconds (exact decimal arithmetic, rounded once).
    pub(crate) fn cleanup_log(&mut self) -> Result<()> {
        let mut batch = Batch::default();
        let mut n = 0;
        if self.shape.has("processed_generation_cleanup_log") {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY id",
                self.shape
                    .select("processed_generation_cleanup_log", CLEANUP_COLS),
                self.shape.table("processed_generation_cleanup_log")
            );
            let rows: Vec<SrcCleanup> = self.src.load("cleanup log", &sql, &[])?;
            n = rows.len() as u64;
            let scaled = |v: Option<f64>, by: i64| -> i64 {
                (float_exact(v.unwrap_or(0.0)) * Decimal::from(by))
                    .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                    .try_into()
                    .unwrap_or(0)
            };
            for r in rows {
                let id = r.id.to_string();
                let tbl = "processed_generation_cleanup_log";
                let cleanup_date =
                    parse_date(r.cleanup_date.as_deref().unwrap_or_default(), tbl, &id)?;
                let cutoff_date =
                    parse_date(r.cutoff_date.as_deref().unwrap_or_default(), tbl, &id)?;
                let cutoff_timestamp = cutoff_date
                    .and_hms_opt(0, 0, 0)
                    .map_or(0, |t| t.and_utc().timestamp());
                batch.rows.cleanup.push(NewCleanup {
                    cleanup_date,
                    cutoff_date,
                    cutoff_timestamp,
                    days_retained: r.days_retained.unwrap_or(0),
                    records_before: r.records_before.unwrap_or(0),
                    records_deleted: r.records_deleted.unwrap_or(0),
                    records_remaining: r.records_remaining.unwrap_or(0),
                    old_tokens_removed: r.old_tokens_removed.unwrap_or(0),
                    old_cost_removed: float_to_units(
                        r.old_cost_removed,
                        tbl,
                        "old_cost_removed",
                        &id,
                    )?,
                    payload_bytes_removed: scaled(r.storage_saved_kb, 1024),
                    cleanup_duration_ms: scaled(r.cleanup_duration_seconds, 1000),
                    success: r.success.unwrap_or(1) != 0,
                    error_message: r.error_message,
                    created_at: r.created_at.unwrap_or(self.now),
                });
            }
        }
        self.finish_pub(Phase::CleanupLog, batch, n)
    }
}
