//! A loopback HTTP server that answers like OpenRouter's `/api/v1/generation`, and helpers.
//!
//! Bounded: it serves on 127.0.0.1 only, stops when dropped, and stops by itself after
//! `LIFETIME` even if a test forgets it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use orgusage_domain::models::ClientOrganization;
use orgusage_domain::secret::Secret;
use orgusage_openrouter::{FetcherConfig, GenerationFetcher};
use rust_decimal::Decimal;

const LIFETIME: Duration = Duration::from_secs(30);
pub const API_KEY: &str = "sk-or-v1-0123456789abcdefTOPSECRETKEY";
pub const NOT_FOUND_BODY: &str = r#"{"error":{"message":"Generation not found","code":404}}"#;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn ok(body: impl Into<String>) -> Self {
        Self::new(200, body)
    }

    pub fn not_found() -> Self {
        Self::new(404, NOT_FOUND_BODY)
    }

    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query, e.g. `/api/v1/generation?id=gen-1`.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    /// Answers in order; the last one repeats.
    script: Mutex<Vec<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

pub struct FakeOpenRouter {
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl FakeOpenRouter {
    /// A server answering with `script` in order, repeating the last reply.
    pub fn start(script: Vec<Reply>) -> Self {
        assert!(!script.is_empty(), "a script needs at least one reply");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            seen: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let shared = shared.clone();
                            std::thread::spawn(move || serve(stream, &shared));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            base_url: format!("http://127.0.0.1:{port}/api/v1"),
            shared,
            stop,
            accept_loop: Some(accept_loop),
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.seen.lock().expect("lock").len()
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

impl Drop for FakeOpenRouter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
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

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
            }
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let reply = {
        let mut seen = shared.seen.lock().expect("lock");
        seen.push(Seen { target, headers });
        let script = shared.script.lock().expect("lock");
        let index = (seen.len() - 1).min(script.len() - 1);
        script[index].clone()
    };
    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    let extra: String = reply
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let response = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
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
