//! `global_settings`: the single settings row.

use diesel::prelude::*;
use diesel::upsert::excluded;
use orgusage_domain::money::units_to_decimal;
use orgusage_domain::{
    Clock, GLOBAL_SETTINGS_ID, GlobalSettings, GlobalSettingsForm, Result, Secret,
};

use crate::schema::global_settings::{self, dsl as gs};
use crate::{Database, with_conn, write_tx};

#[derive(Queryable, Selectable)]
#[diesel(table_name = global_settings)]
struct SettingsRow {
    id: String,
    openrouter_provisioning_key: Option<String>,
    default_markup_rate: i64,
    billing_currency: String,
    created_at: i64,
    updated_at: i64,
}

impl From<SettingsRow> for GlobalSettings {
    fn from(r: SettingsRow) -> Self {
        Self {
            id: r.id,
            openrouter_provisioning_key: r.openrouter_provisioning_key.map(Secret::new),
            default_markup_rate: units_to_decimal(r.default_markup_rate),
            billing_currency: r.billing_currency,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
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
}

impl<'a> SettingsRepo<'a> {
    /// A repository over `db` using `clock` for timestamps.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// The settings row, or `None` before the first `create_or_update_settings`.
    pub fn get_settings(&self) -> Result<Option<GlobalSettings>> {
        with_conn!(self.db, |conn| {
            Ok(gs::global_settings
                .filter(gs::id.eq(GLOBAL_SETTINGS_ID))
                .select(SettingsRow::as_select())
                .first(conn)
                .optional()?
                .map(GlobalSettings::from))
        })
    }

    /// Creates the row or updates it in place (one atomic upsert, safe under concurrent callers).
    /// A form without a provisioning key keeps the stored key; `created_at` never changes.
    pub fn create_or_update_settings(&self, form: &GlobalSettingsForm) -> Result<GlobalSettings> {
        let _span = tracing::debug_span!("orgusage.settings.create_or_update").entered();
        let markup_units = form.validate()?;
        let now = super::unix_now(self.clock);
        let key = form
            .openrouter_provisioning_key
            .as_ref()
            .map(Secret::expose);
        let row = NewSettings {
            id: GLOBAL_SETTINGS_ID,
            openrouter_provisioning_key: key,
            default_markup_rate: markup_units,
            billing_currency: &form.billing_currency,
            created_at: now,
            updated_at: now,
        };
        write_tx!(self.db, |conn| {
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
            Ok(GlobalSettings::from(saved))
        })
    }
}
