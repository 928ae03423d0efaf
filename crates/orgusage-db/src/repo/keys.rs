//! Maintenance of the encrypted secret columns: encrypting rows written in plaintext and
//! re-sealing rows under older keys, in batches of one transaction each.

use diesel::prelude::*;
use orgusage_crypto::{KeyRing, SecretField, StoredSecret, reveal};
use orgusage_domain::{GLOBAL_SETTINGS_ID, Result};

use crate::schema::client_organizations::dsl as co;
use crate::schema::global_settings::dsl as gs;
use crate::{Database, write_tx};

/// Rows per transaction by default: short enough that a batch holds the write lock (SQLite) or
/// row locks (PostgreSQL) for milliseconds, large enough that a few thousand clients take a
/// handful of commits.
pub const DEFAULT_KEY_BATCH: usize = 500;

/// What [`KeyMaintenance::encrypt_existing_keys`] or [`KeyMaintenance::rotate_keys`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMigrationReport {
    /// Client rows whose API key was (re-)encrypted.
    pub clients_updated: u64,
    /// Client rows looked at.
    pub clients_scanned: u64,
    /// Whether the provisioning key was (re-)encrypted.
    pub provisioning_key_updated: bool,
    /// Transactions committed.
    pub batches: u64,
}

/// Which rows a sweep re-seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// Plaintext rows.
    Encrypt,
    /// Rows sealed, or hashed, under a key other than the current one.
    Rotate,
}

/// Encrypts and rotates the stored secrets of one database with one key ring.
#[derive(Debug, Clone, Copy)]
pub struct KeyMaintenance<'a> {
    db: &'a Database,
    keys: &'a KeyRing,
    batch: usize,
}

impl<'a> KeyMaintenance<'a> {
    /// Maintenance of `db` with `keys`, [`DEFAULT_KEY_BATCH`] rows per transaction.
    pub fn new(db: &'a Database, keys: &'a KeyRing) -> Self {
        Self {
            db,
            keys,
            batch: DEFAULT_KEY_BATCH,
        }
    }

    /// Rows per transaction (at least 1).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch = rows.max(1);
        self
    }

    /// Encrypts every plaintext API key and the provisioning key under the current key and fills
    /// the lookup hashes. Idempotent: a second run changes nothing. Safe next to running
    /// instances that have the same key ring (each row is rewritten only if it still holds the
    /// value read in the same transaction).
    pub fn encrypt_existing_keys(&self) -> Result<KeyMigrationReport> {
        let _span = tracing::info_span!("orgusage.keys.encrypt_existing").entered();
        self.sweep(Sweep::Encrypt)
    }

    /// Re-seals every value sealed under an older key of the ring with the current key and
    /// recomputes its lookup hash (the hash key is derived from the same host key, so it changes
    /// too). Plaintext rows are left to [`KeyMaintenance::encrypt_existing_keys`]. A row whose
    /// key id the ring does not hold, or that fails authentication, stops the run with that
    /// typed error; the batches before it stay committed, and a rerun continues.
    pub fn rotate_keys(&self) -> Result<KeyMigrationReport> {
        let _span = tracing::info_span!(
            "orgusage.keys.rotate",
            current_key_id = self.keys.current_key_id()
        )
        .entered();
        self.sweep(Sweep::Rotate)
    }

    fn wanted(&self, sweep: Sweep, stored: &str, lookup: Option<&str>) -> bool {
        match sweep {
            Sweep::Encrypt => !StoredSecret::is_encrypted(stored),
            Sweep::Rotate => {
                let current_hash = format!("v1:{}:", self.keys.current_key_id());
                StoredSecret::is_encrypted(stored)
                    && (!self.keys.is_current(stored)
                        || !lookup.is_some_and(|l| l.starts_with(&current_hash)))
            }
        }
    }

    fn sweep(&self, sweep: Sweep) -> Result<KeyMigrationReport> {
        let ring = self.keys;
        let mut report = KeyMigrationReport::default();
        // Keyset pagination by primary key: each batch is its own transaction and a batch never
        // rereads rows of an earlier one, so the run ends even if rows are added meanwhile.
        let mut after = String::new();
        loop {
            let limit = i64::try_from(self.batch).unwrap_or(i64::MAX);
            let (scanned, updated, last) = write_tx!(self.db, |conn| {
                let rows: Vec<(String, String, Option<String>)> = co::client_organizations
                    .filter(co::id.gt(&after))
                    .order(co::id.asc())
                    .limit(limit)
                    .select((
                        co::id,
                        co::openrouter_api_key,
                        co::openrouter_api_key_lookup,
                    ))
                    .load(conn)?;
                let mut updated = 0u64;
                for (id, stored, lookup) in &rows {
                    if !self.wanted(sweep, stored, lookup.as_deref()) {
                        continue;
                    }
                    let field = SecretField::client_api_key(id);
                    let plain = reveal(Some(ring), field, stored)?;
                    let sealed = ring.encrypt(field, plain.expose())?;
                    let hash = ring.lookup_hash(plain.expose());
                    // Conditional on the value just read: a concurrent update_api_key wins.
                    updated += diesel::update(
                        co::client_organizations
                            .filter(co::id.eq(id).and(co::openrouter_api_key.eq(stored))),
                    )
                    .set((
                        co::openrouter_api_key.eq(&sealed),
                        co::openrouter_api_key_lookup.eq(&hash),
                    ))
                    .execute(conn)? as u64;
                }
                Ok((rows.len(), updated, rows.last().map(|r| r.0.clone())))
            })?;
            report.batches += 1;
            report.clients_scanned += scanned as u64;
            report.clients_updated += updated;
            match last {
                Some(id) if scanned == self.batch => after = id,
                _ => break,
            }
        }
        report.provisioning_key_updated = self.sweep_settings(sweep)?;
        if report.provisioning_key_updated {
            report.batches += 1;
        }
        tracing::info!(
            clients_updated = report.clients_updated,
            provisioning_key_updated = report.provisioning_key_updated,
            "stored keys re-sealed"
        );
        Ok(report)
    }

    fn sweep_settings(&self, sweep: Sweep) -> Result<bool> {
        let ring = self.keys;
        write_tx!(self.db, |conn| {
            let stored: Option<Option<String>> = gs::global_settings
                .filter(gs::id.eq(GLOBAL_SETTINGS_ID))
                .select(gs::openrouter_provisioning_key)
                .first(conn)
                .optional()?;
            let Some(stored) = stored.flatten() else {
                return Ok(false);
            };
            let wanted = match sweep {
                Sweep::Encrypt => !StoredSecret::is_encrypted(&stored),
                Sweep::Rotate => StoredSecret::is_encrypted(&stored) && !ring.is_current(&stored),
            };
            if !wanted {
                return Ok(false);
            }
            let field = SecretField::provisioning_key(GLOBAL_SETTINGS_ID);
            let plain = reveal(Some(ring), field, &stored)?;
            let sealed = ring.encrypt(field, plain.expose())?;
            let n = diesel::update(
                gs::global_settings.filter(
                    gs::id
                        .eq(GLOBAL_SETTINGS_ID)
                        .and(gs::openrouter_provisioning_key.eq(&stored)),
                ),
            )
            .set(gs::openrouter_provisioning_key.eq(&sealed))
            .execute(conn)?;
            Ok(n > 0)
        })
    }
}
