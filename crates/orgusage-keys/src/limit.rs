//! The key limit: the client's monthly limit in OpenRouter's terms.
//!
//! The two limits measure different things:
//!
//! | | orgusage `monthly_limit` | OpenRouter key `limit` |
//! |---|---|---|
//! | money | marked-up USD (what the client pays) | raw USD (what OpenRouter charges) |
//! | month | the client's local month (Europe/Warsaw by default) | the UTC month (`limit_reset: monthly`, midnight UTC on the 1st) |
//! | enforced | before the request, by `authorize` (reservations) | by OpenRouter, on its own usage figures |
//!
//! So the key limit is `monthly_limit / markup_rate`, plus a headroom for the hours in which the
//! two months disagree (for Warsaw the local month starts 1 or 2 hours before the UTC month:
//! spend in those hours counts toward the *new* local month but the *old* UTC month), rounded
//! up to the cent. Our guard is the exact limit; the key limit is the backstop that caps a host
//! which bypasses the guard (or a leaked key) at `(1 + headroom)` of the limit per UTC month.
//! With headroom `h`, a client that used its whole limit in one local month can still spend
//! `h × limit` in the first hours of the next local month before the UTC month rolls over;
//! past that OpenRouter refuses until midnight UTC. Headroom 1 (double) never refuses a client
//! the guard admits; 0 refuses as soon as a UTC month reaches the limit.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::KeysError;

/// How a client's key limit is derived from its monthly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimitPolicy {
    /// Fraction added on top of `monthly_limit / markup_rate` (default 0.10 = 10 %).
    pub headroom: Decimal,
}

impl Default for KeyLimitPolicy {
    fn default() -> Self {
        Self {
            headroom: Decimal::new(10, 2),
        }
    }
}

impl KeyLimitPolicy {
    /// The raw-USD key limit for a marked-up `monthly_limit` at `markup_rate`, rounded up to the
    /// cent; `None` (no limit) stays `None`.
    ///
    /// ```
    /// use orgusage_keys::KeyLimitPolicy;
    /// use rust_decimal_macros::dec;
    ///
    /// let policy = KeyLimitPolicy::default(); // 10 % headroom
    /// // 500 USD marked up at 1.3 = 384.615… raw; x 1.1 = 423.0769… -> 423.08
    /// assert_eq!(policy.key_limit(Some(dec!(500)), dec!(1.3)).unwrap(), Some(dec!(423.08)));
    /// let exact = KeyLimitPolicy { headroom: dec!(0) };
    /// assert_eq!(exact.key_limit(Some(dec!(300)), dec!(1.5)).unwrap(), Some(dec!(200)));
    /// assert_eq!(policy.key_limit(None, dec!(1.3)).unwrap(), None);
    /// ```
    pub fn key_limit(
        &self,
        monthly_limit: Option<Decimal>,
        markup_rate: Decimal,
    ) -> Result<Option<Decimal>, KeysError> {
        let Some(limit) = monthly_limit else {
            return Ok(None);
        };
        if markup_rate <= Decimal::ZERO
            || limit.is_sign_negative()
            || self.headroom.is_sign_negative()
        {
            return Err(KeysError::InvalidRequest(
                "the limit, the markup rate and the headroom must be positive".into(),
            ));
        }
        let raw = limit
            .checked_div(markup_rate)
            .and_then(|r| r.checked_mul(Decimal::ONE + self.headroom))
            .ok_or_else(|| KeysError::InvalidRequest("the key limit is out of range".into()))?;
        Ok(Some(
            raw.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero)
                .normalize(),
        ))
    }
}
