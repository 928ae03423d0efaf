//! The process-wide store behind the five handles.
//!
//! It is opened exactly once per process, by whichever comes first:
//!
//! * an explicit [`init`], or
//! * the first use of a handle (or [`global_store`]) when `init` was never called: the store is
//!   then opened from the environment variable `ORGUSAGE_DATABASE_URL` (any URL
//!   [`Store::open`] accepts), the way the original module's handles work on the host's configured database. When the
//!   variable is unset or empty the handle answers [`Error::NotInitialized`] and nothing is
//!   opened.
//!
//! Both paths go through one [`OnceCell::get_or_try_init`], so racing callers (many threads
//! calling `init`, handles on first use, or both) open exactly one store and run the migrations
//! once; the others wait for it. A failed open (bad URL, unreachable server) leaves the cell
//! empty, so the next call tries again.
//!
//! A second explicit `init`, with the same URL or another, is [`Error::AlreadyInitialized`]
//! and changes nothing: the first store stays, and the configuration passed is not opened. The
//! same holds when the handles already opened the store from the environment. A host that
//! needs two databases uses explicit [`Store`]s.

use once_cell::sync::OnceCell;

use orgusage_domain::{Error, Result};

use crate::store::{Store, StoreConfig};

static GLOBAL: OnceCell<Store> = OnceCell::new();

/// The environment variable the handles open the store from when [`init`] was never called.
const DATABASE_URL_VAR: &str = "ORGUSAGE_DATABASE_URL";

/// Connects to `database_url` (or a full [`StoreConfig`]), applies the embedded migrations and
/// installs the store used by the five handles.
///
/// Racing calls open exactly one store; every call but the one that opened it is
/// [`Error::AlreadyInitialized`], as is any later call (whatever its URL), and a call after the
/// handles already opened the store from `ORGUSAGE_DATABASE_URL`. The store installed first stays.
///
/// ```
/// orgusage::init(":memory:")?;
/// assert!(orgusage::GlobalSettingsDb.get_settings()?.is_none());
/// assert!(matches!(orgusage::init(":memory:"), Err(orgusage::Error::AlreadyInitialized)));
/// # Ok::<(), orgusage::Error>(())
/// ```
pub fn init(config: impl Into<StoreConfig>) -> Result<&'static Store> {
    let mut opened_here = false;
    let store = GLOBAL.get_or_try_init(|| {
        opened_here = true;
        Store::open(config)
    })?;
    if opened_here {
        Ok(store)
    } else {
        Err(Error::AlreadyInitialized)
    }
}

/// The process-wide store: the one installed by [`init`], else opened once from
/// `ORGUSAGE_DATABASE_URL` on first use, else [`Error::NotInitialized`] (the variable is unset or
/// empty). An error opening the store from the variable is returned as it is and retried on
/// the next call.
pub fn global_store() -> Result<&'static Store> {
    GLOBAL.get_or_try_init(|| match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Store::open(url),
        _ => Err(Error::NotInitialized),
    })
}
