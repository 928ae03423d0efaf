//! Ingesting OpenRouter generation records exactly once (feature `openrouter`).

use std::collections::HashMap;

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

    /// Records many OpenRouter generation records of one client exactly once, as
    /// [`Store::ingest_generation`] does one by one, but written by
    /// [`Usage::record_generations`](crate::usage::Usage::record_generations): one transaction per
    /// chunk, each daily row written once. The client and each distinct OpenRouter user's
    /// mapping are looked up once for the whole call.
    ///
    /// The outer error is the client's (unknown, inactive, or the lookup failed): nothing is
    /// written. Otherwise there is one outcome per generation, in input order; an invalid
    /// generation gets its own error and writes nothing.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, ClientRef, GenerationOutcome, Store};
    /// use orgusage::openrouter::Generation;
    ///
    /// let store = Store::open(":memory:")?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let generation = Generation::from_json(r#"{"id": "gen-1", "model": "openai/gpt-4.1",
    ///     "total_cost": 0.002, "tokens_prompt": 10, "tokens_completion": 5,
    ///     "created_at": "2025-07-24T10:00:00Z"}"#).unwrap();
    /// let done = store.ingest_generations(ClientRef::Id(&c.id), &[generation.clone(), generation])?;
    /// assert!(done[0].as_ref().unwrap().is_recorded());
    /// assert_eq!(*done[1].as_ref().unwrap(), GenerationOutcome::Duplicate);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn ingest_generations(
        &self,
        client: ClientRef<'_>,
        generations: &[Generation],
    ) -> Result<Vec<Result<GenerationOutcome>>> {
        let _span = tracing::debug_span!("orgusage.ingest_generations", items = generations.len())
            .entered();
        let found = match client {
            ClientRef::ApiKey(key) => self.clients().get_client_by_api_key(key)?,
            ClientRef::Id(id) => self.clients().get_client_by_id(id)?,
        };
        let client = found
            .filter(|c| c.is_active)
            .ok_or_else(|| Error::NotFound {
                entity: "client",
                id: match client {
                    ClientRef::ApiKey(_) => "(by api key)".to_string(),
                    ClientRef::Id(id) => id.to_string(),
                },
            })?;
        let mut users: HashMap<String, Option<ResolvedUser>> = HashMap::new();
        let mut results: Vec<Option<Result<GenerationOutcome>>> =
            Vec::with_capacity(generations.len());
        let mut batch = Vec::with_capacity(generations.len());
        let mut positions = Vec::with_capacity(generations.len());
        for (idx, generation) in generations.iter().enumerate() {
            let record = (|| {
                generation
                    .validate()
                    .map_err(|e| Error::invalid("generation", e.to_string()))?;
                let user = match generation.openrouter_user().map(str::trim) {
                    Some(or_user) => {
                        if !users.contains_key(or_user) {
                            let m = self
                                .mappings()
                                .get_mapping_by_openrouter_user_id(&client.id, or_user)?;
                            users.insert(
                                or_user.to_string(),
                                m.as_ref().map(ResolvedUser::from_mapping),
                            );
                        }
                        match &users[or_user] {
                            Some(u) => u.clone(),
                            None => ResolvedUser::fallback(generation),
                        }
                    }
                    None => ResolvedUser::fallback(generation),
                };
                generation
                    .to_usage_record_with(&client, &user, TokenCounting::default())
                    .map_err(|e| Error::invalid("generation", e.to_string()))
            })();
            match record {
                Ok(r) => {
                    results.push(None);
                    positions.push(idx);
                    batch.push((generation.generation_id().to_string(), r));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        for (idx, outcome) in positions
            .into_iter()
            .zip(self.usage().record_generations(&batch))
        {
            results[idx] = Some(outcome);
        }
        Ok(results.into_iter().flatten().collect())
    }
}
