//! The blocking, retrying client of `GET /api/v1/generation?id=…`.

use std::sync::Arc;
use std::time::Duration;

use orgusage_domain::models::ClientOrganization;

use crate::http::{self, Failure, Retries, read_body, status_failure, transport_failure};
use crate::{Generation, OpenRouterError};

/// Bodies larger than this are not generation records (one is about 1.5 KB).
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Settings of [`GenerationFetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherConfig {
    /// API root without a trailing slash; tests point it at a local server.
    pub base_url: String,
    /// Budget for one request (connect, send, receive).
    pub timeout: Duration,
    /// Requests per fetch, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// Upper bound of one pause.
    pub max_backoff: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for FetcherConfig {
    /// `https://openrouter.ai/api/v1`, 10 s per request, 5 attempts, pauses of 0.5, 1, 2 and
    /// 4 s (7.5 s in all, enough for the usual 404 window after a generation ends), at most 8 s.
    fn default() -> Self {
        Self {
            base_url: "https://openrouter.ai/api/v1".to_string(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            user_agent: concat!("orgusage-openrouter/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl FetcherConfig {
    /// The pause after failed attempt number `attempt` (1-based):
    /// `initial_backoff × 2^(attempt − 1)`, at most `max_backoff`. No jitter, so tests and
    /// logs are deterministic.
    pub fn backoff(&self, attempt: u32) -> Duration {
        exponential_backoff(self.initial_backoff, self.max_backoff, attempt)
    }
}

/// The pause after failed attempt number `attempt` (1-based): `initial × 2^(attempt − 1)`, at
/// most `max`, without overflow. Shared by every OpenRouter client of orgusage (this fetcher and
/// the key management client), so their retry schedules follow one rule.
///
/// ```
/// use std::time::Duration;
/// use orgusage_openrouter::exponential_backoff;
/// let ms = Duration::from_millis;
/// assert_eq!(exponential_backoff(ms(500), ms(8000), 3), ms(2000));
/// assert_eq!(exponential_backoff(ms(500), ms(8000), 64), ms(8000));
/// ```
pub fn exponential_backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1_u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    initial.checked_mul(factor).unwrap_or(max).min(max)
}

/// How the fetcher waits between attempts; tests inject one that does not really wait.
///
/// Any `Fn(Duration) + Send + Sync` closure is a `Sleep`.
pub trait Sleep: Send + Sync {
    /// Blocks the calling thread for `duration` (or pretends to).
    fn sleep(&self, duration: Duration);
}

/// The real [`Sleep`]: [`std::thread::sleep`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadSleep;

impl Sleep for ThreadSleep {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

impl<F: Fn(Duration) + Send + Sync> Sleep for F {
    fn sleep(&self, duration: Duration) {
        self(duration);
    }
}

/// Fetches generation records from OpenRouter, retrying while the record is not there yet.
///
/// OpenRouter answers 404 for roughly 0.5 to several seconds after a generation ends (longer
/// after an interrupted stream), so 404 is retried with exponential backoff, as are 429, 5xx,
/// timeouts and connection failures, up to [`FetcherConfig::max_attempts`] requests in all.
/// 401 and 403 are final. A 404 on the last attempt gives [`OpenRouterError::NotFound`]; other
/// retryable failures give the last attempt's error. Either way
/// [`OpenRouterError::is_retryable`] tells the caller to defer the generation rather than drop it.
///
/// The API key is passed per call (each client has its own) and never stored, logged or put in
/// an error. Each attempt runs in a `debug` tracing span `openrouter_generation_fetch` with the
/// generation id and the attempt number. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct GenerationFetcher {
    agent: ureq::Agent,
    config: FetcherConfig,
    sleeper: Arc<dyn Sleep>,
}

impl std::fmt::Debug for GenerationFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for GenerationFetcher {
    fn default() -> Self {
        Self::new(FetcherConfig::default())
    }
}

impl GenerationFetcher {
    /// A fetcher with the given settings that really sleeps between attempts. Makes no request.
    pub fn new(config: FetcherConfig) -> Self {
        // 404 while the record is not ready is an answer we act on, not a failure.
        let agent = http::agent(config.timeout, &config.user_agent);
        Self {
            agent,
            config,
            sleeper: Arc::new(ThreadSleep),
        }
    }

    /// The same fetcher waiting with `sleeper` between attempts (tests pass a recorder).
    pub fn with_sleeper(mut self, sleeper: impl Sleep + 'static) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// The settings this fetcher was made with.
    pub fn config(&self) -> &FetcherConfig {
        &self.config
    }

    /// The request URL for `generation_id` (percent-encoded).
    pub fn url(&self, generation_id: &str) -> String {
        let base = self.config.base_url.trim_end_matches('/');
        format!("{base}/generation?id={}", percent_encode(generation_id))
    }

    /// Fetches `generation_id` with `api_key` (the key of the client the generation belongs
    /// to: OpenRouter only shows a key its own generations), retrying as described on
    /// [`GenerationFetcher`]. The answer must be for the generation asked for.
    pub fn fetch(&self, api_key: &str, generation_id: &str) -> Result<Generation, OpenRouterError> {
        check_api_key(api_key)?;
        if generation_id.trim().is_empty() {
            return Err(OpenRouterError::InvalidRequest(
                "empty generation id".into(),
            ));
        }
        let url = self.url(generation_id);
        let retries = Retries {
            max_attempts: self.config.max_attempts,
            initial_backoff: self.config.initial_backoff,
            max_backoff: self.config.max_backoff,
            sleeper: self.sleeper.as_ref(),
            call: "generation fetch",
            done: "generation fetched",
        };
        retries.run(
            |attempt, max_attempts| {
                tracing::debug_span!(
                    "openrouter_generation_fetch",
                    generation_id,
                    attempt,
                    max_attempts
                )
            },
            |attempt| self.attempt(&url, api_key, generation_id, attempt),
        )
    }

    /// [`GenerationFetcher::fetch`] with the client's own OpenRouter key.
    pub fn fetch_for_client(
        &self,
        client: &ClientOrganization,
        generation_id: &str,
    ) -> Result<Generation, OpenRouterError> {
        self.fetch(client.openrouter_api_key.expose(), generation_id)
    }

    /// Attempt number `attempt` (1-based, for the `NotFound` error's count).
    fn attempt(
        &self,
        url: &str,
        api_key: &str,
        generation_id: &str,
        attempt: u32,
    ) -> Result<Generation, Failure<OpenRouterError>> {
        let mut response = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .header("Authorization", &format!("Bearer {api_key}"))
            .call()
            .map_err(transport_failure)?;
        match response.status().as_u16() {
            200 => {
                let body = read_body(&mut response, MAX_BODY_BYTES)?;
                let generation = Generation::from_response_json(&body).map_err(Failure::fatal)?;
                if generation.id != generation_id {
                    return Err(Failure::fatal(OpenRouterError::Malformed(format!(
                        "asked for generation {generation_id:?}, got {:?}",
                        generation.id
                    ))));
                }
                Ok(generation)
            }
            404 => Err(Failure::retry(OpenRouterError::NotFound {
                generation_id: generation_id.to_string(),
                attempts: attempt,
            })),
            _ => Err(status_failure(&response)),
        }
    }
}

/// Rejects keys that are empty or cannot travel in a header; the key itself is never quoted.
fn check_api_key(api_key: &str) -> Result<(), OpenRouterError> {
    if api_key.is_empty() {
        return Err(OpenRouterError::InvalidRequest("empty API key".into()));
    }
    if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OpenRouterError::InvalidRequest(
            "the API key contains whitespace or non-ASCII characters".into(),
        ));
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = FetcherConfig::default();
        assert_eq!(c.base_url, "https://openrouter.ai/api/v1");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.initial_backoff, Duration::from_millis(500));
        assert_eq!(c.max_backoff, Duration::from_secs(8));
        assert!(c.user_agent.starts_with("orgusage-openrouter/"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = FetcherConfig::default();
        let ms: Vec<u128> = (1..=7).map(|a| c.backoff(a).as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(c.backoff(0), Duration::from_millis(500));
        assert_eq!(c.backoff(200), Duration::from_secs(8));
    }

    #[test]
    fn url_encodes_the_id() {
        let f = GenerationFetcher::new(FetcherConfig {
            base_url: "http://127.0.0.1:9/api/v1/".into(),
            ..FetcherConfig::default()
        });
        assert_eq!(
            f.url("gen-123abc_X.~"),
            "http://127.0.0.1:9/api/v1/generation?id=gen-123abc_X.~"
        );
        assert_eq!(
            f.url("a b&c=d/ł"),
            "http://127.0.0.1:9/api/v1/generation?id=a%20b%26c%3Dd%2F%C5%82"
        );
    }

    #[test]
    fn invalid_requests_send_nothing_and_never_quote_the_key() {
        // Port 9 (discard) on loopback: if anything were sent, the error would be Transport.
        let f = GenerationFetcher::new(FetcherConfig {
            base_url: "http://127.0.0.1:9/api/v1".into(),
            ..FetcherConfig::default()
        });
        for key in ["", "sk-or-v1 secret", "sk-or-v1-sécret", "sk\r\nX-Evil: 1"] {
            let err = f.fetch(key, "gen-1").expect_err("rejected");
            assert!(matches!(err, OpenRouterError::InvalidRequest(_)), "{err:?}");
            assert!(!format!("{err} {err:?}").contains("secret"));
            assert!(!format!("{err} {err:?}").contains("Evil"));
        }
        assert!(matches!(
            f.fetch("sk-or-v1-ok", "  "),
            Err(OpenRouterError::InvalidRequest(_))
        ));
    }

    #[test]
    fn debug_shows_config_only() {
        let f = GenerationFetcher::default().with_sleeper(|_d: Duration| {});
        let dbg = format!("{f:?}");
        assert!(
            dbg.starts_with("GenerationFetcher { config: FetcherConfig"),
            "{dbg}"
        );
    }
}
