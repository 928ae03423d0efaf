//! The documented JSON of the management API, parsed with every amount exact: each money field
//! is captured as its source text (`RawValue`) and read as a [`Decimal`], never through `f64`.

use chrono::NaiveDate;
use orgusage_domain::Secret;
use orgusage_domain::money::decimal_from_json_number;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::KeysError;
use crate::error::malformed;

type Raw<'a> = Option<&'a RawValue>;

/// How often OpenRouter resets a key's `limit`. Resets happen at **midnight UTC** (weeks run
/// Monday to Sunday, months start on the 1st, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// Every UTC day.
    Daily,
    /// Every UTC week (Monday).
    Weekly,
    /// Every UTC month (the 1st).
    Monthly,
}

impl LimitReset {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

/// A key as OpenRouter describes it (`data` of `GET /keys/{hash}`, of create and of update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's hash: its id in the management API and in `/activity` (`api_key_hash`).
    pub hash: String,
    /// The key's name.
    pub name: String,
    /// OpenRouter's label (a masked form of the key).
    pub label: Option<String>,
    /// Whether the key is disabled.
    pub disabled: bool,
    /// Spending limit in raw USD, `None` = unlimited.
    pub limit: Option<Decimal>,
    /// What is left of the limit in the current reset period.
    pub limit_remaining: Option<Decimal>,
    /// `daily`, `weekly`, `monthly` or `None` (never resets), as sent.
    pub limit_reset: Option<String>,
    /// All-time usage in raw USD.
    pub usage: Decimal,
    /// Usage of the current UTC day.
    pub usage_daily: Decimal,
    /// Usage of the current UTC week.
    pub usage_weekly: Decimal,
    /// Usage of the current UTC month.
    pub usage_monthly: Decimal,
    /// Creation time as sent (ISO 8601).
    pub created_at: Option<String>,
}

/// The answer to key creation: the plaintext key (shown by OpenRouter only once) and its info.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The new key; store it with the client. Masked in `Debug`.
    pub key: Secret,
    /// Its description, with the hash to store.
    pub info: KeyInfo,
}

/// The management key's account balance (`GET /credits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Credits {
    /// Credits bought, USD.
    pub total_credits: Decimal,
    /// Credits used, USD.
    pub total_usage: Decimal,
}

impl Credits {
    /// `total_credits − total_usage`.
    pub fn balance(&self) -> Decimal {
        self.total_credits - self.total_usage
    }
}

/// One row of `GET /activity`: one completed UTC day, one model endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    /// The UTC day (requests are bucketed by their start time).
    pub date: NaiveDate,
    /// Model id, e.g. `openai/gpt-4.1`.
    pub model: String,
    /// Provider that served it.
    pub provider_name: Option<String>,
    /// Endpoint id.
    pub endpoint_id: Option<String>,
    /// Spend in raw USD (credits).
    pub usage: Decimal,
    /// BYOK inference spend, USD.
    pub byok_usage_inference: Decimal,
    /// Number of requests.
    pub requests: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct KeyWire<'a> {
    #[serde(borrow)]
    hash: Raw<'a>,
    #[serde(borrow)]
    name: Raw<'a>,
    #[serde(borrow)]
    label: Raw<'a>,
    #[serde(borrow)]
    disabled: Raw<'a>,
    #[serde(borrow)]
    limit: Raw<'a>,
    #[serde(borrow)]
    limit_remaining: Raw<'a>,
    #[serde(borrow)]
    limit_reset: Raw<'a>,
    #[serde(borrow)]
    usage: Raw<'a>,
    #[serde(borrow)]
    usage_daily: Raw<'a>,
    #[serde(borrow)]
    usage_weekly: Raw<'a>,
    #[serde(borrow)]
    usage_monthly: Raw<'a>,
    #[serde(borrow)]
    created_at: Raw<'a>,
    #[serde(borrow)]
    key: Raw<'a>,
}

#[derive(Deserialize)]
struct ActivityWire<'a> {
    #[serde(borrow)]
    date: Raw<'a>,
    #[serde(borrow)]
    model: Raw<'a>,
    #[serde(borrow)]
    provider_name: Raw<'a>,
    #[serde(borrow)]
    endpoint_id: Raw<'a>,
    #[serde(borrow)]
    usage: Raw<'a>,
    #[serde(borrow)]
    byok_usage_inference: Raw<'a>,
    #[serde(borrow)]
    requests: Raw<'a>,
    #[serde(borrow)]
    prompt_tokens: Raw<'a>,
    #[serde(borrow)]
    completion_tokens: Raw<'a>,
    #[serde(borrow)]
    reasoning_tokens: Raw<'a>,
}

fn envelope<'a>(body: &'a str, what: &str) -> Result<Envelope<'a>, KeysError> {
    serde_json::from_str(body).map_err(|e| malformed(what, &e))
}

fn data<'a>(env: &Envelope<'a>) -> Result<&'a RawValue, KeysError> {
    env.data
        .filter(|d| d.get() != "null")
        .ok_or_else(|| KeysError::Malformed("the answer lacks `data`".into()))
}

/// `data` of a single-key answer.
pub(crate) fn parse_key_info(body: &str) -> Result<KeyInfo, KeysError> {
    let env = envelope(body, "key answer")?;
    let wire: KeyWire<'_> =
        serde_json::from_str(data(&env)?.get()).map_err(|e| malformed("key `data`", &e))?;
    key_info(&wire)
}

/// The create answer: `key` at the top level (documented) or inside `data`.
pub(crate) fn parse_created(body: &str) -> Result<CreatedKey, KeysError> {
    let env = envelope(body, "key creation answer")?;
    let wire: KeyWire<'_> =
        serde_json::from_str(data(&env)?.get()).map_err(|e| malformed("key `data`", &e))?;
    let key = text("key", env.key.or(wire.key))?
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| KeysError::Malformed("the creation answer lacks `key`".into()))?;
    Ok(CreatedKey {
        key: Secret::new(key),
        info: key_info(&wire)?,
    })
}

/// `data` of `GET /keys`: an array of keys.
pub(crate) fn parse_key_list(body: &str) -> Result<Vec<KeyInfo>, KeysError> {
    let env = envelope(body, "key list")?;
    let rows: Vec<KeyWire<'_>> =
        serde_json::from_str(data(&env)?.get()).map_err(|e| malformed("key list `data`", &e))?;
    rows.iter().map(key_info).collect()
}

/// `data` of `GET /credits`.
pub(crate) fn parse_credits(body: &str) -> Result<Credits, KeysError> {
    #[derive(Deserialize)]
    struct Wire<'a> {
        #[serde(borrow)]
        total_credits: Raw<'a>,
        #[serde(borrow)]
        total_usage: Raw<'a>,
    }
    let env = envelope(body, "credits answer")?;
    let w: Wire<'_> =
        serde_json::from_str(data(&env)?.get()).map_err(|e| malformed("credits `data`", &e))?;
    Ok(Credits {
        total_credits: required_decimal("total_credits", w.total_credits)?,
        total_usage: required_decimal("total_usage", w.total_usage)?,
    })
}

/// `data` of `GET /activity`.
pub fn parse_activity(body: &str) -> Result<Vec<ActivityRow>, KeysError> {
    let env = envelope(body, "activity answer")?;
    let rows: Vec<ActivityWire<'_>> =
        serde_json::from_str(data(&env)?.get()).map_err(|e| malformed("activity `data`", &e))?;
    rows.iter()
        .map(|w| {
            let date = text("date", w.date)?
                .ok_or_else(|| KeysError::Malformed("an activity row lacks `date`".into()))?;
            // Documented as a day; a timestamp form ("2025-07-23 00:00:00") keeps its day.
            let day = date.get(..10).unwrap_or(&date);
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
                KeysError::Malformed("an activity row's `date` is not a day".into())
            })?;
            Ok(ActivityRow {
                date,
                model: text("model", w.model)?
                    .ok_or_else(|| KeysError::Malformed("an activity row lacks `model`".into()))?,
                provider_name: text("provider_name", w.provider_name)?,
                endpoint_id: text("endpoint_id", w.endpoint_id)?,
                usage: required_decimal("usage", w.usage)?,
                byok_usage_inference: decimal("byok_usage_inference", w.byok_usage_inference)?
                    .unwrap_or_default(),
                requests: integer("requests", w.requests)?,
                prompt_tokens: integer("prompt_tokens", w.prompt_tokens)?,
                completion_tokens: integer("completion_tokens", w.completion_tokens)?,
                reasoning_tokens: integer("reasoning_tokens", w.reasoning_tokens)?,
            })
        })
        .collect()
}

fn key_info(w: &KeyWire<'_>) -> Result<KeyInfo, KeysError> {
    let usage = |field, raw| decimal(field, raw).map(Option::unwrap_or_default);
    Ok(KeyInfo {
        hash: text("hash", w.hash)?
            .filter(|h| !h.is_empty())
            .ok_or_else(|| KeysError::Malformed("a key lacks `hash`".into()))?,
        name: text("name", w.name)?.unwrap_or_default(),
        label: text("label", w.label)?,
        disabled: match w.disabled.map(RawValue::get) {
            None | Some("null") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(KeysError::Malformed("`disabled` is not a boolean".into())),
        },
        limit: decimal("limit", w.limit)?,
        limit_remaining: decimal("limit_remaining", w.limit_remaining)?,
        limit_reset: text("limit_reset", w.limit_reset)?,
        usage: usage("usage", w.usage)?,
        usage_daily: usage("usage_daily", w.usage_daily)?,
        usage_weekly: usage("usage_weekly", w.usage_weekly)?,
        usage_monthly: usage("usage_monthly", w.usage_monthly)?,
        created_at: text("created_at", w.created_at)?,
    })
}

/// A JSON string (or `null`/absent → `None`); anything else is malformed (content not quoted).
fn text(field: &'static str, raw: Raw<'_>) -> Result<Option<String>, KeysError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(source) => serde_json::from_str::<String>(source)
            .map(Some)
            .map_err(|_| KeysError::Malformed(format!("`{field}` is not a string"))),
    }
}

/// A JSON number (or numeric string) read exactly from its source text.
fn decimal(field: &'static str, raw: Raw<'_>) -> Result<Option<Decimal>, KeysError> {
    match raw.map(|r| r.get().trim()) {
        None | Some("null") => Ok(None),
        Some(source) => decimal_from_json_number(source)
            .map(Some)
            .map_err(|_| KeysError::Malformed(format!("`{field}` is not a number"))),
    }
}

fn required_decimal(field: &'static str, raw: Raw<'_>) -> Result<Decimal, KeysError> {
    decimal(field, raw)?.ok_or_else(|| KeysError::Malformed(format!("`{field}` is missing")))
}

fn integer(field: &'static str, raw: Raw<'_>) -> Result<i64, KeysError> {
    match raw.map(|r| r.get().trim()) {
        None | Some("null") => Ok(0),
        Some(source) => source
            .parse::<i64>()
            .map_err(|_| KeysError::Malformed(format!("`{field}` is not an integer"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_keeps_every_digit() {
        let body = r#"{"data":{"hash":"h1","name":"n","limit":12.345678901234,"usage":1e-7,"usage_monthly":"0.10"}}"#;
        let k = parse_key_info(body).unwrap();
        assert_eq!(k.limit, Some(dec!(12.345678901234)));
        assert_eq!(k.usage, dec!(0.0000001));
        assert_eq!(k.usage_monthly, dec!(0.10));
        assert!(!k.disabled);
    }

    #[test]
    fn malformed_answers_never_quote_the_key() {
        let secret = "sk-or-v1-0123456789abcdef";
        for body in [
            format!(r#"{{"data":{{"hash":5,"name":"{secret}"}},"key":"{secret}"}}"#),
            format!(r#"{{"data":{{"hash":"h","limit":"{secret}"}},"key":"{secret}"}}"#),
            format!(r#"{{"data":{{"hash":"h"}},"key":["{secret}"]}}"#),
            format!(r#"{{"data":{{"hash":"h"}},"key":"{secret}""#),
        ] {
            let e = parse_created(&body).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("0123456789"), "{e:?}");
        }
    }
}
