//! The host-supplied keys and the two things they do: seal/open a secret bound to its row, and
//! compute the keyed lookup hash of a secret.

use std::fmt;

use base64ct::{Base64, Encoding};
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use orgusage_domain::{EncryptionErrorKind, Error, Result, Secret};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::format::{NONCE_LEN, StoredSecret, encode_v1, validate_key_id};

/// Length of a host key: 32 bytes (256 bits) of uniformly random data.
pub const KEY_LEN: usize = 32;

/// Which stored column (and row) a secret belongs to. It is the associated data of the cipher,
/// so a ciphertext opens only in the row and column it was written for: copying client A's
/// encrypted key into client B's row makes B's key fail to decrypt instead of handing A's key
/// to whoever reads B.
#[derive(Debug, Clone, Copy)]
pub struct SecretField<'a> {
    /// `table.column`, e.g. [`CLIENT_API_KEY`].
    pub column: &'static str,
    /// The row's primary key.
    pub row_id: &'a str,
}

/// The column of client API keys.
pub const CLIENT_API_KEY: &str = "client_organizations.openrouter_api_key";
/// The column of the provisioning key.
pub const PROVISIONING_KEY: &str = "global_settings.openrouter_provisioning_key";

impl<'a> SecretField<'a> {
    /// Client `client_id`'s OpenRouter API key.
    pub fn client_api_key(client_id: &'a str) -> Self {
        Self {
            column: CLIENT_API_KEY,
            row_id: client_id,
        }
    }

    /// The provisioning key of the settings row `settings_id`.
    pub fn provisioning_key(settings_id: &'a str) -> Self {
        Self {
            column: PROVISIONING_KEY,
            row_id: settings_id,
        }
    }

    fn aad(&self, key_id: &str) -> String {
        // The row id comes last: it is the only part that may contain ':'.
        format!("orgusage:v1:{key_id}:{}:{}", self.column, self.row_id)
    }

    fn describe(&self, key_id: Option<&str>) -> String {
        match key_id {
            Some(k) => format!("{} of row {:?} (key id {k:?})", self.column, self.row_id),
            None => format!("{} of row {:?}", self.column, self.row_id),
        }
    }
}

/// One key of the ring, as derived sub-keys: the host key itself is not kept.
struct RingKey {
    id: String,
    cipher_key: Zeroizing<[u8; KEY_LEN]>,
    lookup_key: Zeroizing<[u8; KEY_LEN]>,
}

impl RingKey {
    fn derive(id: &str, mut host_key: [u8; KEY_LEN]) -> Result<Self> {
        validate_key_id(id)?;
        // Two independent sub-keys from one host key (HKDF-SHA256, distinct labels): the lookup
        // hash then reveals nothing usable against the cipher and the other way round.
        let hk = Hkdf::<Sha256>::new(Some(b"orgusage key ring"), &host_key);
        host_key.zeroize();
        let mut cipher_key = Zeroizing::new([0u8; KEY_LEN]);
        let mut lookup_key = Zeroizing::new([0u8; KEY_LEN]);
        let expanded = hk
            .expand(b"orgusage v1 secret encryption", cipher_key.as_mut())
            .and_then(|()| hk.expand(b"orgusage v1 lookup hmac", lookup_key.as_mut()));
        expanded.map_err(|_| config("HKDF expansion failed"))?;
        Ok(Self {
            id: id.to_string(),
            cipher_key,
            lookup_key,
        })
    }

    fn lookup(&self, plaintext: &str) -> String {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.lookup_key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(plaintext.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("v1:{}:{}", self.id, Base64::encode_string(&tag))
    }
}

/// The keys that protect stored secrets: the current key (id + 32 bytes), which seals every new
/// value and computes lookup hashes, and older keys that are only used to open (and, through
/// `rotate_keys`, re-seal) values written under them.
///
/// The 32-byte host keys are not kept: two sub-keys are derived from each (HKDF-SHA256) and held
/// in memory that is zeroed on drop. `Debug` shows key ids only.
///
/// ```
/// use orgusage_crypto::KeyRing;
/// let ring = KeyRing::new("2026-11", [7u8; 32])?.with_previous_key("2025-01", [9u8; 32])?;
/// assert_eq!(ring.current_key_id(), "2026-11");
/// assert_eq!(format!("{ring:?}"), r#"KeyRing { current: "2026-11", previous: ["2025-01"] }"#);
/// # Ok::<(), orgusage_domain::Error>(())
/// ```
pub struct KeyRing {
    current: RingKey,
    previous: Vec<RingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// A ring whose current key is `host_key` under `key_id` (see
    /// [`validate_key_id`](crate::validate_key_id)). Generate the key with a CSPRNG, e.g.
    /// `openssl rand -base64 32`, and keep it outside the database and its backups.
    pub fn new(key_id: &str, host_key: [u8; KEY_LEN]) -> Result<Self> {
        Ok(Self {
            current: RingKey::derive(key_id, host_key)?,
            previous: Vec::new(),
        })
    }

    /// [`KeyRing::new`] from the key in standard base64 (44 characters for 32 bytes).
    ///
    /// ```
    /// let ring = orgusage_crypto::KeyRing::from_base64("k1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
    /// assert!(orgusage_crypto::KeyRing::from_base64("k1", "c2hvcnQ=").is_err()); // 5 bytes
    /// # Ok::<(), orgusage_domain::Error>(())
    /// ```
    pub fn from_base64(key_id: &str, host_key_base64: &str) -> Result<Self> {
        Self::new(key_id, decode_key(host_key_base64)?)
    }

    /// Adds an older key, used only to open values sealed under `key_id`.
    pub fn with_previous_key(mut self, key_id: &str, host_key: [u8; KEY_LEN]) -> Result<Self> {
        let key = RingKey::derive(key_id, host_key)?;
        if self.key(key_id).is_some() {
            return Err(config(&format!("key id {key_id:?} is in the ring twice")));
        }
        self.previous.push(key);
        Ok(self)
    }

    /// [`KeyRing::with_previous_key`] from standard base64.
    pub fn with_previous_key_base64(self, key_id: &str, host_key_base64: &str) -> Result<Self> {
        let key = decode_key(host_key_base64)?;
        self.with_previous_key(key_id, key)
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Every key id, current first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.id.as_str())
    }

    fn key(&self, key_id: &str) -> Option<&RingKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
    }

    /// Seals `plaintext` for `field` under the current key with a fresh random 24-byte nonce:
    /// `enc:v1:<key-id>:<base64(nonce ‖ ciphertext ‖ tag)>`.
    ///
    /// ```
    /// use orgusage_crypto::{KeyRing, SecretField};
    /// let ring = KeyRing::new("k1", [1u8; 32])?;
    /// let field = SecretField::client_api_key("client_a");
    /// let stored = ring.encrypt(field, "sk-or-v1-secret")?;
    /// assert!(stored.starts_with("enc:v1:k1:") && !stored.contains("secret"));
    /// assert_eq!(ring.decrypt(field, &stored)?.expose(), "sk-or-v1-secret");
    /// // The same ciphertext in another row does not open.
    /// assert!(ring.decrypt(SecretField::client_api_key("client_b"), &stored).is_err());
    /// # Ok::<(), orgusage_domain::Error>(())
    /// ```
    pub fn encrypt(&self, field: SecretField<'_>, plaintext: &str) -> Result<String> {
        let key = &self.current;
        let mut nonce = [0u8; NONCE_LEN];
        // try_fill_bytes: an RNG failure is a typed error, not a panic and never a zero nonce.
        OsRng.try_fill_bytes(&mut nonce).map_err(|_| {
            Error::encryption(
                EncryptionErrorKind::Randomness,
                format!("no nonce for {}", field.describe(Some(&key.id))),
            )
        })?;
        let cipher = XChaCha20Poly1305::new(key.cipher_key.as_ref().into());
        let aad = field.aad(&key.id);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::encryption(
                    EncryptionErrorKind::Configuration,
                    format!("sealing failed for {}", field.describe(Some(&key.id))),
                )
            })?;
        let mut payload = Vec::with_capacity(NONCE_LEN + ct.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&ct);
        Ok(encode_v1(&key.id, &payload))
    }

    /// Opens a value written by [`KeyRing::encrypt`] for the same `field`. A plaintext value is
    /// an error here (use [`reveal`] to accept both); so is an unknown key id, a wrong key, an
    /// altered value or a value copied from another row or column.
    pub fn decrypt(&self, field: SecretField<'_>, stored: &str) -> Result<Secret> {
        let sealed = match StoredSecret::parse(stored).map_err(|e| locate(e, field))? {
            StoredSecret::Sealed(sealed) => sealed,
            StoredSecret::Plain(_) => {
                return Err(Error::encryption(
                    EncryptionErrorKind::Malformed,
                    format!("{} is not encrypted", field.describe(None)),
                ));
            }
        };
        let Some(key) = self.key(sealed.key_id) else {
            return Err(Error::encryption(
                EncryptionErrorKind::UnknownKeyId,
                format!(
                    "{} was sealed under a key id the key ring does not hold (ring: {:?})",
                    field.describe(Some(sealed.key_id)),
                    self.key_ids().collect::<Vec<_>>()
                ),
            ));
        };
        let (nonce, ct) = sealed.payload.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(key.cipher_key.as_ref().into());
        let aad = field.aad(&key.id);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::encryption(
                    EncryptionErrorKind::Authentication,
                    format!(
                        "{} does not open: wrong key for this key id, or the value was altered or copied from another row",
                        field.describe(Some(&key.id))
                    ),
                )
            })?;
        let text = std::str::from_utf8(&plain).map_err(|_| {
            Error::encryption(
                EncryptionErrorKind::Malformed,
                format!(
                    "{} opened to non-UTF-8 bytes",
                    field.describe(Some(&key.id))
                ),
            )
        })?;
        Ok(Secret::new(text))
    }

    /// True when `stored` is sealed under the current key (nothing to rotate).
    pub fn is_current(&self, stored: &str) -> bool {
        matches!(StoredSecret::parse(stored), Ok(StoredSecret::Sealed(s)) if s.key_id == self.current.id)
    }

    /// The lookup hash of `plaintext` under the current key: `v1:<key-id>:<base64 HMAC-SHA256>`.
    /// Equal secrets give equal hashes, so a unique index on it keeps keys unique and an equality
    /// lookup finds a row; without the key nobody can compute (or test guesses against) it.
    ///
    /// ```
    /// let ring = orgusage_crypto::KeyRing::new("k1", [1u8; 32])?;
    /// let h = ring.lookup_hash("sk-or-v1-secret");
    /// assert_eq!(h, ring.lookup_hash("sk-or-v1-secret"));
    /// assert!(h.starts_with("v1:k1:") && !h.contains("secret"));
    /// # Ok::<(), orgusage_domain::Error>(())
    /// ```
    pub fn lookup_hash(&self, plaintext: &str) -> String {
        self.current.lookup(plaintext)
    }

    /// The lookup hash of `plaintext` under every key of the ring, current first: a row not yet
    /// rotated still carries the hash of its old key.
    pub fn lookup_hashes(&self, plaintext: &str) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.lookup(plaintext))
            .collect()
    }
}

/// Reads a stored secret column: plaintext is returned as is; an encrypted value is opened with
/// `ring`, and is a [`EncryptionErrorKind::NoKey`] error when there is none.
///
/// ```
/// use orgusage_crypto::{reveal, KeyRing, SecretField};
/// let field = SecretField::client_api_key("c1");
/// assert_eq!(reveal(None, field, "sk-plain")?.expose(), "sk-plain");
/// let ring = KeyRing::new("k1", [3u8; 32])?;
/// let stored = ring.encrypt(field, "sk-sealed")?;
/// assert_eq!(reveal(Some(&ring), field, &stored)?.expose(), "sk-sealed");
/// assert!(reveal(None, field, &stored).is_err());
/// # Ok::<(), orgusage_domain::Error>(())
/// ```
pub fn reveal(ring: Option<&KeyRing>, field: SecretField<'_>, stored: &str) -> Result<Secret> {
    if !StoredSecret::is_encrypted(stored) {
        return Ok(Secret::new(stored));
    }
    match ring {
        Some(ring) => ring.decrypt(field, stored),
        None => Err(Error::encryption(
            EncryptionErrorKind::NoKey,
            format!(
                "{} is encrypted but the store was opened without a key ring (StoreConfig::encryption)",
                field.describe(None)
            ),
        )),
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn decode_key(b64: &str) -> Result<[u8; KEY_LEN]> {
    let mut bytes = Zeroizing::new(
        Base64::decode_vec(b64.trim()).map_err(|_| config("the key is not standard base64"))?,
    );
    if bytes.len() != KEY_LEN {
        return Err(config(&format!(
            "the key must be {KEY_LEN} bytes, got {}",
            bytes.len()
        )));
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(key)
}

fn config(why: &str) -> Error {
    Error::encryption(EncryptionErrorKind::Configuration, why.to_string())
}

/// Adds the row to a parse error raised without one.
fn locate(e: Error, field: SecretField<'_>) -> Error {
    match e {
        Error::Encryption { kind, detail } => {
            Error::encryption(kind, format!("{}: {detail}", field.describe(None)))
        }
        other => other,
    }
}
