//! Spend control on an explicit [`Store`]: the limit guard (`authorize`, settle, `release`).
//!
//! ```
//! use orgusage::spend::Authorization;
//! use orgusage::{ClientOrganizationForm, Store, UsageRecord};
//! use rust_decimal_macros::dec;
//!
//! let store = Store::open(":memory:")?;
//! let form = ClientOrganizationForm {
//!     markup_rate: dec!(1.5),
//!     monthly_limit: Some(dec!(1)),
//!     ..ClientOrganizationForm::new("Acme")
//! };
//! let acme = store.clients().create_client(&form, &"sk-or-v1-A".into(), None)?;
//! // Before the request: hold 0.4 x 1.5 = 0.6 USD of the 1 USD month.
//! let Authorization::Reserved(held) = store.spend().authorize(&acme.id, dec!(0.4))? else {
//!     panic!("the month is empty")
//! };
//! assert_eq!(held.amount, dec!(0.6));
//! // A second request would not fit (0.6 + 0.6 > 1): a typed refusal, nothing reserved.
//! assert!(matches!(store.spend().authorize(&acme.id, dec!(0.4))?, Authorization::Refused(_)));
//! // The first request cost 0.3 raw (0.45 marked up): its record settles the reservation.
//! let rec = UsageRecord::new(&acme.id, "u1", "or-u1", "openai/gpt-4.1").raw_cost(dec!(0.3)).settles(&held.id);
//! store.usage().record_usage(&rec)?;
//! assert!(store.spend().live_reservations(&acme.id)?.is_empty());
//! // 0.45 spent: 0.2 x 1.5 = 0.3 fits now.
//! assert!(store.spend().authorize(&acme.id, dec!(0.2))?.is_allowed());
//! # Ok::<(), orgusage::Error>(())
//! ```

pub use orgusage_db::{DEFAULT_RESERVATION_TTL, SpendRepo};
pub use orgusage_domain::spend::{Authorization, LedgerDay, LedgerDays, Refusal, Reservation};

use crate::store::Store;

impl Store {
    /// The spend guard of this store: `authorize` before a request, settle with
    /// [`UsageRecord::settles`](crate::UsageRecord::settles), `release`, expiry. See
    /// `docs/spend-control.md`.
    pub fn spend(&self) -> SpendRepo<'_> {
        SpendRepo::new(self.database(), self.clock())
    }
}

#[cfg(feature = "openrouter")]
impl Store {
    /// [`Store::ingest_generation`] that also settles `reservation_id` (the reservation
    /// `authorize` made for this request) in the same transaction. A duplicate generation
    /// frees the reservation too: its cost is already booked.
    pub fn ingest_generation_settling(
        &self,
        client: crate::ClientRef<'_>,
        generation: &orgusage_openrouter::Generation,
        reservation_id: &str,
    ) -> orgusage_domain::Result<orgusage_domain::generations::GenerationOutcome> {
        self.ingest_settling(
            client,
            generation,
            orgusage_openrouter::TokenCounting::default(),
            Some(reservation_id),
        )
    }
}
