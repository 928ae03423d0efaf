//! Encryption at rest of orgusage's stored secrets (client OpenRouter API keys, the provisioning
//! key), with one job: turn a secret and the row it belongs to into a stored value and back.
//!
//! * Cipher: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`), a fresh random 24-byte nonce per
//!   value (large enough that random nonces never collide in practice), and the row's identity
//!   (`table.column` + primary key + key id) as associated data, so a ciphertext opens only in the
//!   row it was written for.
//! * Stored format: `enc:v1:<key-id>:<base64(nonce ‖ ciphertext ‖ tag)>`; anything without the
//!   `enc:` prefix is a plaintext row written while encryption was off (see [`StoredSecret`]).
//! * Lookup: `v1:<key-id>:<base64 HMAC-SHA256(lookup key, secret)>`, indexed and unique in the
//!   database, so finding a client by its key stays one equality lookup.
//! * Keys: a [`KeyRing`] of host-supplied 32-byte keys, the current one plus older ones for
//!   decryption during rotation; two sub-keys are derived from each with HKDF-SHA256.
//!
//! Pure: no I/O besides the operating system's random number generator for nonces.
#![deny(missing_docs)]

mod format;
mod keyring;

pub use format::{
    ENCRYPTED_PREFIX, MAX_KEY_ID_LEN, Sealed, StoredSecret, check_plaintext, validate_key_id,
};
pub use keyring::{
    CLIENT_API_KEY, KEY_LEN, KeyRing, PROVISIONING_KEY, SecretField, reveal, secrets_equal,
};
