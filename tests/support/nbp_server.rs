//! A loopback HTTP server that answers like api.nbp.pl, for the PLN billing tests: 200 with
//! NBP-shaped JSON for ranges holding tables, 404 "Brak danych" for ranges without (weekends,
//! holidays), 400 for malformed or too long ranges, and any fixed status or a slow answer on
//! demand. (Adapted from `crates/orgusage-nbp/tests/common/mod.rs`; its table set can be
//! replaced while it runs, to model a table being published.)
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

use chrono::{Datelike, NaiveDate};
use orgusage::nbp::{MidRate, NbpClient, NbpConfig, business_day_rates};
use rust_decimal::Decimal;

const LIFETIME: Duration = Duration::from_secs(120);
pub const NOT_FOUND_BODY: &str = "404 NotFound - Not Found - Brak danych";
pub const BAD_RANGE_BODY: &str = "400 BadRequest - Błędny zakres dat";
pub const LIMIT_BODY: &str =
    "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded";

/// How the server answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Like NBP, from the table set.
    Nbp,
    /// Always this status and body.
    Fixed { status: u16, body: String },
    /// Like NBP, after sleeping this long.
    Slow(Duration),
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query, e.g. `/api/exchangerates/rates/a/usd/2025-04-08/2025-04-21/?format=json`.
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
    tables: Mutex<Vec<MidRate>>,
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<Seen>>,
}

pub struct FakeNbp {
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl FakeNbp {
    /// A server with `tables` (any currencies) answering like NBP.
    pub fn start(tables: Vec<MidRate>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            tables: Mutex::new(tables),
            behaviour: Mutex::new(Behaviour::Nbp),
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
            base_url: format!("http://127.0.0.1:{port}/api"),
            shared,
            stop,
            accept_loop: Some(accept_loop),
        }
    }

    /// USD tables on every Polish business day from 2024-11-01 to 2026-01-31, with a mid that
    /// encodes the date (3.7 + ordinal/10000) so a test can tell which table it got.
    pub fn usd_business_days() -> Self {
        Self::start(usd_tables(d(2024, 11, 1), d(2026, 1, 31)))
    }

    /// Replaces the table set (e.g. to publish today's table).
    pub fn set_tables(&self, tables: Vec<MidRate>) {
        *self.shared.tables.lock().expect("lock") = tables;
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.seen.lock().expect("lock").len()
    }

    /// A client pointed at this server.
    pub fn client(&self) -> NbpClient {
        self.client_with_timeout(Duration::from_secs(2))
    }

    pub fn client_with_timeout(&self, timeout: Duration) -> NbpClient {
        NbpClient::new(NbpConfig {
            base_url: self.base_url.clone(),
            timeout,
            ..NbpConfig::default()
        })
    }
}

impl Drop for FakeNbp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

/// The mid the fake set uses for `date`.
pub fn mid_for(date: NaiveDate) -> Decimal {
    Decimal::new(37000 + i64::from(date.ordinal()), 4)
}

pub fn usd_tables(from: NaiveDate, to: NaiveDate) -> Vec<MidRate> {
    business_day_rates("USD", from, to, mid_for)
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
    shared.seen.lock().expect("lock").push(Seen {
        target: target.clone(),
        headers,
    });
    let behaviour = shared.behaviour.lock().expect("lock").clone();
    let tables = shared.tables.lock().expect("lock").clone();
    let (status, body) = match behaviour {
        Behaviour::Nbp => answer(&tables, &target),
        Behaviour::Fixed { status, body } => (status, body),
        Behaviour::Slow(delay) => {
            std::thread::sleep(delay);
            answer(&tables, &target)
        }
    };
    let content_type = if status == 200 {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// NBP's routing for `/api/exchangerates/rates/a/{code}/{date}/` and `/{from}/{to}/`.
fn answer(tables: &[MidRate], target: &str) -> (u16, String) {
    let path = target.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (code, from, to) = match parts.as_slice() {
        ["api", "exchangerates", "rates", "a", code, day] => (*code, *day, *day),
        ["api", "exchangerates", "rates", "a", code, from, to] => (*code, *from, *to),
        _ => return (404, "404 NotFound".to_string()),
    };
    let (Ok(from), Ok(to)) = (from.parse::<NaiveDate>(), to.parse::<NaiveDate>()) else {
        return (400, BAD_RANGE_BODY.to_string());
    };
    if from > to {
        return (400, BAD_RANGE_BODY.to_string());
    }
    if (to - from).num_days() + 1 > 93 {
        return (400, LIMIT_BODY.to_string());
    }
    let code = code.to_ascii_uppercase();
    let rates: Vec<String> = tables
        .iter()
        .filter(|r| r.currency == code && r.effective_date >= from && r.effective_date <= to)
        .map(|r| {
            format!(
                r#"{{"no":"{}","effectiveDate":"{}","mid":{}}}"#,
                r.table_no, r.effective_date, r.mid
            )
        })
        .collect();
    if rates.is_empty() {
        return (404, NOT_FOUND_BODY.to_string());
    }
    let body = format!(
        r#"{{"table":"A","currency":"dolar amerykański","code":"{code}","rates":[{}]}}"#,
        rates.join(",")
    );
    (200, body)
}

/// The `from`/`to` dates of a range request's target.
pub fn range_of(seen: &Seen) -> (NaiveDate, NaiveDate) {
    let path = seen.target.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let n = parts.len();
    let from = parts[n - 2].parse().expect("from date");
    let to = parts[n - 1].parse().expect("to date");
    (from, to)
}
