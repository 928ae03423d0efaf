//! OpenRouter's per-generation record (`GET /api/v1/generation?id=…` → `{"data": {…}}`), read
//! without losing a digit.
//!
//! OpenRouter sends amounts (`total_cost`, `usage`, …) as JSON *numbers* in USD, often tiny
//! (`0.0000123456789012`) and sometimes in exponent form (`1e-7`). Without serde_json's
//! `arbitrary_precision`, a number reaches a visitor only as `f64`, which drops digits. As in
//! `orgusage-nbp`, every field is first captured as serde_json's `RawValue` (its exact source
//! text) and then parsed: amounts straight into [`Decimal`], never through `f64`.
//! `arbitrary_precision` would work too, but it is a global feature that changes
//! `serde_json::Value` and untagged enums in every crate of the workspace.

use chrono::{DateTime, Utc};
use orgusage_domain::money::decimal_from_json_number;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::OpenRouterError;

/// The `data` object of OpenRouter's generation answer: one LLM request as OpenRouter billed it.
///
/// Amounts are USD [`Decimal`]s exactly as sent. Token counts are `Option` because OpenRouter
/// sends `null` for counts it does not know (e.g. for some cancelled streams); known counts are
/// never negative. Fields this crate does not know are ignored. `Serialize` writes the same
/// field names, with amounts as JSON strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    /// The generation id (`gen-…`): the dedupe key, together with the client.
    pub id: String,
    /// The upstream provider's id of the request.
    pub upstream_id: Option<String>,
    /// The model that served the request, e.g. `anthropic/claude-sonnet-4`.
    pub model: String,
    /// The provider that served it, e.g. `Anthropic`.
    pub provider_name: Option<String>,
    /// When the generation was created (OpenRouter sends RFC 3339 with an offset).
    pub created_at: DateTime<Utc>,
    /// What OpenRouter charged in USD, exact. This is the **raw cost**: it goes into the usage
    /// record and the dedupe ledger unchanged; the store applies the client's markup.
    pub total_cost: Decimal,
    /// Discount from prompt caching in USD; OpenRouter may send a negative value (a cache
    /// write that cost extra). Kept as sent.
    pub cache_discount: Option<Decimal>,
    /// What the upstream provider charged (BYOK), in USD.
    pub upstream_inference_cost: Option<Decimal>,
    /// Credits used in USD (equal to `total_cost` in OpenRouter's documented example).
    pub usage: Option<Decimal>,
    /// Whether the request ran on the customer's own provider key (bring your own key).
    pub is_byok: bool,
    /// Prompt tokens counted by OpenRouter's normalized tokenizer.
    pub tokens_prompt: Option<i64>,
    /// Completion tokens counted by OpenRouter's normalized tokenizer.
    pub tokens_completion: Option<i64>,
    /// Prompt tokens counted by the model's own tokenizer (what the provider priced).
    pub native_tokens_prompt: Option<i64>,
    /// Completion tokens counted by the model's own tokenizer.
    pub native_tokens_completion: Option<i64>,
    /// Reasoning tokens (native tokenizer).
    pub native_tokens_reasoning: Option<i64>,
    /// Prompt tokens read from the provider's cache (native tokenizer).
    pub native_tokens_cached: Option<i64>,
    /// Image tokens in the completion (native tokenizer).
    pub native_tokens_completion_images: Option<i64>,
    /// Media items in the prompt.
    pub num_media_prompt: Option<i64>,
    /// Audio inputs in the prompt.
    pub num_input_audio_prompt: Option<i64>,
    /// Media items in the completion.
    pub num_media_completion: Option<i64>,
    /// Web search results used.
    pub num_search_results: Option<i64>,
    /// Web fetches made.
    pub num_fetches: Option<i64>,
    /// The `user` value the request was sent with (the OpenRouter user id of the mapping).
    pub external_user: Option<String>,
    /// The app id (kept as text; OpenRouter documents a number).
    pub app_id: Option<String>,
    /// Whether the answer was streamed.
    pub streamed: Option<bool>,
    /// Whether the request was cancelled (e.g. an interrupted stream).
    pub cancelled: Option<bool>,
    /// Time to first token in milliseconds.
    pub latency: Option<Decimal>,
    /// Moderation time in milliseconds.
    pub moderation_latency: Option<Decimal>,
    /// Total generation time in milliseconds.
    pub generation_time: Option<Decimal>,
    /// Normalized finish reason (`stop`, `length`, …).
    pub finish_reason: Option<String>,
    /// The provider's own finish reason.
    pub native_finish_reason: Option<String>,
    /// Where the request came from (HTTP referer of the caller).
    pub origin: Option<String>,
    /// The API flavour (`completions`, `embeddings`, …).
    pub api_type: Option<String>,
    /// The router used, if any (e.g. `openrouter/auto`).
    pub router: Option<String>,
    /// Data region of the request.
    pub data_region: Option<String>,
    /// Provider service tier.
    pub service_tier: Option<String>,
    /// Preset used, if any.
    pub preset_id: Option<String>,
}

/// Every known field as its raw JSON text; `null` and absent both become `None`.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    upstream_id: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    provider_name: Option<&'a RawValue>,
    #[serde(borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(borrow)]
    total_cost: Option<&'a RawValue>,
    #[serde(borrow)]
    cache_discount: Option<&'a RawValue>,
    #[serde(borrow)]
    upstream_inference_cost: Option<&'a RawValue>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
    #[serde(borrow)]
    is_byok: Option<&'a RawValue>,
    #[serde(borrow)]
    tokens_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    tokens_completion: Option<&'a RawValue>,
    #[serde(borrow)]
    native_tokens_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    native_tokens_completion: Option<&'a RawValue>,
    #[serde(borrow)]
    native_tokens_reasoning: Option<&'a RawValue>,
    #[serde(borrow)]
    native_tokens_cached: Option<&'a RawValue>,
    #[serde(borrow)]
    native_tokens_completion_images: Option<&'a RawValue>,
    #[serde(borrow)]
    num_media_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    num_input_audio_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    num_media_completion: Option<&'a RawValue>,
    #[serde(borrow)]
    num_search_results: Option<&'a RawValue>,
    #[serde(borrow)]
    num_fetches: Option<&'a RawValue>,
    #[serde(borrow)]
    external_user: Option<&'a RawValue>,
    #[serde(borrow)]
    app_id: Option<&'a RawValue>,
    #[serde(borrow)]
    streamed: Option<&'a RawValue>,
    #[serde(borrow)]
    cancelled: Option<&'a RawValue>,
    #[serde(borrow)]
    latency: Option<&'a RawValue>,
    #[serde(borrow)]
    moderation_latency: Option<&'a RawValue>,
    #[serde(borrow)]
    generation_time: Option<&'a RawValue>,
    #[serde(borrow)]
    finish_reason: Option<&'a RawValue>,
    #[serde(borrow)]
    native_finish_reason: Option<&'a RawValue>,
    #[serde(borrow)]
    origin: Option<&'a RawValue>,
    #[serde(borrow)]
    api_type: Option<&'a RawValue>,
    #[serde(borrow)]
    router: Option<&'a RawValue>,
    #[serde(borrow)]
    data_region: Option<&'a RawValue>,
    #[serde(borrow)]
    service_tier: Option<&'a RawValue>,
    #[serde(borrow)]
    preset_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<Wire<'a>>,
}

type Raw<'a> = Option<&'a RawValue>;

impl Generation {
    /// Parses OpenRouter's answer to `GET /api/v1/generation?id=…`: `{"data": {…}}`.
    ///
    /// ```
    /// use orgusage_openrouter::Generation;
    ///
    /// let body = r#"{"data":{"id":"gen-1","model":"openai/gpt-4o","total_cost":1e-7,
    ///     "created_at":"2025-10-31T23:00:00Z","tokens_prompt":12,"tokens_completion":3}}"#;
    /// let g = Generation::from_response_json(body)?;
    /// assert_eq!(g.total_cost.to_string(), "0.0000001");
    /// # Ok::<(), orgusage_openrouter::OpenRouterError>(())
    /// ```
    pub fn from_response_json(body: &str) -> Result<Self, OpenRouterError> {
        let envelope: Envelope<'_> = serde_json::from_str(body).map_err(malformed)?;
        let data = envelope.data.ok_or(OpenRouterError::MissingField("data"))?;
        Self::from_wire(data)
    }

    /// Parses a bare `data` object (as stored, or as an element of a fixture list).
    pub fn from_json(object: &str) -> Result<Self, OpenRouterError> {
        let wire: Wire<'_> = serde_json::from_str(object).map_err(malformed)?;
        Self::from_wire(wire)
    }

    /// The generation id: the dedupe key of the ledger, together with the client.
    pub fn generation_id(&self) -> &str {
        &self.id
    }

    /// The OpenRouter `user` the request carried (`external_user`), if any and not blank.
    /// Resolve it to a host user through the client's user mappings.
    pub fn openrouter_user(&self) -> Option<&str> {
        self.external_user
            .as_deref()
            .filter(|user| !user.trim().is_empty())
    }

    /// Checks the invariants the parser enforces, for records built or edited by hand: `id` and
    /// `model` are not blank, the texts that may be stored or looked up (`id`, `model`,
    /// `provider_name`, `external_user`) contain no NUL (PostgreSQL cannot store one), and
    /// `total_cost` and every token or item count are not negative.
    pub fn validate(&self) -> Result<(), OpenRouterError> {
        if self.id.trim().is_empty() {
            return Err(OpenRouterError::MissingField("id"));
        }
        if self.model.trim().is_empty() {
            return Err(OpenRouterError::MissingField("model"));
        }
        let texts = [
            ("id", Some(self.id.as_str())),
            ("model", Some(self.model.as_str())),
            ("provider_name", self.provider_name.as_deref()),
            ("external_user", self.external_user.as_deref()),
        ];
        if let Some((field, _)) = texts
            .iter()
            .find(|(_, text)| text.is_some_and(|t| t.contains('\0')))
        {
            return Err(OpenRouterError::Malformed(format!(
                "`{field}` contains a NUL character"
            )));
        }
        if self.total_cost < Decimal::ZERO {
            return Err(OpenRouterError::Negative {
                field: "total_cost",
            });
        }
        let counts = [
            ("tokens_prompt", self.tokens_prompt),
            ("tokens_completion", self.tokens_completion),
            ("native_tokens_prompt", self.native_tokens_prompt),
            ("native_tokens_completion", self.native_tokens_completion),
            ("native_tokens_reasoning", self.native_tokens_reasoning),
            ("native_tokens_cached", self.native_tokens_cached),
            (
                "native_tokens_completion_images",
                self.native_tokens_completion_images,
            ),
            ("num_media_prompt", self.num_media_prompt),
            ("num_input_audio_prompt", self.num_input_audio_prompt),
            ("num_media_completion", self.num_media_completion),
            ("num_search_results", self.num_search_results),
            ("num_fetches", self.num_fetches),
        ];
        match counts.iter().find(|(_, n)| n.is_some_and(|n| n < 0)) {
            Some((field, _)) => Err(OpenRouterError::Negative { field }),
            None => Ok(()),
        }
    }

    fn from_wire(w: Wire<'_>) -> Result<Self, OpenRouterError> {
        let generation = Self {
            id: required_text("id", w.id)?,
            upstream_id: text("upstream_id", w.upstream_id)?,
            model: required_text("model", w.model)?,
            provider_name: text("provider_name", w.provider_name)?,
            created_at: timestamp(w.created_at)?,
            total_cost: decimal("total_cost", w.total_cost)?
                .ok_or(OpenRouterError::MissingField("total_cost"))?,
            cache_discount: decimal("cache_discount", w.cache_discount)?,
            upstream_inference_cost: decimal("upstream_inference_cost", w.upstream_inference_cost)?,
            usage: decimal("usage", w.usage)?,
            is_byok: typed::<bool>("is_byok", w.is_byok)?.unwrap_or(false),
            tokens_prompt: typed("tokens_prompt", w.tokens_prompt)?,
            tokens_completion: typed("tokens_completion", w.tokens_completion)?,
            native_tokens_prompt: typed("native_tokens_prompt", w.native_tokens_prompt)?,
            native_tokens_completion: typed(
                "native_tokens_completion",
                w.native_tokens_completion,
            )?,
            native_tokens_reasoning: typed("native_tokens_reasoning", w.native_tokens_reasoning)?,
            native_tokens_cached: typed("native_tokens_cached", w.native_tokens_cached)?,
            native_tokens_completion_images: typed(
                "native_tokens_completion_images",
                w.native_tokens_completion_images,
            )?,
            num_media_prompt: typed("num_media_prompt", w.num_media_prompt)?,
            num_input_audio_prompt: typed("num_input_audio_prompt", w.num_input_audio_prompt)?,
            num_media_completion: typed("num_media_completion", w.num_media_completion)?,
            num_search_results: typed("num_search_results", w.num_search_results)?,
            num_fetches: typed("num_fetches", w.num_fetches)?,
            external_user: text("external_user", w.external_user)?,
            app_id: id_text("app_id", w.app_id)?,
            streamed: typed("streamed", w.streamed)?,
            cancelled: typed("cancelled", w.cancelled)?,
            latency: decimal("latency", w.latency)?,
            moderation_latency: decimal("moderation_latency", w.moderation_latency)?,
            generation_time: decimal("generation_time", w.generation_time)?,
            finish_reason: text("finish_reason", w.finish_reason)?,
            native_finish_reason: text("native_finish_reason", w.native_finish_reason)?,
            origin: text("origin", w.origin)?,
            api_type: text("api_type", w.api_type)?,
            router: text("router", w.router)?,
            data_region: text("data_region", w.data_region)?,
            service_tier: text("service_tier", w.service_tier)?,
            preset_id: text("preset_id", w.preset_id)?,
        };
        generation.validate()?;
        Ok(generation)
    }
}

/// Parses a JSON array of bare `data` objects (the format of `fixtures/generations.json`, or an
/// archive of fetched records). Order and duplicates are kept: deduplication is the store's job.
pub fn parse_generation_list(json: &str) -> Result<Vec<Generation>, OpenRouterError> {
    let items: Vec<Wire<'_>> = serde_json::from_str(json).map_err(malformed)?;
    items.into_iter().map(Generation::from_wire).collect()
}

fn malformed(error: serde_json::Error) -> OpenRouterError {
    OpenRouterError::Malformed(error.to_string())
}

fn typed<T: DeserializeOwned>(
    field: &'static str,
    raw: Raw<'_>,
) -> Result<Option<T>, OpenRouterError> {
    raw.map(|r| {
        serde_json::from_str(r.get())
            .map_err(|e| OpenRouterError::Malformed(format!("`{field}`: {e}")))
    })
    .transpose()
}

fn text(field: &'static str, raw: Raw<'_>) -> Result<Option<String>, OpenRouterError> {
    typed::<String>(field, raw)
}

fn required_text(field: &'static str, raw: Raw<'_>) -> Result<String, OpenRouterError> {
    match text(field, raw)? {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(OpenRouterError::MissingField(field)),
    }
}

/// A string, or a number kept as its source text (for ids OpenRouter documents as numbers).
fn id_text(field: &'static str, raw: Raw<'_>) -> Result<Option<String>, OpenRouterError> {
    match raw {
        Some(r) if !r.get().trim_start().starts_with('"') => {
            decimal(field, raw)?;
            Ok(Some(r.get().trim().to_string()))
        }
        _ => text(field, raw),
    }
}

fn timestamp(raw: Raw<'_>) -> Result<DateTime<Utc>, OpenRouterError> {
    let value = required_text("created_at", raw)?;
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| OpenRouterError::Malformed(format!("`created_at` {value:?}: {e}")))
}

/// Parses the raw JSON text of an amount exactly (see [`decimal_from_json_number`]: a quoted
/// number and exponent notation are accepted).
fn decimal(field: &'static str, raw: Raw<'_>) -> Result<Option<Decimal>, OpenRouterError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let source = raw.get().trim();
    decimal_from_json_number(source)
        .map(Some)
        .map_err(|e| OpenRouterError::Malformed(format!("`{field}` {source}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"id":"gen-1","model":"openai/gpt-4o","created_at":"2025-10-31T22:59:59Z","total_cost":0.0015{extra}}}"#
        )
    }

    #[test]
    fn minimal_record_has_defaults() {
        let g = Generation::from_json(&minimal("")).expect("parses");
        assert_eq!(g.generation_id(), "gen-1");
        assert_eq!(g.total_cost, dec!(0.0015));
        assert!(!g.is_byok);
        assert_eq!(g.tokens_prompt, None);
        assert_eq!(g.openrouter_user(), None);
    }

    #[test]
    fn nulls_are_none() {
        let g = Generation::from_json(&minimal(
            r#","tokens_prompt":null,"provider_name":null,"is_byok":null,"usage":null,"app_id":null"#,
        ))
        .expect("parses");
        assert_eq!(g.tokens_prompt, None);
        assert_eq!(g.provider_name, None);
        assert!(!g.is_byok);
        assert_eq!(g.usage, None);
        assert_eq!(g.app_id, None);
    }

    #[test]
    fn amounts_keep_every_digit_and_scale() {
        for (source, expected) in [
            ("0.0000123456789012", "0.0000123456789012"),
            ("1e-7", "0.0000001"),
            ("1.5E-7", "0.00000015"),
            ("2.5e+1", "25"),
            ("\"0.0015\"", "0.0015"),
            ("0.10", "0.10"),
        ] {
            let g =
                Generation::from_json(&minimal(&format!(r#","usage":{source}"#))).expect(source);
            assert_eq!(g.usage.map(|u| u.to_string()).as_deref(), Some(expected));
        }
    }

    #[test]
    fn app_id_accepts_number_or_string() {
        let g = Generation::from_json(&minimal(r#","app_id":12345"#)).expect("number");
        assert_eq!(g.app_id.as_deref(), Some("12345"));
        let g = Generation::from_json(&minimal(r#","app_id":"app-9""#)).expect("string");
        assert_eq!(g.app_id.as_deref(), Some("app-9"));
        assert!(matches!(
            Generation::from_json(&minimal(r#","app_id":[1]"#)),
            Err(OpenRouterError::Malformed(_))
        ));
    }

    #[test]
    fn created_at_offsets_are_normalized_to_utc() {
        let json = r#"{"id":"g","model":"m","total_cost":0,"created_at":"2025-11-01T00:30:00.123456+01:00"}"#;
        let g = Generation::from_json(json).expect("parses");
        assert_eq!(
            g.created_at.to_rfc3339(),
            "2025-10-31T23:30:00.123456+00:00"
        );
        let naive = r#"{"id":"g","model":"m","total_cost":0,"created_at":"2025-11-01T00:30:00"}"#;
        assert!(matches!(
            Generation::from_json(naive),
            Err(OpenRouterError::Malformed(_))
        ));
    }

    #[test]
    fn cache_discount_may_be_negative() {
        let g = Generation::from_json(&minimal(r#","cache_discount":-0.00012"#)).expect("parses");
        assert_eq!(g.cache_discount, Some(dec!(-0.00012)));
    }

    #[test]
    fn validate_catches_hand_edits() {
        let mut g = Generation::from_json(&minimal("")).expect("parses");
        g.native_tokens_cached = Some(-1);
        assert!(matches!(
            g.validate(),
            Err(OpenRouterError::Negative {
                field: "native_tokens_cached"
            })
        ));
        g.native_tokens_cached = None;
        g.model = " ".into();
        assert!(matches!(
            g.validate(),
            Err(OpenRouterError::MissingField("model"))
        ));
    }

    #[test]
    fn blank_external_user_is_no_user() {
        let g = Generation::from_json(&minimal(r#","external_user":"  ""#)).expect("parses");
        assert_eq!(g.openrouter_user(), None);
        let g = Generation::from_json(&minimal(r#","external_user":"u-7""#)).expect("parses");
        assert_eq!(g.openrouter_user(), Some("u-7"));
    }
}
