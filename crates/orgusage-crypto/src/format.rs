//! The stored format of a secret column: plaintext, or `enc:v1:<key-id>:<base64(nonce ‖ ciphertext)>`.
//!
//! The format is self-describing so that one table can hold plaintext rows (written before
//! encryption was turned on), rows under older keys and rows under the current key at the same
//! time, and so that every row says which key opens it. Parsing never panics and never guesses:
//! a value that starts with `enc:` but is not a well-formed v1 value is a typed
//! [`EncryptionErrorKind::Malformed`] error, never treated as plaintext.

use base64ct::{Base64, Encoding};
use orgusage_domain::{EncryptionErrorKind, Error, Result};

/// Every encrypted value starts with this; a plaintext secret must not (see [`check_plaintext`]).
pub const ENCRYPTED_PREFIX: &str = "enc:";
/// The prefix of format version 1.
pub(crate) const V1_PREFIX: &str = "enc:v1:";
/// Bytes of an XChaCha20 nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;
/// Longest key id: keeps the stored values and the lookup index short.
pub const MAX_KEY_ID_LEN: usize = 32;

/// A stored secret column value, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredSecret<'a> {
    /// Written while encryption was off (or before `Store::encrypt_existing_keys` reached it).
    Plain(&'a str),
    /// Written under key `key_id`.
    Sealed(Sealed<'a>),
}

/// An encrypted value: the key id it names and the decoded `nonce ‖ ciphertext ‖ tag`.
#[derive(PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The id of the key that sealed it.
    pub key_id: &'a str,
    /// `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Sealed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload is not secret, but it is noise in logs; its length is enough.
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<'a> StoredSecret<'a> {
    /// Parses a stored column value.
    ///
    /// ```
    /// use orgusage_crypto::StoredSecret;
    /// assert_eq!(StoredSecret::parse("sk-or-v1-abc").unwrap(), StoredSecret::Plain("sk-or-v1-abc"));
    /// assert!(StoredSecret::parse("enc:v9:k1:AAAA").is_err()); // unknown version: an error, not plaintext
    /// ```
    pub fn parse(stored: &'a str) -> Result<Self> {
        let Some(rest) = stored.strip_prefix(ENCRYPTED_PREFIX) else {
            return Ok(Self::Plain(stored));
        };
        let Some(rest) = rest.strip_prefix("v1:") else {
            return Err(malformed(
                "unsupported format version (this build reads enc:v1 only)",
            ));
        };
        let Some((key_id, b64)) = rest.split_once(':') else {
            return Err(malformed("no key id separator"));
        };
        validate_key_id(key_id).map_err(|_| malformed("invalid key id"))?;
        let payload = Base64::decode_vec(b64).map_err(|_| malformed("payload is not base64"))?;
        if payload.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed("payload shorter than nonce and tag"));
        }
        Ok(Self::Sealed(Sealed { key_id, payload }))
    }

    /// True for a value in the encrypted format (well-formed or not).
    pub fn is_encrypted(stored: &str) -> bool {
        stored.starts_with(ENCRYPTED_PREFIX)
    }
}

/// Builds `enc:v1:<key_id>:<base64(payload)>`.
pub(crate) fn encode_v1(key_id: &str, payload: &[u8]) -> String {
    format!("{V1_PREFIX}{key_id}:{}", Base64::encode_string(payload))
}

/// Key ids: 1 to 32 ASCII letters, digits, `-` or `_`, so that `:` separates fields unambiguously
/// and an id can be printed in errors and logs (ids are not secret).
///
/// ```
/// assert!(orgusage_crypto::validate_key_id("2026-11").is_ok());
/// assert!(orgusage_crypto::validate_key_id("a:b").is_err());
/// ```
pub fn validate_key_id(key_id: &str) -> Result<()> {
    let ok = !key_id.is_empty()
        && key_id.len() <= MAX_KEY_ID_LEN
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::encryption(
            EncryptionErrorKind::Configuration,
            format!(
                "a key id must be 1-{MAX_KEY_ID_LEN} ASCII letters, digits, '-' or '_' (got {} bytes)",
                key_id.len()
            ),
        ))
    }
}

/// Rejects a plaintext secret that would read back as an encrypted value. OpenRouter keys start
/// with `sk-or-`; a key starting with `enc:` could only be a copied ciphertext.
///
/// ```
/// assert!(orgusage_crypto::check_plaintext("openrouter_api_key", "sk-or-v1-x").is_ok());
/// assert!(orgusage_crypto::check_plaintext("openrouter_api_key", "enc:v1:k:AAAA").is_err());
/// ```
pub fn check_plaintext(field: &'static str, plaintext: &str) -> Result<()> {
    if StoredSecret::is_encrypted(plaintext) {
        return Err(Error::invalid(
            field,
            format!("must not start with {ENCRYPTED_PREFIX:?} (reserved for encrypted values)"),
        ));
    }
    Ok(())
}

fn malformed(why: &str) -> Error {
    Error::encryption(EncryptionErrorKind::Malformed, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plaintext_passes_through() {
        assert_eq!(
            StoredSecret::parse("sk-or-v1-abc").unwrap(),
            StoredSecret::Plain("sk-or-v1-abc")
        );
        assert_eq!(StoredSecret::parse("").unwrap(), StoredSecret::Plain(""));
        // Only the exact prefix marks a ciphertext.
        assert_eq!(
            StoredSecret::parse("ENC:v1:k:x").unwrap(),
            StoredSecret::Plain("ENC:v1:k:x")
        );
    }

    #[test]
    fn well_formed_v1_parses() {
        let payload = vec![7u8; NONCE_LEN + TAG_LEN + 5];
        let s = encode_v1("key-2026_11", &payload);
        assert!(s.starts_with("enc:v1:key-2026_11:"), "{s}");
        match StoredSecret::parse(&s).unwrap() {
            StoredSecret::Sealed(sealed) => {
                assert_eq!(sealed.key_id, "key-2026_11");
                assert_eq!(sealed.payload, payload);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        let short = Base64::encode_string(&[0u8; NONCE_LEN + TAG_LEN - 1]);
        for bad in [
            "enc:",
            "enc:v1",
            "enc:v1:",
            "enc:v2:k:AAAA",
            "enc:v1:nokeyid",
            "enc:v1::AAAA",
            "enc:v1:bad id:AAAA",
            "enc:v1:k:not base64!",
            &format!("enc:v1:k:{short}"),
            &format!("enc:v1:{}:AAAA", "k".repeat(MAX_KEY_ID_LEN + 1)),
        ] {
            let err = StoredSecret::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Encryption {
                        kind: EncryptionErrorKind::Malformed,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn key_ids() {
        for good in ["k", "2026-11", "prod_v2", &"a".repeat(MAX_KEY_ID_LEN)] {
            validate_key_id(good).unwrap();
        }
        for bad in ["", "a:b", "a b", "ключ", &"a".repeat(MAX_KEY_ID_LEN + 1)] {
            assert!(validate_key_id(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = StoredSecret::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(id in "[ -~]{0,40}", body in "[ -~]{0,120}") {
            let _ = StoredSecret::parse(&format!("enc:v1:{id}:{body}"));
        }

        #[test]
        fn encode_parse_roundtrip(id in "[A-Za-z0-9_-]{1,32}", payload in proptest::collection::vec(any::<u8>(), 40..200)) {
            let s = encode_v1(&id, &payload);
            match StoredSecret::parse(&s).unwrap() {
                StoredSecret::Sealed(sealed) => {
                    prop_assert_eq!(sealed.key_id, id.as_str());
                    prop_assert_eq!(sealed.payload, payload);
                }
                StoredSecret::Plain(_) => prop_assert!(false, "parsed as plaintext"),
            }
        }
    }
}
