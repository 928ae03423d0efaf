//! Domain types of orgusage: exact money, forms and models, the injectable clock, client-local
//! calendar math (days and months in the client's time zone, DST included), Polish holidays and
//! the error enum. This crate does no I/O and knows nothing about databases.
#![deny(missing_docs)]

pub mod bounds;
pub mod clock;
pub mod error;
pub mod generations;
pub mod health;
pub mod holidays;
pub mod pln;
pub mod spend;
pub mod timezone;
pub mod usage;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DatabaseErrorKind, EncryptionErrorKind, Error, Result};
pub mod models;
pub mod money;
pub mod secret;

pub use models::*;
pub use secret::Secret;
