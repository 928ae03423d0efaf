//! An in-process cache in front of any [`RateSource`], keyed per (currency, date).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use orgusage_domain::clock::{Clock, SystemClock};

use crate::rate::{check_range, normalize_currency};
use crate::{MidRate, NbpError, RateSource};

/// A sensible TTL: published tables do not change, so a day is only a guard against keeping a
/// rarely corrected table forever in a long-running process.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What is known about one (currency, date).
#[derive(Debug, Clone)]
enum Known {
    Rate(MidRate),
    /// NBP confirmed there is no table that day (weekend, holiday). Only recorded for days
    /// before today in Warsaw: today's table may still appear.
    NoTable,
}

#[derive(Debug, Clone)]
struct Entry {
    known: Known,
    stored_at: DateTime<Utc>,
}

/// Wraps a [`RateSource`] and remembers, per (currency, date), the rate or the confirmed absence
/// of a table for `ttl`. A range request is answered from memory when every date in it is known
/// and fresh; otherwise the whole range is fetched once from the inner source and remembered.
///
/// The key is per date, unlike the original's single global key, so a lookup for one day never
/// returns another day's rate. Errors are never cached. Thread-safe; clone the `Arc` around it
/// to share.
#[derive(Debug)]
pub struct CachedSource<S> {
    inner: S,
    ttl: TimeDelta,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<(String, NaiveDate), Entry>>,
}

impl<S: RateSource> CachedSource<S> {
    /// A cache in front of `inner` whose entries live for `ttl`, timed by the system clock.
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self::with_clock(inner, ttl, Arc::new(SystemClock))
    }

    /// A cache timed by `clock`, so tests can move time instead of sleeping.
    pub fn with_clock(inner: S, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many (currency, date) entries are held, fresh or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, NaiveDate), Entry>> {
        // A poisoned map still holds valid entries (inserts are single statements).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_fresh(&self, entry: &Entry, now: DateTime<Utc>) -> bool {
        now.signed_duration_since(entry.stored_at) < self.ttl
    }

    /// The cached answer for the whole range, if every date in it is known and fresh.
    fn lookup(
        &self,
        code: &str,
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> Option<Vec<MidRate>> {
        let entries = self.lock();
        let mut rates = Vec::new();
        for day in from.iter_days().take_while(|d| *d <= to) {
            let entry = entries.get(&(code.to_string(), day))?;
            if !self.is_fresh(entry, now) {
                return None;
            }
            if let Known::Rate(rate) = &entry.known {
                rates.push(rate.clone());
            }
        }
        Some(rates)
    }

    fn remember(
        &self,
        code: &str,
        from: NaiveDate,
        to: NaiveDate,
        rates: &[MidRate],
        now: DateTime<Utc>,
    ) {
        let today_warsaw = now.with_timezone(&chrono_tz::Europe::Warsaw).date_naive();
        let mut entries = self.lock();
        entries.retain(|_, entry| self.is_fresh(entry, now));
        for day in from.iter_days().take_while(|d| *d <= to) {
            let known = match rates.iter().find(|r| r.effective_date == day) {
                Some(rate) => Known::Rate(rate.clone()),
                None if day < today_warsaw => Known::NoTable,
                None => continue,
            };
            entries.insert(
                (code.to_string(), day),
                Entry {
                    known,
                    stored_at: now,
                },
            );
        }
    }
}

impl<S: RateSource> RateSource for CachedSource<S> {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        let code = normalize_currency(currency)?;
        check_range(from, to)?;
        let now = self.clock.now();
        if let Some(rates) = self.lookup(&code, from, to, now) {
            tracing::trace!(currency = %code, %from, %to, "rate cache hit");
            return if rates.is_empty() {
                Err(NbpError::NoTable)
            } else {
                Ok(rates)
            };
        }
        let rates = match self.inner.mid_rates(&code, from, to) {
            Ok(rates) => rates,
            Err(NbpError::NoTable) => Vec::new(),
            Err(other) => return Err(other),
        };
        self.remember(&code, from, to, &rates, now);
        if rates.is_empty() {
            Err(NbpError::NoTable)
        } else {
            Ok(rates)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticRates;
    use chrono::TimeZone;
    use orgusage_domain::clock::ManualClock;
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid")
    }

    fn clock_at(y: i32, m: u32, day: u32, h: u32) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(y, m, day, h, 0, 0)
                .single()
                .expect("valid"),
        ))
    }

    #[test]
    fn same_date_within_ttl_is_served_from_memory() {
        let clock = clock_at(2025, 5, 1, 10);
        let source =
            StaticRates::on_polish_business_days("USD", d(2025, 3, 1), d(2025, 4, 30), dec!(3.8));
        let cached = CachedSource::with_clock(&source, Duration::from_secs(3600), clock.clone());
        let first = cached
            .rate_for_cost_date("USD", d(2025, 4, 22))
            .expect("rate");
        let second = cached
            .rate_for_cost_date("usd", d(2025, 4, 22))
            .expect("rate");
        assert_eq!(first, second);
        assert_eq!(source.calls(), 1);
        // Another date whose window is covered is a hit as well.
        cached
            .rate_for_cost_date("USD", d(2025, 4, 23))
            .expect("rate");
        assert_eq!(
            source.calls(),
            2,
            "the 23rd's window reaches the 22nd, not cached yet"
        );
        clock.advance(chrono::Duration::seconds(3601));
        cached
            .rate_for_cost_date("USD", d(2025, 4, 22))
            .expect("rate");
        assert_eq!(source.calls(), 3, "expired");
    }

    #[test]
    fn absence_today_is_not_remembered() {
        // 12:00 UTC on 2025-04-14 is 14:00 in Warsaw: the 14th is "today".
        let clock = clock_at(2025, 4, 14, 12);
        let source =
            StaticRates::on_polish_business_days("USD", d(2025, 4, 1), d(2025, 4, 11), dec!(3.8));
        let cached = CachedSource::with_clock(&source, DEFAULT_CACHE_TTL, clock);
        let a = cached
            .rate_on_or_before("USD", d(2025, 4, 14))
            .expect("rate");
        let b = cached
            .rate_on_or_before("USD", d(2025, 4, 14))
            .expect("rate");
        assert_eq!(a.effective_date, d(2025, 4, 11));
        assert_eq!(a, b);
        assert_eq!(source.calls(), 2, "today's table may still be published");
        // Past days without a table are remembered.
        assert!(matches!(
            cached.mid_rates("USD", d(2025, 4, 12), d(2025, 4, 13)),
            Err(NbpError::NoTable)
        ));
        assert_eq!(source.calls(), 2);
    }

    #[test]
    fn errors_are_not_cached() {
        struct Failing(std::sync::atomic::AtomicUsize);
        impl RateSource for Failing {
            fn mid_rates(
                &self,
                _: &str,
                _: NaiveDate,
                _: NaiveDate,
            ) -> Result<Vec<MidRate>, NbpError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(NbpError::Timeout)
            }
        }
        let failing = Failing(Default::default());
        let cached = CachedSource::new(&failing, DEFAULT_CACHE_TTL);
        for _ in 0..2 {
            assert!(matches!(
                cached.rate_for_cost_date("USD", d(2025, 4, 22)),
                Err(NbpError::Timeout)
            ));
        }
        assert_eq!(failing.0.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert!(cached.is_empty());
    }
}
