//! `GenerationFetcher` against a loopback server that answers like OpenRouter.

mod common;

use std::time::{Duration, Instant};

use common::{API_KEY, FakeOpenRouter, Reply, answer, client, fetcher_with};
use orgusage_openrouter::{FetcherConfig, OpenRouterError};
use rust_decimal_macros::dec;

const ID: &str = "gen-1761951600-Hx7pQ2rT9sVw";

fn assert_no_key(error: &OpenRouterError) {
    let shown = format!("{error} | {error:?}");
    assert!(!shown.contains(API_KEY), "{shown}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}

#[test]
fn not_found_twice_then_found() {
    let server = FakeOpenRouter::start(vec![
        Reply::not_found(),
        Reply::not_found(),
        Reply::ok(answer(ID)),
    ]);
    let (fetcher, sleeps) = server.fetcher();
    let g = fetcher
        .fetch(API_KEY, ID)
        .expect("found on the third attempt");
    assert_eq!(g.generation_id(), ID);
    assert_eq!(g.total_cost, dec!(0.0000123456789012));
    assert_eq!(g.total_cost.to_string(), "0.0000123456789012");

    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.target, format!("/api/v1/generation?id={ID}"));
        let expected = format!("Bearer {API_KEY}");
        assert_eq!(request.header("authorization"), Some(expected.as_str()));
        assert_eq!(request.header("accept"), Some("application/json"));
        let agent = request.header("user-agent").expect("user agent");
        assert!(agent.starts_with("orgusage-openrouter/"), "{agent}");
    }
    assert_eq!(sleeps.millis(), [500, 1000]);
}

#[test]
fn unauthorized_is_not_retried() {
    for status in [401, 403] {
        let server = FakeOpenRouter::start(vec![Reply::new(
            status,
            r#"{"error":{"message":"No auth credentials found","code":401}}"#,
        )]);
        let (fetcher, sleeps) = server.fetcher();
        let err = fetcher.fetch(API_KEY, ID).expect_err("rejected");
        assert!(
            matches!(err, OpenRouterError::Unauthorized { status: s } if s == status),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_no_key(&err);
        assert_eq!(server.request_count(), 1);
        assert!(sleeps.millis().is_empty());
    }
}

#[test]
fn server_error_then_found() {
    let server = FakeOpenRouter::start(vec![
        Reply::new(500, "Internal Server Error"),
        Reply::ok(answer(ID)),
    ]);
    let (fetcher, sleeps) = server.fetcher();
    let g = fetcher
        .fetch(API_KEY, ID)
        .expect("found on the second attempt");
    assert_eq!(g.model, "openai/gpt-4o-mini");
    assert_eq!(server.request_count(), 2);
    assert_eq!(sleeps.millis(), [500]);
}

#[test]
fn always_not_found_gives_not_found_after_max_attempts() {
    let server = FakeOpenRouter::start(vec![Reply::not_found()]);
    let (fetcher, sleeps) = server.fetcher();
    let err = fetcher.fetch(API_KEY, ID).expect_err("never found");
    match &err {
        OpenRouterError::NotFound {
            generation_id,
            attempts,
        } => {
            assert_eq!(generation_id, ID);
            assert_eq!(*attempts, 5);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(err.is_retryable(), "a caller should defer, not drop");
    assert_no_key(&err);
    assert_eq!(server.request_count(), 5);
    assert_eq!(sleeps.millis(), [500, 1000, 2000, 4000]);
}

#[test]
fn max_attempts_one_and_zero_make_one_request() {
    for max_attempts in [0, 1] {
        let server = FakeOpenRouter::start(vec![Reply::not_found()]);
        let (fetcher, sleeps) = fetcher_with(FetcherConfig {
            max_attempts,
            ..server.config()
        });
        let err = fetcher.fetch(API_KEY, ID).expect_err("not found");
        assert!(matches!(err, OpenRouterError::NotFound { attempts: 1, .. }));
        assert_eq!(server.request_count(), 1);
        assert!(sleeps.millis().is_empty());
    }
}

#[test]
fn slow_answer_times_out_and_is_retried() {
    let server = FakeOpenRouter::start(vec![
        Reply::ok(answer(ID)).slow(Duration::from_millis(1500)),
    ]);
    let (fetcher, sleeps) = fetcher_with(FetcherConfig {
        timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..server.config()
    });
    let started = Instant::now();
    let err = fetcher.fetch(API_KEY, ID).expect_err("times out");
    let elapsed = started.elapsed();
    assert!(matches!(err, OpenRouterError::Timeout), "{err:?}");
    assert!(err.is_retryable());
    assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
    assert_eq!(server.request_count(), 2);
    assert_eq!(sleeps.millis(), [500]);
}

#[test]
fn rate_limit_honours_retry_after() {
    let server = FakeOpenRouter::start(vec![
        Reply::new(
            429,
            r#"{"error":{"message":"Rate limit exceeded","code":429}}"#,
        )
        .header("Retry-After", "3"),
        Reply::ok(answer(ID)),
    ]);
    let (fetcher, sleeps) = server.fetcher();
    fetcher.fetch(API_KEY, ID).expect("found after the pause");
    assert_eq!(sleeps.millis(), [3000]);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn rate_limit_beyond_max_backoff_gives_up_at_once() {
    let server = FakeOpenRouter::start(vec![
        Reply::new(429, "slow down").header("Retry-After", "60"),
    ]);
    let (fetcher, sleeps) = server.fetcher();
    let err = fetcher.fetch(API_KEY, ID).expect_err("rate limited");
    assert!(
        matches!(err, OpenRouterError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(server.request_count(), 1);
    assert!(sleeps.millis().is_empty());
}

#[test]
fn persistent_rate_limit_and_server_errors_keep_the_last_error() {
    let server = FakeOpenRouter::start(vec![Reply::new(429, "slow down")]);
    let (fetcher, sleeps) = server.fetcher();
    let err = fetcher.fetch(API_KEY, ID).expect_err("rate limited");
    assert!(matches!(
        err,
        OpenRouterError::RateLimited { retry_after: None }
    ));
    assert_eq!(server.request_count(), 5);
    assert_eq!(sleeps.millis().len(), 4);

    let server = FakeOpenRouter::start(vec![Reply::new(502, "Bad Gateway")]);
    let (fetcher, _) = server.fetcher();
    let err = fetcher.fetch(API_KEY, ID).expect_err("server error");
    assert!(matches!(err, OpenRouterError::Server { status: 502 }));
    assert_eq!(server.request_count(), 5);
}

#[test]
fn bad_answers_are_final() {
    type Check = fn(&OpenRouterError) -> bool;
    let cases: Vec<(Reply, Check)> = vec![
        (Reply::ok("<html>maintenance</html>"), |e| {
            matches!(e, OpenRouterError::Malformed(_))
        }),
        (Reply::ok(r#"{"data":{"id":"gen-x","model":"m""#), |e| {
            matches!(e, OpenRouterError::Malformed(_))
        }),
        (Reply::ok(r#"{"error":{"message":"oops"}}"#), |e| {
            matches!(e, OpenRouterError::MissingField("data"))
        }),
        (
            Reply::ok(answer("gen-someone-else")),
            |e| matches!(e, OpenRouterError::Malformed(m) if m.contains("gen-someone-else")),
        ),
        (
            Reply::ok(answer(ID).replace("\"tokens_prompt\":52", "\"tokens_prompt\":-52")),
            |e| {
                matches!(
                    e,
                    OpenRouterError::Negative {
                        field: "tokens_prompt"
                    }
                )
            },
        ),
        (Reply::new(400, r#"{"error":{"message":"bad id"}}"#), |e| {
            matches!(e, OpenRouterError::UnexpectedStatus { status: 400 })
        }),
    ];
    for (reply, expected) in cases {
        let server = FakeOpenRouter::start(vec![reply.clone()]);
        let (fetcher, sleeps) = server.fetcher();
        let err = fetcher.fetch(API_KEY, ID).expect_err("rejected");
        assert!(expected(&err), "{reply:?} gave {err:?}");
        assert!(!err.is_retryable());
        assert_no_key(&err);
        assert_eq!(server.request_count(), 1, "{reply:?}");
        assert!(sleeps.millis().is_empty());
    }
}

#[test]
fn connection_refused_is_a_retried_transport_error() {
    // Bind then drop: nothing listens on the port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (fetcher, sleeps) = fetcher_with(FetcherConfig {
        base_url: format!("http://127.0.0.1:{port}/api/v1"),
        max_attempts: 3,
        timeout: Duration::from_secs(2),
        ..FetcherConfig::default()
    });
    let err = fetcher.fetch(API_KEY, ID).expect_err("nobody listens");
    assert!(
        matches!(
            err,
            OpenRouterError::Transport(_) | OpenRouterError::Timeout
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_no_key(&err);
    assert_eq!(sleeps.millis(), [500, 1000]);
}

#[test]
fn generation_id_is_percent_encoded() {
    let id = "gen-1/2 3&x=ł";
    let server = FakeOpenRouter::start(vec![Reply::ok(answer(id))]);
    let (fetcher, _) = server.fetcher();
    let g = fetcher.fetch(API_KEY, id).expect("found");
    assert_eq!(g.id, id);
    assert_eq!(
        server.requests()[0].target,
        "/api/v1/generation?id=gen-1%2F2%203%26x%3D%C5%82"
    );
}

#[test]
fn fetch_for_client_sends_the_clients_key_and_debug_hides_it() {
    let server = FakeOpenRouter::start(vec![Reply::ok(answer(ID))]);
    let (fetcher, _) = server.fetcher();
    let client = client();
    let g = fetcher.fetch_for_client(&client, ID).expect("found");
    assert_eq!(g.id, ID);
    let expected = format!("Bearer {API_KEY}");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
    for shown in [
        format!("{fetcher:?}"),
        format!("{client:?}"),
        format!("{g:?}"),
    ] {
        assert!(!shown.contains("TOPSECRET"), "{shown}");
    }
}
