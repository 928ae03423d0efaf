//! The import run: source and target set-up, then each phase in bounded, resumable batches.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use orgusage_db::detect::original_evidence;
use orgusage_db::{Backend, Database, DbConfig};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ImportError, Result};
use crate::phases::{Units, convert_client, markup_units, merge_day, resolve_mappings};
use crate::report::ImportReport;
use crate::rows::*;
use crate::source::{Kind, Shape, SourceConn, keyset_after};
use crate::state::{self, Batch, NewDaily, NewModelDay, NewSettings, NewUserDay};
use crate::{ImportOptions, Phase, Progress, Target};

/// The original tables, in the order an in-place import renames them.
pub(crate) const ORIGINAL_TABLES: [&str; 10] = [
    "global_settings",
    "client_organizations",
    "user_client_mapping",
    "client_daily_usage",
    "client_user_daily_usage",
    "client_model_daily_usage",
    "client_live_counters",
    "processed_generations",
    "processed_generation_cleanup_log",
    "daily_exchange_rates",
];

/// Where a phase stands, as stored in `orgusage_import_state` under `phase:{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PhaseState {
    pub done: bool,
    pub cursor: Option<Vec<String>>,
    pub rows: u64,
}

/// Everything a phase needs.
pub(crate) struct Run<'a> {
    pub src: SourceConn,
    pub shape: Shape,
    pub db: Database,
    pub opts: &'a ImportOptions,
    pub state: BTreeMap<String, String>,
    pub now: i64,
    pub rows_done: u64,
    pub rows_total: u64,
    pub rows_this_run: u64,
    pub started: Instant,
    pub progress: &'a mut dyn FnMut(&Progress),
    /// Per (client, month): Σ rounding of the imported client rows, raw and marked-up.
    pub rounding: BTreeMap<(String, String), (Decimal, Decimal)>,
}

/// Imports the original database at `source_url` into `target`, and verifies the result.
///
/// Safe to repeat and to interrupt: a finished import re-run writes nothing
/// ([`ImportReport::already_complete`]); an interrupted one continues after its last committed
/// batch. `progress` is called after every batch (and `tracing` logs it at `info`).
///
/// # Errors
/// [`ImportError`]: the source is not an original database, the target holds foreign data or
/// was started with other options, a value cannot be imported, or a database failed. Batches
/// committed before the error stay committed; a re-run continues from there.
pub fn import(
    source_url: &str,
    target: &Target,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport> {
    let span = tracing::info_span!("orgusage.import", mode = ?target);
    let _e = span.enter();
    let (mode, prefix, target_url, _tmp) = match target {
        Target::Separate(url) => ("separate", String::new(), url.clone(), None),
        Target::InPlace { prefix } => {
            rename_in_place(source_url, prefix)?;
            ("in_place", prefix.clone(), source_url.to_string(), None)
        }
        Target::DryRun => {
            let dir = tempfile::tempdir()
                .map_err(|e| ImportError::Unsupported(format!("temporary directory: {e}")))?;
            let url = dir.path().join("dry-run.db").to_string_lossy().into_owned();
            ("dry_run", String::new(), url, Some(dir))
        }
    };
    let mut src = SourceConn::open(source_url, mode != "in_place")?;
    let cols = src.columns()?;
    if original_evidence(&cols, &prefix).is_empty() {
        return Err(ImportError::NotOriginal(format!(
            "no {prefix}client_daily_usage with a string id, no live counters, no float money columns"
        )));
    }
    let shape = Shape::from_columns(&cols, &prefix);
    let db = Database::connect(&DbConfig::new(target_url))?;
    let st = state::load(&db)?;
    let opts_json = serde_json::to_string(opts).unwrap_or_default();
    match st.get("options") {
        Some(stored) if *stored != opts_json => {
            return Err(ImportError::OptionsChanged {
                stored: stored.clone(),
                now: opts_json,
            });
        }
        Some(_) => {}
        None => {
            let n = state::count(
                &db,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM client_organizations",
            )?;
            if n > 0 {
                return Err(ImportError::TargetNotEmpty(format!("{n} clients")));
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    let mut run = Run {
        src,
        shape,
        db,
        opts,
        state: st,
        now,
        rows_done: 0,
        rows_total: 0,
        rows_this_run: 0,
        started: Instant::now(),
        progress,
        rounding: BTreeMap::new(),
    };
    run.load_rounding();
    let counts = run.source_counts()?;
    run.rows_total = counts.iter().map(|(_, n)| n).sum();
    run.rows_done = Phase::WRITING
        .iter()
        .map(|p| run.phase_state(*p).rows)
        .sum();
    let already_complete = run.phase_state(Phase::CleanupLog).done;
    if !run.state.contains_key("options") {
        let entry = vec![("options".to_string(), opts_json)];
        run.commit(
            Phase::Settings,
            Batch {
                state: entry,
                ..Batch::default()
            },
            0,
        )?;
    }
    for phase in Phase::WRITING {
        if run.phase_state(phase).done {
            continue;
        }
        let _p = tracing::info_span!("orgusage.import.phase", phase = phase.name()).entered();
        match phase {
            Phase::Settings => run.settings()?,
            Phase::Clients => run.clients()?,
            Phase::Mappings => run.mappings()?,
            Phase::Daily => run.daily()?,
            Phase::Users => run.day_rows(Phase::Users, "client_user_daily_usage")?,
            Phase::Models => run.day_rows(Phase::Models, "client_model_daily_usage")?,
            Phase::LiveCounters => run.live_counters()?,
            Phase::UniqueUsers => run.unique_users()?,
            Phase::Ledger => run.ledger()?,
            Phase::CleanupLog => run.cleanup_log()?,
            Phase::Verify => {}
        }
    }
    let mut report = crate::verify::verify(&mut run, counts)?;
    // A last event, also when a finished import was re-run and no batch was written.
    let last = Progress {
        phase: Phase::Verify,
        rows_done: run.rows_done,
        rows_total: run.rows_total,
        rows_this_run: run.rows_this_run,
        elapsed: run.started.elapsed(),
    };
    (run.progress)(&last);
    report.mode = mode.to_string();
    report.already_complete = already_complete;
    report.rows_written_this_run = run.rows_this_run;
    Ok(report)
}

/// Renames the original tables to `{prefix}{name}` (and, on PostgreSQL, their indexes and
/// sequences, whose names would clash with orgusage's) in one transaction. Idempotent: a
/// database already renamed is left alone; a half-renamed one cannot exist (one transaction).
fn rename_in_place(url: &str, prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ImportError::Unsupported(format!(
            "the audit prefix {prefix:?} must be non-empty ASCII letters, digits or _"
        )));
    }
    let mut conn = SourceConn::open(url, false)?;
    let cols = conn.columns()?;
    if original_evidence(&cols, "").is_empty() {
        return Ok(()); // already renamed (or nothing to rename: the import then refuses)
    }
    let present: HashSet<&str> = cols.iter().map(|c| c.table_name.as_str()).collect();
    if let Some(t) = ORIGINAL_TABLES
        .iter()
        .find(|t| present.contains(format!("{prefix}{t}").as_str()))
    {
        return Err(ImportError::Unsupported(format!(
            "both {t} and {prefix}{t} exist; choose another prefix"
        )));
    }
    let mut sql = Vec::new();
    for t in ORIGINAL_TABLES.iter().filter(|t| present.contains(**t)) {
        if conn.backend() == Backend::Postgres {
            #[derive(diesel::QueryableByName)]
            struct Name {
                #[diesel(sql_type = diesel::sql_types::Text)]
                name: String,
            }
            let q = "SELECT c.relname::text AS name FROM pg_class c \
                 JOIN pg_depend d ON d.objid = c.oid JOIN pg_class t ON d.refobjid = t.oid \
                 WHERE t.relname = ? AND t.relnamespace = to_regnamespace(current_schema()) \
                 AND c.relkind IN ('i', 'S') \
                 UNION SELECT indexname::text FROM pg_indexes \
                 WHERE tablename = ? AND schemaname = current_schema()";
            let names: Vec<Name> =
                conn.load("owned indexes", q, &[t.to_string(), t.to_string()])?;
            for n in names {
                sql.push(format!(
                    "ALTER INDEX IF EXISTS \"{0}\" RENAME TO \"{prefix}{0}\"; \
                     ALTER SEQUENCE IF EXISTS \"{0}\" RENAME TO \"{prefix}{0}\"",
                    n.name
                ));
            }
        }
        sql.push(format!("ALTER TABLE \"{t}\" RENAME TO \"{prefix}{t}\""));
    }
    tracing::info!(
        tables = sql.len(),
        prefix,
        "renaming the original tables for audit"
    );
    conn.execute_in_transaction("in-place rename", &sql)
}

impl Run<'_> {
    pub(crate) fn phase_state(&self, p: Phase) -> PhaseState {
        self.state
            .get(&format!("phase:{}", p.name()))
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    fn load_rounding(&mut self) {
        for (k, v) in &self.state {
            let Some(key) = k.strip_prefix("round:") else {
                continue;
            };
            let (Some((client, month)), Some((r, m))) = (key.rsplit_once('|'), v.split_once('|'))
            else {
                continue;
            };
            if let (Ok(r), Ok(m)) = (r.parse(), m.parse()) {
                self.rounding
                    .insert((client.to_string(), month.to_string()), (r, m));
            }
        }
    }

    /// Commits `batch` plus the phase's new state (and touched rounding sums) in one
    /// transaction, then reports progress.
    fn commit(&mut self, phase: Phase, mut batch: Batch, rows: u64) -> Result<()> {
        let key = format!("phase:{}", phase.name());
        let mut ps = self.phase_state(phase);
        ps.rows += rows;
        let cursor_state = serde_json::to_string(&ps).unwrap_or_default();
        batch.state.push((key.clone(), cursor_state.clone()));
        state::write(&self.db, &batch, self.now)?;
        for (k, v) in batch.state {
            self.state.insert(k, v);
        }
        self.rows_done += rows;
        self.rows_this_run += rows;
        let p = Progress {
            phase,
            rows_done: self.rows_done,
            rows_total: self.rows_total,
            rows_this_run: self.rows_this_run,
            elapsed: self.started.elapsed(),
        };
        tracing::info!(
            phase = phase.name(),
            rows_done = p.rows_done,
            rows_total = p.rows_total,
            "import batch committed"
        );
        (self.progress)(&p);
        Ok(())
    }

    /// The phase state to store with a batch: cursor advanced, or done.
    pub(crate) fn next_state_pub(
        &self,
        phase: Phase,
        cursor: Option<Vec<String>>,
        done: bool,
    ) -> (String, String) {
        let mut ps = self.phase_state(phase);
        ps.cursor = cursor;
        ps.done = done;
        (
            format!("phase:{}", phase.name()),
            serde_json::to_string(&ps).unwrap_or_default(),
        )
    }

    pub(crate) fn finish_pub(&mut self, phase: Phase, mut batch: Batch, rows: u64) -> Result<()> {
        let mut ps = self.phase_state(phase);
        ps.done = true;
        self.state.insert(
            format!("phase:{}", phase.name()),
            serde_json::to_string(&ps).unwrap_or_default(),
        );
        batch.state.retain(|(k, _)| !k.starts_with("phase:"));
        self.commit(phase, batch, rows)
    }

    fn source_counts(&mut self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for t in ORIGINAL_TABLES
            .iter()
            .filter(|t| **t != "daily_exchange_rates")
        {
            if !self.shape.has(t) {
                continue;
            }
            let sql = format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {}",
                self.shape.table(t)
            );
            let n: Vec<Count> = self.src.load("count", &sql, &[])?;
            out.push((t.to_string(), n.first().map_or(0, |c| c.n).max(0) as u64));
        }
        Ok(out)
    }

    pub(crate) fn known_clients(&self) -> Result<HashSet<String>> {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let ids: Vec<Id> =
            orgusage_db::bulk::query(&self.db, "SELECT id FROM client_organizations", &[])?;
        Ok(ids.into_iter().map(|i| i.id).collect())
    }

    fn settings(&mut self) -> Result<()> {
        let mut batch = Batch::default();
        let mut rows = 0;
        if self.shape.has("global_settings") {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY CASE WHEN id = 'global' THEN 0 ELSE 1 END, id",
                self.shape.select("global_settings", SETTINGS_COLS),
                self.shape.table("global_settings")
            );
            let all: Vec<SrcSettings> = self.src.load("global_settings", &sql, &[])?;
            rows = all.len() as u64;
            if let Some(s) = all.first() {
                let mut fixes = Vec::new();
                let rate = markup_units(
                    s.default_markup_rate,
                    "global_settings",
                    "global",
                    &mut fixes,
                )?;
                let created = s.created_at.unwrap_or(self.now);
                batch.rows.settings.push(NewSettings {
                    id: "global".into(),
                    openrouter_provisioning_key: s.openrouter_provisioning_key.clone(),
                    default_markup_rate: rate,
                    billing_currency: s.billing_currency.clone().unwrap_or_else(|| "USD".into()),
                    created_at: created,
                    updated_at: s.updated_at.unwrap_or(created),
                });
            }
        }
        self.finish_pub(Phase::Settings, batch, rows)
    }

    pub(crate) fn source_clients(&mut self) -> Result<Vec<SrcClient>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY id",
            self.shape.select("client_organizations", CLIENT_COLS),
            self.shape.table("client_organizations")
        );
        self.src.load("client_organizations", &sql, &[])
    }

    pub(crate) fn source_mappings(&mut self) -> Result<Vec<SrcMapping>> {
        if !self.shape.has("user_client_mapping") {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM {} ORDER BY id",
            self.shape.select("user_client_mapping", MAPPING_COLS),
            self.shape.table("user_client_mapping")
        );
        self.src.load("user_client_mapping", &sql, &[])
    }

    fn clients(&mut self) -> Result<()> {
        let mut batch = Batch::default();
        let src = if self.shape.has("client_organizations") {
            self.source_clients()?
        } else {
            Vec::new()
        };
        let mut fixes = Vec::new();
        for c in &src {
            batch
                .rows
                .clients
                .push(convert_client(c, self.opts, self.now, &mut fixes)?.0);
        }
        self.finish_pub(Phase::Clients, batch, src.len() as u64)
    }

    fn mappings(&mut self) -> Result<()> {
        let rows = self.source_mappings()?;
        let known = self.known_clients()?;
        let (mappings, _) = resolve_mappings(&rows, &|c| known.contains(c), self.now);
        let mut batch = Batch::default();
        batch.rows.mappings = mappings;
        self.finish_pub(Phase::Mappings, batch, rows.len() as u64)
    }

    /// One keyset page of a day table, ordered by `keys`.
    pub(crate) fn page(
        &mut self,
        table: &str,
        keys: &[(&str, Kind)],
        cursor: Option<&Vec<String>>,
        limit: usize,
    ) -> Result<Vec<SrcDay>> {
        let order = keys
            .iter()
            .map(|(k, _)| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = match cursor {
            Some(_) => format!("WHERE {}", keyset_after(self.src.backend(), keys)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {order} LIMIT {limit}",
            self.shape.select(table, DAY_COLS),
            self.shape.table(table)
        );
        let binds = cursor.cloned().unwrap_or_default();
        self.src.load(table, &sql, &binds)
    }

    pub(crate) fn add_rounding_pub(
        &mut self,
        batch: &mut Batch,
        client: &str,
        date: &str,
        u: &Units,
    ) {
        let month = date.get(..7).unwrap_or(date).to_string();
        let e = self
            .rounding
            .entry((client.to_string(), month.clone()))
            .or_default();
        e.0 += u.rounding_raw;
        e.1 += u.rounding_markup;
        let (k, v) = (
            format!("round:{client}|{month}"),
            format!("{}|{}", e.0, e.1),
        );
        batch.state.retain(|(key, _)| *key != k);
        batch.state.push((k, v));
    }

    fn daily(&mut self) -> Result<()> {
        const KEYS: [(&str, Kind); 3] = [
            ("client_org_id", Kind::Text),
            ("usage_date", Kind::Date),
            ("id", Kind::Text),
        ];
        let known = self.known_clients()?;
        loop {
            let ps = self.phase_state(Phase::Daily);
            let mut page = self.page(
                "client_daily_usage",
                &KEYS,
                ps.cursor.as_ref(),
                self.opts.batch_rows,
            )?;
            let full = page.len() >= self.opts.batch_rows;
            if full {
                // Keep a client-day's rows of both id formats in one batch: drop the trailing
                // group unless it is the whole page; the next page starts with it.
                let last = page
                    .last()
                    .map(|d| (d.client_org_id.clone(), d.usage_date.clone()));
                let keep = page
                    .iter()
                    .rposition(|d| Some((d.client_org_id.clone(), d.usage_date.clone())) != last)
                    .map_or(page.len(), |i| i + 1);
                page.truncate(keep);
            }
            let mut batch = Batch::default();
            let mut i = 0;
            while i < page.len() {
                let j = page[i..]
                    .iter()
                    .position(|d| {
                        d.client_org_id != page[i].client_org_id
                            || d.usage_date != page[i].usage_date
                    })
                    .map_or(page.len(), |k| i + k);
                let group = &page[i..j];
                i = j;
                let first = &group[0];
                if !known.contains(&first.client_org_id) {
                    continue; // reported by the verification as rows of an unknown client
                }
                let merged = merge_day(group, self.opts.duplicate_days)?;
                let date = parse_date(&first.usage_date, "client_daily_usage", &first.id)?;
                self.add_rounding_pub(
                    &mut batch,
                    &first.client_org_id,
                    &date.to_string(),
                    &merged.units,
                );
                let created = group
                    .iter()
                    .filter_map(|d| d.created_at)
                    .min()
                    .unwrap_or(self.now);
                batch.rows.daily.push(NewDaily {
                    client_org_id: first.client_org_id.clone(),
                    usage_date: date,
                    total_tokens: merged.units.tokens,
                    total_requests: merged.units.requests,
                    raw_cost: merged.units.raw,
                    markup_cost: merged.units.markup,
                    unique_users: 0,
                    created_at: created,
                    updated_at: group
                        .iter()
                        .filter_map(|d| d.updated_at)
                        .max()
                        .unwrap_or(created),
                });
            }
            let cursor = page
                .last()
                .map(|d| vec![d.client_org_id.clone(), d.usage_date.clone(), d.id.clone()]);
            let done = !full || cursor.is_none();
            let n = page.len() as u64;
            let entry = self.next_state_pub(Phase::Daily, cursor.or(ps.cursor), done);
            batch.state.push(entry);
            self.commit_keeping_pub(Phase::Daily, batch, n)?;
            if done {
                return Ok(());
            }
        }
    }

    /// Like [`Self::commit`], but the batch already carries the phase's state entry.
    pub(crate) fn commit_keeping_pub(
        &mut self,
        phase: Phase,
        mut batch: Batch,
        rows: u64,
    ) -> Result<()> {
        let key = format!("phase:{}", phase.name());
        if let Some(pos) = batch.state.iter().position(|(k, _)| *k == key) {
            let (_, v) = batch.state.remove(pos);
            let mut ps: PhaseState = serde_json::from_str(&v).unwrap_or_default();
            ps.rows = self.phase_state(phase).rows;
            self.state
                .insert(key, serde_json::to_string(&ps).unwrap_or_default());
        }
        self.commit(phase, batch, rows)
    }

    fn day_rows(&mut self, phase: Phase, table: &'static str) -> Result<()> {
        if !self.shape.has(table) {
            return self.finish_pub(phase, Batch::default(), 0);
        }
        let known = self.known_clients()?;
        loop {
            let ps = self.phase_state(phase);
            let page = self.page(
                table,
                &[("id", Kind::Text)],
                ps.cursor.as_ref(),
                self.opts.batch_rows,
            )?;
            let full = page.len() >= self.opts.batch_rows;
            let mut batch = Batch::default();
            // The cursor and count first: the rows are then moved into the batch, not cloned.
            let cursor = page.last().map(|d| vec![d.id.clone()]);
            let n = page.len() as u64;
            for d in page
                .into_iter()
                .filter(|d| known.contains(&d.client_org_id))
            {
                // Only client rows carry the reported rounding sums; these need the units alone.
                let raw = float_to_units(d.raw_cost, table, "raw_cost", &d.id)?;
                let markup = float_to_units(d.markup_cost, table, "markup_cost", &d.id)?;
                let (tokens, requests) =
                    (d.total_tokens.unwrap_or(0), d.total_requests.unwrap_or(0));
                let date = parse_date(&d.usage_date, table, &d.id)?;
                let created = d.created_at.unwrap_or(self.now);
                let updated = d.updated_at.unwrap_or(created);
                if phase == Phase::Users {
                    batch.rows.users.push(NewUserDay {
                        client_org_id: d.client_org_id,
                        user_id: d.user_id.unwrap_or_default(),
                        openrouter_user_id: d.openrouter_user_id.unwrap_or_default(),
                        usage_date: date,
                        total_tokens: tokens,
                        total_requests: requests,
                        raw_cost: raw,
                        markup_cost: markup,
                        created_at: created,
                        updated_at: updated,
                    });
                } else {
                    batch.rows.models.push(NewModelDay {
                        client_org_id: d.client_org_id,
                        model_name: d.model_name.unwrap_or_default(),
                        usage_date: date,
                        total_tokens: tokens,
                        total_requests: requests,
                        raw_cost: raw,
                        markup_cost: markup,
                        provider: d.provider,
                        created_at: created,
                        updated_at: updated,
                    });
                }
            }
            let done = !full || cursor.is_none();
            let entry = self.next_state_pub(phase, cursor.or(ps.cursor), done);
            batch.state.push(entry);
            self.commit_keeping_pub(phase, batch, n)?;
            if done {
                return Ok(());
            }
        }
    }
}
