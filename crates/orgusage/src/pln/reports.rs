//! The PLN reports of [`PlnBilling`]: stats, by user, by model, billing of all clients and the
//! monthly statement. Each returns the USD figures of the plain report unchanged plus PLN
//! figures computed per day (that day's USD × that day's rate), summed exactly and rounded once.
//!
//! The USD report and the per-day rows are two reads. If a concurrent `record_usage` lands
//! between them, the PLN figures would describe slightly different data than the USD figures
//! next to them; each report therefore checks that the per-day rows add up to the USD figures
//! and reads again (up to [`ATTEMPTS`] times) when they do not.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use chrono_tz::Tz;
use orgusage_db::DayCosts;
use orgusage_domain::money::{units_to_decimal, wide_units_to_decimal};
use orgusage_domain::pln::{
    ClientBillingPln, ClientUsageStatsPln, DailyRate, DayPln, ModelUsagePln, MonthlyStatement,
    PlnReport, PlnSum, StatementLine, StatementTotals, UserUsagePln, round_pln,
};
use orgusage_domain::timezone::{local_date_at, month_end, month_start, parse_timezone};
use orgusage_domain::usage::report_range;
use orgusage_domain::{Error, Result};
use rust_decimal::Decimal;

use super::{PLN, PlnBilling};

/// How often a report reads again when its USD and per-day reads disagree.
const ATTEMPTS: usize = 3;

/// Exact PLN sums of a set of days and whether any of them used a flagged rate.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    raw: PlnSum,
    markup: PlnSum,
    fallback: bool,
    provisional: bool,
}

/// [`Figures`] rounded to the grosz, once, for a report row.
struct RoundedFigures {
    raw_pln: Decimal,
    markup_pln: Decimal,
    fallback: bool,
    provisional: bool,
}

impl Figures {
    fn rounded(&self) -> Result<RoundedFigures> {
        Ok(RoundedFigures {
            raw_pln: self.raw.rounded()?,
            markup_pln: self.markup.rounded()?,
            fallback: self.fallback,
            provisional: self.provisional,
        })
    }
}

/// The rates of a report: each used date's rate with its exact storage units.
struct Rates {
    by_date: BTreeMap<NaiveDate, (DailyRate, i64)>,
}

impl Rates {
    fn figures<'d>(&self, days: impl IntoIterator<Item = &'d DayCosts>) -> Result<Figures> {
        let mut f = Figures::default();
        for day in days {
            let (rate, units) = self.get(day.usage_date)?;
            f.raw.add(day.raw_units, *units)?;
            f.markup.add(day.markup_units, *units)?;
            f.fallback |= rate.is_fallback;
            f.provisional |= rate.is_provisional;
        }
        Ok(f)
    }

    fn get(&self, date: NaiveDate) -> Result<&(DailyRate, i64)> {
        self.by_date
            .get(&date)
            .ok_or_else(|| Error::RateUnavailable {
                date,
                reason: "no rate resolved for this date".into(),
            })
    }

    fn list(&self) -> Vec<DailyRate> {
        self.by_date.values().map(|(r, _)| r.clone()).collect()
    }
}

/// Sums of (raw, markup) units per key.
fn unit_sums<'d>(days: impl IntoIterator<Item = &'d DayCosts>) -> HashMap<&'d str, (i128, i128)> {
    let mut sums: HashMap<&str, (i128, i128)> = HashMap::new();
    for day in days {
        let entry = sums.entry(day.key.as_str()).or_default();
        entry.0 += i128::from(day.raw_units);
        entry.1 += i128::from(day.markup_units);
    }
    sums
}

/// Whether the per-day sums of `key` equal the USD report's `raw` and `markup`.
fn agrees(sums: &HashMap<&str, (i128, i128)>, key: &str, raw: Decimal, markup: Decimal) -> bool {
    let (r, m) = sums.get(key).copied().unwrap_or_default();
    wide_units_to_decimal(r).is_ok_and(|r| r == raw)
        && wide_units_to_decimal(m).is_ok_and(|m| m == markup)
}

/// Runs `read` until its two reads agree, at most [`ATTEMPTS`] times; the last answer is used
/// (with a warning) if they never do.
fn consistent<T>(report: &str, mut read: impl FnMut() -> Result<(T, bool)>) -> Result<T> {
    let mut attempt = 1;
    loop {
        let (value, agrees) = read()?;
        if agrees || attempt >= ATTEMPTS {
            if !agrees {
                tracing::warn!(
                    report,
                    "usage kept changing during the report: PLN figures may describe a \
                     slightly later state than the USD figures"
                );
            }
            return Ok(value);
        }
        attempt += 1;
    }
}

impl PlnBilling {
    fn rates_of(&self, dates: impl IntoIterator<Item = NaiveDate>) -> Result<Rates> {
        let dates: BTreeSet<NaiveDate> = dates.into_iter().collect();
        let resolved = self.resolve(&dates)?;
        let mut by_date = BTreeMap::new();
        for (date, rate) in resolved {
            let units = rate.rate_units()?;
            by_date.insert(date, (rate, units));
        }
        Ok(Rates { by_date })
    }

    /// The client's zone (UTC when `use_client_timezone` is false) and today in it.
    fn client_today(&self, client_org_id: &str, use_client_timezone: bool) -> Result<NaiveDate> {
        let header = self
            .rates_repo()
            .client_header(client_org_id)?
            .ok_or_else(|| Error::NotFound {
                entity: "client",
                id: client_org_id.to_string(),
            })?;
        let tz = if use_client_timezone {
            parse_timezone(&header.timezone)?
        } else {
            Tz::UTC
        };
        Ok(local_date_at(tz, self.inner.store.clock().now()))
    }

    /// `get_usage_stats_by_client` with PLN: today's and the month's marked-up cost and every
    /// day of `daily_history` in PLN, with the rates used.
    pub fn get_usage_stats_by_client_pln(
        &self,
        client_org_id: &str,
        use_client_timezone: Option<bool>,
    ) -> Result<ClientUsageStatsPln> {
        let use_tz = use_client_timezone.unwrap_or(true);
        let repo = self.inner.store.usage_repo();
        let (usd, days, today) = consistent("stats", || {
            let usd = repo.get_usage_stats_by_client(client_org_id, use_tz)?;
            let today = self.client_today(client_org_id, use_tz)?;
            let first = usd
                .daily_history
                .iter()
                .map(|h| h.date)
                .fold(month_start(today), NaiveDate::min);
            let days: Vec<DayCosts> = self
                .rates_repo()
                .client_days(client_org_id, first, today)?
                .into_iter()
                .filter(|d| d.total_requests > 0)
                .collect();
            let month: i128 = days
                .iter()
                .filter(|d| d.usage_date >= month_start(today))
                .map(|d| i128::from(d.markup_units))
                .sum();
            let by_date: HashMap<NaiveDate, i64> = days
                .iter()
                .map(|d| (d.usage_date, d.markup_units))
                .collect();
            let agrees = wide_units_to_decimal(month)? == usd.this_month.cost
                && usd
                    .daily_history
                    .iter()
                    .all(|h| by_date.get(&h.date).map(|u| units_to_decimal(*u)) == Some(h.cost));
            Ok(((usd, days, today), agrees))
        })?;
        let rates = self.rates_of(days.iter().map(|d| d.usage_date))?;
        let month = rates.figures(days.iter().filter(|d| d.usage_date >= month_start(today)))?;
        let today_f = rates.figures(days.iter().filter(|d| d.usage_date == today))?;
        let mut history = Vec::with_capacity(usd.daily_history.len());
        for item in &usd.daily_history {
            let day: Vec<&DayCosts> = days.iter().filter(|d| d.usage_date == item.date).collect();
            let f = rates.figures(day)?;
            let (rate, _) = rates.get(item.date)?;
            let exact = f.markup.exact()?;
            history.push(DayPln {
                date: item.date,
                cost: item.cost,
                rate: rate.rate,
                cost_pln_exact: exact,
                cost_pln: round_pln(exact),
                is_fallback: f.fallback,
                is_provisional: f.provisional,
            });
        }
        let list = rates.list();
        Ok(ClientUsageStatsPln {
            today_cost_pln: today_f.markup.rounded()?,
            this_month_cost_pln: month.markup.rounded()?,
            daily_history_pln: history,
            pln_is_fallback: list.iter().any(|r| r.is_fallback),
            pln_is_provisional: list.iter().any(|r| r.is_provisional),
            rates: list,
            usd,
        })
    }

    /// `get_usage_by_user` with PLN per user (the same inclusive range, by default the client's
    /// month to date).
    pub fn get_usage_by_user_pln(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<PlnReport<UserUsagePln>> {
        let repo = self.inner.store.usage_repo();
        self.keyed_pln(
            "by_user",
            (client_org_id, start_date, end_date),
            || repo.get_usage_by_user(client_org_id, start_date, end_date),
            |from, to| self.rates_repo().user_days(client_org_id, from, to),
            |u| (&u.user_id, u.raw_cost, u.markup_cost),
            |usage, f| UserUsagePln {
                raw_cost_pln: f.raw_pln,
                markup_cost_pln: f.markup_pln,
                pln_is_fallback: f.fallback,
                pln_is_provisional: f.provisional,
                usage,
            },
        )
    }

    /// `get_usage_by_model` with PLN per model (catalogue models without usage are 0 PLN).
    pub fn get_usage_by_model_pln(
        &self,
        client_org_id: &str,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<PlnReport<ModelUsagePln>> {
        let repo = self.inner.store.usage_repo();
        self.keyed_pln(
            "by_model",
            (client_org_id, start_date, end_date),
            || repo.get_usage_by_model(client_org_id, start_date, end_date),
            |from, to| self.rates_repo().model_days(client_org_id, from, to),
            |m| (&m.model_name, m.raw_cost, m.markup_cost),
            |usage, f| ModelUsagePln {
                usage,
                raw_cost_pln: f.raw_pln,
                markup_cost_pln: f.markup_pln,
                pln_is_fallback: f.fallback,
                pln_is_provisional: f.provisional,
            },
        )
    }

    /// The by-user and by-model twins: the USD rows, the per-day rows of the same range (read
    /// until both agree: every day's key has a USD row and every USD row equals its days; a
    /// catalogue model without usage has no days and agrees at zero), then each row's days at
    /// their rates.
    fn keyed_pln<U, R>(
        &self,
        report: &str,
        (client_org_id, start_date, end_date): (&str, Option<NaiveDate>, Option<NaiveDate>),
        read_usd: impl Fn() -> Result<Vec<U>>,
        read_days: impl Fn(NaiveDate, NaiveDate) -> Result<Vec<DayCosts>>,
        key_costs: impl Fn(&U) -> (&str, Decimal, Decimal),
        row: impl Fn(U, RoundedFigures) -> R,
    ) -> Result<PlnReport<R>> {
        let (usd, days) = consistent(report, || {
            let usd = read_usd()?;
            let today = self.client_today(client_org_id, true)?;
            let (from, to) = report_range(start_date, end_date, today)?;
            let days = read_days(from, to)?;
            let sums = unit_sums(&days);
            let keys: BTreeSet<&str> = usd.iter().map(|u| key_costs(u).0).collect();
            let agrees = sums.keys().all(|k| keys.contains(k))
                && usd.iter().all(|u| {
                    let (key, raw, markup) = key_costs(u);
                    agrees(&sums, key, raw, markup)
                });
            Ok(((usd, days), agrees))
        })?;
        let rates = self.rates_of(days.iter().map(|d| d.usage_date))?;
        // Days grouped by key once: filtering all days per row was rows x days (300 users over a
        // year: 33 million comparisons).
        let mut by_key: HashMap<&str, Vec<&DayCosts>> = HashMap::new();
        for day in &days {
            by_key.entry(day.key.as_str()).or_default().push(day);
        }
        let mut rows = Vec::with_capacity(usd.len());
        for usage in usd {
            let of_key = by_key
                .get(key_costs(&usage).0)
                .map_or(&[][..], Vec::as_slice);
            let f = rates.figures(of_key.iter().copied())?;
            rows.push(row(usage, f.rounded()?));
        }
        Ok(PlnReport::new(rows, rates.list()))
    }

    /// `get_all_clients_usage_stats` with PLN per client (each client over the range of its USD
    /// row). One query for all clients' days and one rate resolution for all their dates.
    pub fn get_all_clients_usage_stats_pln(
        &self,
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
    ) -> Result<PlnReport<ClientBillingPln>> {
        let repo = self.inner.store.usage_repo();
        let (usd, days) = consistent("all_clients", || {
            let usd = repo.get_all_clients_usage_stats(start_date, end_date)?;
            let (Some(lo), Some(hi)) = (
                usd.iter().map(|b| b.start_date).min(),
                usd.iter().map(|b| b.end_date).max(),
            ) else {
                return Ok(((usd, Vec::new()), true));
            };
            let ranges: HashMap<&str, (NaiveDate, NaiveDate)> = usd
                .iter()
                .map(|b| (b.client_org_id.as_str(), (b.start_date, b.end_date)))
                .collect();
            let days: Vec<DayCosts> = self
                .rates_repo()
                .all_client_days(lo, hi)?
                .into_iter()
                .filter(|d| {
                    ranges
                        .get(d.key.as_str())
                        .is_some_and(|(from, to)| d.usage_date >= *from && d.usage_date <= *to)
                })
                .collect();
            let sums = unit_sums(&days);
            let agrees = usd
                .iter()
                .all(|b| agrees(&sums, &b.client_org_id, b.raw_cost, b.markup_cost));
            Ok(((usd, days), agrees))
        })?;
        let rates = self.rates_of(days.iter().map(|d| d.usage_date))?;
        let mut by_client: HashMap<&str, Vec<&DayCosts>> = HashMap::new();
        for day in &days {
            by_client.entry(day.key.as_str()).or_default().push(day);
        }
        let mut rows = Vec::with_capacity(usd.len());
        for billing in usd {
            let own = by_client
                .get(billing.client_org_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let f = rates.figures(own.iter().copied())?;
            rows.push(ClientBillingPln {
                raw_cost_pln: f.raw.rounded()?,
                markup_cost_pln: f.markup.rounded()?,
                profit_margin_pln: f.markup.minus(f.raw)?.rounded()?,
                pln_is_fallback: f.fallback,
                pln_is_provisional: f.provisional,
                billing,
            });
        }
        Ok(PlnReport::new(rows, rates.list()))
    }

    /// The statement of `client_org_id` for the client-local month `year`-`month`: one line per
    /// day with usage (tokens, requests, raw and marked-up USD, the rate and its table, PLN) and
    /// the totals, the PLN total being the exact sum of the days rounded once.
    ///
    /// Works for deactivated clients too (their last month still needs an invoice); an unknown
    /// client is [`Error::NotFound`], a month outside 1-12 [`Error::InvalidInput`].
    pub fn monthly_statement(
        &self,
        client_org_id: &str,
        year: i32,
        month: u32,
    ) -> Result<MonthlyStatement> {
        let _span =
            tracing::debug_span!("orgusage.pln.statement", client_org_id, year, month).entered();
        let first = NaiveDate::from_ymd_opt(year, month, 1)
            .ok_or_else(|| Error::invalid("month", format!("{year}-{month} is not a month")))?;
        let last = month_end(first);
        let (header, days) = self
            .rates_repo()
            .client_month(client_org_id, first, last)?
            .ok_or_else(|| Error::NotFound {
                entity: "client",
                id: client_org_id.to_string(),
            })?;
        let rates = self.rates_of(days.iter().map(|d| d.usage_date))?;

        let mut lines = Vec::with_capacity(days.len());
        let mut total = PlnSum::default();
        let (mut tokens, mut requests, mut raw, mut markup) = (0_i64, 0_i64, 0_i128, 0_i128);
        let mut rounded_lines = Decimal::ZERO;
        for day in &days {
            let (rate, units) = rates.get(day.usage_date)?;
            let mut exact = PlnSum::default();
            exact.add(day.markup_units, *units)?;
            total.add_sum(exact)?;
            let overflow = || Error::Overflow("statement totals".into());
            tokens = tokens.checked_add(day.total_tokens).ok_or_else(overflow)?;
            requests = requests
                .checked_add(day.total_requests)
                .ok_or_else(overflow)?;
            raw = raw
                .checked_add(i128::from(day.raw_units))
                .ok_or_else(overflow)?;
            markup = markup
                .checked_add(i128::from(day.markup_units))
                .ok_or_else(overflow)?;
            let pln = exact.rounded()?;
            rounded_lines = rounded_lines.checked_add(pln).ok_or_else(overflow)?;
            lines.push(StatementLine {
                date: day.usage_date,
                tokens: day.total_tokens,
                requests: day.total_requests,
                raw_usd: units_to_decimal(day.raw_units),
                markup_usd: units_to_decimal(day.markup_units),
                rate: rate.rate,
                table_no: rate.table_no.clone(),
                effective_date: rate.effective_date,
                rate_source: rate.source.clone(),
                is_fallback: rate.is_fallback,
                is_provisional: rate.is_provisional,
                pln_exact: exact.exact()?,
                pln,
            });
        }
        let config = self.config();
        Ok(MonthlyStatement {
            client_org_id: client_org_id.to_string(),
            client_name: header.name,
            month: first.format("%Y-%m").to_string(),
            period_start: first,
            period_end: last,
            timezone: header.timezone,
            currency_from: config.currency_from.clone(),
            currency_to: PLN.to_string(),
            rate_rule: config.rule,
            any_fallback: lines.iter().any(|l| l.is_fallback),
            any_provisional: lines.iter().any(|l| l.is_provisional),
            lines,
            totals: StatementTotals {
                tokens,
                requests,
                raw_usd: wide_units_to_decimal(raw)?,
                markup_usd: wide_units_to_decimal(markup)?,
                pln_exact: total.exact()?,
                pln: total.rounded()?,
                pln_of_rounded_lines: rounded_lines,
            },
        })
    }
}
