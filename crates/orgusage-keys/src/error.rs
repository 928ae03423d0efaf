//! The error type of the OpenRouter management API client.

use std::time::Duration;

use orgusage_openrouter::http::HttpFault;

/// Why a management API call failed.
///
/// No variant ever carries the management key or a client key: messages hold statuses, key
/// hashes (not secrets), field names and positions. Malformed bodies are described by field and
/// position only, because a key-creation answer holds the new key in plain text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// OpenRouter rejected the management key (401 or 403). Never retried.
    #[error("OpenRouter rejected the management key (status {status})")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// The key (by hash) does not exist at OpenRouter.
    #[error("OpenRouter key {hash} not found")]
    NotFound {
        /// The key hash asked for.
        hash: String,
    },
    /// 429 on the last attempt, or a `Retry-After` longer than the configured `max_backoff`.
    #[error("rate limited by OpenRouter")]
    RateLimited {
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// 5xx on the last attempt.
    #[error("OpenRouter server error, status {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The last attempt timed out.
    #[error("request to OpenRouter timed out")]
    Timeout,
    /// The connection failed (DNS, TCP, TLS, I/O, protocol).
    #[error("transport error talking to OpenRouter: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A status the endpoint does not document (e.g. 400 for an invalid body).
    #[error("unexpected HTTP status {status} from OpenRouter")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The body is not the documented JSON; says which field or position, never the content.
    #[error("malformed OpenRouter management answer: {0}")]
    Malformed(String),
    /// The arguments cannot form a request; nothing was sent.
    #[error("invalid OpenRouter management request: {0}")]
    InvalidRequest(String),
}

impl KeysError {
    /// Whether asking again later may succeed (429, 5xx, timeouts, transport failures).
    ///
    /// ```
    /// use orgusage_keys::KeysError;
    /// assert!(KeysError::Server { status: 503 }.is_retryable());
    /// assert!(!KeysError::Unauthorized { status: 401 }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Transport(_)
        )
    }
}

impl From<HttpFault> for KeysError {
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

/// A serde error as position and category only: serde_json quotes offending values, which in a
/// key-creation answer could be the key itself.
pub(crate) fn malformed(what: &str, e: &serde_json::Error) -> KeysError {
    KeysError::Malformed(format!(
        "{what}: {:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    ))
}
