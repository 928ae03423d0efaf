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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn day(id: &str, updated: i64, tokens: i64, raw: f64) -> SrcDay {
        SrcDay {
            id: id.into(),
            client_org_id: "c".into(),
            usage_date: "2025-07-01".into(),
            user_id: None,
            openrouter_user_id: None,
            model_name: None,
            provider: None,
            total_tokens: Some(tokens),
            total_requests: Some(1),
            raw_cost: Some(raw),
            markup_cost: Some(raw * 1.3),
            created_at: Some(1),
            updated_at: Some(updated),
        }
    }

    #[test]
    fn floats_are_rounded_once_half_away_from_zero() {
        assert_eq!(
            float_to_units(Some(0.1 + 0.2), "t", "c", "r").unwrap(),
            300_000_000
        );
        // 2.5e-9 is stored as 2.5000000000000000523…e-9, so its exact value rounds to 3. (A binary
        // float is never exactly halfway between two nano-units: the halves need a factor 5^9.)
        assert_eq!(float_to_units(Some(2.5e-9), "t", "c", "r").unwrap(), 3);
        assert_eq!(float_to_units(Some(-2.5e-9), "t", "c", "r").unwrap(), -3);
        assert_eq!(float_to_units(None, "t", "c", "r").unwrap(), 0);
        assert!(float_to_units(Some(f64::NAN), "t", "c", "r").is_err());
        assert!(float_to_units(Some(1e300), "t", "c", "r").is_err());
    }

    #[test]
    fn timezones_are_mapped_and_reported() {
        assert_eq!(
            map_timezone("c", Some("Europe/Warsaw"), "UTC"),
            ("Europe/Warsaw".into(), None)
        );
        for legacy in ["CET", "Poland", "cet"] {
            let (tz, line) = map_timezone("c", Some(legacy), "UTC");
            assert_eq!(tz, "Europe/Warsaw");
            assert_eq!(line.unwrap().original.as_deref(), Some(legacy));
        }
        assert_eq!(map_timezone("c", Some(""), "UTC").0, "UTC");
        assert_eq!(map_timezone("c", None, "UTC").0, "UTC");
        assert_eq!(map_timezone("c", Some("Mars/Base"), "UTC").0, "UTC");
        let (tz, line) = map_timezone("c", Some(" Europe/Berlin"), "UTC");
        assert_eq!((tz.as_str(), line.is_some()), ("Europe/Berlin", true));
    }

    #[test]
    fn duplicate_day_policies() {
        let under = day("c_2025-07-01", 5, 100, 0.1);
        let colon = day("c:2025-07-01", 3, 300, 0.3);
        let g = [under, colon];
        let latest = merge_day(&g, DuplicateDayPolicy::Latest).unwrap();
        assert_eq!(
            (
                latest.kept.as_str(),
                latest.units.tokens,
                latest.dropped.tokens
            ),
            ("c_2025-07-01", 100, 300)
        );
        let colon_kept = merge_day(&g, DuplicateDayPolicy::PreferColon).unwrap();
        assert_eq!(colon_kept.kept, "c:2025-07-01");
        assert_eq!(
            merge_day(&g, DuplicateDayPolicy::PreferUnderscore)
                .unwrap()
                .kept,
            "c_2025-07-01"
        );
        let sum = merge_day(&g, DuplicateDayPolicy::Sum).unwrap();
        assert_eq!(
            (sum.kept.as_str(), sum.units.tokens, sum.units.raw),
            ("sum", 400, 400_000_000)
        );
        // A tie on updated_at keeps the ':' row (the newer writer's format).
        let tie = [
            day("c_2025-07-01", 5, 1, 0.1),
            day("c:2025-07-01", 5, 2, 0.1),
        ];
        assert_eq!(
            merge_day(&tie, DuplicateDayPolicy::Latest).unwrap().kept,
            "c:2025-07-01"
        );
    }

    #[test]
    fn the_latest_active_mapping_wins() {
        let m = |id: &str, user: &str, client: &str, active: i64, updated: i64| SrcMapping {
            id: id.into(),
            user_id: user.into(),
            client_org_id: client.into(),
            openrouter_user_id: Some(format!("or_{user}")),
            is_active: Some(active),
            created_at: Some(1),
            updated_at: Some(updated),
        };
        let rows = [
            m("map_a", "u", "c1", 1, 10),
            m("map_b", "u", "c2", 1, 20),
            m("map_c", "v", "c1", 0, 30),
            m("map_d", "w", "ghost", 1, 1),
        ];
        let (maps, conflicts) = resolve_mappings(&rows, &|c| c != "ghost", 0);
        assert_eq!(maps.len(), 3, "the unknown client's mapping is left out");
        let active: Vec<_> = maps
            .iter()
            .filter(|m| m.is_active)
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(active, vec!["u_c2"]);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            (
                conflicts[0].kept_active.as_str(),
                conflicts[0].deactivated.clone()
            ),
            ("u_c2", vec!["u_c1".to_string()])
        );
    }

    #[test]
    fn ledger_days_holding_markup() {
        // Day raw 0.3, markup 0.45: a ledger sum of 0.45 is marked up, 0.3 or 0.2 is raw.
        assert!(ledger_day_marked_up(dec!(0.45), 300_000_000, 450_000_000));
        assert!(!ledger_day_marked_up(dec!(0.3), 300_000_000, 450_000_000));
        assert!(!ledger_day_marked_up(dec!(0.2), 300_000_000, 450_000_000));
        // A markup of 1 cannot be told apart.
        assert!(!ledger_day_marked_up(dec!(0.3), 300_000_000, 300_000_000));
        assert_eq!(
            ledger_raw_units(0.15, 300_000_000, 450_000_000).unwrap(),
            100_000_000
        );
        assert_eq!(
            markup_units(Some(1.3), "t", "c", &mut Vec::new()).unwrap(),
            1_300_000_000
        );
        let mut fixes = Vec::new();
        assert_eq!(
            markup_units(Some(-1.0), "t", "c", &mut fixes).unwrap(),
            DEFAULT_MARKUP_UNITS
        );
        assert_eq!(fixes.len(), 1);
    }
}
