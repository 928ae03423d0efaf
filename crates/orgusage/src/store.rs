//! The explicit [`Store`]: a connected, migrated database plus the clock. Hosts may hold as many
//! as they like (dependency injection); the global handles use the one installed by `init`.

use std::sync::Arc;
use std::time::Duration;

use orgusage_crypto::KeyRing;
use orgusage_db::{
    Backend, BillingCache, ClientRepo, Database, DbConfig, GenerationRepo, GroupCommit,
    KeyMaintenance, KeyMigrationReport, MappingRepo, SettingsRepo, SqliteSynchronous, UsageRepo,
};
use orgusage_domain::usage::CatalogueModel;
use orgusage_domain::{Clock, EncryptionErrorKind, Error, Result, SystemClock};

/// How to open a [`Store`].
///
/// ```
/// use orgusage::StoreConfig;
/// let config = StoreConfig::new(":memory:").max_connections(1);
/// let store = orgusage::Store::open(config).unwrap();
/// assert_eq!(store.backend(), orgusage::db::Backend::Sqlite);
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    db: DbConfig,
    clock: Arc<dyn Clock>,
    catalogue: Vec<CatalogueModel>,
    keys: Option<Arc<KeyRing>>,
    /// `None`: decided at open by [`StoreConfig::group_commit`]'s rule.
    group_commit: Option<bool>,
}

impl StoreConfig {
    /// Defaults for `database_url` (see [`Backend::from_url`] for accepted URLs), system clock.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            db: DbConfig::new(database_url),
            clock: Arc::new(SystemClock),
            catalogue: Vec::new(),
            keys: None,
            group_commit: None,
        }
    }

    /// Encrypts client API keys and the provisioning key at rest with `keys` (default: off,
    /// plaintext). New and updated keys are sealed under the ring's current key; rows written
    /// before stay readable and are encrypted by [`Store::encrypt_existing_keys`]. Every
    /// instance on the database needs the same ring. See `docs/operations.md`, "Keys at rest".
    ///
    /// ```
    /// use orgusage::db::KeyRing;
    /// use orgusage::{ClientOrganizationForm, Store, StoreConfig};
    /// let ring = KeyRing::from_base64("2026-11", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
    /// let store = Store::open(StoreConfig::new(":memory:").encryption(ring))?;
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// assert_eq!(store.clients().get_client_by_api_key("sk-or-v1-A")?.unwrap().id, c.id);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn encryption(mut self, keys: KeyRing) -> Self {
        self.keys = Some(Arc::new(keys));
        self
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

    /// Pool size: the most connections this store opens (default 8 for SQLite files, 1 for
    /// SQLite `:memory:`, 4 for PostgreSQL so that 20 instances fit a server with the default
    /// `max_connections = 100`). Pools open one connection up front and grow on demand.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.db.max_connections = Some(n);
        self
    }

    /// PostgreSQL: how many instances share the server (default 20). At `open` a `tracing`
    /// warning is emitted when `instances × max_connections` exceeds the server's
    /// `max_connections − superuser_reserved_connections − reserved_connections`.
    ///
    /// ```
    /// use orgusage::StoreConfig;
    /// // 40 instances × pools of 2 = 80 server connections.
    /// let config = StoreConfig::new("postgres://app@db/billing").expected_instances(40).max_connections(2);
    /// # let _ = config;
    /// ```
    pub fn expected_instances(mut self, n: u32) -> Self {
        self.db.expected_instances = n;
        self
    }

    /// Pooled connections idle this long are closed, so a pool shrinks after a burst (default
    /// 60 s; `None` keeps them open). One connection always stays open. In-memory SQLite pools
    /// ignore it: their connection *is* the database.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.db.idle_timeout = timeout;
        self
    }

    /// PostgreSQL: the URL points at PgBouncer in **transaction** pooling mode (default off).
    /// Turns prepared-statement caching off, so every statement is sent unnamed (parse and
    /// execute in one round trip), and skips the connection-budget check, which PgBouncer's
    /// own pool size takes over. Session pooling needs no switch.
    ///
    /// ```
    /// use orgusage::StoreConfig;
    /// let config = StoreConfig::new("postgres://app@127.0.0.1:6432/billing").pgbouncer(true);
    /// # let _ = config;
    /// ```
    pub fn pgbouncer(mut self, transaction_mode: bool) -> Self {
        self.db.pgbouncer = transaction_mode;
        self
    }

    /// SQLite: when an acknowledged commit is on stable storage (default
    /// [`SqliteSynchronous::Full`]: it survives a power loss; `Normal` only a process crash).
    ///
    /// ```
    /// use orgusage::db::SqliteSynchronous;
    /// use orgusage::{Store, StoreConfig};
    /// let store = Store::open(StoreConfig::new(":memory:").sqlite_synchronous(SqliteSynchronous::Normal))?;
    /// # let _ = store;
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn sqlite_synchronous(mut self, level: SqliteSynchronous) -> Self {
        self.db.sqlite_synchronous = level;
        self
    }

    /// Whether to ping every connection when it leaves the pool (`true`) or none (`false`).
    /// Default: none on SQLite; on PostgreSQL only connections that sat idle in the pool for
    /// [`IDLE_CHECK_AFTER`](crate::db::IDLE_CHECK_AFTER) (2 s) or were never used, so
    /// connections killed by a server restart are replaced before a caller gets one, while a
    /// busy instance sends no ping (it cost a round trip per operation).
    pub fn test_connections_on_checkout(mut self, test: bool) -> Self {
        self.db.test_on_checkout = Some(test);
        self
    }

    /// How long an operation waits for a pooled connection (default 30 s). Then it fails with
    /// `Database { kind: PoolTimeout }` when every connection stayed busy, or
    /// `Database { kind: Connection }` when the server could not be reached or refused.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.db.connection_timeout = timeout;
        self
    }

    /// Group commit: concurrent `record_usage` / `record_generation` calls of this store whose
    /// calls overlap share one transaction, each caller still answered only after its own record
    /// committed, with its own result and its own error. A lone caller takes the ordinary path
    /// (no timer, no wait), so grouping only ever engages when calls overlap.
    ///
    /// **Default: on for a SQLite file at `synchronous = FULL`** (the library's default
    /// durability), **off otherwise**. Measured (`docs/performance.md`, interleaved, records per
    /// second against the same code ungrouped): on SQLite at `FULL` every commit is an fsync and
    /// grouping wins at every measured point from two callers on (1.3x at 2 callers, 2.7-4x at
    /// 8, 6-8.5x at 32; one client or eight). On PostgreSQL it wins for many callers of one
    /// client (2.5x at 8, 6.7x at 32) but loses 15 % for callers spread over eight clients, and
    /// at SQLite `NORMAL` a commit costs too little for it to matter (0.9-1.15x); those stay off
    /// unless you turn it on. `group_commit(false)` turns it off everywhere.
    ///
    /// ```
    /// use orgusage::{ClientOrganizationForm, Store, StoreConfig, UsageRecord};
    ///
    /// let store = Store::open(StoreConfig::new(":memory:").group_commit(true))?;
    /// assert!(store.group_commit_enabled());
    /// let c = store.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let done = store.usage().record_usage(&UsageRecord::new(&c.id, "u1", "or-u1", "openai/gpt-4.1").tokens(10, 5))?;
    /// assert_eq!(done.total_tokens, 15);
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = Some(on);
        self
    }

    /// SQLite `busy_timeout`: how long to wait for another process's write lock (default 30 s).
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.db.sqlite_busy_timeout = timeout;
        self
    }
}

impl StoreConfig {
    /// The measured rule of [`StoreConfig::group_commit`]: grouping pays where each commit is an
    /// fsync, that is a SQLite file at `synchronous = FULL`. An in-memory database has no fsync
    /// to share.
    fn groups_by_default(&self, backend: Backend) -> bool {
        backend == Backend::Sqlite
            && self.db.sqlite_synchronous == SqliteSynchronous::Full
            && !self.db.is_sqlite_in_memory()
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
    keys: Option<Arc<KeyRing>>,
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
        if config.keys.is_none() && orgusage_db::admin::encrypted_keys_present(&db)? {
            // Opening still succeeds: usage recording and reports need no key. Reads of the
            // keys fail with Error::Encryption { kind: NoKey }; say why once, up front.
            tracing::warn!(
                "the database holds encrypted API keys but the store was opened without a key \
                 ring (StoreConfig::encryption); reading or writing keys will fail"
            );
        }
        let group = config
            .group_commit
            .unwrap_or_else(|| config.groups_by_default(db.backend()))
            .then(|| GroupCommit::new(db.backend()));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                clock: config.clock,
                catalogue: config.catalogue,
                keys: config.keys,
                group,
                billing: BillingCache::new(),
            }),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.inner.db.backend()
    }

    /// Whether concurrent single-record writes of this store are grouped into shared
    /// transactions (see [`StoreConfig::group_commit`] for the default rule).
    pub fn group_commit_enabled(&self) -> bool {
        self.inner.group.is_some()
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
        SettingsRepo::new(&self.inner.db, self.clock()).with_key_ring(self.inner.keys.as_deref())
    }

    /// `ClientOrganizationDb` operations.
    pub fn clients(&self) -> ClientRepo<'_> {
        ClientRepo::new(&self.inner.db, self.clock()).with_key_ring(self.inner.keys.as_deref())
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

    /// Encrypts every API key and the provisioning key still stored in plaintext, in batches of
    /// [`DEFAULT_KEY_BATCH`](crate::db::DEFAULT_KEY_BATCH) rows, each batch one transaction. Idempotent; safe while
    /// other instances (with the same key ring) run. Needs [`StoreConfig::encryption`].
    ///
    /// ```
    /// use orgusage::db::KeyRing;
    /// use orgusage::{ClientOrganizationForm, Store, StoreConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let url = dir.path().join("o.db").display().to_string();
    /// let plain = Store::open(url.as_str())?;
    /// plain.clients().create_client(&ClientOrganizationForm::new("Acme"), &"sk-or-v1-A".into(), None)?;
    /// let ring = KeyRing::new("k1", [7u8; 32])?;
    /// let store = Store::open(StoreConfig::new(url).encryption(ring))?;
    /// assert_eq!(store.encrypt_existing_keys()?.clients_updated, 1);
    /// assert_eq!(store.encrypt_existing_keys()?.clients_updated, 0); // idempotent
    /// assert!(store.clients().get_client_by_api_key("sk-or-v1-A")?.is_some());
    /// # Ok::<(), orgusage::Error>(())
    /// ```
    pub fn encrypt_existing_keys(&self) -> Result<KeyMigrationReport> {
        self.key_maintenance()?.encrypt_existing_keys()
    }

    /// Re-encrypts every value sealed under an older key of the ring with the current key and
    /// recomputes its lookup hash, in batches of one transaction each. When it returns, the
    /// older keys can be removed from the ring. Needs [`StoreConfig::encryption`].
    pub fn rotate_keys(&self) -> Result<KeyMigrationReport> {
        self.key_maintenance()?.rotate_keys()
    }

    /// [`KeyMaintenance`] with this store's key ring, e.g. for another batch size.
    pub fn key_maintenance(&self) -> Result<KeyMaintenance<'_>> {
        let keys = self.inner.keys.as_deref().ok_or_else(|| {
            Error::encryption(
                EncryptionErrorKind::NoKey,
                "key maintenance needs a key ring (StoreConfig::encryption)",
            )
        })?;
        Ok(KeyMaintenance::new(&self.inner.db, keys))
    }
}
