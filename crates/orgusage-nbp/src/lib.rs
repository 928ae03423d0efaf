//! NBP (Narodowy Bank Polski) exchange rates for orgusage: table A mid rates over HTTP, the
//! Polish tax rule that picks the rate for a cost date, an in-memory source and a cache.
//!
//! This is the only crate of orgusage that speaks HTTP. Everything else depends on the
//! [`RateSource`] trait, so hosts and tests can swap in [`StaticRates`] or their own store.
//!
//! With the `http` feature (default), [`NbpClient`] fetches from api.nbp.pl over HTTPS (ureq with
//! rustls). Without it the crate has no HTTP stack at all: a host supplies its own
//! [`RateSource`], or uses [`StaticRates`].
//!
//! For many cost dates at once (a month's statement) [`rates_for_dates`] applies the same rule
//! with one range request, and [`rate_is_final`] tells whether a found rate can still change.
//! [`no_table_verdict`] uses the Polish holiday calendar to tell an expected missing table
//! (weekend, holiday, not yet published) from an outage.
//!
//! ```no_run
//! # #[cfg(feature = "http")] {
//! use chrono::NaiveDate;
//! use orgusage_nbp::{CachedSource, DEFAULT_CACHE_TTL, NbpClient, NbpConfig, RateSource};
//!
//! let nbp = CachedSource::new(NbpClient::new(NbpConfig::default()), DEFAULT_CACHE_TTL);
//! let cost_date = NaiveDate::from_ymd_opt(2025, 4, 22).unwrap();
//! // Easter Monday and the weekend are skipped: the table of Friday 2025-04-18 applies.
//! let rate = nbp.rate_for_cost_date("USD", cost_date)?;
//! println!("{} {} {}", rate.table_no, rate.effective_date, rate.mid);
//! # }
//! # Ok::<(), orgusage_nbp::NbpError>(())
//! ```
#![deny(missing_docs)]

mod batch;
mod cache;
mod calendar;
#[cfg(feature = "http")]
mod client;
mod error;
mod rate;
mod static_source;
mod wire;

pub use batch::{rate_is_final, rates_for_dates};
pub use cache::{CachedSource, DEFAULT_CACHE_TTL};
pub use calendar::{NBP_HISTORY_START, NoTableVerdict, no_table_verdict};
#[cfg(feature = "http")]
pub use client::{NbpClient, NbpConfig};
pub use error::NbpError;
pub use orgusage_domain::pln::RateRule;
pub use rate::{
    MidRate, NBP_MAX_RANGE_DAYS, RULE_WINDOW_DAYS, RateSource, rate_for_cost_date,
    rate_on_or_before,
};
pub use static_source::{StaticRates, business_day_rates};
pub use wire::parse_rates_answer;
