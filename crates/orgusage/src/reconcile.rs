//! Reconciliation of our books with OpenRouter's (feature `keys`): for one client and a range
//! of completed UTC days, OpenRouter's `/activity` for the client's key beside our generation
//! ledger for the same UTC days, per day and model, with a verdict for every difference.
//!
//! ```
//! use chrono::NaiveDate;
//! use orgusage::reconcile::{Tolerance, Verdict, compare};
//! use orgusage::spend::LedgerDay;
//! use orgusage::keys::parse_activity;
//! use rust_decimal_macros::dec;
//!
//! let upstream = parse_activity(r#"{"data":[
//!     {"date":"2025-07-22","model":"openai/gpt-4.1","usage":0.50,"requests":5},
//!     {"date":"2025-07-23","model":"openai/gpt-4.1","usage":0.30,"requests":3}]}"#).unwrap();
//! let day = |d| NaiveDate::from_ymd_opt(2025, 7, d).unwrap();
//! let ours = [LedgerDay { date: day(22), model: "openai/gpt-4.1".into(), raw_cost: dec!(0.50), requests: 5 }];
//! let lines = compare(&upstream, &ours, day(22), day(23), Tolerance::default());
//! assert_eq!(lines[0].verdict, Verdict::Match);
//! assert_eq!(lines[1].verdict, Verdict::MissingLocally);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use orgusage_domain::Error;
use orgusage_domain::spend::LedgerDay;
use orgusage_keys::{ActivityRow, KeyManager};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::provision::ProvisionError;
use crate::store::Store;

/// How far the two sides may differ before a line is a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// Absolute raw-USD difference per day and model (default 0.000001: OpenRouter reports
    /// usage rounded finer than a cent, our ledger keeps nano-USD).
    pub cost: Decimal,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            cost: Decimal::new(1, 6),
        }
    }
}

/// What a line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Both sides agree within the tolerance, requests included.
    Match,
    /// OpenRouter billed requests we never recorded (ingestion lost or deferred them): the
    /// day and model is only upstream, or upstream has more requests and more cost.
    MissingLocally,
    /// We recorded generations OpenRouter does not show for this key and day: the day and
    /// model is only ours, or ours has more requests and a different cost.
    MissingUpstream,
    /// Both have the day and model with the same number of requests, but the cost differs by
    /// more than the tolerance.
    CostDrift,
    /// The cost agrees but the number of requests does not.
    RequestDrift,
}

impl Verdict {
    /// The verdict as the CSV of [`ReconciliationReport::to_csv`] writes it: `match`,
    /// `missing_locally`, `missing_upstream`, `cost_drift` or `request_drift`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::MissingLocally => "missing_locally",
            Self::MissingUpstream => "missing_upstream",
            Self::CostDrift => "cost_drift",
            Self::RequestDrift => "request_drift",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One UTC day and model, both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconciliationLine {
    /// UTC day.
    pub date: NaiveDate,
    /// Model id.
    pub model: String,
    /// OpenRouter's raw USD (`usage`, all endpoints of the model summed).
    pub upstream_cost: Decimal,
    /// OpenRouter's request count.
    pub upstream_requests: i64,
    /// Our ledger's raw USD.
    pub local_cost: Decimal,
    /// Our ledger's generation count.
    pub local_requests: i64,
    /// `upstream_cost − local_cost`.
    pub cost_difference: Decimal,
    /// The verdict.
    pub verdict: Verdict,
}

/// The reconciliation of one client over completed UTC days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconciliationReport {
    /// The client.
    pub client_org_id: String,
    /// The client's key hash (`api_key_hash` of `/activity`).
    pub key_hash: String,
    /// First UTC day.
    pub from: NaiveDate,
    /// Last UTC day (completed).
    pub to: NaiveDate,
    /// Every day and model either side has, ordered by day then model.
    pub lines: Vec<ReconciliationLine>,
    /// Sum of OpenRouter's cost over the range.
    pub upstream_total: Decimal,
    /// Sum of ours.
    pub local_total: Decimal,
    /// OpenRouter's `usage_monthly` of the key at the time of the report (current UTC month).
    pub key_usage_monthly: Option<Decimal>,
    /// Ledger rows in (or next to) the range that have no UTC instant and so are not compared.
    pub unplaced_local_generations: i64,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
}

impl ReconciliationReport {
    /// The lines that are not [`Verdict::Match`].
    pub fn differences(&self) -> impl Iterator<Item = &ReconciliationLine> {
        self.lines.iter().filter(|l| l.verdict != Verdict::Match)
    }

    /// A CSV of the lines (header first; amounts as exact decimals).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "date,model,upstream_cost,upstream_requests,local_cost,local_requests,cost_difference,verdict\n",
        );
        for l in &self.lines {
            let model = if l.model.contains([',', '"', '\n']) {
                format!("\"{}\"", l.model.replace('"', "\"\""))
            } else {
                l.model.clone()
            };
            let _ = writeln!(
                out,
                "{},{model},{},{},{},{},{},{}",
                l.date,
                l.upstream_cost,
                l.upstream_requests,
                l.local_cost,
                l.local_requests,
                l.cost_difference,
                l.verdict.as_str()
            );
        }
        out
    }
}

/// Compares OpenRouter's rows with ours for the UTC days `from..=to` (rows outside are ignored).
pub fn compare(
    upstream: &[ActivityRow],
    local: &[LedgerDay],
    from: NaiveDate,
    to: NaiveDate,
    tolerance: Tolerance,
) -> Vec<ReconciliationLine> {
    // (upstream cost, upstream requests, local cost, local requests, seen up, seen local)
    type Sides = (Decimal, i64, Decimal, i64, bool, bool);
    let mut both: BTreeMap<(NaiveDate, String), Sides> = BTreeMap::new();
    let within = |d: NaiveDate| d >= from && d <= to;
    for r in upstream.iter().filter(|r| within(r.date)) {
        let e = both.entry((r.date, r.model.clone())).or_default();
        e.0 += r.usage;
        e.1 += r.requests;
        e.4 = true;
    }
    for l in local.iter().filter(|l| within(l.date)) {
        let e = both.entry((l.date, l.model.clone())).or_default();
        e.2 += l.raw_cost;
        e.3 += l.requests;
        e.5 = true;
    }
    both.into_iter()
        .map(
            |((date, model), (up, up_n, loc, loc_n, seen_up, seen_loc))| {
                let difference = up - loc;
                let verdict = match (seen_up && (up_n > 0 || !up.is_zero()), seen_loc) {
                    (true, false) => Verdict::MissingLocally,
                    (false, true) => Verdict::MissingUpstream,
                    // A cost gap with a request gap is requests one side never saw.
                    _ if difference.abs() > tolerance.cost && up_n > loc_n => {
                        Verdict::MissingLocally
                    }
                    _ if difference.abs() > tolerance.cost && up_n < loc_n => {
                        Verdict::MissingUpstream
                    }
                    _ if difference.abs() > tolerance.cost => Verdict::CostDrift,
                    _ if up_n != loc_n => Verdict::RequestDrift,
                    _ => Verdict::Match,
                };
                ReconciliationLine {
                    date,
                    model,
                    upstream_cost: up,
                    upstream_requests: up_n,
                    local_cost: loc,
                    local_requests: loc_n,
                    cost_difference: difference.normalize(),
                    verdict,
                }
            },
        )
        .collect()
}

impl Store {
    /// Reconciles one client over the completed UTC days `from..=to` (at most the last 30,
    /// which is what `/activity` keeps): one `/activity` call filtered by the client's key hash,
    /// one `GET /keys/{hash}` for its usage figures, and our ledger for the same UTC days.
    ///
    /// Errors: no such active client, a client without a key hash, or days that are not
    /// completed or older than 30 days ([`Error::InvalidInput`]); OpenRouter failures
    /// ([`ProvisionError::Upstream`]). OpenRouter buckets a request by its start and advises
    /// waiting about 30 minutes after midnight UTC before reading a day.
    pub fn reconcile(
        &self,
        keys: &KeyManager,
        client_org_id: &str,
        from: NaiveDate,
        to: NaiveDate,
        tolerance: Tolerance,
    ) -> Result<ReconciliationReport, ProvisionError> {
        let _span = tracing::info_span!("orgusage.reconcile", client_org_id).entered();
        let now = self.clock().now();
        let today = now.date_naive();
        if from > to || to >= today || from < today - Duration::days(30) {
            return Err(Error::invalid(
                "to",
                format!(
                    "{from}..={to} must be completed UTC days within the last 30 (today is {today})"
                ),
            )
            .into());
        }
        let client = self
            .clients()
            .get_client_by_id(client_org_id)?
            .ok_or_else(|| Error::NotFound {
                entity: "client",
                id: client_org_id.to_string(),
            })?;
        let hash = client.openrouter_key_hash.ok_or_else(|| {
            Error::invalid("client_org_id", "the client has no OpenRouter key hash")
        })?;
        let upstream = keys.activity(None, Some(&hash))?;
        let key = keys.get(&hash)?;
        let ours = self
            .generations()
            .ledger_by_utc_day(client_org_id, from, to)?;
        let lines = compare(&upstream, &ours.days, from, to, tolerance);
        let upstream_total = lines.iter().map(|l| l.upstream_cost).sum();
        let local_total = lines.iter().map(|l| l.local_cost).sum();
        let report = ReconciliationReport {
            client_org_id: client_org_id.to_string(),
            key_hash: hash,
            from,
            to,
            lines,
            upstream_total,
            local_total,
            key_usage_monthly: Some(key.usage_monthly),
            unplaced_local_generations: ours.unplaced,
            generated_at: now,
        };
        let differences = report.differences().count();
        tracing::info!(differences, "reconciled");
        Ok(report)
    }
}
