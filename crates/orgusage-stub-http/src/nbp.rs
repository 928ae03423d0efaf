//! A loopback HTTP server that answers like api.nbp.pl (feature `nbp`), for tests of the NBP
//! client and of PLN billing: 200 with NBP-shaped JSON for ranges holding tables, 404 "Brak
//! danych" for ranges without (weekends, holidays), 400 for malformed or too long ranges, and any
//! fixed status or a slow answer on demand. Its table set can be replaced while it runs, to model
//! a table being published.
//!
//! Bounded: it is a [`StubServer`] on 127.0.0.1, which stops when dropped and by itself after
//! two minutes even if a test forgets it.
//!
//! ```
//! use orgusage_nbp::RateSource;
//! use orgusage_stub_http::nbp::{FakeNbp, d, mid_for};
//!
//! let server = FakeNbp::usd_business_days();
//! let rates = server.client().mid_rates("USD", d(2025, 4, 18), d(2025, 4, 22))?;
//! // Friday 18 April and Tuesday 22 April: Easter Monday has no table.
//! assert_eq!(rates.len(), 2);
//! assert_eq!(rates[0].mid, mid_for(d(2025, 4, 18)));
//! assert_eq!(server.request_count(), 1);
//! # Ok::<(), orgusage_nbp::NbpError>(())
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Request as Seen, Response, StubServer};
use chrono::{Datelike, NaiveDate};
use orgusage_nbp::{MidRate, NbpClient, NbpConfig, business_day_rates};
use rust_decimal::Decimal;

/// Long enough for the cross-crate PLN billing tests, which share one server per backend.
const LIFETIME: Duration = Duration::from_secs(120);
/// NBP's body of a 404 (no table in the range).
pub const NOT_FOUND_BODY: &str = "404 NotFound - Not Found - Brak danych";
/// NBP's body of a 400 for a malformed or reversed range.
pub const BAD_RANGE_BODY: &str = "400 BadRequest - Błędny zakres dat";
/// NBP's body of a 400 for a range longer than 93 days.
pub const LIMIT_BODY: &str =
    "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded";

/// How the server answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Like NBP, from the table set.
    Nbp,
    /// Always this status and body.
    Fixed {
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// Like NBP, after sleeping this long.
    Slow(Duration),
}

struct State {
    tables: Mutex<Vec<MidRate>>,
    behaviour: Mutex<Behaviour>,
}

/// The fake api.nbp.pl: a [`StubServer`] with a replaceable table set and [`Behaviour`].
pub struct FakeNbp {
    /// The URL to give `NbpConfig::base_url` (ending in `/api`).
    pub base_url: String,
    state: Arc<State>,
    server: StubServer,
}

impl FakeNbp {
    /// A server with `tables` (any currencies) answering like NBP.
    pub fn start(tables: Vec<MidRate>) -> Self {
        let state = Arc::new(State {
            tables: Mutex::new(tables),
            behaviour: Mutex::new(Behaviour::Nbp),
        });
        let server = {
            let state = state.clone();
            StubServer::start_with_lifetime(LIFETIME, move |request| respond(&state, request))
        };
        Self {
            base_url: server.url("/api"),
            state,
            server,
        }
    }

    /// USD tables on every Polish business day from 2024-11-01 to 2026-01-31, with a mid that
    /// encodes the date (3.7 + ordinal/10000) so a test can tell which table it got.
    pub fn usd_business_days() -> Self {
        Self::start(usd_tables(d(2024, 11, 1), d(2026, 1, 31)))
    }

    /// Replaces the table set (e.g. to publish today's table).
    pub fn set_tables(&self, tables: Vec<MidRate>) {
        *self.state.tables.lock().expect("lock") = tables;
    }

    /// Changes how the server answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("lock") = behaviour;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// A client pointed at this server.
    pub fn client(&self) -> NbpClient {
        self.client_with_timeout(Duration::from_secs(2))
    }

    /// A client pointed at this server, with `timeout` per request.
    pub fn client_with_timeout(&self, timeout: Duration) -> NbpClient {
        NbpClient::new(NbpConfig {
            base_url: self.base_url.clone(),
            timeout,
            ..NbpConfig::default()
        })
    }
}

/// A date; panics when it does not exist.
pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

/// The mid the fake set uses for `date`.
pub fn mid_for(date: NaiveDate) -> Decimal {
    Decimal::new(37000 + i64::from(date.ordinal()), 4)
}

/// USD tables on every Polish business day of `from..=to`, each with [`mid_for`] its date.
pub fn usd_tables(from: NaiveDate, to: NaiveDate) -> Vec<MidRate> {
    business_day_rates("USD", from, to, mid_for)
}

/// The answer under the current behaviour: JSON for 200, plain text otherwise.
fn respond(state: &State, request: &Seen) -> Response {
    let behaviour = state.behaviour.lock().expect("lock").clone();
    let tables = state.tables.lock().expect("lock").clone();
    let ((status, body), delay) = match behaviour {
        Behaviour::Nbp => (answer(&tables, &request.path), Duration::ZERO),
        Behaviour::Fixed { status, body } => ((status, body), Duration::ZERO),
        Behaviour::Slow(delay) => (answer(&tables, &request.path), delay),
    };
    let content_type = if status == 200 {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    Response::new(status, body)
        .with_header("Content-Type", content_type)
        .with_delay(delay)
}

/// NBP's routing for `/api/exchangerates/rates/a/{code}/{date}/` and `/{from}/{to}/`.
fn answer(tables: &[MidRate], path: &str) -> (u16, String) {
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
    let parts: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    let n = parts.len();
    let from = parts[n - 2].parse().expect("from date");
    let to = parts[n - 1].parse().expect("to date");
    (from, to)
}
