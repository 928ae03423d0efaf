//! NBP's JSON answer for `/exchangerates/rates/a/{code}/…`, read without losing a digit.
//!
//! NBP sends `"mid": 4.1012` as a JSON *number*. Without serde_json's `arbitrary_precision`,
//! any number is handed to a visitor as `f64`, which can drop digits and always drops the
//! scale (`4.1000` would come back as `4.1`). We keep the number's source text instead through
//! serde_json's `RawValue` and parse that text as a `Decimal`. `arbitrary_precision` would do
//! it too, but it is a global feature that changes how `serde_json::Value` and untagged or
//! flattened enums behave in every crate of the workspace; `raw_value` is additive and local.

use chrono::NaiveDate;
use orgusage_domain::money::decimal_from_json_number;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{MidRate, NbpError};

#[derive(Deserialize)]
struct RatesAnswer<'a> {
    table: String,
    code: String,
    #[serde(borrow)]
    rates: Vec<WireRate<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRate<'a> {
    no: String,
    effective_date: NaiveDate,
    #[serde(borrow)]
    mid: &'a RawValue,
}

/// Parses an NBP table A rates answer (`{"table":"A","code":"USD","rates":[…]}`) into rates
/// sorted by date, with every `mid` exactly as written (scale included).
///
/// Rejects anything that is not table A, a `mid` that is not a positive number, and two rates for
/// one date: a rate we cannot trust is worse than none.
pub fn parse_rates_answer(body: &str) -> Result<Vec<MidRate>, NbpError> {
    let answer: RatesAnswer<'_> =
        serde_json::from_str(body).map_err(|e| NbpError::Parse(e.to_string()))?;
    if answer.table != "A" {
        return Err(NbpError::Parse(format!(
            "expected table A, got {:?}",
            answer.table
        )));
    }
    let currency = answer.code.to_ascii_uppercase();
    let mut rates = answer
        .rates
        .into_iter()
        .map(|r| {
            Ok(MidRate {
                currency: currency.clone(),
                table_no: r.no,
                effective_date: r.effective_date,
                mid: parse_mid(r.mid.get())?,
            })
        })
        .collect::<Result<Vec<_>, NbpError>>()?;
    rates.sort_by_key(|r| r.effective_date);
    if let Some(pair) = rates
        .windows(2)
        .find(|w| w[0].effective_date == w[1].effective_date)
    {
        return Err(NbpError::Parse(format!(
            "two rates for {}",
            pair[0].effective_date
        )));
    }
    Ok(rates)
}

/// Parses the raw JSON text of a `mid` value exactly (see [`decimal_from_json_number`]: a
/// quoted number, in case NBP ever switches to strings, and exponent notation are accepted).
fn parse_mid(raw: &str) -> Result<Decimal, NbpError> {
    match decimal_from_json_number(raw) {
        Ok(mid) if mid > Decimal::ZERO => Ok(mid),
        Ok(mid) => Err(NbpError::Parse(format!("non-positive mid {mid}"))),
        Err(e) => Err(NbpError::Parse(format!("mid {:?}: {e}", raw.trim()))),
    }
}

/// The start of a body for an error message, cut on a character boundary.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn snippet(body: &str) -> String {
    const MAX_CHARS: usize = 200;
    body.trim().chars().take(MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn answer(mids: &[&str]) -> String {
        let rates: Vec<String> = mids
            .iter()
            .enumerate()
            .map(|(i, mid)| {
                format!(r#"{{"no":"07{i}/A/NBP/2025","effectiveDate":"2025-04-1{i}","mid":{mid}}}"#)
            })
            .collect();
        format!(
            r#"{{"table":"A","currency":"dolar amerykański","code":"USD","rates":[{}]}}"#,
            rates.join(",")
        )
    }

    #[test]
    fn mid_keeps_scale_and_every_digit() {
        let rates = parse_rates_answer(&answer(&[
            "4.1000",
            "3.7654321098765432",
            "4.10125678",
            "4",
        ]))
        .expect("parses");
        assert_eq!(rates.len(), 4);
        assert_eq!(rates[0].mid.to_string(), "4.1000");
        assert_eq!(rates[0].mid.scale(), 4);
        assert_eq!(rates[1].mid, dec!(3.7654321098765432));
        assert_eq!(rates[1].mid.to_string(), "3.7654321098765432");
        assert_eq!(rates[2].mid.to_string(), "4.10125678");
        assert_eq!(rates[3].mid, dec!(4));
        assert_eq!(rates[0].currency, "USD");
        assert_eq!(rates[0].table_no, "070/A/NBP/2025");
        assert_eq!(
            rates[0].effective_date,
            NaiveDate::from_ymd_opt(2025, 4, 10).expect("valid")
        );
    }

    #[test]
    fn exponent_and_quoted_numbers() {
        let rates = parse_rates_answer(&answer(&["4.1012e0", "\"3.6528\""])).expect("parses");
        assert_eq!(rates[0].mid, dec!(4.1012));
        assert_eq!(rates[1].mid.to_string(), "3.6528");
    }

    #[test]
    fn rejects_bad_answers() {
        for bad in [
            answer(&["0"]),
            answer(&["-1.2"]),
            answer(&["null"]),
            answer(&["\"abc\""]),
            "<html>not json</html>".to_string(),
            r#"{"table":"C","code":"USD","rates":[]}"#.to_string(),
            r#"{"table":"A","code":"USD","rates":[{"no":"1","effectiveDate":"2025-02-30","mid":1}]}"#
                .to_string(),
        ] {
            assert!(
                matches!(parse_rates_answer(&bad), Err(NbpError::Parse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_two_rates_for_one_date() {
        let body = r#"{"table":"A","code":"USD","rates":[
            {"no":"1/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.1},
            {"no":"2/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.2}]}"#;
        assert!(matches!(parse_rates_answer(body), Err(NbpError::Parse(_))));
    }

    #[test]
    fn sorts_by_date() {
        let body = r#"{"table":"A","code":"usd","rates":[
            {"no":"2/A/NBP/2025","effectiveDate":"2025-01-03","mid":4.2},
            {"no":"1/A/NBP/2025","effectiveDate":"2025-01-02","mid":4.1}]}"#;
        let rates = parse_rates_answer(body).expect("parses");
        assert_eq!(rates[0].table_no, "1/A/NBP/2025");
        assert_eq!(rates[0].currency, "USD");
    }

    #[test]
    fn snippet_cuts_on_char_boundary() {
        let long = "ś".repeat(500);
        assert_eq!(snippet(&long).chars().count(), 200);
        assert_eq!(snippet("  400 BadRequest \n"), "400 BadRequest");
    }
}
