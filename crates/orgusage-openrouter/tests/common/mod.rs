//! A loopback HTTP server that answers like OpenRouter's `/api/v1/generation`, and helpers.
//!
//! Bounded: it is an `orgusage_stub_http::StubServer` on 127.0.0.1, which stops when dropped and
//! by itself after its default lifetime even if a test forgets it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgusage_domain::models::ClientOrganization;
use orgusage_domain::secret::Secret;
use orgusage_openrouter::{FetcherConfig, GenerationFetcher};
pub use orgusage_stub_http::Request as Seen;
use orgusage_stub_http::{Response, StubServer};
use rust_decimal::Decimal;

pub const API_KEY: &str = "sk-or-v1-0123456789abcdefTOPSECRETKEY";
pub const NOT_FOUND_BODY: &str = r#"{"error":{"message":"Generation not found","code":404}}"#;

/// One scripted answer: a JSON response, optionally slow or with extra headers.
#[derive(Clone, Debug)]
pub struct Reply(pub Response);

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self(Response::new(status, body).with_header("Content-Type", "application/json"))
    }

    pub fn ok(body: impl Into<String>) -> Self {
        Self::new(200, body)
    }

    pub fn not_found() -> Self {
        Self::new(404, NOT_FOUND_BODY)
    }

    pub fn slow(self, delay: Duration) -> Self {
        Self(self.0.with_delay(delay))
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        Self(self.0.with_header(name, value))
    }
}

pub struct FakeOpenRouter {
    pub base_url: String,
    server: StubServer,
}

impl FakeOpenRouter {
    /// A server answering with `script` in order, repeating the last reply.
    pub fn start(script: Vec<Reply>) -> Self {
        assert!(!script.is_empty(), "a script needs at least one reply");
        let server =
            StubServer::start(move |request| script[request.index.min(script.len() - 1)].0.clone());
        Self {
            base_url: server.url("/api/v1"),
            server,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// A config pointed at this server with a short timeout.
    pub fn config(&self) -> FetcherConfig {
        FetcherConfig {
            base_url: self.base_url.clone(),
            timeout: Duration::from_secs(2),
            ..FetcherConfig::default()
        }
    }

    /// A fetcher pointed at this server whose pauses are only recorded.
    pub fn fetcher(&self) -> (GenerationFetcher, SleepLog) {
        fetcher_with(self.config())
    }
}

/// The pauses a fetcher asked for.
#[derive(Clone, Default)]
pub struct SleepLog(Arc<Mutex<Vec<Duration>>>);

impl SleepLog {
    pub fn millis(&self) -> Vec<u128> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(Duration::as_millis)
            .collect()
    }
}

/// A fetcher with `config` whose pauses are recorded, not slept.
pub fn fetcher_with(config: FetcherConfig) -> (GenerationFetcher, SleepLog) {
    let log = SleepLog::default();
    let recorder = log.0.clone();
    let fetcher = GenerationFetcher::new(config)
        .with_sleeper(move |d: Duration| recorder.lock().expect("lock").push(d));
    (fetcher, log)
}

/// OpenRouter's answer for a small, valid generation `id`.
pub fn answer(id: &str) -> String {
    format!(
        r#"{{"data":{{"id":"{id}","model":"openai/gpt-4o-mini","provider_name":"OpenAI","created_at":"2025-10-31T23:00:00.123+00:00","total_cost":0.0000123456789012,"usage":0.0000123456789012,"tokens_prompt":52,"tokens_completion":9,"native_tokens_prompt":48,"native_tokens_completion":9,"external_user":"or-user-7","is_byok":false}}}}"#
    )
}

/// A full record with every field OpenRouter documents (spec A4), wrapped in `data`.
pub const FULL_RECORD: &str = r#"{
  "data": {
    "id": "gen-1761951599-Wq3vXc9LkPz2mTbN8aYd",
    "upstream_id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "total_cost": 0.0157362,
    "cache_discount": -0.00037125,
    "upstream_inference_cost": 0.0149,
    "usage": 0.0157362,
    "created_at": "2025-10-31T22:59:59.812345+00:00",
    "model": "anthropic/claude-sonnet-4",
    "provider_name": "Anthropic",
    "app_id": 2764031,
    "streamed": true,
    "cancelled": false,
    "latency": 1843,
    "moderation_latency": 12.5,
    "generation_time": 9312,
    "finish_reason": "stop",
    "native_finish_reason": "end_turn",
    "tokens_prompt": 2104,
    "tokens_completion": 611,
    "native_tokens_prompt": 2388,
    "native_tokens_completion": 702,
    "native_tokens_reasoning": 128,
    "native_tokens_cached": 1536,
    "native_tokens_completion_images": 0,
    "num_media_prompt": 1,
    "num_input_audio_prompt": 0,
    "num_media_completion": 0,
    "num_search_results": 0,
    "origin": "https://chat.example.pl/",
    "is_byok": false,
    "external_user": "or-anna-kowalska",
    "api_type": "completions",
    "router": null,
    "data_region": "eu",
    "service_tier": "standard",
    "provider_responses": [{"status": 200, "provider": "Anthropic", "latency": 1843}],
    "preset_id": null,
    "num_fetches": 0,
    "some_future_field": {"nested": [1, 2.5e-300, "x"]}
  }
}"#;

/// An active client in Warsaw with markup 1.3.
pub fn client() -> ClientOrganization {
    ClientOrganization {
        id: "client_acme_1761900000_ab12cd34".into(),
        name: "Acme Sp. z o.o.".into(),
        openrouter_api_key: Secret::new(API_KEY),
        openrouter_key_hash: None,
        markup_rate: Decimal::new(13, 1),
        monthly_limit: None,
        billing_email: None,
        timezone: "Europe/Warsaw".into(),
        is_active: true,
        created_at: 1_761_900_000,
        updated_at: 1_761_900_000,
    }
}
