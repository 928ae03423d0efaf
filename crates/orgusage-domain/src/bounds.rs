//! The documented limits of one write: what a single usage record may carry, which usage days
//! are accepted, and which characters a stored text may contain.
//!
//! They exist so that bad input fails as [`Error::InvalidInput`] before anything is written, on
//! every backend alike. Without them SQLite and PostgreSQL disagreed: SQLite stored a NUL byte,
//! the year -262143 and an overflowing sum (as a float), where PostgreSQL refused each with an
//! untyped database error.
//!
//! * **Cost of one record:** `raw_cost` ≤ [`MAX_RECORD_COST`] (1,000,000 USD); an explicit
//!   `markup_cost` ≤ [`MAX_RECORD_MARKUP_COST`] (1,000,000,000 USD, the largest raw cost times
//!   the largest markup rate of 1000). A single LLM request costs cents to a few hundred dollars;
//!   the bounds leave orders of magnitude of headroom and still keep more than 9,000 maximal
//!   records per client-day inside the `i64` nano-USD range. Sums beyond that range are
//!   [`Error::Overflow`], checked by the store in the same statement.
//! * **Tokens of one record:** `input_tokens` and `output_tokens` each ≤ [`MAX_RECORD_TOKENS`]
//!   (10^9), about a hundred times the largest context window offered today.
//! * **Usage days:** [`MIN_USAGE_DATE`]..=[`MAX_USAGE_DATE`] (2000-01-01 to 2099-12-31). LLM usage
//!   billing has nothing to book before 2000, and NBP rates for PLN billing start in 2002; the
//!   upper end catches typed-in years such as 20255 while leaving the century. Four-digit years
//!   also keep SQLite's text dates sorting in date order, which its range queries rely on.
//! * **Text:** no NUL character anywhere (PostgreSQL `text` cannot hold one).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::error::{Error, Result};

/// The largest `raw_cost` of one usage record or ledger row: 1,000,000 USD.
pub const MAX_RECORD_COST: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// The largest explicit `markup_cost` of one usage record: 1,000,000,000 USD
/// ([`MAX_RECORD_COST`] × the maximal markup rate of 1000).
pub const MAX_RECORD_MARKUP_COST: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// The largest `input_tokens` or `output_tokens` of one usage record: 10^9.
pub const MAX_RECORD_TOKENS: i64 = 1_000_000_000;

/// The first accepted usage day: 2000-01-01.
pub const MIN_USAGE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("2000-01-01 is a valid date"),
};

/// The last accepted usage day: 2099-12-31.
pub const MAX_USAGE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => panic!("2099-12-31 is a valid date"),
};

/// Checks that a usage day lies in [`MIN_USAGE_DATE`]..=[`MAX_USAGE_DATE`].
///
/// ```
/// use chrono::NaiveDate;
/// use orgusage_domain::bounds::validate_usage_date;
///
/// assert!(validate_usage_date("usage_date", NaiveDate::from_ymd_opt(2025, 7, 24).unwrap()).is_ok());
/// assert!(validate_usage_date("usage_date", NaiveDate::MIN).is_err());
/// ```
pub fn validate_usage_date(field: &'static str, date: NaiveDate) -> Result<()> {
    if (MIN_USAGE_DATE..=MAX_USAGE_DATE).contains(&date) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{date} is outside the accepted range {MIN_USAGE_DATE}..={MAX_USAGE_DATE}"),
        ))
    }
}

/// Checks that an instant falls on a UTC day in the accepted range. Its client-local day may
/// still be one day off, so the store checks that day again once the zone is known.
pub fn validate_instant(field: &'static str, instant: DateTime<Utc>) -> Result<()> {
    validate_usage_date(field, instant.date_naive())
}

/// Checks one record's token count against [`MAX_RECORD_TOKENS`] (negative counts too).
pub fn validate_tokens(field: &'static str, tokens: i64) -> Result<()> {
    if tokens < 0 {
        return Err(Error::invalid(
            field,
            "negative token counts are not allowed",
        ));
    }
    if tokens > MAX_RECORD_TOKENS {
        return Err(Error::invalid(
            field,
            format!("{tokens} exceeds the limit of {MAX_RECORD_TOKENS} tokens per record"),
        ));
    }
    Ok(())
}

/// Checks an amount (already known to be non-negative) against a per-record maximum.
pub fn validate_at_most(field: &'static str, amount: Decimal, max: Decimal) -> Result<()> {
    if amount > max {
        return Err(Error::invalid(
            field,
            format!("{amount} exceeds the limit of {max} USD per record"),
        ));
    }
    Ok(())
}

/// Rejects a text containing a NUL character. The value itself is not echoed: it may be a key.
pub fn reject_nul(field: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain a NUL character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn date_range_edges() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
        assert!(validate_usage_date("d", day(2000, 1, 1)).is_ok());
        assert!(validate_usage_date("d", day(2099, 12, 31)).is_ok());
        assert!(validate_usage_date("d", day(1999, 12, 31)).is_err());
        assert!(validate_usage_date("d", day(2100, 1, 1)).is_err());
        assert!(validate_usage_date("d", NaiveDate::MAX).is_err());
    }

    #[test]
    fn token_and_cost_edges() {
        assert!(validate_tokens("t", MAX_RECORD_TOKENS).is_ok());
        assert!(validate_tokens("t", MAX_RECORD_TOKENS + 1).is_err());
        assert!(validate_tokens("t", -1).is_err());
        assert!(validate_at_most("c", dec!(1000000), MAX_RECORD_COST).is_ok());
        assert!(validate_at_most("c", dec!(1000000.000000001), MAX_RECORD_COST).is_err());
        assert_eq!(MAX_RECORD_MARKUP_COST, MAX_RECORD_COST * dec!(1000));
    }

    #[test]
    fn nul_is_rejected_without_echoing_the_value() {
        let err = reject_nul("api_key", "sk-secret\0").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(reject_nul("x", "'; DROP TABLE t; --").is_ok());
    }
}
