//! The monthly statement of one client: the per-day backing of a PLN invoice, as a typed value
//! that serializes to JSON and writes CSV.
//!
//! # Rounding on a statement
//! The total PLN is the exact sum of the lines' exact products, rounded half-up to 2 places
//! **once**. Each line shows its exact product (`pln_exact`) and, for reading, that
//! product rounded on its own (`pln`). The rounded lines therefore need not add up to the total;
//! `totals.pln_of_rounded_lines` shows their sum so the difference is visible, never hidden.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{RateRule, display_rate};

/// The statement of one client for one client-local month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyStatement {
    /// The client.
    pub client_org_id: String,
    /// The client's name.
    pub client_name: String,
    /// The month as `YYYY-MM`, in the client's time zone.
    pub month: String,
    /// First day of the month.
    pub period_start: NaiveDate,
    /// Last day of the month.
    pub period_end: NaiveDate,
    /// The client's IANA time zone, which defines its days.
    pub timezone: String,
    /// The currency of the costs (`USD`).
    pub currency_from: String,
    /// The invoice currency (`PLN`).
    pub currency_to: String,
    /// Which NBP table each day's rate was taken from.
    pub rate_rule: RateRule,
    /// One line per day with stored usage, oldest first.
    pub lines: Vec<StatementLine>,
    /// The month's totals.
    pub totals: StatementTotals,
    /// True when any line used a fallback rate: the statement is not a valid invoice basis.
    pub any_fallback: bool,
    /// True when any line used a rate that may still change.
    pub any_provisional: bool,
}

/// One day of a [`MonthlyStatement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Client-local date of the costs.
    pub date: NaiveDate,
    /// Tokens (input + output).
    pub tokens: i64,
    /// Requests.
    pub requests: i64,
    /// OpenRouter's cost (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_usd: Decimal,
    /// Marked-up cost (USD): what the client pays.
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_usd: Decimal,
    /// PLN per USD applied to this day.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// The NBP table of the rate; `None` for a fallback.
    pub table_no: Option<String>,
    /// The table's date; `None` for a fallback.
    pub effective_date: Option<NaiveDate>,
    /// `NBP` (or the configured source name), or `fallback`.
    pub rate_source: String,
    /// True when the rate is the host's fallback, not a published table.
    pub is_fallback: bool,
    /// True when the rate may still change.
    pub is_provisional: bool,
    /// `markup_usd × rate`, exact (up to 18 decimal places).
    #[serde(with = "rust_decimal::serde::str")]
    pub pln_exact: Decimal,
    /// `pln_exact` rounded half-up to 2 places, for reading only (see the module docs).
    #[serde(with = "rust_decimal::serde::str")]
    pub pln: Decimal,
}

/// The totals of a [`MonthlyStatement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementTotals {
    /// Tokens of the month.
    pub tokens: i64,
    /// Requests of the month.
    pub requests: i64,
    /// OpenRouter's cost of the month (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_usd: Decimal,
    /// Marked-up cost of the month (USD).
    #[serde(with = "rust_decimal::serde::str")]
    pub markup_usd: Decimal,
    /// The exact sum of the lines' `pln_exact`.
    #[serde(with = "rust_decimal::serde::str")]
    pub pln_exact: Decimal,
    /// The amount to invoice: `pln_exact` rounded half-up to 2 places, once.
    #[serde(with = "rust_decimal::serde::str")]
    pub pln: Decimal,
    /// The sum of the lines' rounded `pln`, for reconciliation; may differ from `pln`.
    #[serde(with = "rust_decimal::serde::str")]
    pub pln_of_rounded_lines: Decimal,
}

/// The CSV header of [`MonthlyStatement::to_csv`].
pub const CSV_HEADER: [&str; 13] = [
    "date",
    "tokens",
    "requests",
    "raw_usd",
    "markup_usd",
    "rate",
    "table_no",
    "effective_date",
    "rate_source",
    "is_fallback",
    "is_provisional",
    "pln_exact",
    "pln",
];

impl MonthlyStatement {
    /// The statement as CSV (RFC 4180): comma-separated, `.` as the decimal point, CRLF line
    /// ends, UTF-8, a header row, one row per line and a final `TOTAL` row.
    ///
    /// The comma and the point keep the file machine-readable everywhere; a spreadsheet in a
    /// Polish locale opens it through its import dialog (or use
    /// [`MonthlyStatement::to_csv_with_separator`] with `';'`). A field is quoted when it holds
    /// the separator, a quote, CR or LF, with quotes doubled. Rates keep at least NBP's four
    /// decimal places.
    pub fn to_csv(&self) -> String {
        self.to_csv_with_separator(',')
    }

    /// [`MonthlyStatement::to_csv`] with another field separator (e.g. `';'`).
    pub fn to_csv_with_separator(&self, separator: char) -> String {
        let mut out = String::new();
        push_row(
            &mut out,
            separator,
            CSV_HEADER.iter().map(|h| h.to_string()),
        );
        for line in &self.lines {
            push_row(
                &mut out,
                separator,
                [
                    line.date.to_string(),
                    line.tokens.to_string(),
                    line.requests.to_string(),
                    line.raw_usd.to_string(),
                    line.markup_usd.to_string(),
                    display_rate(line.rate).to_string(),
                    line.table_no.clone().unwrap_or_default(),
                    line.effective_date
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    line.rate_source.clone(),
                    line.is_fallback.to_string(),
                    line.is_provisional.to_string(),
                    line.pln_exact.to_string(),
                    line.pln.to_string(),
                ],
            );
        }
        let t = &self.totals;
        push_row(
            &mut out,
            separator,
            [
                "TOTAL".to_string(),
                t.tokens.to_string(),
                t.requests.to_string(),
                t.raw_usd.to_string(),
                t.markup_usd.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                self.any_fallback.to_string(),
                self.any_provisional.to_string(),
                t.pln_exact.to_string(),
                t.pln.to_string(),
            ],
        );
        out
    }
}

fn push_row(out: &mut String, separator: char, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        if field.contains([separator, '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 4, day).expect("valid")
    }

    fn statement() -> MonthlyStatement {
        let line = |day, source: &str, table: Option<&str>| StatementLine {
            date: d(day),
            tokens: 1500,
            requests: 3,
            raw_usd: dec!(0.1),
            markup_usd: dec!(0.13),
            rate: dec!(4.5),
            table_no: table.map(str::to_string),
            effective_date: table.map(|_| d(day - 1)),
            rate_source: source.to_string(),
            is_fallback: table.is_none(),
            is_provisional: false,
            pln_exact: dec!(0.585),
            pln: dec!(0.59),
        };
        MonthlyStatement {
            client_org_id: "client_1".into(),
            client_name: "Acme, \"Polska\" Sp. z o.o.".into(),
            month: "2025-04".into(),
            period_start: d(1),
            period_end: d(30),
            timezone: "Europe/Warsaw".into(),
            currency_from: "USD".into(),
            currency_to: "PLN".into(),
            rate_rule: RateRule::PreviousBusinessDay,
            lines: vec![
                line(15, "NBP", Some("072/A/NBP/2025")),
                line(16, "fallback; \"manual\"", None),
            ],
            totals: StatementTotals {
                tokens: 3000,
                requests: 6,
                raw_usd: dec!(0.2),
                markup_usd: dec!(0.26),
                pln_exact: dec!(1.17),
                pln: dec!(1.17),
                pln_of_rounded_lines: dec!(1.18),
            },
            any_fallback: true,
            any_provisional: false,
        }
    }

    #[test]
    fn csv_rows_and_quoting() {
        let csv = statement().to_csv();
        let rows: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            rows.len(),
            5,
            "header, 2 lines, total, trailing empty: {csv:?}"
        );
        assert_eq!(rows[0], CSV_HEADER.join(","));
        assert_eq!(
            rows[1],
            "2025-04-15,1500,3,0.1,0.13,4.5000,072/A/NBP/2025,2025-04-14,NBP,false,false,0.585,0.59"
        );
        assert_eq!(
            rows[2],
            "2025-04-16,1500,3,0.1,0.13,4.5000,,,\"fallback; \"\"manual\"\"\",true,false,0.585,0.59"
        );
        assert_eq!(rows[3], "TOTAL,3000,6,0.2,0.26,,,,,true,false,1.17,1.17");
        assert_eq!(rows[4], "");
        let semi = statement().to_csv_with_separator(';');
        assert!(
            semi.contains(";\"fallback; \"\"manual\"\"\";true;"),
            "{semi}"
        );
    }

    #[test]
    fn json_keeps_money_as_strings_and_round_trips() {
        let s = statement();
        let json = serde_json::to_value(&s).expect("serialize");
        assert_eq!(json["totals"]["pln"], "1.17");
        assert_eq!(json["lines"][0]["rate"], "4.5");
        assert_eq!(json["lines"][1]["table_no"], serde_json::Value::Null);
        assert_eq!(json["rate_rule"], "previous_business_day");
        let back: MonthlyStatement = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, s);
    }
}
