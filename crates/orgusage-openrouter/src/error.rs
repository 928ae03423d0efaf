//! The error type of parsing, mapping and fetching OpenRouter generation records.

use std::time::Duration;

use crate::http::HttpFault;

/// Why a generation record could not be parsed, mapped or fetched.
///
/// No variant ever carries the API key: messages hold field names, statuses, the generation id
/// (not a secret) and lower-layer transport errors, which ureq formats without request headers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenRouterError {
    /// The body is not the JSON OpenRouter documents (syntax, or a field of the wrong type), or
    /// the answer does not match the request (another generation's id).
    #[error("malformed OpenRouter generation record: {0}")]
    Malformed(String),
    /// A required field (`id`, `model`, `created_at`, `total_cost`, or `data` of the envelope)
    /// is absent, `null` or empty.
    #[error("OpenRouter generation record lacks `{0}`")]
    MissingField(&'static str),
    /// A token count or `total_cost` is negative; the record is rejected rather than booked.
    #[error("OpenRouter generation record has a negative `{field}`")]
    Negative {
        /// The offending field.
        field: &'static str,
    },
    /// OpenRouter still answered 404 after every attempt. The record usually appears a few
    /// seconds after the generation ends (later for interrupted streams), so this is worth a
    /// deferred retry, not a permanent failure (see [`OpenRouterError::is_retryable`]).
    #[error("generation {generation_id} not found at OpenRouter after {attempts} attempt(s)")]
    NotFound {
        /// The generation that was asked for.
        generation_id: String,
        /// How many requests were made.
        attempts: u32,
    },
    /// OpenRouter rejected the key (401 or 403). Never retried.
    #[error("OpenRouter rejected the API key (status {status})")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// OpenRouter answered 429 on the last attempt (or asked for a longer pause than the
    /// fetcher's `max_backoff`).
    #[error("rate limited by OpenRouter")]
    RateLimited {
        /// The `Retry-After` the server sent, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// OpenRouter failed (5xx) on the last attempt.
    #[error("OpenRouter server error, status {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The last attempt did not complete within the configured timeout.
    #[error("request to OpenRouter timed out")]
    Timeout,
    /// The connection failed (DNS, TCP, TLS, I/O, protocol).
    #[error("transport error talking to OpenRouter: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A status OpenRouter does not document for this endpoint (e.g. 400, or a 3xx).
    #[error("unexpected HTTP status {status} from OpenRouter")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The arguments cannot form a request (empty generation id, empty API key or one with
    /// characters a header cannot carry); nothing was sent. The key itself is never quoted.
    #[error("invalid OpenRouter request: {0}")]
    InvalidRequest(String),
    /// The mapped usage record breaks a domain rule (e.g. a model id with surrounding spaces).
    #[error("the generation does not map to a valid usage record: {0}")]
    InvalidRecord(#[source] orgusage_domain::Error),
}

impl OpenRouterError {
    /// Whether asking again later may succeed: not found yet, rate limited, 5xx, timeouts and
    /// transport failures. A caller that gets a retryable error after the fetcher's own retries
    /// should defer the generation (and reconcile against OpenRouter's activity later) rather
    /// than drop it.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. }
                | Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout
                | Self::Transport(_)
        )
    }
}

impl From<HttpFault> for OpenRouterError {
    fn from(fault: HttpFault) -> Self {
        match fault {
            HttpFault::Unauthorized { status } => Self::Unauthorized { status },
            HttpFault::RateLimited { retry_after } => Self::RateLimited { retry_after },
            HttpFault::Server { status } => Self::Server { status },
            HttpFault::Timeout => Self::Timeout,
            HttpFault::Transport(source) => Self::Transport(source),
            HttpFault::UnexpectedStatus { status } => Self::UnexpectedStatus { status },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        assert!(
            OpenRouterError::NotFound {
                generation_id: "gen-1".into(),
                attempts: 5
            }
            .is_retryable()
        );
        assert!(OpenRouterError::Timeout.is_retryable());
        assert!(OpenRouterError::Server { status: 502 }.is_retryable());
        assert!(!OpenRouterError::Unauthorized { status: 401 }.is_retryable());
        assert!(!OpenRouterError::Malformed("x".into()).is_retryable());
        assert!(
            !OpenRouterError::Negative {
                field: "total_cost"
            }
            .is_retryable()
        );
    }

    #[test]
    fn messages_name_the_field() {
        assert_eq!(
            OpenRouterError::MissingField("model").to_string(),
            "OpenRouter generation record lacks `model`"
        );
        assert_eq!(
            OpenRouterError::Negative {
                field: "tokens_prompt"
            }
            .to_string(),
            "OpenRouter generation record has a negative `tokens_prompt`"
        );
    }
}
