//! `global_settings`: the single settings row.

use diesel::prelude::*;
use diesel::upsert::excluded;
use orgusage_crypto::{KeyRing, SecretField, StoredSecret, check_plaintext, reveal};
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::{
    Clock, EncryptionErrorKind, Error, GLOBAL_SETTINGS_ID, GlobalSettings, GlobalSettingsForm,
    Result,
};

use crate::error::TxError;
use crate::schema::global_settings::{self, dsl as gs};
use crate::{Database, with_conn, write_tx};

#[derive(Queryable, Selectable)]
#[diesel(table_name = global_settings)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
struct SettingsRow {
    id: String,
    openrouter_provisioning_key: Option<String>,
    default_markup_rate: i64,
    billing_currency: String,
    created_at: i64,
    updated_at: i64,
}

impl SettingsRow {
    /// The domain value; an encrypted provisioning key is opened with `keys`.
    fn into_settings(self, keys: Option<&KeyRing>) -> Result<GlobalSettings> {
        let key = self
            .openrouter_provisioning_key
            .as_deref()
            .map(|k| reveal(keys, SecretField::provisioning_key(&self.id), k))
            .transpose()?;
        Ok(GlobalSettings {
            openrouter_provisioning_key: key,
            default_markup_rate: units_to_decimal(self.default_markup_rate),
            billing_currency: self.billing_currency,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = global_settings)]
struct NewSettings<'a> {
    id: &'a str,
    openrouter_provisioning_key: Option<&'a str>,
    default_markup_rate: i64,
    billing_currency: &'a str,
    created_at: i64,
    updated_at: i64,
}

/// Repository of the `global_settings` row.
#[derive(Debug, Clone, Copy)]
pub struct SettingsRepo<'a> {
    db: &'a Database,
    clock: &'a dyn Clock,
    keys: Option<&'a KeyRing>,
}

impl<'a> SettingsRepo<'a> {
    /// A repository over `db` using `clock` for timestamps; the provisioning key is stored in
    /// plaintext unless a key ring is added with [`SettingsRepo::with_key_ring`].
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self {
            db,
            clock,
            keys: None,
        }
    }

    /// Encrypts the provisioning key at rest with `keys` (`None`: plaintext, the default).
    pub fn with_key_ring(mut self, keys: Option<&'a KeyRing>) -> Self {
        self.keys = keys;
        self
    }

    /// The settings row, or `None` before the first `create_or_update_settings`.
    pub fn get_settings(&self) -> Result<Option<GlobalSettings>> {
        let row = with_conn!(self.db, |conn| {
            Ok(gs::global_settings
                .filter(gs::id.eq(GLOBAL_SETTINGS_ID))
                .select(SettingsRow::as_select())
                .first(conn)
                .optional()?)
        })?;
        row.map(|r| r.into_settings(self.keys)).transpose()
    }

    /// Creates the row or updates it in place (one atomic upsert, safe under concurrent callers).
    /// A form without a provisioning key keeps the stored key; `created_at` never changes.
    pub fn create_or_update_settings(&self, form: &GlobalSettingsForm) -> Result<GlobalSettings> {
        let _span = tracing::debug_span!("orgusage.settings.create_or_update").entered();
        let markup_units = form.validate()?;
        let now = super::unix_now(self.clock);
        let stored_key = match &form.openrouter_provisioning_key {
            Some(k) => {
                check_plaintext("openrouter_provisioning_key", k.expose())?;
                Some(match self.keys {
                    Some(ring) => ring.encrypt(
                        SecretField::provisioning_key(GLOBAL_SETTINGS_ID),
                        k.expose(),
                    )?,
                    None => k.expose().to_string(),
                })
            }
            None => None,
        };
        let key = stored_key.as_deref();
        let row = NewSettings {
            id: GLOBAL_SETTINGS_ID,
            openrouter_provisioning_key: key,
            default_markup_rate: markup_units,
            billing_currency: &form.billing_currency,
            created_at: now,
            updated_at: now,
        };
        write_tx!(self.db, |conn| {
            if key.is_some() && self.keys.is_none() {
                // Never write a plaintext key over an encrypted one: the instance lacks the key
                // ring the others use (a misconfiguration, not a choice).
                let current: Option<Option<String>> = gs::global_settings
                    .filter(gs::id.eq(GLOBAL_SETTINGS_ID))
                    .select(gs::openrouter_provisioning_key)
                    .first(conn)
                    .optional()?;
                if current
                    .flatten()
                    .is_some_and(|k| StoredSecret::is_encrypted(&k))
                {
                    return Err(TxError::from(Error::encryption(
                        EncryptionErrorKind::NoKey,
                        "the stored provisioning key is encrypted but the store was opened \
                         without a key ring (StoreConfig::encryption); a plaintext key is not written",
                    )));
                }
            }
            let upsert = diesel::insert_into(gs::global_settings)
                .values(&row)
                .on_conflict(gs::id)
                .do_update();
            if key.is_some() {
                upsert
                    .set((
                        gs::openrouter_provisioning_key
                            .eq(excluded(gs::openrouter_provisioning_key)),
                        gs::default_markup_rate.eq(excluded(gs::default_markup_rate)),
                        gs::billing_currency.eq(excluded(gs::billing_currency)),
                        gs::updated_at.eq(excluded(gs::updated_at)),
                    ))
                    .execute(conn)?;
            } else {
                upsert
                    .set((
                        gs::default_markup_rate.eq(excluded(gs::default_markup_rate)),
                        gs::billing_currency.eq(excluded(gs::billing_currency)),
                        gs::updated_at.eq(excluded(gs::updated_at)),
                    ))
                    .execute(conn)?;
            }
            let saved: SettingsRow = gs::global_settings
                .filter(gs::id.eq(GLOBAL_SETTINGS_ID))
                .select(SettingsRow::as_select())
                .first(conn)?;
            Ok(saved.into_settings(self.keys)?)
        })
    }
}
