//! Seal/open, lookup hashes and every decryption failure of the key ring.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64ct::{Base64, Encoding};
use orgusage_crypto::{KeyRing, SecretField, StoredSecret, reveal, secrets_equal};
use orgusage_domain::{EncryptionErrorKind, Error};
use proptest::prelude::*;

const SECRET: &str = "sk-or-v1-0123456789abcdef";

fn kind(e: Error) -> EncryptionErrorKind {
    match e {
        Error::Encryption { kind, detail } => {
            assert!(!detail.contains(SECRET), "error leaks the secret: {detail}");
            kind
        }
        other => panic!("not an encryption error: {other:?}"),
    }
}

fn ring() -> KeyRing {
    KeyRing::new("k1", [1u8; 32]).unwrap()
}

#[test]
fn roundtrip_with_fresh_nonces() {
    let r = ring();
    let f = SecretField::client_api_key("client_a");
    let a = r.encrypt(f, SECRET).unwrap();
    let b = r.encrypt(f, SECRET).unwrap();
    assert_ne!(a, b, "a nonce was reused");
    assert!(!a.contains(SECRET));
    assert_eq!(r.decrypt(f, &a).unwrap().expose(), SECRET);
    assert_eq!(r.decrypt(f, &b).unwrap().expose(), SECRET);
    assert!(r.is_current(&a));
}

#[test]
fn ciphertext_is_bound_to_row_and_column() {
    let r = ring();
    let stored = r
        .encrypt(SecretField::client_api_key("client_a"), SECRET)
        .unwrap();
    let other_row = r.decrypt(SecretField::client_api_key("client_b"), &stored);
    assert_eq!(
        kind(other_row.unwrap_err()),
        EncryptionErrorKind::Authentication
    );
    let other_col = r.decrypt(SecretField::provisioning_key("client_a"), &stored);
    assert_eq!(
        kind(other_col.unwrap_err()),
        EncryptionErrorKind::Authentication
    );
}

#[test]
fn wrong_key_unknown_id_and_no_key() {
    let f = SecretField::client_api_key("c");
    let stored = ring().encrypt(f, SECRET).unwrap();
    let wrong = KeyRing::new("k1", [2u8; 32]).unwrap();
    assert_eq!(
        kind(wrong.decrypt(f, &stored).unwrap_err()),
        EncryptionErrorKind::Authentication
    );
    let other_id = KeyRing::new("k2", [1u8; 32]).unwrap();
    let e = other_id.decrypt(f, &stored).unwrap_err();
    assert!(e.to_string().contains("\"k1\""), "{e}");
    assert_eq!(kind(e), EncryptionErrorKind::UnknownKeyId);
    assert_eq!(
        kind(reveal(None, f, &stored).unwrap_err()),
        EncryptionErrorKind::NoKey
    );
}

#[test]
fn every_single_byte_change_is_detected() {
    let r = ring();
    let f = SecretField::client_api_key("c");
    let stored = r.encrypt(f, SECRET).unwrap();
    let (head, b64) = stored.rsplit_once(':').unwrap();
    let payload = Base64::decode_vec(b64).unwrap();
    for i in 0..payload.len() {
        let mut p = payload.clone();
        p[i] ^= 0x01;
        let tampered = format!("{head}:{}", Base64::encode_string(&p));
        assert_eq!(
            kind(r.decrypt(f, &tampered).unwrap_err()),
            EncryptionErrorKind::Authentication
        );
    }
    // Truncation.
    let short = format!(
        "{head}:{}",
        Base64::encode_string(&payload[..payload.len() - 1])
    );
    assert_eq!(
        kind(r.decrypt(f, &short).unwrap_err()),
        EncryptionErrorKind::Authentication
    );
}

#[test]
fn rotation_ring_opens_old_values_and_seals_with_the_new_key() {
    let f = SecretField::client_api_key("c");
    let old = ring().encrypt(f, SECRET).unwrap();
    let rotated = KeyRing::new("k2", [2u8; 32])
        .unwrap()
        .with_previous_key("k1", [1u8; 32])
        .unwrap();
    assert!(!rotated.is_current(&old));
    assert_eq!(rotated.decrypt(f, &old).unwrap().expose(), SECRET);
    let new = rotated.encrypt(f, SECRET).unwrap();
    assert!(new.starts_with("enc:v1:k2:") && rotated.is_current(&new));
    let hashes = rotated.lookup_hashes(SECRET);
    assert_eq!(
        hashes,
        vec![rotated.lookup_hash(SECRET), ring().lookup_hash(SECRET)]
    );
    assert_ne!(hashes[0], hashes[1]);
    let dup = KeyRing::new("k2", [2u8; 32])
        .unwrap()
        .with_previous_key("k2", [3u8; 32]);
    assert_eq!(kind(dup.unwrap_err()), EncryptionErrorKind::Configuration);
}

#[test]
fn lookup_hash_depends_on_key_and_secret() {
    let a = ring().lookup_hash(SECRET);
    assert_ne!(
        a,
        KeyRing::new("k1", [2u8; 32]).unwrap().lookup_hash(SECRET)
    );
    assert_ne!(a, ring().lookup_hash("sk-or-v1-0123456789abcdeg"));
    assert!(!a.contains(SECRET));
}

#[test]
fn plaintext_is_passed_through_by_reveal_only() {
    let f = SecretField::client_api_key("c");
    assert_eq!(reveal(Some(&ring()), f, SECRET).unwrap().expose(), SECRET);
    assert_eq!(
        kind(ring().decrypt(f, SECRET).unwrap_err()),
        EncryptionErrorKind::Malformed
    );
}

#[test]
fn key_material_never_printed() {
    let b64 = Base64::encode_string(&[0xabu8; 32]);
    let r = KeyRing::from_base64("k1", &b64).unwrap();
    let shown = format!("{r:?}");
    assert!(!shown.contains(&b64) && !shown.contains("171"), "{shown}");
    assert_eq!(shown, r#"KeyRing { current: "k1", previous: [] }"#);
    let e = KeyRing::from_base64("k1", "bm90IDMyIGJ5dGVz").unwrap_err();
    assert_eq!(kind(e), EncryptionErrorKind::Configuration);
    assert_eq!(
        kind(KeyRing::new("bad:id", [0u8; 32]).unwrap_err()),
        EncryptionErrorKind::Configuration
    );
}

#[test]
fn constant_time_equality() {
    assert!(secrets_equal(SECRET, SECRET));
    assert!(!secrets_equal(SECRET, "sk"));
    assert!(!secrets_equal(SECRET, "sk-or-v1-0123456789abcdeX"));
}

proptest! {
    #[test]
    fn any_secret_roundtrips(secret in any::<String>(), row in any::<String>()) {
        let r = ring();
        let f = SecretField::client_api_key(&row);
        let stored = r.encrypt(f, &secret).unwrap();
        prop_assert!(StoredSecret::is_encrypted(&stored));
        let opened = r.decrypt(f, &stored).unwrap();
        prop_assert_eq!(opened.expose(), secret.as_str());
    }

    #[test]
    fn decrypting_arbitrary_strings_never_panics(s in any::<String>()) {
        let _ = ring().decrypt(SecretField::client_api_key("c"), &s);
        let _ = reveal(None, SecretField::client_api_key("c"), &s);
    }
}
