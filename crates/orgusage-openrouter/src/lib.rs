//! OpenRouter generation records for orgusage.
//!
//! * [`Generation`]: the `data` object of `GET /api/v1/generation?id=…`, parsed with every
//!   amount exact ([`rust_decimal::Decimal`] from the number's source text, never `f64`);
//! * [`Generation::to_usage_record`]: the [`orgusage_domain::usage::UsageRecord`] to book,
//!   with `total_cost` as the raw cost and `created_at` as the instant, so the store derives
//!   the usage day in the client's time zone and applies the client's markup;
//! * [`GenerationFetcher`]: a blocking client that retries the 404 OpenRouter answers for a
//!   few seconds after a generation ends, plus 429, 5xx and timeouts, and never leaks the key;
//! * [`parse_generation_list`]: a JSON array of `data` objects (fixtures, archives).
//!
//! ```no_run
//! use orgusage_openrouter::{FetcherConfig, GenerationFetcher, ResolvedUser};
//! # fn client() -> orgusage_domain::ClientOrganization { unimplemented!() }
//!
//! let client = client();
//! let fetcher = GenerationFetcher::new(FetcherConfig::default());
//! let generation = fetcher.fetch_for_client(&client, "gen-1761951600-abc")?;
//! let user = ResolvedUser::resolve(&generation, &client, &[]);
//! let record = generation.to_usage_record(&client, &user)?;
//! // Book `record` idempotently under (client.id, generation.generation_id()).
//! # let _ = record;
//! # Ok::<(), orgusage_openrouter::OpenRouterError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod fetcher;
mod generation;
pub mod http;
mod record;

pub use error::OpenRouterError;
pub use fetcher::{FetcherConfig, GenerationFetcher, Sleep, ThreadSleep, exponential_backoff};
pub use generation::{Generation, parse_generation_list};
pub use record::{ResolvedUser, TokenCounting, UNKNOWN_USER};
