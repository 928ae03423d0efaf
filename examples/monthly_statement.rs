//! Prints the April 2025 PLN statement of a seeded client, with every day converted at the NBP
//! table A mid rate of the last business day before it, and writes it as CSV.
//!
//! Runs offline: the rates come over real HTTP from a tiny stand-in for api.nbp.pl on
//! 127.0.0.1 that serves the NBP answers stored in `examples/data/nbp_usd_*.json` (rates in
//! NBP's exact response format, with illustrative values; see `examples/data/NBP_FIXTURES.md`).
//! The database is a fresh SQLite file in a temporary directory and the clock is pinned to
//! 2025-05-06, so every run prints the same statement.
//!
//! ```sh
//! cargo run --example monthly_statement
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use orgusage::clock::ManualClock;
use orgusage::nbp::{MidRate, parse_rates_answer};
use orgusage::nbp::{NbpClient, NbpConfig};
use orgusage::pln::{MonthlyStatement, PlnConfig};
use orgusage::{
    ClientOrganizationForm, Decimal, Store, StoreConfig, UsageRecord, UserClientMappingForm,
};

type AnyError = Box<dyn std::error::Error>;

const MODELS: [(&str, i64, i64); 3] = [
    // model, USD per 1M input tokens, USD per 1M output tokens (both x1000)
    ("anthropic/claude-sonnet-4", 3_000, 15_000),
    ("openai/gpt-4.1", 2_000, 8_000),
    ("google/gemini-2.5-flash", 300, 2_500),
];

/// A tiny deterministic generator (xorshift) so every run prints the same statement.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn main() -> Result<(), AnyError> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("orgusage.db");
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2025, 5, 6, 10, 0, 0)
            .single()
            .ok_or("bad instant")?,
    ));
    let store = Store::open(StoreConfig::new(db.display().to_string()).clock(clock))?;
    let client = seed(&store)?;

    let nbp = StandIn::start()?;
    let rates = NbpClient::new(NbpConfig {
        base_url: nbp.base_url.clone(),
        timeout: Duration::from_secs(5),
        ..NbpConfig::default()
    });
    let pln = store.pln(Arc::new(rates), PlnConfig::default())?;
    let statement = pln.monthly_statement(&client, 2025, 4)?;

    print_statement(&statement);
    println!(
        "\nRates: {} request(s) to the stand-in NBP server at {} for {} days.",
        nbp.requests.load(Ordering::Relaxed),
        nbp.base_url,
        statement.lines.len()
    );
    let csv_path = std::env::temp_dir().join(format!(
        "orgusage-statement-{}-{}.csv",
        statement.client_org_id, statement.month
    ));
    std::fs::write(&csv_path, statement.to_csv())?;
    println!("CSV written to {}", csv_path.display());
    Ok(())
}

/// One client, three users and a month of usage; returns the client id.
fn seed(store: &Store) -> Result<String, AnyError> {
    let form = ClientOrganizationForm {
        markup_rate: Decimal::new(13, 1),
        ..ClientOrganizationForm::new("Kowalski i Synowie Sp. z o.o.")
    };
    let client =
        store
            .clients()
            .create_client(&form, &"sk-or-v1-statement-example-0001".into(), None)?;
    let users = ["anna", "piotr", "zofia"];
    for user in users {
        store.mappings().create_mapping(&UserClientMappingForm {
            user_id: user.to_string(),
            client_org_id: client.id.clone(),
            openrouter_user_id: format!("kowalski_{user}"),
        })?;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let first = NaiveDate::from_ymd_opt(2025, 4, 1).ok_or("bad date")?;
    for day in first.iter_days().take_while(|d| d.month() == 4) {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let requests = if weekend {
            rng.next(3)
        } else {
            4 + rng.next(12)
        };
        for _ in 0..requests {
            let (model, input_price, output_price) = MODELS[rng.next(3) as usize];
            let user = users[rng.next(3) as usize];
            let (input, output) = (200 + rng.next(6000) as i64, 50 + rng.next(1500) as i64);
            // "USD per 1M tokens x1000" is exactly nano-USD per token.
            let raw = Decimal::new(input * input_price + output * output_price, 9);
            let record = UsageRecord::new(&client.id, user, format!("kowalski_{user}"), model)
                .on(day)
                .tokens(input, output)
                .raw_cost(raw);
            store.usage().record_usage(&record)?;
        }
    }
    Ok(client.id)
}

/// A USD amount for the printed table: rounded half-up to 6 places (the data keeps all 9).
fn usd6(amount: Decimal) -> String {
    let rounded =
        amount.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    format!("{rounded:.6}")
}

fn print_statement(s: &MonthlyStatement) {
    println!(
        "Statement {} for {} ({}), {} to {}, time zone {}",
        s.month, s.client_name, s.client_org_id, s.period_start, s.period_end, s.timezone
    );
    println!(
        "Costs in {} converted to {} at the NBP table A mid rate ({}).\n",
        s.currency_from, s.currency_to, s.rate_rule
    );
    println!(
        "{:<10} {:>7} {:>4} {:>12} {:>12} {:>7} {:<15} {:<10} {:>9}",
        "date", "tokens", "req", "raw USD", "markup USD", "rate", "NBP table", "of", "PLN"
    );
    for l in &s.lines {
        println!(
            "{:<10} {:>7} {:>4} {:>12} {:>12} {:>7} {:<15} {:<10} {:>9}",
            l.date,
            l.tokens,
            l.requests,
            usd6(l.raw_usd),
            usd6(l.markup_usd),
            orgusage::pln::display_rate(l.rate),
            l.table_no.as_deref().unwrap_or("FALLBACK"),
            l.effective_date.map(|d| d.to_string()).unwrap_or_default(),
            l.pln
        );
    }
    let t = &s.totals;
    println!(
        "{:<10} {:>7} {:>4} {:>12} {:>12} {:>7} {:<15} {:<10} {:>9}",
        "TOTAL",
        t.tokens,
        t.requests,
        usd6(t.raw_usd),
        usd6(t.markup_usd),
        "",
        "",
        "",
        t.pln
    );
    println!(
        "\nPLN to invoice: {} (the exact sum {} of the days' products, rounded half-up once).",
        t.pln, t.pln_exact
    );
    println!(
        "The lines rounded one by one add up to {}; USD amounts are shown to 6 places here \
         and stored exactly (CSV/JSON carry every digit).",
        t.pln_of_rounded_lines
    );
    if s.any_fallback || s.any_provisional {
        println!("WARNING: some days use a fallback or provisional rate.");
    }
}

/// A stand-in for api.nbp.pl on 127.0.0.1: answers `/api/exchangerates/rates/a/{code}/{from}/{to}/`
/// (and the single-day form) from the stored NBP answers, with 404 "Brak danych" for a range
/// without tables, as NBP does. It lives as long as the process.
struct StandIn {
    base_url: String,
    requests: Arc<AtomicUsize>,
}

impl StandIn {
    fn start() -> Result<Self, AnyError> {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
        let mut tables: Vec<MidRate> = Vec::new();
        for entry in std::fs::read_dir(data)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with("nbp_") && name.ends_with(".json") {
                tables.extend(parse_rates_answer(&std::fs::read_to_string(&path)?)?);
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}/api", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = serve(stream, &tables);
            }
        });
        Ok(Self { base_url, requests })
    }
}

fn serve(mut stream: TcpStream, tables: &[MidRate]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let range = match parts.as_slice() {
        ["api", "exchangerates", "rates", "a", code, day] => Some((*code, *day, *day)),
        ["api", "exchangerates", "rates", "a", code, from, to] => Some((*code, *from, *to)),
        _ => None,
    };
    let dates = range.and_then(|(code, from, to)| {
        Some((
            code,
            from.parse::<NaiveDate>().ok()?,
            to.parse::<NaiveDate>().ok()?,
        ))
    });
    let (status, body) = match dates {
        None => (400, "400 BadRequest - Błędny zakres dat".to_string()),
        Some((code, from, to)) => {
            let code = code.to_ascii_uppercase();
            let rates: Vec<String> = tables
                .iter()
                .filter(|r| {
                    r.currency == code && r.effective_date >= from && r.effective_date <= to
                })
                .map(|r| {
                    format!(
                        r#"{{"no":"{}","effectiveDate":"{}","mid":{}}}"#,
                        r.table_no, r.effective_date, r.mid
                    )
                })
                .collect();
            if rates.is_empty() {
                (404, "404 NotFound - Not Found - Brak danych".to_string())
            } else {
                let body = format!(
                    r#"{{"table":"A","currency":"dolar amerykański","code":"{code}","rates":[{}]}}"#,
                    rates.join(",")
                );
                (200, body)
            }
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}
