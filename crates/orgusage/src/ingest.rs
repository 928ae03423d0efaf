//! Ingesting OpenRouter generation records exactly once (feature `openrouter`).

use orgusage_domain::generations::GenerationOutcome;
use orgusage_domain::{Error, Result};
use orgusage_openrouter::{Generation, ResolvedUser, TokenCounting};

use crate::store::Store;

/// How the generation's paying client is identified.
#[derive(Debug, Clone, Copy)]
pub enum ClientRef<'a> {
    /// By the client's OpenRouter API key (the key the generation was made with).
    ApiKey(&'a str),
    /// By the client's id.
    Id(&'a str),
}

impl Store {
    /// Records an OpenRouter generation record exactly once: resolves the active client, maps
    /// the generation's `external_user` to the client's user mapping (falling back to the
    /// external user id itself, or `unknown`), books the usage on the client-local day of
    /// `created_at`, applies the client's markup, and writes ledger row and usage in one
    /// transaction. An unknown or inactive client is [`Error::NotFound`] and writes nothing.
    pub fn ingest_generation(
        &self,
        client: ClientRef<'_>,
        generation: &Generation,
    ) -> Result<GenerationOutcome> {
        self.ingest_generation_with(client, generation, TokenCounting::default())
    }

    /// [`Store::ingest_generation`] with an explicit token-counting mode.
    pub fn ingest_generation_with(
        &self,
        client: ClientRef<'_>,
        generation: &Generation,
        counting: TokenCounting,
    ) -> Result<GenerationOutcome> {
        self.ingest_settling(client, generation, counting, None)
    }

    /// The ingestion path; `reservation_id` is the spend reservation the record settles.
    pub(crate) fn ingest_settling(
        &self,
        client: ClientRef<'_>,
        generation: &Generation,
        counting: TokenCounting,
        reservation_id: Option<&str>,
    ) -> Result<GenerationOutcome> {
        let _span = tracing::debug_span!(
            "orgusage.ingest_generation",
            generation_id = generation.generation_id()
        )
        .entered();
        // Before any lookup: a NUL in `external_user` would otherwise reach PostgreSQL as an
        // untyped "invalid byte sequence" error instead of this typed one.
        generation
            .validate()
            .map_err(|e| Error::invalid("generation", e.to_string()))?;
        let found = match client {
            ClientRef::ApiKey(key) => self.clients().get_client_by_api_key(key)?,
            ClientRef::Id(id) => self.clients().get_client_by_id(id)?,
        };
        let client = found.ok_or_else(|| Error::NotFound {
            entity: "client",
            id: match client {
                ClientRef::ApiKey(_) => "(by api key)".to_string(),
                ClientRef::Id(id) => id.to_string(),
            },
        })?;
        let user = match generation.openrouter_user().map(str::trim) {
            Some(or_user) => match self
                .mappings()
                .get_mapping_by_openrouter_user_id(&client.id, or_user)?
            {
                Some(m) => ResolvedUser::from_mapping(&m),
                None => ResolvedUser::fallback(generation),
            },
            None => ResolvedUser::fallback(generation),
        };
        let mut record = generation
            .to_usage_record_with(&client, &user, counting)
            .map_err(|e| Error::invalid("generation", e.to_string()))?;
        record.reservation_id = reservation_id.map(str::to_string);
        self.usage()
            .record_generation(generation.generation_id(), &record)
    }
}
