//! Imports a running mAI deployment (`organization_usage.py`, versions V1–V5) into orgusage's
//! schema, exactly, verifiably and resumably, without ever writing the original tables.
//!
//! * **Where to.** [`Target::Separate`] (the default of the example) writes a new database and
//!   only ever *reads* the source (a SQLite source is opened `mode=ro`). [`Target::InPlace`]
//!   renames the original tables to `{prefix}{name}` (kept for audit) in one transaction, then
//!   migrates and imports into the same database.
//! * **Money.** Every float is converted once to nano-units, half away from zero
//!   ([`orgusage_domain::money`]); the report carries the sum of those rounding differences per
//!   client and month.
//! * **Resumable.** Each batch is one target transaction that also advances the phase's cursor
//!   in `orgusage_import_state`; a re-run (after an error or `kill -9`) continues after the last
//!   committed batch, and a finished import re-run writes nothing. The report is always
//!   recomputed from the source and the target, so it is the same whichever run finished.
//! * **Progress** goes to a callback and to `tracing`; the library never prints.
//!
//! ```no_run
//! use orgusage_import::{ImportOptions, Target, import};
//!
//! let report = import(
//!     "sqlite:///var/lib/mai/webui.db",
//!     &Target::Separate("postgres://billing@db/orgusage".into()),
//!     &ImportOptions::default(),
//!     &mut |p| eprintln!("{} {}/{}", p.phase, p.rows_done, p.rows_total),
//! )?;
//! println!("{report}");
//! assert!(report.verified());
//! # Ok::<(), orgusage_import::ImportError>(())
//! ```
#![deny(missing_docs)]

mod error;
#[doc(hidden)]
pub mod fixture;
mod phases;
mod report;
mod rows;
mod run;
mod source;
mod state;
mod tail;
mod verify;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{ImportError, Result};
pub use report::{
    DuplicateDay, ImportReport, InconsistentDay, LedgerDay, LiveCounterLine, MappingConflict,
    MonthVerification, Orphans, SourceShape, TimezoneMapping, Totals,
};
pub use run::import;

/// The prefix of the original tables after an in-place import (`mai_client_daily_usage`, …).
pub const DEFAULT_AUDIT_PREFIX: &str = "mai_";

/// Where the imported data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A separate database (URL). The source is only read. The recommended default: the old
    /// system keeps running on its database until the switch, and going back is free.
    Separate(String),
    /// The source database itself: its original tables are renamed to `{prefix}{name}` and kept
    /// for audit, then orgusage's tables are created beside them.
    InPlace {
        /// The rename prefix, e.g. [`DEFAULT_AUDIT_PREFIX`].
        prefix: String,
    },
    /// Nothing is written anywhere: the import runs into a temporary SQLite file that is deleted
    /// afterwards, and only the report is kept.
    DryRun,
}

/// What to do when one client and day has two daily rows, one per id format
/// (`{client}_{date}` and `{client}:{date}`, bug B6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateDayPolicy {
    /// Keep the row written last (greatest `updated_at`, then the `:` format, which the newer V5
    /// writer used). Default: both rows describe the same day (B6), and the later writer
    /// (consolidation, V5 recording) saw the day more completely; summing would keep the
    /// original's double count.
    #[default]
    Latest,
    /// Keep the `{client}:{date}` row.
    PreferColon,
    /// Keep the `{client}_{date}` row.
    PreferUnderscore,
    /// Add both rows (the original's month sums did this; choose it only when you know the two
    /// writers recorded disjoint usage).
    Sum,
}

/// How the ledger's `total_cost` is read (bug B22: `openrouter_client_manager` stored the
/// marked-up cost, `background_sync` the raw cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerCostRule {
    /// Per client and generation day, if the ledger's sum is nearer the day's marked-up cost than
    /// its raw cost (and they differ), the day's rows are taken as marked up and converted to raw
    /// with that day's own ratio `raw / markup`, rounded once. Such days are reported.
    #[default]
    CorrectMarkedUpDays,
    /// Import every `total_cost` as raw cost; suspected days are still reported.
    KeepAsRaw,
}

/// Options of one import. A re-run into the same target must use the same options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Two daily rows for one client and day.
    pub duplicate_days: DuplicateDayPolicy,
    /// Ledger rows holding the marked-up cost.
    pub ledger_costs: LedgerCostRule,
    /// The zone that replaces a client's timezone orgusage rejects (`CET`, `Poland`, empty,
    /// missing column); each replacement is a report line.
    pub timezone_fallback: String,
    /// Source rows per target transaction.
    pub batch_rows: usize,
    /// At most this many lines per report list (counts are always complete).
    pub report_limit: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            duplicate_days: DuplicateDayPolicy::default(),
            ledger_costs: LedgerCostRule::default(),
            timezone_fallback: "Europe/Warsaw".into(),
            batch_rows: 10_000,
            report_limit: 200,
        }
    }
}

/// A step of the import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `global_settings`.
    Settings,
    /// `client_organizations`.
    Clients,
    /// `user_client_mapping`.
    Mappings,
    /// `client_daily_usage`.
    Daily,
    /// `client_user_daily_usage`.
    Users,
    /// `client_model_daily_usage`.
    Models,
    /// `client_live_counters`.
    LiveCounters,
    /// `unique_users` recomputed from the user rows.
    UniqueUsers,
    /// `processed_generations`.
    Ledger,
    /// `processed_generation_cleanup_log`.
    CleanupLog,
    /// The verification (read-only).
    Verify,
}

impl Phase {
    /// Every writing phase, in order.
    pub const WRITING: [Phase; 10] = [
        Phase::Settings,
        Phase::Clients,
        Phase::Mappings,
        Phase::Daily,
        Phase::Users,
        Phase::Models,
        Phase::LiveCounters,
        Phase::UniqueUsers,
        Phase::Ledger,
        Phase::CleanupLog,
    ];

    /// A short name (`daily`, `ledger`, …), also the key in the import state table.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Settings => "settings",
            Phase::Clients => "clients",
            Phase::Mappings => "mappings",
            Phase::Daily => "daily",
            Phase::Users => "users",
            Phase::Models => "models",
            Phase::LiveCounters => "live_counters",
            Phase::UniqueUsers => "unique_users",
            Phase::Ledger => "ledger",
            Phase::CleanupLog => "cleanup_log",
            Phase::Verify => "verify",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A progress event, sent after every committed batch.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Source rows handled so far, over all phases (including those done by an earlier run).
    pub rows_done: u64,
    /// Source rows in all phases.
    pub rows_total: u64,
    /// Rows handled by this run.
    pub rows_this_run: u64,
    /// Time since this run started.
    pub elapsed: Duration,
}

impl Progress {
    /// Rows of this run per second.
    pub fn rate(&self) -> f64 {
        // Display only (not money): rows per second.
        self.rows_this_run as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}
