//! OpenRouter key management for orgusage: each client's own key, created, limited, disabled
//! and deleted through OpenRouter's management (provisioning) API, plus the account's
//! `/credits` and the per-UTC-day `/activity` that reconciliation compares with our books.
//!
//! * [`KeyManager`]: a blocking ureq client with retries (429 honouring `Retry-After`, 5xx,
//!   timeouts) that never logs or returns a key;
//! * [`KeyLimitPolicy`]: the client's marked-up, local-month limit turned into the key's raw,
//!   UTC-month limit (see [`limit`] for the gap between the two months);
//! * [`parse_activity`] and the wire types, every amount exact (`Decimal` from the number's text).
//!
//! ```
//! use orgusage_keys::{KeyManager, ManagementConfig};
//!
//! let keys = KeyManager::new(ManagementConfig::default(), "sk-or-v1-management-key".into());
//! assert!(!format!("{keys:?}").contains("management-key"));
//! ```
#![deny(missing_docs)]

mod client;
mod error;
pub mod limit;
mod wire;

pub use client::{KeyManager, KeyUpdate, ManagementConfig, NewKey};
pub use error::KeysError;
pub use limit::KeyLimitPolicy;
pub use wire::{ActivityRow, CreatedKey, Credits, KeyInfo, LimitReset, parse_activity};
