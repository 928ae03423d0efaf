//! Client onboarding with its own OpenRouter key (feature `keys`): the key is created, limited,
//! disabled and deleted through the management API in step with the client row.
//!
//! Order of the two sides, and why:
//!
//! * **create**: the key first (the row needs it), then the row with the key and its hash; if
//!   the row cannot be written the key is deleted again (compensation, as the original did). If
//!   that delete fails too, [`ProvisionError::CompensationFailed`] names the orphan key's hash.
//! * **update / deactivate**: OpenRouter first, then the row. Both steps set absolute values, so
//!   when the second fails, repeating the call converges; and disabling upstream first means a
//!   deactivated client can never keep a working key.

use orgusage_domain::{
    ClientOrganization, ClientOrganizationForm, ClientOrganizationUpdate, Error, Secret,
};
use orgusage_keys::{
    KeyInfo, KeyLimitPolicy, KeyManager, KeyUpdate, KeysError, LimitReset, NewKey,
};
use rust_decimal::Decimal;

use crate::store::Store;

/// What went wrong while provisioning, and on which side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// OpenRouter refused or failed; the database was not changed.
    #[error("OpenRouter key management failed: {0}")]
    Upstream(#[from] KeysError),
    /// The database step failed. On create the new key was deleted again; on update or
    /// deactivate OpenRouter already has the new values and repeating the call converges.
    #[error("database step failed: {0}")]
    Database(#[from] Error),
    /// The client row could not be written and the new key could not be deleted either: an
    /// orphan key exists at OpenRouter under this hash (delete it with `KeyManager::delete`).
    #[error(
        "client not created ({database}); deleting its new key {key_hash} failed too: {cleanup}"
    )]
    CompensationFailed {
        /// Why the row was not written.
        database: Error,
        /// Hash of the orphan key.
        key_hash: String,
        /// Why the compensation failed.
        cleanup: KeysError,
    },
}

/// A client created with its key.
#[derive(Debug, Clone)]
pub struct ProvisionedClient {
    /// The stored client (its `openrouter_api_key` is the new key, masked in `Debug`).
    pub client: ClientOrganization,
    /// The key as OpenRouter describes it (hash, limit, reset).
    pub key: KeyInfo,
}

/// Client lifecycle with per-client OpenRouter keys on one [`Store`]; see [`Store::provisioning`].
#[derive(Debug)]
pub struct Provisioning<'s> {
    store: &'s Store,
    keys: KeyManager,
    policy: KeyLimitPolicy,
}

impl Store {
    /// Provisioning through `keys` (a [`KeyManager`] holding the management key, for example
    /// the one in `global_settings.openrouter_provisioning_key`), with the default
    /// [`KeyLimitPolicy`].
    pub fn provisioning(&self, keys: KeyManager) -> Provisioning<'_> {
        Provisioning {
            store: self,
            keys,
            policy: KeyLimitPolicy::default(),
        }
    }
}

impl Provisioning<'_> {
    /// The same with another key limit policy.
    pub fn policy(mut self, policy: KeyLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The raw-USD key limit for a marked-up monthly limit and markup (see
    /// `orgusage_keys::limit`).
    pub fn key_limit(
        &self,
        monthly_limit: Option<Decimal>,
        markup_rate: Decimal,
    ) -> Result<Option<Decimal>, ProvisionError> {
        Ok(self.policy.key_limit(monthly_limit, markup_rate)?)
    }

    /// Creates the client's key (named `Client: {name}`, limit from the form's monthly limit and
    /// markup, monthly UTC reset), then the client with that key and its hash; deletes the key
    /// again if the client cannot be stored.
    pub fn create_client(
        &self,
        form: &ClientOrganizationForm,
    ) -> Result<ProvisionedClient, ProvisionError> {
        let _span = tracing::info_span!("orgusage.provision.create").entered();
        // A form the database would refuse never creates a key.
        form.validate()?;
        let limit = self.key_limit(form.monthly_limit, form.markup_rate)?;
        let created = self.keys.create(&NewKey {
            name: format!("Client: {}", form.name.trim()),
            limit,
            limit_reset: limit.map(|_| LimitReset::Monthly),
        })?;
        let hash = created.info.hash.clone();
        match self
            .store
            .clients()
            .create_client(form, &created.key, Some(&hash))
        {
            Ok(client) => Ok(ProvisionedClient {
                client,
                key: created.info,
            }),
            Err(database) => {
                tracing::warn!(key_hash = %hash, error = %database, "client not stored; deleting its new key");
                match self.keys.delete(&hash) {
                    Ok(_) => Err(ProvisionError::Database(database)),
                    Err(cleanup) => Err(ProvisionError::CompensationFailed {
                        database,
                        key_hash: hash,
                        cleanup,
                    }),
                }
            }
        }
    }

    /// Applies `update` to an active client; when the limit or the markup changes, the key's
    /// limit is updated first. `Ok(None)` if there is no such active client. A client without a
    /// key hash (not provisioned here) is only updated in the database.
    pub fn update_client(
        &self,
        client_id: &str,
        update: &ClientOrganizationUpdate,
    ) -> Result<Option<ClientOrganization>, ProvisionError> {
        let _span =
            tracing::info_span!("orgusage.provision.update", client_org_id = client_id).entered();
        update.validate()?;
        let Some(client) = self.store.clients().get_client_by_id(client_id)? else {
            return Ok(None);
        };
        let limit_changes = update.monthly_limit.is_some() || update.markup_rate.is_some();
        if let (true, Some(hash)) = (limit_changes, client.openrouter_key_hash.as_deref()) {
            let limit = update.monthly_limit.unwrap_or(client.monthly_limit);
            let markup = update.markup_rate.unwrap_or(client.markup_rate);
            let key_limit = self.key_limit(limit, markup)?;
            self.keys.update(
                hash,
                &KeyUpdate {
                    limit: Some(key_limit),
                    limit_reset: key_limit.map(|_| LimitReset::Monthly),
                    ..KeyUpdate::default()
                },
            )?;
        }
        Ok(self.store.clients().update_client(client_id, update)?)
    }

    /// The original's `update_client_limits`: a new monthly limit (`None` = unlimited).
    pub fn update_client_limit(
        &self,
        client_id: &str,
        monthly_limit: Option<Decimal>,
    ) -> Result<Option<ClientOrganization>, ProvisionError> {
        let update = ClientOrganizationUpdate {
            monthly_limit: Some(monthly_limit),
            ..ClientOrganizationUpdate::default()
        };
        self.update_client(client_id, &update)
    }

    /// Disables the client's key, then deactivates the client. `Ok(false)` if there is no such
    /// active client. Unlike the original, a failure to disable the key is an error and the
    /// client stays active, so it can be retried.
    pub fn deactivate_client(&self, client_id: &str) -> Result<bool, ProvisionError> {
        let _span = tracing::info_span!("orgusage.provision.deactivate", client_org_id = client_id)
            .entered();
        let Some(client) = self.store.clients().get_client_by_id(client_id)? else {
            return Ok(false);
        };
        if let Some(hash) = client.openrouter_key_hash.as_deref() {
            self.keys.update(
                hash,
                &KeyUpdate {
                    disabled: Some(true),
                    ..KeyUpdate::default()
                },
            )?;
        }
        Ok(self.store.clients().deactivate_client(client_id)?)
    }

    /// Pushes an active client's current limit to its key (after a failed second step, or to
    /// repair drift found by reconciliation). `Ok(None)` without such a client or key hash.
    pub fn sync_key(&self, client_id: &str) -> Result<Option<KeyInfo>, ProvisionError> {
        let Some(client) = self.store.clients().get_client_by_id(client_id)? else {
            return Ok(None);
        };
        let Some(hash) = client.openrouter_key_hash.as_deref() else {
            return Ok(None);
        };
        let key_limit = self.key_limit(client.monthly_limit, client.markup_rate)?;
        Ok(Some(self.keys.update(
            hash,
            &KeyUpdate {
                limit: Some(key_limit),
                limit_reset: key_limit.map(|_| LimitReset::Monthly),
                disabled: Some(false),
                ..KeyUpdate::default()
            },
        )?))
    }

    /// The management client in use.
    pub fn keys(&self) -> &KeyManager {
        &self.keys
    }
}

/// A [`KeyManager`] with the provisioning key stored in `global_settings`, or `None` when no key
/// is stored.
pub fn key_manager_from_settings(
    store: &Store,
    config: orgusage_keys::ManagementConfig,
) -> Result<Option<KeyManager>, Error> {
    let key: Option<Secret> = store
        .settings()
        .get_settings()?
        .and_then(|s| s.openrouter_provisioning_key);
    Ok(key.map(|k| KeyManager::new(config, k)))
}
