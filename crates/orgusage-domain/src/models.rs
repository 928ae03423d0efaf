//! Row models, creation forms and typed update structs of the settings, client and mapping tables.
//!
//! Money and rates are [`Decimal`]; timestamps are Unix seconds (`created_at`, `updated_at`) as in
//! the original. Forms are validated before anything is written ([`ClientOrganizationForm::validate`]).

use rust_decimal::Decimal;
use serde::Serialize;

use crate::bounds::reject_nul;
use crate::error::{Error, Result};
use crate::money::{rate_to_units, validate_amount, validate_markup_rate};
use crate::secret::Secret;
use crate::timezone::{DEFAULT_TIMEZONE, parse_timezone};

/// The default markup on raw OpenRouter cost (1.3x).
pub const DEFAULT_MARKUP_RATE: Decimal = Decimal::from_parts(13, 0, 0, false, 1);
/// The default billing currency of [`GlobalSettingsForm`].
pub const DEFAULT_BILLING_CURRENCY: &str = "USD";
/// The id of the single `global_settings` row.
pub const GLOBAL_SETTINGS_ID: &str = "global";

/// The singleton global settings row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalSettings {
    /// Always `"global"`.
    pub id: String,
    /// The OpenRouter provisioning (management) key; masked in `Debug` and JSON.
    pub openrouter_provisioning_key: Option<Secret>,
    /// Markup applied to new clients unless their form says otherwise.
    #[serde(with = "rust_decimal::serde::str")]
    pub default_markup_rate: Decimal,
    /// Billing currency code, `USD` by default.
    pub billing_currency: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Input of `create_or_update_settings`.
///
/// `openrouter_provisioning_key: None` keeps the stored key (the original erased it, bug B33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettingsForm {
    /// A new provisioning key, or `None` to keep the current one.
    pub openrouter_provisioning_key: Option<Secret>,
    /// Default markup rate (1.3).
    pub default_markup_rate: Decimal,
    /// Billing currency (`USD`); three upper-case letters.
    pub billing_currency: String,
}

impl Default for GlobalSettingsForm {
    fn default() -> Self {
        Self {
            openrouter_provisioning_key: None,
            default_markup_rate: DEFAULT_MARKUP_RATE,
            billing_currency: DEFAULT_BILLING_CURRENCY.to_string(),
        }
    }
}

impl GlobalSettingsForm {
    /// Checks every field; returns the markup in storage units.
    pub fn validate(&self) -> Result<i64> {
        if let Some(key) = &self.openrouter_provisioning_key {
            validate_secret("openrouter_provisioning_key", key)?;
        }
        validate_markup_rate(self.default_markup_rate)?;
        let c = &self.billing_currency;
        if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(Error::invalid(
                "billing_currency",
                format!("{c:?} is not an ISO 4217 code"),
            ));
        }
        rate_to_units("default_markup_rate", self.default_markup_rate)
    }
}

/// A client organization (a paying company) with its own OpenRouter key and markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientOrganization {
    /// Stable id, `client_{slug}_{unix seconds}_{random}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The client's dedicated OpenRouter API key; masked in `Debug` and JSON.
    pub openrouter_api_key: Secret,
    /// OpenRouter's `hash` of the key (from the provisioning API), if known.
    pub openrouter_key_hash: Option<String>,
    /// Multiplier applied to raw cost.
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_rate: Decimal,
    /// Monthly spending limit in USD of marked-up cost, per client-local month.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub monthly_limit: Option<Decimal>,
    /// Where invoices go.
    pub billing_email: Option<String>,
    /// Canonical IANA zone that defines the client's days and months.
    pub timezone: String,
    /// Soft-delete flag; inactive clients are invisible to the getters.
    pub is_active: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Input of `create_client` (the API key is a separate argument, as in the original).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrganizationForm {
    /// Display name; must not be blank.
    pub name: String,
    /// Markup (1.3 by default); > 0, at most 9 decimal places.
    pub markup_rate: Decimal,
    /// Optional monthly limit in USD; not negative.
    pub monthly_limit: Option<Decimal>,
    /// Optional billing e-mail.
    pub billing_email: Option<String>,
    /// Canonical IANA zone (`Europe/Warsaw` by default).
    pub timezone: String,
}

impl ClientOrganizationForm {
    /// A form with the original's defaults and the given name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            markup_rate: DEFAULT_MARKUP_RATE,
            monthly_limit: None,
            billing_email: None,
            timezone: DEFAULT_TIMEZONE.to_string(),
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_markup_rate(self.markup_rate)?;
        if let Some(limit) = self.monthly_limit {
            validate_amount("monthly_limit", limit)?;
        }
        if let Some(email) = &self.billing_email {
            validate_email(email)?;
        }
        parse_timezone(&self.timezone)?;
        Ok(())
    }
}

/// A typed partial update of a client. `id`, the API key and `is_active` cannot be changed here
/// (use `deactivate_client` to deactivate). `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOrganizationUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New markup; applies to usage recorded from now on (history never reprices).
    pub markup_rate: Option<Decimal>,
    /// New monthly limit, or `Some(None)` to remove it.
    pub monthly_limit: Option<Option<Decimal>>,
    /// New billing e-mail, or `Some(None)` to remove it.
    pub billing_email: Option<Option<String>>,
    /// New time zone (canonical IANA).
    pub timezone: Option<String>,
    /// New OpenRouter key hash, or `Some(None)` to remove it.
    pub openrouter_key_hash: Option<Option<String>>,
}

impl ClientOrganizationUpdate {
    /// Checks every field that is set.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        if let Some(rate) = self.markup_rate {
            validate_markup_rate(rate)?;
        }
        if let Some(Some(limit)) = self.monthly_limit {
            validate_amount("monthly_limit", limit)?;
        }
        if let Some(Some(email)) = &self.billing_email {
            validate_email(email)?;
        }
        if let Some(tz) = &self.timezone {
            parse_timezone(tz)?;
        }
        // The same rule as `create_client`'s `key_hash`; it was not checked here at all.
        if let Some(Some(hash)) = &self.openrouter_key_hash {
            validate_identifier("openrouter_key_hash", hash)?;
        }
        Ok(())
    }

    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The link between a host-application user and the client organization that pays for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserClientMapping {
    /// `{user_id}_{client_org_id}`, as in the original.
    pub id: String,
    /// The host application's user id.
    pub user_id: String,
    /// The paying client.
    pub client_org_id: String,
    /// The value sent to OpenRouter as `user`.
    pub openrouter_user_id: String,
    /// Only one active mapping per user exists (enforced by the database).
    pub is_active: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Input of `create_mapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClientMappingForm {
    /// The host application's user id.
    pub user_id: String,
    /// The paying client (must exist and be active).
    pub client_org_id: String,
    /// The OpenRouter `user` value.
    pub openrouter_user_id: String,
}

impl UserClientMappingForm {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate_identifier("user_id", &self.user_id)?;
        validate_identifier("client_org_id", &self.client_org_id)?;
        validate_identifier("openrouter_user_id", &self.openrouter_user_id)
    }
}

/// A typed partial update of a user's active mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserClientMappingUpdate {
    /// New OpenRouter `user` value.
    pub openrouter_user_id: Option<String>,
}

impl UserClientMappingUpdate {
    /// Checks every field that is set.
    pub fn validate(&self) -> Result<()> {
        if let Some(v) = &self.openrouter_user_id {
            validate_identifier("openrouter_user_id", v)?;
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<()> {
    reject_nul("name", name)?;
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "must not be empty"));
    }
    if name.chars().count() > 255 {
        return Err(Error::invalid("name", "must be at most 255 characters"));
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<()> {
    reject_nul("billing_email", email)?;
    let ok = email.len() <= 320
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "billing_email",
            format!("{email:?} is not an e-mail address"),
        ))
    }
}

/// Checks an id-like string: not blank, no surrounding whitespace, no NUL, at most 255
/// characters.
pub fn validate_identifier(field: &'static str, value: &str) -> Result<()> {
    reject_nul(field, value)?;
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.trim() != value {
        return Err(Error::invalid(
            field,
            "must not have leading or trailing whitespace",
        ));
    }
    if value.chars().count() > 255 {
        return Err(Error::invalid(field, "must be at most 255 characters"));
    }
    Ok(())
}

/// Checks a secret (API key): not blank, no whitespace, no NUL, at most 512 characters.
/// The error never contains the secret.
pub fn validate_secret(field: &'static str, secret: &Secret) -> Result<()> {
    let v = secret.expose();
    reject_nul(field, v)?;
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if v.chars().any(char::is_whitespace) || v.len() > 512 {
        return Err(Error::invalid(
            field,
            "must be at most 512 characters without whitespace",
        ));
    }
    Ok(())
}

/// Builds a client id that is unique even for equal names created in the same second (bug B33):
/// `client_{ascii slug of the name}_{unix seconds}_{8 random hex digits}`.
///
/// ```
/// let id = orgusage_domain::models::new_client_id("Zakład Łódź Sp. z o.o.", 1_753_350_000);
/// assert!(id.starts_with("client_zaklad_lodz_sp_z_o_o_1753350000_"), "{id}");
/// ```
pub fn new_client_id(name: &str, unix_seconds: i64) -> String {
    let mut slug = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        let mapped = match ch {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        };
        if mapped == '_' && (slug.is_empty() || slug.ends_with('_')) {
            continue;
        }
        slug.push(mapped);
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug = if slug.is_empty() { "org" } else { slug };
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("client_{slug}_{unix_seconds}_{}", &random[..8])
}

/// The id of a mapping row, `{user_id}_{client_org_id}` as in the original.
pub fn mapping_id(user_id: &str, client_org_id: &str) -> String {
    format!("{user_id}_{client_org_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn ids_are_unique_for_equal_names_in_one_second() {
        let a = new_client_id("Acme", 1);
        let b = new_client_id("Acme", 1);
        assert_ne!(a, b);
        assert!(a.starts_with("client_acme_1_"));
        assert!(new_client_id("???", 5).starts_with("client_org_5_"));
    }

    #[test]
    fn client_form_validation() {
        assert!(ClientOrganizationForm::new("Acme").validate().is_ok());
        let mut f = ClientOrganizationForm::new("  ");
        assert!(matches!(
            f.validate(),
            Err(Error::InvalidInput { field: "name", .. })
        ));
        f.name = "Acme".into();
        f.markup_rate = dec!(0);
        assert!(f.validate().is_err());
        f.markup_rate = dec!(1.3);
        f.monthly_limit = Some(dec!(-1));
        assert!(f.validate().is_err());
        f.monthly_limit = Some(dec!(100));
        for tz in ["CET", "Poland", "", "Mars/Base"] {
            f.timezone = tz.into();
            assert!(f.validate().is_err(), "{tz}");
        }
        f.timezone = "America/New_York".into();
        assert!(f.validate().is_ok());
        f.billing_email = Some("not an email".into());
        assert!(f.validate().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let form = GlobalSettingsForm {
            openrouter_provisioning_key: Some(Secret::new("sk-or-v1-supersecretvalue")),
            ..Default::default()
        };
        let dbg = format!("{form:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        let err =
            validate_secret("openrouter_api_key", &Secret::new("has space secret")).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(form.validate().unwrap(), 1_300_000_000);
    }
}
