//! The import report: serde-serializable, and printable as a table (`Display`).

use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::ImportOptions;

/// Tokens, requests and money of one scope. Money is exact (`Decimal`, USD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Tokens.
    pub tokens: i64,
    /// Requests.
    pub requests: i64,
    /// Raw (OpenRouter) cost.
    pub raw_cost: Decimal,
    /// Marked-up cost.
    pub markup_cost: Decimal,
}

impl Totals {
    /// `self - other`, field by field.
    pub fn minus(&self, other: &Totals) -> Totals {
        Totals {
            tokens: self.tokens - other.tokens,
            requests: self.requests - other.requests,
            raw_cost: self.raw_cost - other.raw_cost,
            markup_cost: self.markup_cost - other.markup_cost,
        }
    }
}

/// Which parts of the original were present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceShape {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Prefix of the original tables (`""`, or e.g. `mai_` after an in-place rename).
    pub prefix: String,
    /// `client_organizations.timezone` exists (V3+).
    pub has_timezone: bool,
    /// `client_live_counters` exists (V1–V4).
    pub has_live_counters: bool,
    /// `client_user_daily_usage` and `client_model_daily_usage` exist (V2+).
    pub has_user_and_model_tables: bool,
    /// `processed_generations` exists (V3–V5).
    pub has_ledger: bool,
    /// `processed_generation_cleanup_log` exists.
    pub has_cleanup_log: bool,
    /// Source rows per table.
    pub rows: Vec<(String, u64)>,
}

/// A client timezone orgusage rejects, and what it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimezoneMapping {
    /// Client.
    pub client_org_id: String,
    /// The stored value (`None`: NULL or no column).
    pub original: Option<String>,
    /// The canonical zone written instead.
    pub mapped_to: String,
}

/// A user with several active mappings in the original (B34).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingConflict {
    /// The user.
    pub user_id: String,
    /// The mapping kept active (`{user}_{client}` id of the target).
    pub kept_active: String,
    /// Mappings imported as inactive.
    pub deactivated: Vec<String>,
}

/// Source rows whose client does not exist; they cannot be imported (foreign key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphans {
    /// Source table.
    pub table: String,
    /// The unknown client id.
    pub client_org_id: String,
    /// Rows skipped.
    pub rows: u64,
}

/// One client and day stored twice under the two id formats (B6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateDay {
    /// Client.
    pub client_org_id: String,
    /// Day.
    pub usage_date: String,
    /// The source row ids.
    pub ids: Vec<String>,
    /// The row kept (`sum` when the policy adds them).
    pub kept: String,
    /// What was left out (zero under `sum`), from the floats, exact.
    pub dropped: Totals,
}

/// A live counter (V1–V4) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveCounterLine {
    /// Client.
    pub client_org_id: String,
    /// The counter's `current_date`.
    pub counter_date: String,
    /// `imported` (its day had no daily row), `skipped_day_exists` (adding it would double count,
    /// B7/B9), `skipped_empty` or `skipped_unknown_client`.
    pub action: String,
    /// The counter's figures.
    pub totals: Totals,
}

/// A client and day whose ledger `total_cost` looks like (or was taken as) marked-up cost (B22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerDay {
    /// Client.
    pub client_org_id: String,
    /// Generation day.
    pub generation_date: String,
    /// Ledger rows of the day.
    pub rows: u64,
    /// Σ `total_cost` of the day in the source.
    pub ledger_sum: Decimal,
    /// The imported day's raw cost.
    pub day_raw_cost: Decimal,
    /// The imported day's marked-up cost.
    pub day_markup_cost: Decimal,
    /// `converted_to_raw` or `kept_as_raw`.
    pub action: String,
}

/// Per client and month: the source's float sums against orgusage's exact sums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthVerification {
    /// Client.
    pub client_org_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The source's daily rows as stored, summed (float sums converted exactly; with B6
    /// duplicates counted twice, as the original's month sum did).
    pub source_as_stored: Totals,
    /// What the policies left out (dropped duplicates) or added (live counters).
    pub adjustments: Totals,
    /// orgusage's exact sums of the imported client rows.
    pub imported: Totals,
    /// `imported - (source_as_stored + adjustments)`: float noise plus the per-row rounding.
    pub difference: Totals,
    /// Σ (stored units − exact float) over the imported client rows: the rounding to 1e-9 alone.
    pub rounding: Totals,
    /// Client = Σ users = Σ models for the month in orgusage (tokens, requests, costs exact).
    pub levels_agree: bool,
}

/// A day whose three levels disagree in the imported data (carried over from the original).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InconsistentDay {
    /// Client.
    pub client_org_id: String,
    /// Day.
    pub usage_date: String,
    /// The client row.
    pub client: Totals,
    /// Σ user rows.
    pub users: Totals,
    /// Σ model rows.
    pub models: Totals,
}

/// Everything an import did and found. Recomputed from source and target at the end of every
/// run, so a resumed import reports the same figures as an uninterrupted one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The options used.
    pub options: Option<ImportOptions>,
    /// The source.
    pub source: SourceShape,
    /// `separate`, `in_place` or `dry_run`.
    pub mode: String,
    /// `sqlite` or `postgres`.
    pub target_backend: String,
    /// The import had already finished before this run: nothing was written.
    pub already_complete: bool,
    /// Rows written by this run.
    pub rows_written_this_run: u64,
    /// Rows in the target per table after the run.
    pub target_rows: Vec<(String, u64)>,
    /// Settings: the provisioning key was present and kept.
    pub provisioning_key_kept: bool,
    /// Timezones replaced.
    pub timezone_mappings: Vec<TimezoneMapping>,
    /// Other client values that could not be kept as stored (invalid markup, negative limit).
    pub client_fixes: Vec<String>,
    /// Users with several active mappings.
    pub mapping_conflicts: Vec<MappingConflict>,
    /// Rows skipped because their client does not exist.
    pub orphans: Vec<Orphans>,
    /// Days stored twice (listed up to the report limit).
    pub duplicate_days: Vec<DuplicateDay>,
    /// All such days.
    pub duplicate_days_total: u64,
    /// Live counters.
    pub live_counters: Vec<LiveCounterLine>,
    /// Ledger days with marked-up costs (listed up to the limit).
    pub ledger_marked_up_days: Vec<LedgerDay>,
    /// All such days.
    pub ledger_marked_up_days_total: u64,
    /// Ledger rows converted from marked-up to raw cost.
    pub ledger_rows_converted: u64,
    /// Per client and month.
    pub months: Vec<MonthVerification>,
    /// Days whose levels disagree (listed up to the limit).
    pub inconsistent_days: Vec<InconsistentDay>,
    /// All such days.
    pub inconsistent_days_total: u64,
}

impl ImportReport {
    /// True when, in every month, tokens and requests agree exactly and money differs by at
    /// most 1e-6 USD (float summation noise and the rounding to 1e-9), i.e. nothing was lost.
    pub fn verified(&self) -> bool {
        let tiny = Decimal::new(1, 6);
        self.months.iter().all(|m| {
            m.difference.tokens == 0
                && m.difference.requests == 0
                && m.difference.raw_cost.abs() <= tiny
                && m.difference.markup_cost.abs() <= tiny
        })
    }
}

fn money(d: Decimal) -> String {
    d.round_dp(9).normalize().to_string()
}

/// Differences are shown unrounded: they are often far below 1e-9 (float noise).
fn exact(d: Decimal) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        format!("{:.3e}", d)
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mAI import ({} source{}, {} target, mode {})",
            self.source.backend,
            if self.source.prefix.is_empty() {
                String::new()
            } else {
                format!(" tables {}*", self.source.prefix)
            },
            self.target_backend,
            self.mode
        )?;
        if self.already_complete {
            writeln!(f, "already complete: this run wrote nothing")?;
        } else {
            writeln!(
                f,
                "rows written by this run: {}",
                self.rows_written_this_run
            )?;
        }
        for (t, n) in &self.target_rows {
            writeln!(f, "  {t:<34} {n:>10}")?;
        }
        writeln!(
            f,
            "\n{:<32} {:<7} {:>10} {:>8} {:>16} {:>16} {:>16} {:>10} {:>10} {:>10} {:>6}",
            "client",
            "month",
            "tokens",
            "requests",
            "raw USD",
            "markup USD",
            "source raw",
            "diff raw",
            "diff mkup",
            "rnd raw",
            "levels"
        )?;
        for m in &self.months {
            writeln!(
                f,
                "{:<32} {:<7} {:>10} {:>8} {:>16} {:>16} {:>16} {:>10} {:>10} {:>10} {:>6}",
                m.client_org_id,
                m.month,
                m.imported.tokens,
                m.imported.requests,
                money(m.imported.raw_cost),
                money(m.imported.markup_cost),
                money(m.source_as_stored.raw_cost),
                exact(m.difference.raw_cost),
                exact(m.difference.markup_cost),
                exact(m.rounding.raw_cost),
                if m.levels_agree { "ok" } else { "DIFF" }
            )?;
        }
        let list = |f: &mut fmt::Formatter<'_>, title: &str, total: u64, lines: Vec<String>| {
            if total > 0 {
                writeln!(f, "\n{title}: {total}")?;
                for l in lines {
                    writeln!(f, "  {l}")?;
                }
            }
            Ok(())
        };
        list(
            f,
            "timezones mapped",
            self.timezone_mappings.len() as u64,
            self.timezone_mappings
                .iter()
                .map(|t| format!("{}: {:?} -> {}", t.client_org_id, t.original, t.mapped_to))
                .collect(),
        )?;
        list(
            f,
            "client values fixed",
            self.client_fixes.len() as u64,
            self.client_fixes.clone(),
        )?;
        list(
            f,
            "users with several active mappings",
            self.mapping_conflicts.len() as u64,
            self.mapping_conflicts
                .iter()
                .map(|c| {
                    format!(
                        "{}: kept {}, deactivated {}",
                        c.user_id,
                        c.kept_active,
                        c.deactivated.join(", ")
                    )
                })
                .collect(),
        )?;
        list(
            f,
            "rows of unknown clients (skipped)",
            self.orphans.len() as u64,
            self.orphans
                .iter()
                .map(|o| format!("{} {}: {} rows", o.table, o.client_org_id, o.rows))
                .collect(),
        )?;
        list(
            f,
            "days stored under both id formats",
            self.duplicate_days_total,
            self.duplicate_days
                .iter()
                .map(|d| {
                    format!(
                        "{} {}: kept {}, dropped raw {} markup {} tokens {}",
                        d.client_org_id,
                        d.usage_date,
                        d.kept,
                        money(d.dropped.raw_cost),
                        money(d.dropped.markup_cost),
                        d.dropped.tokens
                    )
                })
                .collect(),
        )?;
        list(
            f,
            "live counters",
            self.live_counters.len() as u64,
            self.live_counters
                .iter()
                .map(|l| {
                    format!(
                        "{} {}: {} (raw {}, markup {}, tokens {})",
                        l.client_org_id,
                        l.counter_date,
                        l.action,
                        money(l.totals.raw_cost),
                        money(l.totals.markup_cost),
                        l.totals.tokens
                    )
                })
                .collect(),
        )?;
        list(
            f,
            "ledger days holding marked-up cost (B22)",
            self.ledger_marked_up_days_total,
            self.ledger_marked_up_days
                .iter()
                .map(|l| {
                    format!(
                        "{} {}: {} rows, ledger {} vs day raw {} / markup {}: {}",
                        l.client_org_id,
                        l.generation_date,
                        l.rows,
                        money(l.ledger_sum),
                        money(l.day_raw_cost),
                        money(l.day_markup_cost),
                        l.action
                    )
                })
                .collect(),
        )?;
        list(
            f,
            "days whose client, user and model rows disagree",
            self.inconsistent_days_total,
            self.inconsistent_days
                .iter()
                .map(|d| {
                    format!(
                        "{} {}: client {}/{}/{} users {}/{}/{} models {}/{}/{} (tokens/requests/raw)",
                        d.client_org_id,
                        d.usage_date,
                        d.client.tokens,
                        d.client.requests,
                        money(d.client.raw_cost),
                        d.users.tokens,
                        d.users.requests,
                        money(d.users.raw_cost),
                        d.models.tokens,
                        d.models.requests,
                        money(d.models.raw_cost)
                    )
                })
                .collect(),
        )?;
        writeln!(
            f,
            "\nverified: {}",
            if self.verified() {
                "yes (differences are rounding only)"
            } else {
                "NO"
            }
        )
    }
}
