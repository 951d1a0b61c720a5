//! No decryption oracle in the errors: a wrong RSA key (PKCS#1 v1.5 and OAEP), a bad pad byte, a
//! bad length and tampering (GCM tag, key-wrap integrity, OAEP label) all end in one error, equal
//! in kind, message, `Display` and `Debug` and without a source, through the XML Encryption engine
//! and through a key file read with a decryptor. PKCS#1 v1.5 unwrapping uses implicit rejection:
//! a wrong key yields deterministic synthetic bytes, never an error of its own.
//!
//! The inputs are the hostile corpus (fixtures/malformed, built with pyca/cryptography by
//! scripts/make_malformed.py, each checked there to fail at its own stage).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use dpwrap::error::DECRYPT_MESSAGE;
use dpwrap::key_file::RingElement;
use dpwrap::xml::{self, Element, NS_XENC};
use dpwrap::xmlenc::{self, CipherData, EncryptedData, KeyInfoItem, Keys};
use dpwrap::{
    DecryptorType, Decryptors, ErrorKind, RsaPadding, RsaPrivateKey, SecretBytes, SecretElement,
    XmlDecryptor,
};

fn malformed(file: &str) -> Vec<u8> {
    std::fs::read(common::fixture(&format!("malformed/{file}"))).unwrap()
}

fn rsa_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_der(
        &std::fs::read(common::fixture("keys/test-only-rsa-2048.pk8.der")).unwrap(),
    )
    .unwrap()
}

/// The fixture keys of the corpus: the vectors' symmetric keys and the test-only RSA key.
fn keys() -> Keys {
    let manifest: serde_json::Value = serde_json::from_slice(&malformed("manifest.json")).unwrap();
    let mut keys = Keys::new();
    for (name, k) in manifest["keys"].as_object().unwrap() {
        if k["kind"] == "symmetric" {
            let hex = k["hex"].as_str().unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            keys.add_symmetric(name.clone(), SecretBytes::new(bytes));
        }
    }
    keys.add_rsa(
        Some("test-only-rsa-2048".to_owned()),
        rsa_key(),
        Some(std::fs::read(common::fixture("keys/test-only-rsa-2048.cert.der")).unwrap()),
    );
    keys
}

fn first_encrypted_data(doc: &Element) -> &Element {
    if doc.is(Some(NS_XENC), "EncryptedData") {
        doc
    } else {
        doc.find(Some(NS_XENC), "EncryptedData").unwrap()
    }
}

/// Everything an observer of the error could compare.
fn observable(e: &dpwrap::Error) -> (ErrorKind, String, String, String, bool) {
    use std::error::Error as _;
    (
        e.kind(),
        e.message().to_owned(),
        e.to_string(),
        format!("{e:?}"),
        e.source().is_none(),
    )
}

#[derive(Debug)]
struct XmlEncDecryptor(Keys);

#[async_trait]
impl XmlDecryptor for XmlEncDecryptor {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::encrypted_xml()]
    }

    async fn decrypt(&self, encrypted: &Element) -> dpwrap::Result<SecretElement> {
        xmlenc::decrypt_element_type(encrypted, &self.0)
    }
}

const THROUGH_THE_ENGINE: &[(&str, &str)] = &[
    ("wrong key, rsa-1_5", "fail-rsa15-wrong-key.xml"),
    ("wrong key, rsa-oaep", "fail-oaep-wrong-key.xml"),
    ("wrong key, symmetric", "fail-direct-key-wrong-key.xml"),
    ("bad padding (0)", "fail-padding-zero-aes256cbc.xml"),
    (
        "bad padding (17)",
        "fail-padding-over-block-size-aes256cbc.xml",
    ),
    (
        "bad padding (3DES, 9)",
        "fail-padding-over-block-size-tripledes.xml",
    ),
    (
        "bad length (not a block multiple)",
        "fail-ciphervalue-not-block-multiple.xml",
    ),
    (
        "bad length (shorter than the IV)",
        "fail-ciphervalue-shorter-than-iv.xml",
    ),
    (
        "bad length (GCM shorter than the tag)",
        "fail-gcm-shorter-than-tag.xml",
    ),
    (
        "bad length (RSA ciphertext)",
        "fail-rsa-ciphertext-one-byte-short.xml",
    ),
    (
        "bad length (unwrapped key)",
        "fail-kw-aes128-unwraps-16-byte-key-for-aes256cbc.xml",
    ),
    (
        "bad length (OAEP-unwrapped key)",
        "fail-oaep-unwraps-24-byte-key-for-aes128gcm.xml",
    ),
    ("tampering (GCM tag)", "fail-gcm-tag-mismatch.xml"),
    (
        "tampering (GCM ciphertext)",
        "fail-gcm-ciphertext-tampered.xml",
    ),
    ("tampering (AES key wrap)", "fail-kw-integrity.xml"),
    (
        "tampering (3DES key wrap)",
        "fail-kw-tripledes-integrity.xml",
    ),
    ("tampering (OAEP label)", "fail-oaep-label-mismatch.xml"),
    ("plaintext not XML", "fail-plaintext-not-xml-aes256cbc.xml"),
];

const THROUGH_A_KEY_FILE: &[(&str, &str)] = &[
    (
        "key file, wrong RSA key",
        "fail-key-xmlenc-wrong-rsa-key.xml",
    ),
    ("key file, bad padding", "fail-key-xmlenc-bad-padding.xml"),
    ("key file, truncated", "fail-key-xmlenc-truncated.xml"),
];

/// `CertificateXmlDecryptor` with the test-only key and its certificate.
fn certificate_decryptor() -> dpwrap::CertificateXmlDecryptor {
    let dir = common::fixture("keys");
    let cert = std::fs::read(dir.join("test-only-rsa-2048.cert.der")).unwrap();
    let key = std::fs::read(dir.join("test-only-rsa-2048.pk8.der")).unwrap();
    dpwrap::CertificateXmlDecryptor::new([Arc::new(
        dpwrap::CertificateWithKey::from_der(&cert, &key).unwrap(),
    )])
}

#[test]
fn every_decryption_failure_is_the_same_error() {
    let keys = keys();
    let mut seen = Vec::new();
    for (what, file) in THROUGH_THE_ENGINE {
        let doc = xml::parse(&malformed(file)).unwrap();
        let ed = first_encrypted_data(&doc);
        let e = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap_err();
        seen.push((format!("{what} (decrypt_encrypted_data)"), observable(&e)));
        let e = xmlenc::decrypt_element_type(ed, &keys).unwrap_err();
        seen.push((format!("{what} (decrypt_element_type)"), observable(&e)));
        let mut copy = doc.clone();
        let e = xmlenc::decrypt_document(&mut copy, &keys).unwrap_err();
        assert!(copy == doc, "{what}: the document changed");
        seen.push((format!("{what} (decrypt_document)"), observable(&e)));
    }
    let decryptors = Decryptors::new().with(Arc::new(XmlEncDecryptor(keys)));
    for (what, file) in THROUGH_A_KEY_FILE {
        let RingElement::Key(key) =
            RingElement::from_element(xml::parse(&malformed(file)).unwrap()).unwrap()
        else {
            panic!("{file} is not a key")
        };
        let e = common::block_on(key.master_key(&decryptors)).unwrap_err();
        seen.push((what.to_string(), observable(&e)));
        let e = common::block_on(key.decrypt_descriptor(&decryptors)).unwrap_err();
        seen.push((format!("{what} (descriptor)"), observable(&e)));
        // And through dpwrap's own certificate decryptor holding the test-only certificate.
        let real = Decryptors::new().with(Arc::new(certificate_decryptor()));
        let e = common::block_on(key.master_key(&real)).unwrap_err();
        seen.push((format!("{what} (CertificateXmlDecryptor)"), observable(&e)));
    }
    let (first_what, first) = &seen[0];
    assert_eq!(first.0, ErrorKind::Decrypt, "{first_what}");
    assert_eq!(first.1, DECRYPT_MESSAGE, "{first_what}");
    assert!(first.4, "{first_what}: a decryption error carries a source");
    for (what, o) in &seen {
        assert_eq!(o, first, "{what} differs from {first_what}");
    }
    println!("{} failure modes, one error: {:?}", seen.len(), first.2);
}

/// The wrapped key and RSA padding of the first `EncryptedKey` of a corpus file.
fn wrapped_key(file: &str) -> (Vec<u8>, RsaPadding) {
    let doc = xml::parse(&malformed(file)).unwrap();
    let ed = EncryptedData::parse(first_encrypted_data(&doc)).unwrap();
    let key_info = ed.key_info.unwrap();
    let Some(KeyInfoItem::EncryptedKey(ek)) = key_info.items.first() else {
        panic!("{file}: no EncryptedKey")
    };
    let CipherData::Value(wrapped) = &ek.cipher_data else {
        panic!("{file}: wrapped key by reference")
    };
    let xmlenc::algorithms::KeyAlgorithm::Rsa(padding) =
        xmlenc::algorithms::key_algorithm(&ek.method).unwrap()
    else {
        panic!("{file}: not RSA")
    };
    (wrapped.clone(), padding)
}

#[test]
fn pkcs1v15_uses_implicit_rejection() {
    let key = rsa_key();
    // Encrypted (by the generator) to another RSA key: under ours its padding is garbage.
    let (foreign, padding) = wrapped_key("fail-rsa15-wrong-key.xml");
    assert_eq!(padding, RsaPadding::Pkcs1v15);
    let a = key
        .decrypt(&padding, &foreign)
        .expect("no error for a bad padding");
    let b = key.decrypt(&padding, &foreign).unwrap();
    // Deterministic for the same ciphertext and key, although every decryption is blinded with
    // fresh randomness.
    assert_eq!(&a[..], &b[..]);
    assert!(a.len() <= key.size_bytes() - 11);
    // Another ciphertext gives other synthetic bytes.
    let mut other = foreign.clone();
    other[200] ^= 1;
    let c = key.decrypt(&padding, &other).unwrap();
    assert_ne!(&a[..], &c[..]);

    // The control decrypts to the content key the generator wrapped; its wrong-key sibling
    // (same content) decrypts to something else, and the engine turns that into the uniform error.
    let (right, _) = wrapped_key("ok-rsa15-aes256cbc.xml");
    let real = key.decrypt(&padding, &right).unwrap();
    assert_eq!(real.len(), 32);
    assert_ne!(&a[..], &real[..]);
    let doc = xml::parse(&malformed("fail-rsa15-wrong-key.xml")).unwrap();
    let e = xmlenc::decrypt_encrypted_data(first_encrypted_data(&doc), &doc, &keys()).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Decrypt, DECRYPT_MESSAGE)
    );

    // OAEP has no implicit rejection: the same foreign ciphertext is an error, and it is the
    // uniform one.
    let e = key.decrypt(&RsaPadding::oaep_sha1(), &foreign).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Decrypt, DECRYPT_MESSAGE)
    );
    // A ciphertext of the wrong length, or above the modulus, is refused with the same error.
    for bad in [&foreign[1..], &[0xFFu8; 256][..]] {
        let e = key.decrypt(&RsaPadding::Pkcs1v15, bad).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Decrypt, DECRYPT_MESSAGE)
        );
    }
}
