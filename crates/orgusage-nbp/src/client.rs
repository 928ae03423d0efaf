//! The HTTP client for api.nbp.pl (the only place in orgusage that speaks HTTP to NBP).

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};

use crate::rate::{NBP_MAX_RANGE_DAYS, check_range, normalize_currency};
use crate::wire::{parse_rates_answer, snippet};
use crate::{MidRate, NbpError, RateSource};

/// Bodies larger than this are not NBP answers (93 rates are about 6 KB).
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Settings of [`NbpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbpConfig {
    /// API root without a trailing slash; tests point it at a local server.
    pub base_url: String,
    /// Budget for one whole request (connect, send, receive); a rate lookup must not hang an
    /// invoice run.
    pub timeout: Duration,
    /// Sent as `User-Agent` so NBP can tell who is calling.
    pub user_agent: String,
}

impl Default for NbpConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.nbp.pl/api".to_string(),
            timeout: Duration::from_secs(5),
            user_agent: concat!("orgusage-nbp/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A blocking [`RateSource`] over NBP's public API (table A mid rates).
///
/// Cheap to clone (the connection pool is shared). Ranges longer than NBP's documented limit of
/// 93 days are split into consecutive requests and joined, so callers may ask for any range.
#[derive(Clone)]
pub struct NbpClient {
    agent: ureq::Agent,
    config: NbpConfig,
}

impl std::fmt::Debug for NbpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for NbpClient {
    fn default() -> Self {
        Self::new(NbpConfig::default())
    }
}

impl NbpClient {
    /// A client with the given settings. Makes no request.
    pub fn new(config: NbpConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            // NBP's 404 "Brak danych" is an answer, not a failure: we want the response.
            .http_status_as_error(false)
            .user_agent(config.user_agent.as_str())
            .build()
            .into();
        Self { agent, config }
    }

    /// The settings this client was made with.
    pub fn config(&self) -> &NbpConfig {
        &self.config
    }

    fn url(&self, code_lower: &str, from: NaiveDate, to: NaiveDate) -> String {
        let base = self.config.base_url.trim_end_matches('/');
        if from == to {
            format!("{base}/exchangerates/rates/a/{code_lower}/{from}/?format=json")
        } else {
            format!("{base}/exchangerates/rates/a/{code_lower}/{from}/{to}/?format=json")
        }
    }

    /// One HTTP request for a range NBP accepts.
    fn fetch_chunk(
        &self,
        code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        let url = self.url(&code.to_ascii_lowercase(), from, to);
        let span = tracing::debug_span!("nbp_request", currency = code, %from, %to);
        let _entered = span.enter();
        let started = Instant::now();
        let result = self.request(&url);
        let elapsed_ms = started.elapsed().as_millis();
        match &result {
            Ok(rates) => tracing::debug!(%url, elapsed_ms, count = rates.len(), "NBP answered"),
            Err(NbpError::NoTable) => {
                // A 404 on a weekend or holiday is routine; on business days it is an outage.
                let today = orgusage_domain::clock::Clock::now(&orgusage_domain::SystemClock)
                    .with_timezone(&chrono_tz::Europe::Warsaw)
                    .date_naive();
                let verdict = crate::no_table_verdict(from, to, Some(today));
                if verdict.expected {
                    tracing::debug!(%url, elapsed_ms, verdict = %verdict.explanation, "NBP has no table");
                } else {
                    tracing::warn!(%url, elapsed_ms, verdict = %verdict.explanation, "NBP has no table");
                }
            }
            Err(error) => tracing::debug!(%url, elapsed_ms, %error, "NBP request failed"),
        }
        let rates = result?;
        if let Some(stray) = rates
            .iter()
            .find(|r| r.currency != code || r.effective_date < from || r.effective_date > to)
        {
            return Err(NbpError::Parse(format!(
                "answer for {code} {from}..{to} holds {} {}",
                stray.currency, stray.effective_date
            )));
        }
        Ok(rates)
    }

    fn request(&self, url: &str) -> Result<Vec<MidRate>, NbpError> {
        let mut response = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(from_ureq)?;
        let status = response.status().as_u16();
        match status {
            200 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY_BYTES)
                    .read_to_string()
                    .map_err(from_ureq)?;
                parse_rates_answer(&body)
            }
            404 => Err(NbpError::NoTable),
            400..=499 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY_BYTES)
                    .lossy_utf8(true)
                    .read_to_string()
                    .unwrap_or_default();
                Err(NbpError::BadRequest {
                    status,
                    body: snippet(&body),
                })
            }
            500..=599 => Err(NbpError::Server { status }),
            _ => Err(NbpError::UnexpectedStatus { status }),
        }
    }
}

impl RateSource for NbpClient {
    fn mid_rates(
        &self,
        currency: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MidRate>, NbpError> {
        let code = normalize_currency(currency)?;
        check_range(from, to)?;
        let mut all = Vec::new();
        let mut start = Some(from);
        while let Some(chunk_start) = start.filter(|s| *s <= to) {
            let chunk_end = chunk_start
                .checked_add_days(Days::new(NBP_MAX_RANGE_DAYS - 1))
                .map_or(to, |end| end.min(to));
            match self.fetch_chunk(&code, chunk_start, chunk_end) {
                Ok(rates) => all.extend(rates),
                Err(NbpError::NoTable) => {}
                Err(other) => return Err(other),
            }
            start = chunk_end.succ_opt();
        }
        if all.is_empty() {
            Err(NbpError::NoTable)
        } else {
            Ok(all)
        }
    }
}

fn from_ureq(error: ureq::Error) -> NbpError {
    match error {
        ureq::Error::Timeout(_) => NbpError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => NbpError::Timeout,
        ureq::Error::StatusCode(status) => NbpError::UnexpectedStatus { status },
        other => NbpError::Transport(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_match_nbp_shapes() {
        let client = NbpClient::new(NbpConfig {
            base_url: "http://127.0.0.1:9/api/".into(),
            ..NbpConfig::default()
        });
        let d = |day| NaiveDate::from_ymd_opt(2025, 4, day).expect("valid");
        assert_eq!(
            client.url("usd", d(1), d(14)),
            "http://127.0.0.1:9/api/exchangerates/rates/a/usd/2025-04-01/2025-04-14/?format=json"
        );
        assert_eq!(
            client.url("eur", d(14), d(14)),
            "http://127.0.0.1:9/api/exchangerates/rates/a/eur/2025-04-14/?format=json"
        );
    }

    #[test]
    fn defaults() {
        let config = NbpConfig::default();
        assert_eq!(config.base_url, "https://api.nbp.pl/api");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert!(config.user_agent.starts_with("orgusage-nbp/"));
    }

    #[test]
    fn invalid_requests_send_nothing() {
        // Port 9 (discard) on loopback: if anything were sent, the error would be Transport.
        let client = NbpClient::new(NbpConfig {
            base_url: "http://127.0.0.1:9/api".into(),
            ..NbpConfig::default()
        });
        let d = |day| NaiveDate::from_ymd_opt(2025, 4, day).expect("valid");
        assert!(matches!(
            client.mid_rates("usdx", d(1), d(2)),
            Err(NbpError::InvalidRequest(_))
        ));
        assert!(matches!(
            client.mid_rates("usd", d(3), d(2)),
            Err(NbpError::InvalidRequest(_))
        ));
    }
}
