//! `client_organizations`: the paying companies.

use diesel::prelude::*;
use orgusage_crypto::{KeyRing, SecretField, check_plaintext, reveal, secrets_equal};
use orgusage_domain::models::{new_client_id, validate_identifier, validate_secret};
use orgusage_domain::money::{amount_to_units, rate_to_units, units_to_decimal};
use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Clock,
    EncryptionErrorKind, Error, Result, Secret,
};

use diesel::dsl::Limit;
use diesel::query_dsl::LoadQuery;

use crate::error::{TxError, conflict_on_unique};
use crate::schema::client_organizations::{self, dsl as co};
use crate::{Database, with_conn, write_tx};

#[derive(Queryable, Selectable)]
#[diesel(table_name = client_organizations)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
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

impl ClientRow {
    /// The domain value; an encrypted key is opened with `keys` (a typed error, never garbage,
    /// when it cannot be).
    pub(crate) fn into_client(self, keys: Option<&KeyRing>) -> Result<ClientOrganization> {
        let key = reveal(
            keys,
            SecretField::client_api_key(&self.id),
            &self.openrouter_api_key,
        )?;
        Ok(ClientOrganization {
            id: self.id,
            name: self.name,
            openrouter_api_key: key,
            openrouter_key_hash: self.openrouter_key_hash,
            markup_rate: units_to_decimal(self.markup_rate),
            monthly_limit: self.monthly_limit.map(units_to_decimal),
            billing_email: self.billing_email,
            timezone: self.timezone,
            is_active: self.is_active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = client_organizations)]
struct NewClient<'a> {
    id: &'a str,
    name: &'a str,
    openrouter_api_key: &'a str,
    openrouter_api_key_lookup: Option<&'a str>,
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

/// Another client holding `api_key`: its lookup hash under any key of the ring, or its
/// plaintext on a row not yet migrated.
#[diesel::dsl::auto_type]
fn key_holder_query<'a>(hashes: &'a [String], api_key: &'a str, except_id: &'a str) -> _ {
    let unmigrated = co::openrouter_api_key
        .eq(api_key)
        .and(co::openrouter_api_key_lookup.is_null());
    co::client_organizations
        .filter(co::id.ne(except_id))
        .filter(co::openrouter_api_key_lookup.eq_any(hashes).or(unmigrated))
        .select(co::id)
}

/// Any client whose key is encrypted. `>= ''` rather than IS NOT NULL: a range SQLite serves
/// from the lookup index (IS NOT NULL scans the table), so plaintext mode pays one index probe.
#[diesel::dsl::auto_type]
fn encrypted_client_query() -> _ {
    let empty: &'static str = "";
    co::client_organizations
        .filter(co::openrouter_api_key_lookup.ge(empty))
        .select(co::id)
}

/// Inside a write transaction: the rules the unique indexes cannot enforce alone. With a key
/// ring, a key held by a plaintext row not yet migrated, or hashed under an older key of the
/// ring, is a conflict. Without one, writing a plaintext key next to encrypted rows is refused:
/// this instance could neither detect a duplicate among them nor read them back. `hashes`: the
/// key's lookup hashes under the ring (`None`: no ring).
fn check_key_free<'q, C>(
    conn: &mut C,
    hashes: Option<&'q [String]>,
    api_key: &'q str,
    except_id: &'q str,
) -> Result<(), TxError>
where
    C: Connection,
    Limit<key_holder_query<'q>>: LoadQuery<'q, C, String>,
    Limit<encrypted_client_query>: LoadQuery<'q, C, String>,
{
    match hashes {
        Some(hashes) => {
            let taken: Option<String> = key_holder_query(hashes, api_key, except_id)
                .first(conn)
                .optional()?;
            if taken.is_some() {
                return Err(key_taken().into());
            }
        }
        None => {
            let encrypted: Option<String> = encrypted_client_query().first(conn).optional()?;
            if encrypted.is_some() {
                return Err(Error::encryption(
                    EncryptionErrorKind::NoKey,
                    "client_organizations holds encrypted API keys but the store was opened \
                     without a key ring (StoreConfig::encryption); a plaintext key is not written",
                )
                .into());
            }
        }
    }
    Ok(())
}

fn key_taken() -> Error {
    Error::Conflict("openrouter_api_key is already assigned to a client".into())
}

/// Repository of `client_organizations`.
#[derive(Debug, Clone, Copy)]
pub struct ClientRepo<'a> {
    db: &'a Database,
    clock: &'a dyn Clock,
    keys: Option<&'a KeyRing>,
}

impl<'a> ClientRepo<'a> {
    /// A repository over `db` using `clock` for timestamps; API keys are stored in plaintext
    /// unless a key ring is added with [`ClientRepo::with_key_ring`].
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self {
            db,
            clock,
            keys: None,
        }
    }

    /// Encrypts API keys at rest with `keys` (`None`: plaintext, the default). See
    /// `docs/operations.md`, "Keys at rest".
    pub fn with_key_ring(mut self, keys: Option<&'a KeyRing>) -> Self {
        self.keys = keys;
        self
    }

    /// The stored form of `api_key` for row `id`: the column value and its lookup hash.
    fn seal(&self, id: &str, api_key: &str) -> Result<(String, Option<String>)> {
        match self.keys {
            Some(ring) => Ok((
                ring.encrypt(SecretField::client_api_key(id), api_key)?,
                Some(ring.lookup_hash(api_key)),
            )),
            None => Ok((api_key.to_string(), None)),
        }
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
        check_plaintext("openrouter_api_key", api_key.expose())?;
        let now = super::unix_now(self.clock);
        let id = new_client_id(&form.name, now);
        let (stored_key, lookup) = self.seal(&id, api_key.expose())?;
        let row = NewClient {
            id: &id,
            name: form.name.trim(),
            openrouter_api_key: &stored_key,
            openrouter_api_key_lookup: lookup.as_deref(),
            openrouter_key_hash: key_hash,
            markup_rate: rate_to_units("markup_rate", form.markup_rate)?,
            monthly_limit: form.monthly_limit.map(amount_to_units).transpose()?,
            billing_email: form.billing_email.as_deref(),
            timezone: &form.timezone,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        let hashes = self.keys.map(|ring| ring.lookup_hashes(api_key.expose()));
        let result = write_tx!(self.db, |conn| {
            check_key_free(conn, hashes.as_deref(), api_key.expose(), &id)?;
            let insert = diesel::insert_into(co::client_organizations)
                .values(&row)
                .execute(conn);
            conflict_on_unique(insert, key_taken)?;
            let saved = co::client_organizations
                .find(&id)
                .select(ClientRow::as_select())
                .first(conn)?;
            Ok(saved.into_client(self.keys)?)
        })?;
        tracing::info!(client_org_id = %result.id, "created client organization");
        Ok(result)
    }

    /// The active client with this id.
    pub fn get_client_by_id(&self, client_id: &str) -> Result<Option<ClientOrganization>> {
        let row = with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .filter(co::id.eq(client_id).and(co::is_active.eq(true)))
                .select(ClientRow::as_select())
                .first(conn)
                .optional()?)
        })?;
        row.map(|r| r.into_client(self.keys)).transpose()
    }

    /// The active client that owns this OpenRouter API key (indexed, unique lookup).
    ///
    /// With a key ring the lookup is by the key's HMAC under each key of the ring (one
    /// `IN (…)` on the unique lookup index), or by the plaintext for rows not yet migrated;
    /// the found row's key is then decrypted and compared with `api_key`, so a lookup hash
    /// copied onto another row is an [`Error::Encryption`] instead of the wrong client.
    pub fn get_client_by_api_key(&self, api_key: &str) -> Result<Option<ClientOrganization>> {
        if check_plaintext("api_key", api_key).is_err() {
            // A ciphertext from a dump must not work as a key (it would match its own row).
            return Ok(None);
        }
        let row = match self.keys {
            None => with_conn!(self.db, |conn| {
                Ok(co::client_organizations
                    .filter(
                        co::openrouter_api_key
                            .eq(api_key)
                            .and(co::is_active.eq(true)),
                    )
                    .select(ClientRow::as_select())
                    .first(conn)
                    .optional()?)
            })?,
            Some(ring) => {
                let hashes = ring.lookup_hashes(api_key);
                // is_active is filtered here, not in SQL: with it in the WHERE clause SQLite
                // picks the is_active index over the two-index OR of the unique indexes. A key
                // belongs to at most one row (active or not), so at most one row comes back.
                let rows: Vec<ClientRow> = with_conn!(self.db, |conn| {
                    let unmigrated = co::openrouter_api_key
                        .eq(api_key)
                        .and(co::openrouter_api_key_lookup.is_null());
                    let query = co::client_organizations.select(ClientRow::as_select());
                    if let [only] = hashes.as_slice() {
                        // One key (no rotation under way), the usual case: `=` keeps the
                        // statement in diesel's prepared-statement cache; an `IN (…)` list is
                        // prepared again on every call.
                        let found = co::openrouter_api_key_lookup.eq(only);
                        Ok(query.filter(found.or(unmigrated)).load(conn)?)
                    } else {
                        let found = co::openrouter_api_key_lookup.eq_any(&hashes);
                        Ok(query.filter(found.or(unmigrated)).load(conn)?)
                    }
                })?;
                rows.into_iter().find(|r| r.is_active)
            }
        };
        let Some(row) = row else { return Ok(None) };
        let client = row.into_client(self.keys)?;
        if !secrets_equal(client.openrouter_api_key.expose(), api_key) {
            return Err(Error::encryption(
                EncryptionErrorKind::Authentication,
                format!(
                    "the lookup hash of client {:?} does not match its decrypted key (the row was altered)",
                    client.id
                ),
            ));
        }
        Ok(Some(client))
    }

    /// Every active client, oldest first (ties by id), so the order is deterministic.
    pub fn get_all_active_clients(&self) -> Result<Vec<ClientOrganization>> {
        let rows = with_conn!(self.db, |conn| {
            Ok(co::client_organizations
                .filter(co::is_active.eq(true))
                .order((co::created_at.asc(), co::id.asc()))
                .select(ClientRow::as_select())
                .load(conn)?)
        })?;
        rows.into_iter().map(|r| r.into_client(self.keys)).collect()
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
            Ok(Some(row.into_client(self.keys)?))
        })
    }

    /// Replaces an active client's OpenRouter API key (e.g. after rolling it at OpenRouter);
    /// `Ok(None)` if there is no such active client. The same rules as `create_client` apply:
    /// a key held by another client is a [`Error::Conflict`], and with a key ring the new key is
    /// stored encrypted with a fresh lookup hash.
    pub fn update_api_key(
        &self,
        client_id: &str,
        api_key: &Secret,
    ) -> Result<Option<ClientOrganization>> {
        let _span =
            tracing::debug_span!("orgusage.clients.update_api_key", client_org_id = client_id)
                .entered();
        validate_secret("openrouter_api_key", api_key)?;
        check_plaintext("openrouter_api_key", api_key.expose())?;
        let (stored_key, lookup) = self.seal(client_id, api_key.expose())?;
        let now = super::unix_now(self.clock);
        let hashes = self.keys.map(|ring| ring.lookup_hashes(api_key.expose()));
        write_tx!(self.db, |conn| {
            check_key_free(conn, hashes.as_deref(), api_key.expose(), client_id)?;
            let target =
                co::client_organizations.filter(co::id.eq(client_id).and(co::is_active.eq(true)));
            let n = diesel::update(target)
                .set((
                    co::openrouter_api_key.eq(&stored_key),
                    co::openrouter_api_key_lookup.eq(lookup.as_deref()),
                    co::updated_at.eq(now),
                ))
                .execute(conn)?;
            if n == 0 {
                return Ok(None);
            }
            let row = co::client_organizations
                .find(client_id)
                .select(ClientRow::as_select())
                .first(conn)?;
            Ok(Some(row.into_client(self.keys)?))
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
