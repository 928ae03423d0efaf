//! The import's decisions, as pure functions shared by the writing phases and the final
//! verification (which recomputes every report line from the source, so that a resumed import
//! reports exactly what an uninterrupted one would).

use std::collections::BTreeMap;

use orgusage_domain::money::{amount_to_units, units_to_decimal};
use orgusage_domain::timezone::validate_timezone;
use rust_decimal::Decimal;

use crate::error::Result;
use crate::report::{MappingConflict, TimezoneMapping, Totals};
use crate::rows::{SrcClient, SrcDay, SrcMapping, float_exact, float_to_units};
use crate::state::{NewClient, NewMapping};
use crate::{DuplicateDayPolicy, ImportOptions};

/// The original's default markup (1.3) in nano-units, for a NULL or unusable rate.
pub(crate) const DEFAULT_MARKUP_UNITS: i64 = 1_300_000_000;
/// orgusage's largest markup rate (1000) in nano-units.
const MAX_MARKUP_UNITS: i64 = 1_000_000_000_000;

/// A markup rate from the original's float: converted once to nano-units (half away from
/// zero); NULL, ≤ 0 or > 1000 becomes 1.3 with a fix line.
pub(crate) fn markup_units(
    value: Option<f64>,
    table: &'static str,
    id: &str,
    fixes: &mut Vec<String>,
) -> Result<i64> {
    let Some(v) = value else {
        return Ok(DEFAULT_MARKUP_UNITS);
    };
    let units = float_to_units(Some(v), table, "markup_rate", id)?;
    if units <= 0 || units > MAX_MARKUP_UNITS {
        fixes.push(format!(
            "{id}: markup_rate {v} is outside (0, 1000], imported as 1.3"
        ));
        return Ok(DEFAULT_MARKUP_UNITS);
    }
    Ok(units)
}

/// The canonical zone for a stored one: kept when orgusage accepts it; `CET`, `Poland` and
/// `MET` (the Polish deployment's legacy spellings of the same rules) become `Europe/Warsaw`;
/// empty, missing or anything else becomes the configured fallback. Every change is reported.
pub(crate) fn map_timezone(
    client: &str,
    stored: Option<&str>,
    fallback: &str,
) -> (String, Option<TimezoneMapping>) {
    let trimmed = stored.map(str::trim).unwrap_or_default();
    if !trimmed.is_empty() && trimmed == stored.unwrap_or_default() && validate_timezone(trimmed) {
        return (trimmed.to_string(), None);
    }
    let mapped = match trimmed.to_ascii_uppercase().as_str() {
        "CET" | "POLAND" | "MET" | "CEST" => "Europe/Warsaw".to_string(),
        _ if validate_timezone(trimmed) => trimmed.to_string(),
        _ => fallback.to_string(),
    };
    let line = TimezoneMapping {
        client_org_id: client.to_string(),
        original: stored.map(str::to_string),
        mapped_to: mapped.clone(),
    };
    (mapped, Some(line))
}

/// One client row as orgusage stores it, plus what had to change.
pub(crate) fn convert_client(
    c: &SrcClient,
    opts: &ImportOptions,
    now: i64,
    fixes: &mut Vec<String>,
) -> Result<(NewClient, Option<TimezoneMapping>)> {
    let markup_rate = markup_units(c.markup_rate, "client_organizations", &c.id, fixes)?;
    let mut monthly_limit = match c.monthly_limit {
        Some(v) => Some(float_to_units(
            Some(v),
            "client_organizations",
            "monthly_limit",
            &c.id,
        )?),
        None => None,
    };
    if monthly_limit.is_some_and(|l| l < 0) {
        fixes.push(format!("{}: negative monthly_limit imported as none", c.id));
        monthly_limit = None;
    }
    let api_key = match &c.openrouter_api_key {
        Some(k) if !k.is_empty() => k.clone(),
        _ => {
            fixes.push(format!(
                "{}: no API key; imported as missing-key:{}",
                c.id, c.id
            ));
            format!("missing-key:{}", c.id)
        }
    };
    let (timezone, tz_line) = map_timezone(&c.id, c.timezone.as_deref(), &opts.timezone_fallback);
    let created_at = c.created_at.unwrap_or(now);
    Ok((
        NewClient {
            id: c.id.clone(),
            name: c.name.clone().unwrap_or_else(|| c.id.clone()),
            openrouter_api_key: api_key,
            openrouter_key_hash: c.openrouter_key_hash.clone(),
            markup_rate,
            monthly_limit,
            billing_email: c.billing_email.clone(),
            timezone,
            // NULL is_active meant the column default, 1.
            is_active: c.is_active.unwrap_or(1) != 0,
            created_at,
            updated_at: c.updated_at.unwrap_or(created_at),
        },
        tz_line,
    ))
}

/// Mappings of known clients as orgusage stores them: the id becomes `{user_id}_{client}` (what
/// `create_mapping` upserts); one pair stored twice (V4's random ids) keeps the active, then the
/// latest row; a user with several active mappings keeps the **latest** active (greatest
/// `updated_at`, then `created_at`, then id) and the others are imported inactive and reported.
pub(crate) fn resolve_mappings(
    rows: &[SrcMapping],
    known_client: &dyn Fn(&str) -> bool,
    now: i64,
) -> (Vec<NewMapping>, Vec<MappingConflict>) {
    let rank = |m: &SrcMapping| {
        (
            m.is_active.unwrap_or(1) != 0,
            m.updated_at.unwrap_or(0),
            m.created_at.unwrap_or(0),
            m.id.clone(),
        )
    };
    let mut by_pair: BTreeMap<String, &SrcMapping> = BTreeMap::new();
    for m in rows.iter().filter(|m| known_client(&m.client_org_id)) {
        let id = format!("{}_{}", m.user_id, m.client_org_id);
        match by_pair.get(&id) {
            Some(old) if rank(old) >= rank(m) => {}
            _ => {
                by_pair.insert(id, m);
            }
        }
    }
    let mut active_by_user: BTreeMap<&str, Vec<(&String, &SrcMapping)>> = BTreeMap::new();
    for (id, m) in &by_pair {
        if m.is_active.unwrap_or(1) != 0 {
            active_by_user.entry(&m.user_id).or_default().push((id, m));
        }
    }
    let mut deactivate = std::collections::BTreeSet::new();
    let mut conflicts = Vec::new();
    for (user, mut list) in active_by_user {
        if list.len() < 2 {
            continue;
        }
        list.sort_by_key(|(_, m)| rank(m));
        let (kept, _) = list.pop().unwrap_or_else(|| unreachable!("len >= 2"));
        let others: Vec<String> = list.iter().map(|(id, _)| (*id).clone()).collect();
        deactivate.extend(others.iter().cloned());
        conflicts.push(MappingConflict {
            user_id: user.to_string(),
            kept_active: kept.clone(),
            deactivated: others,
        });
    }
    let mappings = by_pair
        .into_iter()
        .map(|(id, m)| {
            let created_at = m.created_at.unwrap_or(now);
            NewMapping {
                is_active: m.is_active.unwrap_or(1) != 0 && !deactivate.contains(&id),
                id,
                user_id: m.user_id.clone(),
                client_org_id: m.client_org_id.clone(),
                openrouter_user_id: m.openrouter_user_id.clone().unwrap_or_default(),
                created_at,
                updated_at: m.updated_at.unwrap_or(created_at),
            }
        })
        .collect();
    (mappings, conflicts)
}

/// A row's figures converted once to exact units, with the rounding each conversion made.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Units {
    pub tokens: i64,
    pub requests: i64,
    pub raw: i64,
    pub markup: i64,
    /// Σ (stored − exact float), raw and marked-up.
    pub rounding_raw: Decimal,
    pub rounding_markup: Decimal,
}

impl Units {
    pub(crate) fn of(
        table: &'static str,
        id: &str,
        tokens: Option<i64>,
        requests: Option<i64>,
        raw: Option<f64>,
        markup: Option<f64>,
    ) -> Result<Self> {
        let r = float_to_units(raw, table, "raw_cost", id)?;
        let m = float_to_units(markup, table, "markup_cost", id)?;
        Ok(Self {
            tokens: tokens.unwrap_or(0),
            requests: requests.unwrap_or(0),
            raw: r,
            markup: m,
            rounding_raw: units_to_decimal(r) - float_exact(raw.unwrap_or(0.0)),
            rounding_markup: units_to_decimal(m) - float_exact(markup.unwrap_or(0.0)),
        })
    }

    pub(crate) fn add(&mut self, o: &Units) {
        self.tokens += o.tokens;
        self.requests += o.requests;
        self.raw += o.raw;
        self.markup += o.markup;
        self.rounding_raw += o.rounding_raw;
        self.rounding_markup += o.rounding_markup;
    }

    /// The figures as exact totals.
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            tokens: self.tokens,
            requests: self.requests,
            raw_cost: units_to_decimal(self.raw),
            markup_cost: units_to_decimal(self.markup),
        }
    }
}

/// The exact values of a row's floats (what the original stored, before any rounding).
pub(crate) fn float_totals(d: &SrcDay) -> Totals {
    Totals {
        tokens: d.total_tokens.unwrap_or(0),
        requests: d.total_requests.unwrap_or(0),
        raw_cost: float_exact(d.raw_cost.unwrap_or(0.0)),
        markup_cost: float_exact(d.markup_cost.unwrap_or(0.0)),
    }
}

/// The outcome of merging the daily rows of one client and day.
pub(crate) struct Merged {
    pub units: Units,
    /// The row kept, or `sum`.
    pub kept: String,
    /// The rows left out (their exact float values).
    pub dropped: Totals,
}

/// Merges one client-day group (rows of both id formats) by `policy`.
pub(crate) fn merge_day(group: &[SrcDay], policy: DuplicateDayPolicy) -> Result<Merged> {
    let units = |d: &SrcDay| {
        Units::of(
            "client_daily_usage",
            &d.id,
            d.total_tokens,
            d.total_requests,
            d.raw_cost,
            d.markup_cost,
        )
    };
    let colon = |d: &SrcDay| {
        d.id.len() > d.client_org_id.len() && d.id[d.client_org_id.len()..].starts_with(':')
    };
    if group.len() == 1 || policy == DuplicateDayPolicy::Sum {
        let mut total = Units::default();
        for d in group {
            total.add(&units(d)?);
        }
        let kept = if group.len() == 1 {
            group[0].id.clone()
        } else {
            "sum".to_string()
        };
        return Ok(Merged {
            units: total,
            kept,
            dropped: Totals::default(),
        });
    }
    let pick = group
        .iter()
        .max_by_key(|d| match policy {
            DuplicateDayPolicy::PreferColon => (i64::from(colon(d)), 0, d.id.clone()),
            DuplicateDayPolicy::PreferUnderscore => (i64::from(!colon(d)), 0, d.id.clone()),
            _ => (d.updated_at.unwrap_or(0), i64::from(colon(d)), d.id.clone()),
        })
        .unwrap_or_else(|| unreachable!("non-empty group"));
    let mut dropped = Totals::default();
    for d in group.iter().filter(|d| d.id != pick.id) {
        let t = float_totals(d);
        dropped.tokens += t.tokens;
        dropped.requests += t.requests;
        dropped.raw_cost += t.raw_cost;
        dropped.markup_cost += t.markup_cost;
    }
    Ok(Merged {
        units: units(pick)?,
        kept: pick.id.clone(),
        dropped,
    })
}

/// B22: whether a day's ledger sum looks like the marked-up cost: nearer the day's marked-up
/// cost than its raw cost, and the two differ (a markup of 1 makes them indistinguishable).
pub(crate) fn ledger_day_marked_up(ledger_sum: Decimal, raw: i64, markup: i64) -> bool {
    let (raw, markup) = (units_to_decimal(raw), units_to_decimal(markup));
    markup != raw && !ledger_sum.is_zero() && (ledger_sum - markup).abs() < (ledger_sum - raw).abs()
}

/// A marked-up ledger cost back to raw with the day's own ratio, rounded once (half away from
/// zero) to nano-units. The quotient is exact to 28 digits before that single rounding.
pub(crate) fn ledger_raw_units(total_cost: f64, day_raw: i64, day_markup: i64) -> Result<i64> {
    let exact = float_exact(total_cost);
    let raw = exact * Decimal::from(day_raw) / Decimal::from(day_markup);
    Ok(amount_to_units(raw)?)
}
