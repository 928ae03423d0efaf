//! The process-wide store behind the handles.

use std::sync::OnceLock;

use orgusage_domain::{Error, Result};

use crate::store::{Store, StoreConfig};

static GLOBAL: OnceLock<Store> = OnceLock::new();

/// Connects to `database_url` (or a full [`StoreConfig`]), applies the embedded migrations and
/// installs the store used by the five handles. A second call is [`Error::AlreadyInitialized`].
///
/// ```
/// orgusage::init(":memory:")?;
/// assert!(orgusage::GlobalSettingsDb.get_settings()?.is_none());
/// assert!(matches!(orgusage::init(":memory:"), Err(orgusage::Error::AlreadyInitialized)));
/// # Ok::<(), orgusage::Error>(())
/// ```
pub fn init(config: impl Into<StoreConfig>) -> Result<&'static Store> {
    if GLOBAL.get().is_some() {
        return Err(Error::AlreadyInitialized);
    }
    let store = Store::open(config)?;
    GLOBAL.set(store).map_err(|_| Error::AlreadyInitialized)?;
    global_store()
}

/// The store installed by [`init`], or [`Error::NotInitialized`].
pub fn global_store() -> Result<&'static Store> {
    GLOBAL.get().ok_or(Error::NotInitialized)
}

pub(crate) fn store() -> Result<&'static Store> {
    global_store()
}
