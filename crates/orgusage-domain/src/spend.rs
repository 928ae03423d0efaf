//! Spend control: the outcome of `authorize` (a reservation of part of a client's monthly
//! budget, or a typed refusal).
//!
//! The limit is the client's `monthly_limit`: marked-up USD per client-local month. A
//! reservation holds the marked-up estimate of one request until the request's record settles
//! it ([`crate::usage::UsageRecord::settles`]), the host releases it, or it expires.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// Budget held for one request, counted against the client's month until settled, released or
/// expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// Opaque id; pass it to `UsageRecord::settles` or `release`.
    pub id: String,
    /// The client whose budget is held.
    pub client_org_id: String,
    /// First day of the client-local month the reservation counts against.
    pub month_start: NaiveDate,
    /// The marked-up estimate held (USD): estimate x the client's markup rate.
    pub amount: Decimal,
    /// After this instant the reservation no longer holds budget (a crashed host cannot hold it
    /// for ever).
    pub expires_at: DateTime<Utc>,
}

/// Why `authorize` refused: the month's spend plus live reservations plus this estimate would
/// pass the limit. Nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The client.
    pub client_org_id: String,
    /// First day of the client-local month that is full.
    pub month_start: NaiveDate,
    /// The monthly limit (marked-up USD).
    pub monthly_limit: Decimal,
    /// Recorded marked-up spend of the month.
    pub spent: Decimal,
    /// Marked-up amount held by other live reservations.
    pub reserved: Decimal,
    /// The marked-up estimate that did not fit.
    pub requested: Decimal,
}

impl Refusal {
    /// What is left of the limit for new reservations (never negative).
    ///
    /// ```
    /// use orgusage_domain::spend::Refusal;
    /// use rust_decimal_macros::dec;
    ///
    /// let r = Refusal {
    ///     client_org_id: "c".into(),
    ///     month_start: chrono::NaiveDate::from_ymd_opt(2025, 7, 1).unwrap(),
    ///     monthly_limit: dec!(10),
    ///     spent: dec!(9),
    ///     reserved: dec!(0.5),
    ///     requested: dec!(1),
    /// };
    /// assert_eq!(r.available(), dec!(0.5));
    /// ```
    pub fn available(&self) -> Decimal {
        (self.monthly_limit - self.spent - self.reserved).max(Decimal::ZERO)
    }
}

/// The answer of `authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[must_use = "a refusal means the request must not be sent"]
pub enum Authorization {
    /// The estimate fits: the budget is held until settled, released or expired.
    Reserved(Reservation),
    /// The client has no monthly limit: nothing was reserved or locked; record as usual.
    Unlimited,
    /// The estimate does not fit the month's remaining budget.
    Refused(Refusal),
}

impl Authorization {
    /// True unless refused: the request may be sent.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }

    /// The reservation id to settle, if one was made.
    pub fn reservation_id(&self) -> Option<&str> {
        match self {
            Self::Reserved(r) => Some(&r.id),
            _ => None,
        }
    }
}

/// Our own books for one UTC day and model, from the generation ledger (raw USD, as OpenRouter
/// charges it), for reconciliation with OpenRouter's `/activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerDay {
    /// The UTC day of the generations' `created_at`.
    pub date: NaiveDate,
    /// Model id as recorded.
    pub model: String,
    /// Sum of the generations' raw cost.
    pub raw_cost: Decimal,
    /// Number of generations.
    pub requests: i64,
}

/// [`LedgerDay`]s of a UTC day range, plus what the ledger holds for the range but cannot place
/// on a UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerDays {
    /// Per UTC day and model, ordered by day then model.
    pub days: Vec<LedgerDay>,
    /// Ledger rows of the client whose client-local `generation_date` falls in the range (±1
    /// day) but that carry no UTC instant (written before the spend-control migration or by
    /// `mark_generation_processed`).
    pub unplaced: i64,
}
