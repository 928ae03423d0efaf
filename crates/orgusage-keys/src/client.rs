//! The blocking, retrying client of OpenRouter's management (provisioning) API.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use orgusage_domain::Secret;
use orgusage_openrouter::http::{
    self, Failure, Retries, read_body, status_failure, transport_failure,
};
use orgusage_openrouter::{Sleep, ThreadSleep};
use rust_decimal::Decimal;

use crate::KeysError;
use crate::wire::{
    ActivityRow, CreatedKey, Credits, KeyInfo, LimitReset, parse_activity, parse_created,
    parse_credits, parse_key_info, parse_key_list,
};

/// Bodies larger than this are not management answers (a key list of 100 is about 60 KB).
const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// Settings of [`KeyManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementConfig {
    /// API root without a trailing slash; tests point it at a local server.
    pub base_url: String,
    /// Budget for one request.
    pub timeout: Duration,
    /// Requests per call, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// Upper bound of one pause; a `Retry-After` above it ends the call with `RateLimited`.
    pub max_backoff: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for ManagementConfig {
    /// `https://openrouter.ai/api/v1`, 30 s per request (the original's), 4 attempts, pauses
    /// of 0.5, 1 and 2 s, at most 30 s (a `Retry-After` up to 30 s is honoured).
    fn default() -> Self {
        Self {
            base_url: "https://openrouter.ai/api/v1".to_string(),
            timeout: Duration::from_secs(30),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            user_agent: concat!("orgusage-keys/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ManagementConfig {
    /// The pause after failed attempt `attempt` (1-based): `initial_backoff × 2^(attempt−1)`,
    /// at most `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        orgusage_openrouter::exponential_backoff(self.initial_backoff, self.max_backoff, attempt)
    }
}

/// A new key: `POST /keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key's name (shown in OpenRouter's dashboard).
    pub name: String,
    /// Spending limit in raw USD; `None` = unlimited.
    pub limit: Option<Decimal>,
    /// When the limit resets (UTC); `None` = never.
    pub limit_reset: Option<LimitReset>,
}

/// A change to a key: `PATCH /keys/{hash}`. `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new limit: `Some(None)` removes it (unlimited).
    pub limit: Option<Option<Decimal>>,
    /// A new reset period.
    pub limit_reset: Option<LimitReset>,
    /// Disable or re-enable the key.
    pub disabled: Option<bool>,
}

/// One call's request: method, path and optional JSON body.
struct Call<'a> {
    method: &'static str,
    path: String,
    body: Option<String>,
    /// What a 404 means (the key hash), or `None` when 404 is unexpected.
    missing: Option<&'a str>,
}

/// OpenRouter's management API with a management (provisioning) key: create, read, update,
/// delete and list keys; `/credits`; `/activity`.
///
/// Retries 429 (honouring `Retry-After` up to `max_backoff`), 5xx, timeouts and transport
/// failures with exponential backoff; 401/403/404/other 4xx are final. Each attempt runs in a
/// `debug` span `openrouter_keys_call` with the method, the path (hashes only) and the attempt.
/// The management key is never stored in plain `String`, logged, or put in an error.
///
/// ```no_run
/// use orgusage_keys::{KeyManager, ManagementConfig, NewKey, LimitReset};
/// use rust_decimal_macros::dec;
///
/// let keys = KeyManager::new(ManagementConfig::default(), "sk-or-v1-management".into());
/// let created = keys.create(&NewKey {
///     name: "Client: Acme".into(),
///     limit: Some(dec!(330)),
///     limit_reset: Some(LimitReset::Monthly),
/// })?;
/// println!("store hash {}", created.info.hash); // `created.key` is shown once: store it now
/// # Ok::<(), orgusage_keys::KeysError>(())
/// ```
#[derive(Clone)]
pub struct KeyManager {
    agent: ureq::Agent,
    config: ManagementConfig,
    management_key: Secret,
    sleeper: Arc<dyn Sleep>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("config", &self.config)
            .field("management_key", &self.management_key)
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A client with `config` and the management key. Makes no request.
    pub fn new(config: ManagementConfig, management_key: Secret) -> Self {
        let agent = http::agent(config.timeout, &config.user_agent);
        Self {
            agent,
            config,
            management_key,
            sleeper: Arc::new(ThreadSleep),
        }
    }

    /// The same client pausing with `sleeper` between attempts (tests pass a recorder).
    pub fn with_sleeper(mut self, sleeper: impl Sleep + 'static) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// The settings.
    pub fn config(&self) -> &ManagementConfig {
        &self.config
    }

    /// Creates a key. The answer holds the plaintext key, which OpenRouter shows only once.
    ///
    /// Retried like every call: a 429 or 5xx means the key was not created. A timeout after
    /// the request was sent may leave a key at OpenRouter that this call never saw; it then
    /// shows up in [`KeyManager::list`] under the same name.
    pub fn create(&self, key: &NewKey) -> Result<CreatedKey, KeysError> {
        if key.name.trim().is_empty() {
            return Err(KeysError::InvalidRequest("empty key name".into()));
        }
        let mut body = format!("{{\"name\":{}", json_string(&key.name));
        if let Some(limit) = key.limit {
            body.push_str(&format!(",\"limit\":{}", json_amount("limit", limit)?));
        }
        if let Some(reset) = key.limit_reset {
            body.push_str(&format!(",\"limit_reset\":\"{}\"", reset.as_str()));
        }
        body.push('}');
        let answer = self.call(&Call {
            method: "POST",
            path: "/keys".into(),
            body: Some(body),
            missing: None,
        })?;
        parse_created(&answer)
    }

    /// Reads a key by hash (`NotFound` if OpenRouter does not know it).
    pub fn get(&self, hash: &str) -> Result<KeyInfo, KeysError> {
        check_hash(hash)?;
        let answer = self.call(&Call {
            method: "GET",
            path: format!("/keys/{hash}"),
            body: None,
            missing: Some(hash),
        })?;
        parse_key_info(&answer)
    }

    /// Updates a key's name, limit, reset period or disabled flag; returns the new state.
    pub fn update(&self, hash: &str, update: &KeyUpdate) -> Result<KeyInfo, KeysError> {
        check_hash(hash)?;
        let mut fields = Vec::new();
        if let Some(name) = &update.name {
            fields.push(format!("\"name\":{}", json_string(name)));
        }
        match update.limit {
            Some(Some(limit)) => fields.push(format!("\"limit\":{}", json_amount("limit", limit)?)),
            Some(None) => fields.push("\"limit\":null".into()),
            None => {}
        }
        if let Some(reset) = update.limit_reset {
            fields.push(format!("\"limit_reset\":\"{}\"", reset.as_str()));
        }
        if let Some(disabled) = update.disabled {
            fields.push(format!("\"disabled\":{disabled}"));
        }
        if fields.is_empty() {
            return self.get(hash);
        }
        let answer = self.call(&Call {
            method: "PATCH",
            path: format!("/keys/{hash}"),
            body: Some(format!("{{{}}}", fields.join(","))),
            missing: Some(hash),
        })?;
        parse_key_info(&answer)
    }

    /// Deletes a key. `Ok(false)` if OpenRouter no longer knows it (already deleted), so a
    /// compensation can be repeated safely.
    pub fn delete(&self, hash: &str) -> Result<bool, KeysError> {
        check_hash(hash)?;
        match self.call(&Call {
            method: "DELETE",
            path: format!("/keys/{hash}"),
            body: None,
            missing: Some(hash),
        }) {
            Ok(_) => Ok(true),
            Err(KeysError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page of keys (`GET /keys?offset=…`, OpenRouter pages by 100).
    pub fn list(&self, offset: u32) -> Result<Vec<KeyInfo>, KeysError> {
        let answer = self.call(&Call {
            method: "GET",
            path: format!("/keys?offset={offset}"),
            body: None,
            missing: None,
        })?;
        parse_key_list(&answer)
    }

    /// The account's credits and usage (`GET /credits`, management key required).
    pub fn credits(&self) -> Result<Credits, KeysError> {
        let answer = self.call(&Call {
            method: "GET",
            path: "/credits".into(),
            body: None,
            missing: None,
        })?;
        parse_credits(&answer)
    }

    /// `GET /activity`: per completed UTC day and model endpoint, the last 30 days, optionally
    /// one `date` and one key (`api_key_hash`).
    pub fn activity(
        &self,
        date: Option<NaiveDate>,
        api_key_hash: Option<&str>,
    ) -> Result<Vec<ActivityRow>, KeysError> {
        let mut query = Vec::new();
        if let Some(d) = date {
            query.push(format!("date={}", d.format("%Y-%m-%d")));
        }
        if let Some(h) = api_key_hash {
            check_hash(h)?;
            query.push(format!("api_key_hash={h}"));
        }
        let path = if query.is_empty() {
            "/activity".to_string()
        } else {
            format!("/activity?{}", query.join("&"))
        };
        let answer = self.call(&Call {
            method: "GET",
            path,
            body: None,
            missing: None,
        })?;
        parse_activity(&answer)
    }

    /// Runs one call with retries; returns the 2xx body.
    fn call(&self, call: &Call<'_>) -> Result<String, KeysError> {
        let url = format!(
            "{}{}",
            self.config.base_url.trim_end_matches('/'),
            call.path
        );
        let retries = Retries {
            max_attempts: self.config.max_attempts,
            initial_backoff: self.config.initial_backoff,
            max_backoff: self.config.max_backoff,
            sleeper: self.sleeper.as_ref(),
            call: "management call",
            done: "ok",
        };
        retries.run(
            |attempt, max_attempts| {
                tracing::debug_span!(
                    "openrouter_keys_call",
                    method = call.method,
                    path = %call.path,
                    attempt,
                    max_attempts
                )
            },
            |_| self.attempt(&url, call),
        )
    }

    fn attempt(&self, url: &str, call: &Call<'_>) -> Result<String, Failure<KeysError>> {
        let auth = format!("Bearer {}", self.management_key.expose());
        let result = match (call.method, &call.body) {
            ("POST", Some(body)) => self
                .agent
                .post(url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.as_str()),
            ("PATCH", Some(body)) => self
                .agent
                .patch(url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.as_str()),
            ("DELETE", _) => self.agent.delete(url).header("Authorization", &auth).call(),
            _ => self.agent.get(url).header("Authorization", &auth).call(),
        };
        let mut response = result.map_err(transport_failure)?;
        match response.status().as_u16() {
            200..=299 => read_body(&mut response, MAX_BODY_BYTES),
            404 => Err(Failure::fatal(match call.missing {
                Some(hash) => KeysError::NotFound {
                    hash: hash.to_string(),
                },
                None => KeysError::UnexpectedStatus { status: 404 },
            })),
            _ => Err(status_failure(&response)),
        }
    }
}

/// Key hashes are hex digests; anything else could not be a path segment safely.
fn check_hash(hash: &str) -> Result<(), KeysError> {
    if hash.is_empty()
        || !hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(KeysError::InvalidRequest(
            "a key hash must be non-empty ASCII letters, digits, '-' or '_'".into(),
        ));
    }
    Ok(())
}

fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON number written from the decimal's exact text (never through `f64`).
fn json_amount(field: &'static str, amount: Decimal) -> Result<String, KeysError> {
    if amount.is_sign_negative() {
        return Err(KeysError::InvalidRequest(format!(
            "`{field}` must not be negative"
        )));
    }
    Ok(amount.normalize().to_string())
}
