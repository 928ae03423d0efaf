//! The HTTP plumbing shared by orgusage's two OpenRouter clients, this crate's
//! [`GenerationFetcher`](crate::GenerationFetcher) and `orgusage-keys`' `KeyManager`, so both
//! treat openrouter.ai alike:
//!
//! * [`agent`]: one blocking ureq agent configuration (a global timeout, a `User-Agent`, and
//!   statuses handed back as answers rather than errors);
//! * [`HttpFault`]: what an answer or a connection failure means whatever the endpoint
//!   (401/403, 408, 429 with `Retry-After`, 5xx, another status, a timeout, a transport
//!   failure), classified by [`status_failure`] and [`transport_failure`] into a [`Failure`]
//!   that says whether to retry; each client turns an `HttpFault` into its own error type;
//! * [`Retries`]: the retry loop with exponential backoff that honours `Retry-After` up to
//!   `max_backoff`, one caller-made span per attempt and one log line per outcome.
//!
//! Success and 404, whose meaning depends on the endpoint, stay with each client. Nothing here
//! sees a key: the clients add the `Authorization` header themselves, and no error or log line
//! carries a header.

use std::fmt::Display;
use std::time::{Duration, Instant};

use ureq::Body;
use ureq::http::Response;

use crate::{Sleep, exponential_backoff};

/// A blocking agent with a global per-request `timeout` (connect, send, receive) and
/// `user_agent`, handing every status back as an answer: a 404 or a 429 is something the
/// clients act on, not a transport failure.
pub fn agent(timeout: Duration, user_agent: &str) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(user_agent)
        .build()
        .into()
}

/// What a failed request means, whatever OpenRouter endpoint it went to. Each client's error
/// type has a variant for each (`From<HttpFault>`), with its own message.
#[derive(Debug)]
pub enum HttpFault {
    /// 401 or 403: the key was rejected. Never retried.
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// 429, with the server's `Retry-After` when it sent one in seconds.
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// A 5xx status.
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// 408, or the request did not complete within the agent's timeout.
    Timeout,
    /// The connection failed (DNS, TCP, TLS, I/O, protocol, or a body over its limit). ureq
    /// formats these without the request's headers.
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// A status the endpoint does not document.
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
}

/// One failed attempt: the client's error, whether asking again may succeed and how long the
/// server asked to wait first.
#[derive(Debug)]
pub struct Failure<E> {
    /// The error the call returns if this was its last attempt.
    pub error: E,
    /// Whether another attempt may succeed.
    pub retry: bool,
    /// The server's `Retry-After`; one above the loop's `max_backoff` ends the call.
    pub retry_after: Option<Duration>,
}

impl<E> Failure<E> {
    /// A failure that another attempt would not cure.
    pub fn fatal(error: E) -> Self {
        Self {
            error,
            retry: false,
            retry_after: None,
        }
    }

    /// A failure worth another attempt after the usual backoff.
    pub fn retry(error: E) -> Self {
        Self {
            error,
            retry: true,
            retry_after: None,
        }
    }
}

/// The failure an answer's status means, for the statuses every OpenRouter endpoint treats
/// alike: 401/403 (final), 408 (retried as a timeout), 429 (retried, with `Retry-After`), 5xx
/// (retried) and anything else (final, unexpected). Callers handle success and 404 first.
pub fn status_failure<E: From<HttpFault>>(response: &Response<Body>) -> Failure<E> {
    let status = response.status().as_u16();
    match status {
        401 | 403 => Failure::fatal(HttpFault::Unauthorized { status }.into()),
        408 => Failure::retry(HttpFault::Timeout.into()),
        429 => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Failure {
                error: HttpFault::RateLimited { retry_after }.into(),
                retry: true,
                retry_after,
            }
        }
        500..=599 => Failure::retry(HttpFault::Server { status }.into()),
        _ => Failure::fatal(HttpFault::UnexpectedStatus { status }.into()),
    }
}

/// The failure a ureq error means: timeouts and connection-level failures (I/O, connection,
/// DNS, protocol) are retried, anything else (e.g. a body over its limit) is final.
pub fn transport_failure<E: From<HttpFault>>(error: ureq::Error) -> Failure<E> {
    match error {
        ureq::Error::Timeout(_) => Failure::retry(HttpFault::Timeout.into()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            Failure::retry(HttpFault::Timeout.into())
        }
        ureq::Error::StatusCode(status) => {
            Failure::fatal(HttpFault::UnexpectedStatus { status }.into())
        }
        transient @ (ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_)) => {
            Failure::retry(HttpFault::Transport(Box::new(transient)).into())
        }
        other => Failure::fatal(HttpFault::Transport(Box::new(other)).into()),
    }
}

/// Reads an answer's body as UTF-8, at most `limit` bytes (a larger body is a final transport
/// failure: it is not the documented answer).
pub fn read_body<E: From<HttpFault>>(
    response: &mut Response<Body>,
    limit: u64,
) -> Result<String, Failure<E>> {
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(transport_failure)
}

/// How a call is retried, and how its log lines read.
///
/// [`Retries::run`] makes up to `max_attempts` attempts (0 counts as 1), pausing
/// `initial_backoff × 2^(n − 1)` (at most `max_backoff`, see [`exponential_backoff`]) after
/// failed attempt `n`, or longer when the server's `Retry-After` asks for it; a `Retry-After`
/// above `max_backoff` ends the call at once. Each attempt runs inside the span the caller
/// makes for it; the outcome is logged at debug level (target `orgusage_openrouter::http`)
/// with the elapsed time, and the error's `Display` on failure.
pub struct Retries<'a> {
    /// Requests per call, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// Upper bound of one pause, and of the `Retry-After` the loop honours.
    pub max_backoff: Duration,
    /// How the loop pauses between attempts.
    pub sleeper: &'a dyn Sleep,
    /// Names the call in the log: `"{call} failed"` and `"{call} will retry"`.
    pub call: &'static str,
    /// The log line of a successful attempt, e.g. `generation fetched`.
    pub done: &'static str,
}

impl Retries<'_> {
    /// Runs `attempt(n)` for `n = 1, 2, …` inside `span(n, max_attempts)` until it succeeds, fails
    /// for good or the attempts run out; returns the value or the last attempt's error.
    pub fn run<T, E: Display>(
        &self,
        span: impl Fn(u32, u32) -> tracing::Span,
        mut attempt: impl FnMut(u32) -> Result<T, Failure<E>>,
    ) -> Result<T, E> {
        let max_attempts = self.max_attempts.max(1);
        let mut n = 1;
        loop {
            let span = span(n, max_attempts);
            let _entered = span.enter();
            let started = Instant::now();
            let failure = match attempt(n) {
                Ok(value) => {
                    let elapsed_ms = started.elapsed().as_millis();
                    tracing::debug!(elapsed_ms, "{}", self.done);
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let elapsed_ms = started.elapsed().as_millis();
            let error = &failure.error;
            let mut delay = exponential_backoff(self.initial_backoff, self.max_backoff, n);
            if let Some(wanted) = failure.retry_after {
                if wanted > self.max_backoff {
                    tracing::debug!(elapsed_ms, %error, "rate limited beyond max_backoff");
                    return Err(failure.error);
                }
                delay = delay.max(wanted);
            }
            if !failure.retry || n >= max_attempts {
                tracing::debug!(elapsed_ms, %error, "{} failed", self.call);
                return Err(failure.error);
            }
            let delay_ms = delay.as_millis();
            tracing::debug!(elapsed_ms, delay_ms, %error, "{} will retry", self.call);
            self.sleeper.sleep(delay);
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug)]
    struct Oops(&'static str);

    impl Display for Oops {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    fn retries(sleeper: &dyn Sleep) -> Retries<'_> {
        Retries {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            sleeper,
            call: "test call",
            done: "test done",
        }
    }

    #[test]
    fn retries_with_backoff_until_the_attempts_run_out() {
        let slept = Mutex::new(Vec::new());
        let sleeper = |d: Duration| slept.lock().expect("lock").push(d);
        let mut seen = Vec::new();
        let result: Result<(), Oops> = retries(&sleeper).run(
            |_, _| tracing::Span::none(),
            |n| {
                seen.push(n);
                Err(Failure::retry(Oops("busy")))
            },
        );
        assert_eq!(result.expect_err("fails").0, "busy");
        assert_eq!(seen, [1, 2, 3]);
        let ms = Duration::from_millis;
        assert_eq!(*slept.lock().expect("lock"), [ms(100), ms(200)]);
    }

    #[test]
    fn retry_after_stretches_a_pause_and_beyond_the_cap_ends_the_call() {
        let slept = Mutex::new(Vec::new());
        let sleeper = |d: Duration| slept.lock().expect("lock").push(d);
        let result = retries(&sleeper).run(
            |_, _| tracing::Span::none(),
            |n| match n {
                1 => Err(Failure {
                    error: Oops("slow down"),
                    retry: true,
                    retry_after: Some(Duration::from_millis(700)),
                }),
                _ => Ok(n),
            },
        );
        assert_eq!(result.expect("second attempt"), 2);
        assert_eq!(*slept.lock().expect("lock"), [Duration::from_millis(700)]);

        let result: Result<(), Oops> = retries(&sleeper).run(
            |_, _| tracing::Span::none(),
            |_| {
                Err(Failure {
                    error: Oops("come back tomorrow"),
                    retry: true,
                    retry_after: Some(Duration::from_secs(2)),
                })
            },
        );
        assert_eq!(result.expect_err("gives up").0, "come back tomorrow");
        assert_eq!(slept.lock().expect("lock").len(), 1);
    }

    #[test]
    fn a_fatal_failure_is_not_retried() {
        let sleeper = |_: Duration| panic!("no pause after a fatal failure");
        let mut calls = 0;
        let result: Result<(), Oops> = retries(&sleeper).run(
            |_, _| tracing::Span::none(),
            |_| {
                calls += 1;
                Err(Failure::fatal(Oops("no")))
            },
        );
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
