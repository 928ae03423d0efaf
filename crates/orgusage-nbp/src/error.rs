//! The error type of every rate lookup.

use chrono::NaiveDate;

/// Why a rate could not be obtained.
///
/// No variant ever carries a substitute rate: a caller that gets an error must surface "rate
/// unavailable" rather than invent one (the original silently used 4.0 or 4.1234).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NbpError {
    /// NBP answered 404 ("Brak danych"): no table for that date or range. Expected on weekends,
    /// holidays, before publication and before 2002-01-02, so it is not a failure by itself.
    #[error("NBP has no table for the requested date or range")]
    NoTable,
    /// NBP rejected the request (400, or another 4xx except 404), e.g. a malformed or too long
    /// range or an end date in the future.
    #[error("NBP rejected the request with status {status}: {body}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The start of the response body, for the log.
        body: String,
    },
    /// NBP failed (5xx); worth retrying later.
    #[error("NBP server error, status {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// A status NBP does not document (1xx, or a 3xx that was not followed).
    #[error("unexpected HTTP status {status} from NBP")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The request did not complete within the configured timeout.
    #[error("request to NBP timed out")]
    Timeout,
    /// The connection failed (DNS, TCP, TLS, I/O).
    #[error("transport error talking to NBP: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The answer was not the JSON NBP documents, or did not match the request.
    #[error("cannot parse the NBP answer: {0}")]
    Parse(String),
    /// The arguments cannot form a valid request (bad currency code, `from` after `to`, a date
    /// at the edge of the calendar); nothing was sent.
    #[error("invalid rate request: {0}")]
    InvalidRequest(String),
    /// NBP answered, but no table exists in the window the rule allows for this date.
    #[error("no NBP rate available for {date}: {reason}")]
    RateUnavailable {
        /// The date the rate was wanted for (the cost date for the Polish rule).
        date: NaiveDate,
        /// What was tried.
        reason: String,
    },
}

impl NbpError {
    /// Whether trying again later may succeed (timeouts, transport failures, 5xx).
    ///
    /// Lets a persistent rate store decide between "retry later" and "record as unavailable".
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NbpError::Timeout | NbpError::Transport(_) | NbpError::Server { .. }
        )
    }
}
