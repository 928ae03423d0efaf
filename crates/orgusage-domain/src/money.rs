//! Exact money and rates.
//!
//! The public API speaks [`Decimal`]. Storage speaks `i64` *units* at a fixed scale of
//! [`STORAGE_SCALE`] decimal places (nano-USD for amounts, nano-units for rates), because an
//! integer column is the only type whose `SUM` is exact on SQLite, PostgreSQL and MariaDB alike.
//! This module is the only place where the two meet.
//!
//! # The rounding boundary
//! Amounts are rounded exactly once: when an amount with more than nine decimal places (a raw cost
//! given that finely, or `raw_cost × markup_rate`) is turned into storage units, it is rounded
//! half away from zero ("half-up") to 1e-9. Sums of stored units are exact and never rounded
//! again. Rates are never rounded: a rate with more than nine decimal places is rejected.
//! Currency figures for invoices (PLN) are rounded half-up to 2 places at the end of a report.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Error, Result};

/// Decimal places of the storage unit: amounts are stored as nano-USD, rates as nano-units.
pub const STORAGE_SCALE: u32 = 9;

/// Converts an amount to storage units, rounding half-up to [`STORAGE_SCALE`] places.
///
/// ```
/// use rust_decimal_macros::dec;
/// use orgusage_domain::money::{amount_to_units, units_to_decimal};
///
/// assert_eq!(amount_to_units(dec!(0.013)).unwrap(), 13_000_000);
/// assert_eq!(amount_to_units(dec!(0.0000000015)).unwrap(), 2); // half-up at 1e-9
/// assert_eq!(units_to_decimal(13_000_000).to_string(), "0.013");
/// ```
pub fn amount_to_units(amount: Decimal) -> Result<i64> {
    let rounded =
        amount.round_dp_with_strategy(STORAGE_SCALE, RoundingStrategy::MidpointAwayFromZero);
    scaled_to_i64(rounded)
        .ok_or_else(|| Error::Overflow(format!("amount {amount} does not fit the storage range")))
}

/// Converts a rate (e.g. a markup of 1.3) to storage units; rates are stored exactly or rejected.
pub fn rate_to_units(field: &'static str, rate: Decimal) -> Result<i64> {
    if rate.normalize().scale() > STORAGE_SCALE {
        return Err(Error::invalid(
            field,
            format!("{rate} has more than {STORAGE_SCALE} decimal places"),
        ));
    }
    scaled_to_i64(rate).ok_or_else(|| Error::invalid(field, format!("{rate} is out of range")))
}

/// Converts storage units back to a normalized decimal (`13000000` → `0.013`).
pub fn units_to_decimal(units: i64) -> Decimal {
    Decimal::new(units, STORAGE_SCALE).normalize()
}

/// Like [`units_to_decimal`] for the wider integers that SQL sums may produce.
pub fn wide_units_to_decimal(units: i128) -> Result<Decimal> {
    Decimal::try_from_i128_with_scale(units, STORAGE_SCALE)
        .map(|d| d.normalize())
        .map_err(|_| Error::Overflow(format!("sum of {units} units exceeds the decimal range")))
}

fn scaled_to_i64(value: Decimal) -> Option<i64> {
    let factor = Decimal::from(10_i64.pow(STORAGE_SCALE));
    let scaled = value.checked_mul(factor)?.trunc();
    i64::try_from(scaled).ok()
}

/// `amount × rate`, where the rate is given in storage units (nano-units, `1.3` = `1_300_000_000`),
/// as storage units of the product: computed exactly from the amount *as given* (all of its up to
/// 28 decimal places) and rounded once, half away from zero, to 1e-9.
///
/// This is the markup boundary: the amount is never rounded to 1e-9 before it is multiplied, and
/// no intermediate `Decimal` product is formed (one with more than 28 decimal places would already
/// be rounded by `rust_decimal`, a second rounding). The integer arithmetic is exact in `i128`
/// for every amount a `Decimal` can hold and every rate up to 1000 (see [`validate_markup_rate`]).
///
/// ```
/// use rust_decimal_macros::dec;
/// use orgusage_domain::money::mul_rate_to_units;
///
/// // 0.0000123456789012 x 1.3 = 0.00001604938257156 -> 16 049 nano-USD (one rounding).
/// assert_eq!(mul_rate_to_units(dec!(0.0000123456789012), 1_300_000_000).unwrap(), 16_049);
/// // 0.00000000149 x 2 = 0.00000000298 -> 3 nano-USD (not 1 x 2 = 2).
/// assert_eq!(mul_rate_to_units(dec!(0.00000000149), 2_000_000_000).unwrap(), 3);
/// ```
pub fn mul_rate_to_units(amount: Decimal, rate_units: i64) -> Result<i64> {
    let overflow = || {
        Error::Overflow(format!(
            "{amount} x {} does not fit the storage range",
            units_to_decimal(rate_units)
        ))
    };
    if !(0..=MAX_RATE_UNITS).contains(&rate_units) {
        return Err(Error::invalid(
            "markup_rate",
            format!("{} is outside 0..=1000", units_to_decimal(rate_units)),
        ));
    }
    // amount = m / 10^s, rate = r / 10^9, so units = round(m * r / 10^s). m < 2^96 and
    // r <= 10^12 make m * r up to ~2^136, past i128: split m = q * d + rem (d = 10^s) and
    // r = r1 * 10^6 + r0, so every partial product stays below 10^35.
    let negative = amount.is_sign_negative();
    let m = i128::try_from(amount.mantissa().unsigned_abs()).map_err(|_| overflow())?;
    let d = 10_i128.pow(amount.scale());
    let r = i128::from(rate_units);
    let (q, rem) = (m / d, m % d);
    let whole = q.checked_mul(r).ok_or_else(overflow)?;
    let (r1, r0) = (r / 1_000_000, r % 1_000_000);
    // rem * r = a * 10^6 + b with a = rem * r1 = qa * d + ra, so rem * r / d = qa * 10^6 + c / d.
    let a = rem * r1;
    let (qa, ra) = (a / d, a % d);
    let c = ra * 1_000_000 + rem * r0;
    let (qc, rc) = (c / d, c % d);
    // Half away from zero: the magnitude is rounded up when the remainder is at least half.
    let round_up = i128::from(2 * rc >= d);
    let magnitude = whole
        .checked_add(qa * 1_000_000 + qc + round_up)
        .ok_or_else(overflow)?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| overflow())
}

/// The largest rate [`mul_rate_to_units`] accepts, in storage units: 1000.
const MAX_RATE_UNITS: i64 = 1_000 * 1_000_000_000;

/// `raw_cost × markup_rate`, rounded once to storage precision; negative inputs are errors.
///
/// ```
/// use rust_decimal_macros::dec;
/// use orgusage_domain::money::calculate_markup_cost;
///
/// assert_eq!(calculate_markup_cost(dec!(0.0123), dec!(1.3)).unwrap(), dec!(0.01599));
/// assert!(calculate_markup_cost(dec!(-0.01), dec!(1.3)).is_err());
/// ```
pub fn calculate_markup_cost(raw_cost: Decimal, markup_rate: Decimal) -> Result<Decimal> {
    if raw_cost.is_sign_negative() && !raw_cost.is_zero() {
        return Err(Error::invalid("raw_cost", "Negative cost not allowed"));
    }
    validate_markup_rate(markup_rate)?;
    let rate_units = rate_to_units("markup_rate", markup_rate)?;
    Ok(units_to_decimal(mul_rate_to_units(raw_cost, rate_units)?))
}

/// Checks a markup rate: strictly positive, at most 1000, at most nine decimal places.
pub fn validate_markup_rate(rate: Decimal) -> Result<()> {
    if rate <= Decimal::ZERO {
        return Err(Error::invalid(
            "markup_rate",
            format!("Invalid markup rate {rate}: must be > 0"),
        ));
    }
    if rate > Decimal::from(1000) {
        return Err(Error::invalid(
            "markup_rate",
            format!("Invalid markup rate {rate}: must be <= 1000"),
        ));
    }
    rate_to_units("markup_rate", rate).map(|_| ())
}

/// Checks a money amount given as input: not negative, and within the storage range.
pub fn validate_amount(field: &'static str, amount: Decimal) -> Result<i64> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(Error::invalid(
            field,
            format!("Negative cost not allowed: {amount}"),
        ));
    }
    amount_to_units(amount)
}

/// The exact [`Decimal`] of a JSON number's source text, as serde_json's `RawValue` hands it
/// over (without `arbitrary_precision`, a number would only reach a visitor as `f64`).
///
/// Surrounding whitespace is ignored, a quoted number is accepted (in case a service ever sends
/// amounts as strings), and exponent notation is accepted because JSON allows it. Never goes
/// through `f64`, so every digit and the scale are kept. The callers (the OpenRouter, key
/// management and NBP parsers) turn the error into their own, naming the field.
///
/// ```
/// use orgusage_domain::money::decimal_from_json_number;
///
/// assert_eq!(decimal_from_json_number("0.10").unwrap().to_string(), "0.10");
/// assert_eq!(decimal_from_json_number(" 1e-7 ").unwrap().to_string(), "0.0000001");
/// assert_eq!(decimal_from_json_number("\"3.6528\"").unwrap().to_string(), "3.6528");
/// assert!(decimal_from_json_number("\"abc\"").is_err());
/// ```
pub fn decimal_from_json_number(source: &str) -> std::result::Result<Decimal, rust_decimal::Error> {
    let source = source.trim();
    let text = match source.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => source,
    };
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn markup_table_of_the_original_tests() {
        let cases = [
            (dec!(0.0123), dec!(1.3), dec!(0.01599)),
            (dec!(0.1), dec!(2.0), dec!(0.2)),
            (dec!(10), dec!(1.3), dec!(13)),
            (dec!(0), dec!(1.3), dec!(0)),
            (dec!(5.4321), dec!(1.0), dec!(5.4321)),
            (dec!(0.0001), dec!(1.5), dec!(0.00015)),
            (dec!(999.9999), dec!(1.1), dec!(1099.99989)),
            (dec!(2), dec!(0.5), dec!(1)),
        ];
        for (raw, rate, want) in cases {
            assert_eq!(
                calculate_markup_cost(raw, rate).unwrap(),
                want,
                "{raw} x {rate}"
            );
        }
        assert_eq!(
            calculate_markup_cost(dec!(0.0123), dec!(1.3))
                .unwrap()
                .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero),
            dec!(0.0160)
        );
    }

    #[test]
    fn markup_rejects_bad_inputs() {
        let neg = calculate_markup_cost(dec!(-0.01), dec!(1.3)).unwrap_err();
        assert!(
            neg.to_string().contains("Negative cost not allowed"),
            "{neg}"
        );
        for rate in [dec!(0), dec!(-1.5)] {
            let err = calculate_markup_cost(dec!(1), rate).unwrap_err();
            assert!(err.to_string().contains("Invalid markup rate"), "{err}");
        }
        assert!(rate_to_units("markup_rate", dec!(1.0000000001)).is_err());
    }

    #[test]
    fn mul_rate_rounds_the_exact_product_once() {
        let cases = [
            (dec!(0.0000123456789012), 1_300_000_000, 16_049),
            (dec!(0.00000000149), 2_000_000_000, 3),
            (dec!(0.0000000004), 1_000_000_000_000, 400),
            (dec!(0.0000000015), 1_000_000_000, 2),
            (dec!(0.0000000025), 1_000_000_000, 3),
            (dec!(0.0000000004999999999999999999), 1_000_000_000, 0),
            (dec!(0.0000000004999999999999999999), 1_000_000_001, 1),
            (dec!(-0.0000000015), 1_000_000_000, -2),
            (dec!(0), 1_300_000_000, 0),
            (dec!(9223372036.854775807), 1_000_000_000, i64::MAX),
        ];
        for (amount, rate, want) in cases {
            assert_eq!(
                mul_rate_to_units(amount, rate).unwrap(),
                want,
                "{amount} x {rate}"
            );
        }
        assert!(matches!(
            mul_rate_to_units(dec!(9223372036.854775807), 1_000_000_001),
            Err(Error::Overflow(_))
        ));
        assert!(matches!(
            mul_rate_to_units(Decimal::MAX, 1_000_000_000_000),
            Err(Error::Overflow(_))
        ));
        assert!(mul_rate_to_units(dec!(1), -1).is_err());
        assert!(mul_rate_to_units(dec!(1), 1_000_000_000_001).is_err());
    }

    #[test]
    fn storage_round_trip_and_rounding() {
        assert_eq!(amount_to_units(dec!(0.0000000005)).unwrap(), 1);
        assert_eq!(amount_to_units(dec!(0.0000000004)).unwrap(), 0);
        assert_eq!(amount_to_units(dec!(1.3)).unwrap(), 1_300_000_000);
        assert_eq!(units_to_decimal(1_300_000_000), dec!(1.3));
        assert!(amount_to_units(dec!(10000000000)).is_err());
        let ten_tenths: i64 = (0..10).map(|_| amount_to_units(dec!(0.1)).unwrap()).sum();
        assert_eq!(units_to_decimal(ten_tenths), dec!(1));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn units_round_trip(units in -9_000_000_000_000_000_000_i64..9_000_000_000_000_000_000_i64) {
            prop_assert_eq!(amount_to_units(units_to_decimal(units)).unwrap(), units);
        }

        #[test]
        fn sum_of_units_equals_units_of_sum(parts in proptest::collection::vec(0_i64..1_000_000_000_000, 1..50)) {
            let decimal_sum: Decimal = parts.iter().map(|u| units_to_decimal(*u)).sum();
            prop_assert_eq!(amount_to_units(decimal_sum).unwrap(), parts.iter().sum::<i64>());
        }

        /// Against a direct i128 evaluation where `m x r` fits (up to 18 decimal places).
        #[test]
        fn mul_rate_is_exactly_one_rounding(m in 0_i64..1_000_000_000_000_000_000, scale in 0_u32..=18, rate in 0_i64..=1_000_000_000_000) {
            let amount = Decimal::new(m, scale);
            let product = i128::from(m) * i128::from(rate);
            let d = 10_i128.pow(scale);
            let want = product / d + i128::from(2 * (product % d) >= d);
            match i64::try_from(want) {
                Ok(want) => prop_assert_eq!(mul_rate_to_units(amount, rate).unwrap(), want),
                Err(_) => prop_assert!(matches!(mul_rate_to_units(amount, rate), Err(Error::Overflow(_)))),
            }
            prop_assert_eq!(mul_rate_to_units(-amount, rate).ok(), mul_rate_to_units(amount, rate).ok().map(|u| -u));
        }

        /// Every decimal place of the amount counts (28 places, where a `Decimal` product
        /// would already have been rounded once); `m x r` < 10^38 still fits i128 here.
        #[test]
        fn mul_rate_uses_all_28_places(m in 0_i128..100_000_000_000_000_000_000_000_000, rate in 0_i64..=1_000_000_000_000) {
            let amount = Decimal::from_i128_with_scale(m, 28);
            let product = m * i128::from(rate);
            let d = 10_i128.pow(28);
            let want = product / d + i128::from(2 * (product % d) >= d);
            prop_assert_eq!(i128::from(mul_rate_to_units(amount, rate).unwrap()), want);
        }

        #[test]
        fn markup_is_within_half_a_unit(raw in 0_i64..1_000_000_000_000, rate_milli in 1_i64..5_000) {
            let raw = units_to_decimal(raw);
            let rate = Decimal::new(rate_milli, 3);
            let exact = raw * rate;
            let got = calculate_markup_cost(raw, rate).unwrap();
            prop_assert!((got - exact).abs() <= Decimal::new(5, 10));
        }
    }
}
