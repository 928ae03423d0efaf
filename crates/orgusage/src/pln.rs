//! PLN billing: the NBP rate of each cost date, resolved through an in-process cache, the shared
//! `daily_exchange_rates` table and a [`RateSource`], and the PLN reports built on it.
//!
//! # Where a day's rate comes from
//! For cost date D (USD→PLN under the configured [`RateRule`]):
//! 1. the in-process cache of this [`PlnBilling`], per date, for `cache_ttl`;
//! 2. the database row of D, written once by whichever instance fetched it first;
//! 3. the [`RateSource`] (NBP): all missing dates of a call in one range request (see
//!    [`orgusage_nbp::rates_for_dates`]), then stored first-writer-wins and read back, so every
//!    instance converges on one rate per day and a stored day never reprices;
//! 4. if the source cannot answer (timeout, transport or server error, or no table in the
//!    window the rule allows): the configured `fallback_rate`, flagged `is_fallback` in every
//!    figure it touches and never stored or cached; without one, [`Error::RateUnavailable`].
//!
//! A rate that can still change (its rule day is today or later and that day's table is not
//! out yet) is used flagged `is_provisional`, and is neither stored nor cached.
//!
//! The rate sources ([`RateSource`], `NbpClient`, [`StaticRates`](crate::nbp::StaticRates),
//! [`CachedSource`](crate::nbp::CachedSource)) are in [`nbp`](crate::nbp).

mod reports;

pub use orgusage_domain::pln::{
    ClientBillingPln, ClientUsageStatsPln, DailyRate, DayPln, ModelUsagePln, MonthlyStatement,
    PlnReport, PlnSum, RateRule, StatementLine, StatementTotals, UserUsagePln, convert_to_pln,
    display_rate, round_pln,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use orgusage_db::RatesRepo;
use orgusage_domain::money::rate_to_units;
use orgusage_domain::{Error, Result};
use orgusage_nbp::{
    MidRate, NBP_MAX_RANGE_DAYS, NbpError, RateSource, no_table_verdict, rate_is_final,
    rates_for_dates,
};
use rust_decimal::Decimal;

use crate::store::Store;

/// The currency every NBP rate converts to.
pub const PLN: &str = "PLN";

/// Entries beyond this make an insert sweep out expired ones, bounding the cache's memory.
const CACHE_SWEEP_AT: usize = 4096;

/// Settings of [`PlnBilling`].
///
/// ```
/// use orgusage::Decimal;
/// use orgusage::pln::{PlnConfig, RateRule};
///
/// let config = PlnConfig {
///     fallback_rate: Some(Decimal::new(40000, 4)), // used only when NBP fails, always flagged
///     ..PlnConfig::default()
/// };
/// assert_eq!(config.rule, RateRule::PreviousBusinessDay);
/// assert_eq!(config.currency_from, "USD");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlnConfig {
    /// The currency of the costs (ISO 4217, three letters): `USD`.
    pub currency_from: String,
    /// Which table converts a cost date; the default is the legal rule.
    pub rule: RateRule,
    /// A rate to use when no NBP rate can be had. `None` (the default) turns such a day into
    /// [`Error::RateUnavailable`]. When set, every figure that used it says `is_fallback`, and
    /// it is never stored.
    pub fallback_rate: Option<Decimal>,
    /// How long a day's rate stays in this process's memory (default 24 h). Stored rates never
    /// change, so this only bounds how long a manually corrected database row goes unseen.
    pub cache_ttl: Duration,
    /// The `source` recorded with fetched rates (default `NBP`).
    pub source_name: String,
}

impl Default for PlnConfig {
    fn default() -> Self {
        Self {
            currency_from: "USD".to_string(),
            rule: RateRule::PreviousBusinessDay,
            fallback_rate: None,
            cache_ttl: Duration::from_secs(24 * 60 * 60),
            source_name: "NBP".to_string(),
        }
    }
}

impl PlnConfig {
    fn validate(mut self) -> Result<Self> {
        let code = self.currency_from.trim();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                "currency_from",
                format!(
                    "{:?} is not a three-letter currency code",
                    self.currency_from
                ),
            ));
        }
        self.currency_from = code.to_ascii_uppercase();
        if self.currency_from == PLN {
            return Err(Error::invalid("currency_from", "costs are already in PLN"));
        }
        if let Some(rate) = self.fallback_rate {
            if rate <= Decimal::ZERO {
                return Err(Error::invalid("fallback_rate", "must be greater than 0"));
            }
            rate_to_units("fallback_rate", rate)?;
        }
        if self.source_name.trim().is_empty() || self.source_name == DailyRate::FALLBACK_SOURCE {
            return Err(Error::invalid(
                "source_name",
                "must be a non-empty name other than `fallback`",
            ));
        }
        Ok(self)
    }
}

#[derive(Debug, Clone)]
struct Cached {
    rate: DailyRate,
    stored_at: DateTime<Utc>,
}

struct Inner {
    store: Store,
    source: Arc<dyn RateSource>,
    config: PlnConfig,
    ttl: TimeDelta,
    cache: Mutex<HashMap<NaiveDate, Cached>>,
}

/// PLN billing over a [`Store`] and a [`RateSource`]: daily rates and the PLN reports.
///
/// Cheap to clone (one `Arc`); keep one per process and share it, so its cache is shared too.
/// Every method is blocking (database and, on a cache and database miss, HTTP).
///
/// ```
/// use std::sync::Arc;
/// use chrono::NaiveDate;
/// use orgusage::nbp::StaticRates;
/// use orgusage::pln::PlnConfig;
/// use orgusage::{Decimal, Store};
///
/// let store = Store::open(":memory:")?;
/// let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
/// let nbp = Arc::new(StaticRates::on_polish_business_days("USD", d(4, 1), d(4, 30), Decimal::new(45, 1)));
/// let pln = store.pln(nbp, PlnConfig::default())?;
/// let rate = pln.rate_for(d(4, 22))?; // Easter Monday and the weekend are skipped
/// assert_eq!(rate.effective_date, Some(d(4, 18)));
/// assert!(!rate.is_fallback);
/// # Ok::<(), orgusage::Error>(())
/// ```
#[derive(Clone)]
pub struct PlnBilling {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PlnBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlnBilling")
            .field("config", &self.inner.config)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl PlnBilling {
    /// PLN billing on `store` with rates from `source`. Checks `config`; makes no request.
    pub fn new(store: Store, source: Arc<dyn RateSource>, config: PlnConfig) -> Result<Self> {
        let config = config.validate()?;
        let ttl = TimeDelta::from_std(config.cache_ttl).unwrap_or(TimeDelta::MAX);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                source,
                config,
                ttl,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings in use (currency code upper-cased).
    pub fn config(&self) -> &PlnConfig {
        &self.inner.config
    }

    /// The store the figures come from.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Forgets the in-process cache (stored rates stay).
    pub fn clear_cache(&self) {
        self.cache().clear();
    }

    /// How many dates the in-process cache holds, fresh or not.
    pub fn cached_dates(&self) -> usize {
        self.cache().len()
    }

    /// The rate that converts costs incurred on `cost_date`.
    pub fn rate_for(&self, cost_date: NaiveDate) -> Result<DailyRate> {
        let mut rates = self.rates_for(&[cost_date])?;
        rates
            .remove(&cost_date)
            .ok_or_else(|| Error::RateUnavailable {
                date: cost_date,
                reason: "no rate resolved".into(),
            })
    }

    /// The rates of many cost dates: cache, then one database query, then at most a couple of
    /// source requests for all the dates still missing (not one per date).
    ///
    /// Fails with [`Error::RateUnavailable`] for the first date without a rate when no fallback
    /// is configured; a database failure is [`Error::Database`].
    pub fn rates_for(&self, cost_dates: &[NaiveDate]) -> Result<BTreeMap<NaiveDate, DailyRate>> {
        let dates: BTreeSet<NaiveDate> = cost_dates.iter().copied().collect();
        self.resolve(&dates)
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<NaiveDate, Cached>> {
        // A poisoned map still holds valid entries: every insert is a single statement.
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rates_repo(&self) -> RatesRepo<'_> {
        RatesRepo::new(self.inner.store.database(), self.inner.store.clock())
    }

    fn remember(&self, rates: &[DailyRate], now: DateTime<Utc>) {
        let ttl = self.inner.ttl;
        let mut cache = self.cache();
        if cache.len() >= CACHE_SWEEP_AT {
            cache.retain(|_, c| now.signed_duration_since(c.stored_at) < ttl);
        }
        for rate in rates.iter().filter(|r| !r.is_fallback && !r.is_provisional) {
            cache.insert(
                rate.cost_date,
                Cached {
                    rate: rate.clone(),
                    stored_at: now,
                },
            );
        }
    }

    fn resolve(&self, dates: &BTreeSet<NaiveDate>) -> Result<BTreeMap<NaiveDate, DailyRate>> {
        let config = &self.inner.config;
        let now = self.inner.store.clock().now();
        let today = now.with_timezone(&chrono_tz::Europe::Warsaw).date_naive();
        let mut out = BTreeMap::new();

        let mut missing = BTreeSet::new();
        {
            let cache = self.cache();
            for date in dates {
                match cache.get(date) {
                    Some(c) if now.signed_duration_since(c.stored_at) < self.inner.ttl => {
                        out.insert(*date, c.rate.clone());
                    }
                    _ => {
                        missing.insert(*date);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let _span = tracing::debug_span!(
            "orgusage.pln.rates",
            dates = dates.len(),
            missing = missing.len()
        )
        .entered();

        let stored =
            self.rates_repo()
                .get_rates(&config.currency_from, PLN, config.rule, &missing)?;
        self.remember(&stored, now);
        for rate in stored {
            missing.remove(&rate.cost_date);
            out.insert(rate.cost_date, rate);
        }
        if missing.is_empty() {
            return Ok(out);
        }

        let wanted: Vec<NaiveDate> = missing.iter().copied().collect();
        let unavailable: Vec<(NaiveDate, String)> = match rates_for_dates(
            self.inner.source.as_ref(),
            &config.currency_from,
            &wanted,
            config.rule,
            today,
        ) {
            Ok(found) => {
                let (finals, unavailable) = self.classify(&wanted, &found, today, &mut out);
                if !finals.is_empty() {
                    let stored = self.rates_repo().store_rates(config.rule, &finals)?;
                    self.remember(&stored, now);
                    for rate in stored {
                        out.insert(rate.cost_date, rate);
                    }
                }
                unavailable
            }
            Err(error) if falls_back(&error) => {
                let reason = format!("the rate source failed: {error}");
                wanted.iter().map(|d| (*d, reason.clone())).collect()
            }
            Err(error) => {
                return Err(Error::RateUnavailable {
                    date: wanted.first().copied().unwrap_or(today),
                    reason: format!("the rate source failed: {error}"),
                });
            }
        };

        for (date, reason) in unavailable {
            let Some(fallback) = config.fallback_rate else {
                return Err(Error::RateUnavailable {
                    date,
                    reason: format!(
                        "{reason}; no rate is stored for this date and no fallback rate is \
                         configured"
                    ),
                });
            };
            tracing::warn!(%date, %fallback, %reason, "using the configured fallback rate");
            out.insert(
                date,
                DailyRate::fallback(date, &config.currency_from, fallback),
            );
        }
        Ok(out)
    }

    /// Sorts the source's answer into final rates (to store), provisional rates (used at once,
    /// into `out`) and dates without a usable rate (with the reason).
    fn classify(
        &self,
        wanted: &[NaiveDate],
        found: &BTreeMap<NaiveDate, MidRate>,
        today: NaiveDate,
        out: &mut BTreeMap<NaiveDate, DailyRate>,
    ) -> (Vec<DailyRate>, Vec<(NaiveDate, String)>) {
        let config = &self.inner.config;
        let mut finals = Vec::new();
        let mut unavailable = Vec::new();
        for date in wanted {
            let Some(mid) = found.get(date) else {
                unavailable.push((*date, self.explain_missing(*date, today)));
                continue;
            };
            if rate_to_units("rate", mid.mid).is_err() || mid.mid <= Decimal::ZERO {
                unavailable.push((
                    *date,
                    format!("the source's rate {} cannot be stored exactly", mid.mid),
                ));
                continue;
            }
            self.check_calendar(*date, mid, today);
            let is_final = rate_is_final(config.rule, *date, mid.effective_date, today);
            let rate = DailyRate {
                cost_date: *date,
                currency_from: config.currency_from.clone(),
                currency_to: PLN.to_string(),
                rate: mid.mid.normalize(),
                table_no: Some(mid.table_no.clone()),
                effective_date: Some(mid.effective_date),
                source: config.source_name.clone(),
                is_fallback: false,
                is_provisional: !is_final,
            };
            if is_final {
                finals.push(rate);
            } else {
                tracing::info!(
                    %date,
                    effective_date = %mid.effective_date,
                    "provisional rate: the table of the rule day is not published yet"
                );
                out.insert(*date, rate);
            }
        }
        (finals, unavailable)
    }

    /// Logs when NBP's latest table before the rule day is older than the holiday calendar
    /// expects: an outage or a gap in NBP's data, or a one-off holiday the calendar does not
    /// know. NBP stays authoritative; the warning is for the operator.
    fn check_calendar(&self, date: NaiveDate, mid: &MidRate, today: NaiveDate) {
        let Some(day) = self.inner.config.rule.rule_day(date) else {
            return;
        };
        let last = day.min(today);
        let (Some(gap_start), Some(before_today)) =
            (mid.effective_date.succ_opt(), today.pred_opt())
        else {
            return;
        };
        // Only days before today: today's table may simply not be out yet.
        let verdict = no_table_verdict(gap_start, last.min(before_today), Some(today));
        if gap_start <= last.min(before_today) && !verdict.expected {
            tracing::warn!(
                %date,
                effective_date = %mid.effective_date,
                verdict = %verdict.explanation,
                "NBP has no table on a day the holiday calendar treats as a business day"
            );
        }
    }

    fn explain_missing(&self, date: NaiveDate, today: NaiveDate) -> String {
        let config = &self.inner.config;
        let Some(day) = config.rule.rule_day(date) else {
            return format!("no day before {date} in the calendar");
        };
        let last = day.min(today);
        let first = last
            .checked_sub_days(Days::new(NBP_MAX_RANGE_DAYS - 1))
            .unwrap_or(NaiveDate::MIN);
        let verdict = no_table_verdict(first, last, Some(today));
        format!(
            "no table A rate for {} in {first}..{last} ({} rule); {}",
            config.currency_from, config.rule, verdict.explanation
        )
    }
}

/// Failures in which the configured fallback may stand in: NBP cannot be reached or has no table.
/// A rejected request, an unparsable answer or an unexpected status point at a bug or a changed
/// API, which a fallback must not hide.
fn falls_back(error: &NbpError) -> bool {
    error.is_transient() || matches!(error, NbpError::RateUnavailable { .. })
}

impl Store {
    /// PLN billing on this store with rates from `source` (e.g. an [`orgusage_nbp`] client).
    /// Keep the returned value: it holds the in-process rate cache.
    pub fn pln(&self, source: Arc<dyn RateSource>, config: PlnConfig) -> Result<PlnBilling> {
        PlnBilling::new(self.clone(), source, config)
    }
}
