//! The explicit [`Store`]: a connected, migrated database plus the clock. Hosts may hold as many
//! as they like (dependency injection); the global handles use the one installed by `init`.

use std::sync::Arc;
use std::time::Duration;

use orgusage_db::{
    Backend, BillingCache, ClientRepo, Database, DbConfig, GenerationRepo, GroupCommit,
    MappingRepo, SettingsRepo, UsageRepo,
};
use orgusage_domain::usage::CatalogueModel;
use orgusage_domain::{Clock, Result, SystemClock};

/// How to open a [`Store`].
///
/// ```
/// use orgusage::StoreConfig;
/// let config = StoreConfig::new(":memory:").max_connections(1);
/// let store = orgusage::Store::open(config).unwrap();
/// assert_eq!(store.backend(), orgusage::Backend::Sqlite);
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    db: DbConfig,
    clock: Arc<dyn Clock>,
    catalogue: Vec<CatalogueModel>,
    group_commit: bool,
}

impl StoreConfig {
    /// Defaults for `database_url` (see [`Backend::from_url`] for accepted URLs), system clock.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            db: DbConfig::new(database_url),
            clock: Arc::new(SystemClock),
            catalogue: Vec::new(),
            group_commit: false,
        }
    }

    /// Uses `clock` for every "now" (tests, replays).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Models listed with zeros in `get_usage_by_model` when they have no usage (default: none;
    /// models with usage are always listed).
    pub fn model_catalogue(mut self, models: impl IntoIterator<Item = CatalogueModel>) -> Self {
        self.catalogue = models.into_iter().collect();
        self
    }

    /// Pool size (default 8 for SQLite files, 1 for SQLite `:memory:`, 10 for PostgreSQL).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.db.max_connections = Some(n);
        self
    }

    /// Whether to ping a connection when it leaves the pool (default: off for SQLite, on for
    /// PostgreSQL so connections killed by a server restart are replaced; the ping costs a
    /// round trip per operation).
    pub fn test_connections_on_checkout(mut self, test: bool) -> Self {
        self.db.test_on_checkout = Some(test);
        self
    }

    /// How long to wait for a pooled connection (default 30 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.db.connection_timeout = timeout;
        self
    }

    /// Group commit (default off): concurrent `record_usage` / `record_generation` calls of
    /// this store whose calls overlap share one transaction, each caller still answered only
    /// after its own record committed, with its own result (see `docs/performance.md` for the
    /// measurements and why it is not the default). A lone caller takes the ordinary path.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, Store, StoreConfig, UsageRecord};
    ///
    /// let store = Store::open(StoreConfig::new(":memory:").group_commit(true))?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let done = store.usage().record_usage(&UsageRecord::new(&c.id, "u1", "or-u1", "openai/gpt-4.1").tokens(10, 5))?;
    /// assert_eq!(done.total_tokens, 15);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// SQLite `busy_timeout`: how long to wait for another process's write lock (default 30 s).
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.db.sqlite_busy_timeout = timeout;
        self
    }
}

impl From<&str> for StoreConfig {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for StoreConfig {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

#[derive(Debug)]
struct Inner {
    db: Database,
    clock: Arc<dyn Clock>,
    catalogue: Vec<CatalogueModel>,
    group: Option<GroupCommit>,
    billing: BillingCache,
}

/// A connected, migrated orgusage store. Cheap to clone (one `Arc`); share it across threads.
///
/// ```
/// use orgusage::{ClientOrganizationForm, Store};
///
/// let store = Store::open(":memory:")?;
/// let client = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
/// assert_eq!(store.clients().get_client_by_id(&client.id)?.unwrap().name, "Acme");
/// # Ok::<(), orgusage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Connects, applies the embedded migrations and returns the store.
    pub fn open(config: impl Into<StoreConfig>) -> Result<Self> {
        let config = config.into();
        let db = Database::connect(&config.db)?;
        let group = config.group_commit.then(|| GroupCommit::new(db.backend()));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                clock: config.clock,
                catalogue: config.catalogue,
                group,
                billing: BillingCache::new(),
            }),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.inner.db.backend()
    }

    /// The clock every operation of this store reads.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The underlying database (pool); for advanced use such as migration tooling.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// `GlobalSettingsDb` operations.
    pub fn settings(&self) -> SettingsRepo<'_> {
        SettingsRepo::new(&self.inner.db, self.clock())
    }

    /// `ClientOrganizationDb` operations.
    pub fn clients(&self) -> ClientRepo<'_> {
        ClientRepo::new(&self.inner.db, self.clock())
    }

    /// `UserClientMappingDb` operations.
    pub fn mappings(&self) -> MappingRepo<'_> {
        MappingRepo::new(&self.inner.db, self.clock())
    }

    /// `ClientUsageDb` operations: recording and reports.
    pub fn usage(&self) -> crate::usage::Usage {
        crate::usage::Usage {
            store: self.clone(),
        }
    }

    pub(crate) fn usage_repo(&self) -> UsageRepo<'_> {
        UsageRepo::new(&self.inner.db, self.clock(), &self.inner.catalogue)
            .with_billing_cache(&self.inner.billing)
    }

    /// The group-commit queue, when enabled.
    pub(crate) fn group(&self) -> Option<&GroupCommit> {
        self.inner.group.as_ref()
    }

    /// `ProcessedGenerationDb` operations: the exactly-once ledger and its retention cleanup.
    pub fn generations(&self) -> GenerationRepo<'_> {
        GenerationRepo::new(&self.inner.db, self.clock())
    }
}
