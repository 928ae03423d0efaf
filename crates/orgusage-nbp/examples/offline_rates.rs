//! Applies the Polish "last business day before D" rule to a few cost dates without a network,
//! using an in-memory table set. Run with `cargo run -p orgusage-nbp --example offline_rates`.

use chrono::NaiveDate;
use orgusage_nbp::{NbpError, RateSource, StaticRates};
use rust_decimal::Decimal;

fn main() -> Result<(), NbpError> {
    let date = |y, m, d| {
        NaiveDate::from_ymd_opt(y, m, d)
            .ok_or_else(|| NbpError::InvalidRequest(format!("bad date {y}-{m}-{d}")))
    };
    let rates = StaticRates::on_polish_business_days(
        "USD",
        date(2024, 12, 1)?,
        date(2025, 12, 31)?,
        Decimal::new(37654, 4),
    );
    for cost_date in [date(2025, 4, 22)?, date(2025, 12, 29)?, date(2025, 1, 2)?] {
        let rate = rates.rate_for_cost_date("USD", cost_date)?;
        println!(
            "cost on {cost_date}: table {} of {}, 1 USD = {} PLN",
            rate.table_no, rate.effective_date, rate.mid
        );
    }
    Ok(())
}
