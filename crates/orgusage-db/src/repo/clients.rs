//! `client_organizations`: the paying companies.

use diesel::prelude::*;
use orgusage_domain::models::{new_client_id, validate_identifier, validate_secret};
use orgusage_domain::money::{amount_to_units, rate_to_units, units_to_decimal};
use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Clock, Error, Result,
    Secret,
};

use crate::error::{TxError, is_unique_violation};
use crate::schema::client_organizations::{self, dsl as co};
use crate::{Database, with_conn, write_tx};

#[derive(Queryable, Selectable)]
#[diesel(table_name = client_organizations)]
pub(crate) struct ClientRow {
    id: String,
    name: String,
    openrouter_api_key: String,
    openrouter_key_hash: Option<String>,
    markup_rate: i64,
    monthly_limit: Option<i64>,
    billing_email: Option<String>,
    timezone: String,
    is_active: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<ClientRow> for ClientOrganization {
    fn from(r: ClientRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            openrouter_api_key: Secret::new(r.openrouter_api_key),
            openrouter_key_hash: r.openrouter_key_hash,
            markup_rate: units_to_decimal(r.markup_rate),
            monthly_limit: r.monthly_limit.map(units_to_decimal),
            billing_email: r.billing_email,
            timezone: r.timezone,
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = client_organizations)]
struct NewClient<'a> {
    id: &'a str,
    name: &'a str,
    openrouter_api_key: &'a str,
    openrouter_key_hash: Option<&'a str>,
    markup_rate: i64,
    monthly_limit: Option<i64>,
    billing_email: Option<&'a str>,
    timezone: &'a str,
    is_active: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(AsChangeset)]
#[diesel(table_name = client_organizations)]
struct ClientChangeset<'a> {
    name: Option<&'a str>,
    markup_rate: Option<i64>,
    monthly_limit: Option<Option<i64>>,
    billing_email: Option<Option<&'a str>>,
    timezone: Option<&'a str>,
    openrouter_key_hash: Option<Option<&'a str>>,
    updated_at: i64,
}

/// Repository of `client_organizations`.
#[derive(Debug, Clone, Copy)]
pub struct ClientRepo<'a> {
    db: &'a Database,
    clock: &'a dyn Clock,
}

impl<'a> ClientRepo<'a> {
    /// A repository over `db` using `clock` for timestamps.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// Creates an active client. A key already used by any client (active or not) is a
    /// [`Error::Conflict`]; the message never contains the key.
    pub fn create_client(
        &self,
        form: &ClientOrganizationForm,
        api_key: &Secret,
        key_hash: Option<&str>,
    ) -> Result<ClientOrganization> {
        let _span = tracing::debug_span!("orgusage.clients.create").entered();
        form.validate()?;
        validate_secret("openrouter_api_key", api_key)?;
        if let Some(h) = key_hash {
            validate_identifier("key_hash", h)?;
        }
        let now = super::unix_now(self.clock);
        let id = new_client_id(&form.name, now);
        let row = NewClient {
            id: &id,
            name: form.name.trim(),
            openrouter_api_key: api_key.expose(),
            openrouter_key_hash: key_hash,
            markup_rate: rate_to_units("markup_rate", form.markup_rate)?,
            monthly_limit: form.monthly_limit.map(amount_to_units).transpose()?,
            billing_email: form.billing_email.as_deref(),
            timezone: &form.timezone,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        let result = write_tx!(self.db, |conn| {
            diesel::insert_into(co::client_organizations)
                .values(&row)
                .execute(conn)
                .map_err(|e| {
                    let e = TxError::from(e);
                    if is_unique_violation(&e) {
                        TxError::from(Error::Conflict(
                            "openrouter_api_key is already assigned to a client".into(),
                        ))
                    } else {
                        e
                    }
                })?;
            Ok(co::client_organizations
                .find(&id)
                .select(ClientRow::as_select())
                .first(conn)?)
        })?;
        tracing::info!(client_org_id = %result.id, "created client organization");
        Ok(result.into())
    }

    /// The active client with this id.
    pub fn get_client_by_id(&self, client_id: &str) -> Result<Option<ClientOrganization>> {
        with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .filter(co::id.eq(client_id).and(co::is_active.eq(true)))
                .select(ClientRow::as_select())
                .first(conn)
                .optional()?
                .map(Into::into))
        })
    }

    /// The active client that owns this OpenRouter API key (indexed, unique lookup).
    pub fn get_client_by_api_key(&self, api_key: &str) -> Result<Option<ClientOrganization>> {
        with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .filter(
                    co::openrouter_api_key
                        .eq(api_key)
                        .and(co::is_active.eq(true)),
                )
                .select(ClientRow::as_select())
                .first(conn)
                .optional()?
                .map(Into::into))
        })
    }

    /// Every active client, oldest first (ties by id), so the order is deterministic.
    pub fn get_all_active_clients(&self) -> Result<Vec<ClientOrganization>> {
        with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .filter(co::is_active.eq(true))
                .order((co::created_at.asc(), co::id.asc()))
                .select(ClientRow::as_select())
                .load(conn)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Applies a typed update to an active client; `Ok(None)` if there is no such active client.
    /// An empty update changes nothing (not even `updated_at`).
    pub fn update_client(
        &self,
        client_id: &str,
        update: &ClientOrganizationUpdate,
    ) -> Result<Option<ClientOrganization>> {
        let _span =
            tracing::debug_span!("orgusage.clients.update", client_org_id = client_id).entered();
        update.validate()?;
        if update.is_empty() {
            return self.get_client_by_id(client_id);
        }
        let changes = ClientChangeset {
            name: update.name.as_deref().map(str::trim),
            markup_rate: update
                .markup_rate
                .map(|r| rate_to_units("markup_rate", r))
                .transpose()?,
            monthly_limit: update
                .monthly_limit
                .map(|l| l.map(amount_to_units).transpose())
                .transpose()?,
            billing_email: update.billing_email.as_ref().map(|e| e.as_deref()),
            timezone: update.timezone.as_deref(),
            openrouter_key_hash: update.openrouter_key_hash.as_ref().map(|h| h.as_deref()),
            updated_at: super::unix_now(self.clock),
        };
        write_tx!(self.db, |conn| {
            let target =
                co::client_organizations.filter(co::id.eq(client_id).and(co::is_active.eq(true)));
            let n = diesel::update(target).set(&changes).execute(conn)?;
            if n == 0 {
                return Ok(None);
            }
            let row = co::client_organizations
                .find(client_id)
                .select(ClientRow::as_select())
                .first(conn)?;
            Ok(Some(row.into()))
        })
    }

    /// Deactivates a client (soft delete). `true` if the client exists, as in the original; its
    /// mappings stay, but usage can no longer be recorded for it and the getters no longer see it.
    pub fn deactivate_client(&self, client_id: &str) -> Result<bool> {
        let _span = tracing::debug_span!("orgusage.clients.deactivate", client_org_id = client_id)
            .entered();
        let now = super::unix_now(self.clock);
        write_tx!(self.db, |conn| {
            let n = diesel::update(co::client_organizations.find(client_id))
                .set((co::is_active.eq(false), co::updated_at.eq(now)))
                .execute(conn)?;
            Ok(n > 0)
        })
    }
}
