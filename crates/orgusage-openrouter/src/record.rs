//! From an OpenRouter generation to the [`UsageRecord`] the store books.

use orgusage_domain::models::{ClientOrganization, UserClientMapping};
use orgusage_domain::usage::UsageRecord;

use crate::{Generation, OpenRouterError};

/// The user id booked when a generation carries no `external_user`.
pub const UNKNOWN_USER: &str = "unknown";

/// The host user a generation is booked to, resolved by the caller from the generation's
/// `external_user` ([`Generation::openrouter_user`]) through the client's user mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The host application's user id.
    pub user_id: String,
    /// The OpenRouter `user` value of that user.
    pub openrouter_user_id: String,
}

impl ResolvedUser {
    /// A resolved user from its two ids.
    pub fn new(user_id: impl Into<String>, openrouter_user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            openrouter_user_id: openrouter_user_id.into(),
        }
    }

    /// The user of a mapping row.
    pub fn from_mapping(mapping: &UserClientMapping) -> Self {
        Self::new(mapping.user_id.clone(), mapping.openrouter_user_id.clone())
    }

    /// The documented fallback when no mapping matches: both ids are the generation's
    /// `external_user` (trimmed), or [`UNKNOWN_USER`] when it has none. Usage stays attributed
    /// to the OpenRouter user it came with, so it can be re-attributed once a mapping exists.
    pub fn fallback(generation: &Generation) -> Self {
        let user = generation.openrouter_user().map_or(UNKNOWN_USER, str::trim);
        Self::new(user, user)
    }

    /// The active mapping of `client` whose `openrouter_user_id` equals the generation's
    /// `external_user`, else [`ResolvedUser::fallback`]. Mappings of other clients and
    /// inactive ones are skipped.
    pub fn resolve<'a>(
        generation: &Generation,
        client: &ClientOrganization,
        mappings: impl IntoIterator<Item = &'a UserClientMapping>,
    ) -> Self {
        let Some(external) = generation.openrouter_user() else {
            return Self::fallback(generation);
        };
        mappings
            .into_iter()
            .find(|m| {
                m.is_active && m.client_org_id == client.id && m.openrouter_user_id == external
            })
            .map_or_else(|| Self::fallback(generation), Self::from_mapping)
    }
}

/// Which of OpenRouter's two token families becomes the record's input and output tokens.
///
/// The families differ (a prompt can be 10 normalized tokens and 4 native ones). The cost does
/// not depend on the choice: it is always `total_cost`. [`Generation`] keeps both families, so
/// reports can use either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenCounting {
    /// `tokens_prompt` / `tokens_completion`, OpenRouter's normalized counts (the default).
    /// They are comparable across models, which per-model and per-user reports need, and they
    /// are the fields the original system booked.
    #[default]
    Normalized,
    /// `native_tokens_prompt` / `native_tokens_completion`, the model's own tokenizer: what
    /// the provider priced, and what in-band `usage` of a chat response reports. Reasoning
    /// tokens are part of the native completion count and are not added again.
    Native,
}

impl Generation {
    /// The usage record of this generation for `client` and `user`, counting tokens with
    /// [`TokenCounting::Normalized`]. See [`Generation::to_usage_record_with`].
    pub fn to_usage_record(
        &self,
        client: &ClientOrganization,
        user: &ResolvedUser,
    ) -> Result<UsageRecord, OpenRouterError> {
        self.to_usage_record_with(client, user, TokenCounting::Normalized)
    }

    /// The usage record of this generation:
    ///
    /// * `client_org_id` = `client.id`, `user_id` / `openrouter_user_id` from `user`;
    /// * `model_name` = `model`, `provider` = `provider_name`;
    /// * input / output tokens from the chosen family; an unknown (`null`) count books as 0;
    /// * `raw_cost` = `total_cost`, exact: the raw cost that also goes into the dedupe ledger,
    ///   never the marked-up one;
    /// * `occurred_at` = `created_at` and `usage_date` = `None`, so the store derives the usage
    ///   day in the **client's** time zone (2025-10-31T23:00:00Z is 1 November in Warsaw);
    /// * `markup_cost` = `None`, so the store applies the client's markup rate.
    ///
    /// The generation id is not part of the record: pass [`Generation::generation_id`] to the
    /// store's idempotent ingest, keyed by (client, generation id).
    ///
    /// Fails with the parser's errors for hand-built invalid generations, and with
    /// [`OpenRouterError::InvalidRecord`] when the record breaks a domain rule (checked with
    /// [`UsageRecord::validate`], e.g. a model id with surrounding whitespace).
    pub fn to_usage_record_with(
        &self,
        client: &ClientOrganization,
        user: &ResolvedUser,
        counting: TokenCounting,
    ) -> Result<UsageRecord, OpenRouterError> {
        self.validate()?;
        let (input, output) = match counting {
            TokenCounting::Normalized => (self.tokens_prompt, self.tokens_completion),
            TokenCounting::Native => (self.native_tokens_prompt, self.native_tokens_completion),
        };
        let mut record = UsageRecord::new(
            client.id.clone(),
            user.user_id.clone(),
            user.openrouter_user_id.clone(),
            self.model.clone(),
        )
        .tokens(input.unwrap_or(0), output.unwrap_or(0))
        .raw_cost(self.total_cost)
        .at(self.created_at);
        if let Some(provider) = self.provider_name.as_deref().filter(|p| !p.is_empty()) {
            record = record.provider(provider);
        }
        record.validate().map_err(OpenRouterError::InvalidRecord)?;
        Ok(record)
    }
}
