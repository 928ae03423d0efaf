//! NBP (Narodowy Bank Polski) exchange rates for orgusage: table A mid rates over HTTP, the
//! Polish tax rule that picks the rate for a cost date, an in-memory source and a cache.
//!
//! This is the only crate of orgusage that speaks HTTP. Everything else depends on the
//! [`RateSource`] trait, so hosts and tests can swap in [`StaticRates`] or their own store.
//!
//! ```no_run
//! use chrono::NaiveDate;
//! use orgusage_nbp::{CachedSource, DEFAULT_CACHE_TTL, NbpClient, NbpConfig, RateSource};
//!
//! let nbp = CachedSource::new(NbpClient::new(NbpConfig::default()), DEFAULT_CACHE_TTL);
//! let cost_date = NaiveDate::from_ymd_opt(2025, 4, 22).unwrap();
//! // Easter Monday and the weekend are skipped: the table of Friday 2025-04-18 applies.
//! let rate = nbp.rate_for_cost_date("USD", cost_date)?;
//! println!("{} {} {}", rate.table_no, rate.effective_date, rate.mid);
//! # Ok::<(), orgusage_nbp::NbpError>(())
//! ```
#![deny(missing_docs)]

mod cache;
mod client;
mod error;
mod rate;
mod static_source;
mod wire;

pub use cache::{CachedSource, DEFAULT_CACHE_TTL};
pub use client::{NbpClient, NbpConfig};
pub use error::NbpError;
pub use rate::{
    MidRate, NBP_MAX_RANGE_DAYS, RULE_WINDOW_DAYS, RateSource, rate_for_cost_date,
    rate_on_or_before,
};
pub use static_source::{StaticRates, business_day_rates};
pub use wire::parse_rates_answer;
