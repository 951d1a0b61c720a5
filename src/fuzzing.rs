//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes arbitrary bytes, must never panic, and checks invariants that hold for
//! every input: what parses re-serializes to something that parses to the same tree. The same
//! functions replay the committed corpora in `tests/fuzz_corpus.rs`, so CI checks every crash
//! found so far without a fuzzer.

// Panicking on a broken invariant is how a fuzz target reports it.
#![allow(clippy::panic)]

use crate::decryptors::Decryptors;
use crate::key_file::{Fragment, RingElement};
use crate::xml::{self, WriteOptions};

/// Runs a future that never waits on I/O (the decryptors used here are all synchronous inside).
fn run_ready<F: std::future::Future>(f: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// XML parse → serialize (compact and indented) → parse again gives the same tree.
pub fn xml_round_trip(data: &[u8]) {
    let Ok(tree) = xml::parse(data) else { return };
    for options in [
        WriteOptions::COMPACT,
        WriteOptions::KEY_FILE,
        WriteOptions::DOCUMENT,
    ] {
        let bytes = xml::to_bytes(&tree, options);
        match xml::parse(&bytes) {
            Ok(again) => assert!(again == tree, "re-serialized tree differs ({options:?})"),
            Err(e) => panic!("re-serialized document does not parse ({options:?}): {e}"),
        }
    }
}

/// Key files and revocations: parse, classify, and try to read the master key with the null
/// decryptor; nothing may panic, and a parsed key's element must round-trip.
pub fn key_file(data: &[u8]) {
    let Ok(element) = xml::parse(data) else {
        return;
    };
    let _ = Fragment::recognise(&element);
    match RingElement::from_element(element) {
        Ok(RingElement::Key(key)) => {
            let decryptors = Decryptors::new().with(std::sync::Arc::new(crate::NullXmlDecryptor));
            let _ = run_ready(key.master_key(&decryptors));
            let _ = key.descriptor();
            let bytes = xml::to_bytes(key.element(), WriteOptions::KEY_FILE);
            assert!(
                xml::parse(&bytes).is_ok_and(|e| &e == key.element()),
                "key element does not round-trip"
            );
        }
        Ok(RingElement::Revocation(r)) => {
            let _ = r.friendly_name();
            let again = RingElement::from_element(r.to_element());
            assert!(
                matches!(again, Ok(RingElement::Revocation(_))),
                "revocation does not round-trip"
            );
        }
        Err(_) => {}
    }
}

// ------------------------------------------------------------------------ XML Encryption targets

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{DECRYPT_MESSAGE, Error, ErrorKind};
use crate::secret::SecretBytes;
use crate::xml::{Element, NS_DS, NS_XENC, Node};
use crate::xmlenc::model::{CipherData, EncryptedData, EncryptedKey, KeyInfo};
use crate::xmlenc::{self, KeyResolver, Keys, RsaKeyCandidate};
use crate::{ContentAlgorithm, RsaPrivateKey};

/// The symmetric keys of the third-party vector suites, under the `KeyName`s their documents use
/// (values from `../shared/vectors/manifest.json`: Merlin's readme table, Phaos `key.txt`, the XML
/// Encryption 1.1 example key). Public test material, never secrets.
pub const FIXED_SYMMETRIC_KEYS: &[(&str, &str)] = &[
    (
        "jed",
        "6162636465666768696a6b6c6d6e6f707172737475767778797a303132333435",
    ),
    ("job", "6162636465666768696a6b6c6d6e6f70"),
    ("jeb", "6162636465666768696a6b6c6d6e6f707172737475767778"),
    ("bob", "6162636465666768696a6b6c6d6e6f707172737475767778"),
    (
        "my-3des-key",
        "c88f89d5fde9b9800446321c4fabdf83a462b66297f270f4",
    ),
    (
        "my-tripledes-key",
        "c88f89d5fde9b9800446321c4fabdf83a462b66297f270f4",
    ),
    ("my-aes128-key", "d35fb2b90da1b8f4b5f90bf42c7fb369"),
    (
        "my-aes192-key",
        "2257ee4b8d0bbd2b55534323f1e3ebac61d58406f8f32fbe",
    ),
    (
        "my-aes256-key",
        "661678bf7465c1394210ea48ac77cb295c893810ed10938e4036adff8c51d5b0",
    ),
    ("Test Key 1", "feffe9928665731c6d6a8f9467308308"),
];

/// The `KeyName` of the one fixed RSA key (`fixtures/keys/test-only-rsa-2048.*`, made with
/// openssl for the fuzzers and the hostile corpus; test-only, its private key is public).
pub const FIXED_RSA_KEY_NAME: &str = "test-only-rsa-2048";

/// The fixed RSA-2048 private key (PKCS#8 DER).
pub const FIXED_RSA_PKCS8: &[u8] = include_bytes!("../fixtures/keys/test-only-rsa-2048.pk8.der");

/// The self-signed certificate of the fixed RSA key (DER).
pub const FIXED_RSA_CERTIFICATE: &[u8] =
    include_bytes!("../fixtures/keys/test-only-rsa-2048.cert.der");

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .filter_map(|c| u8::from_str_radix(c, 16).ok())
        .collect()
}

/// The key store every XML Encryption target decrypts with: [`FIXED_SYMMETRIC_KEYS`] and the fixed
/// RSA key (by name, certificate, modulus, or as the fallback for an `EncryptedKey` naming none).
pub fn fixed_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = Keys::new();
        for (name, hex) in FIXED_SYMMETRIC_KEYS {
            keys.add_symmetric(*name, SecretBytes::new(unhex(hex)));
        }
        let rsa = RsaPrivateKey::from_pkcs8_der(FIXED_RSA_PKCS8)
            .unwrap_or_else(|e| panic!("the fixed RSA key does not load: {e}"));
        keys.add_rsa(
            Some(FIXED_RSA_KEY_NAME.to_owned()),
            rsa,
            Some(FIXED_RSA_CERTIFICATE.to_vec()),
        );
        keys.try_all_rsa_keys(true);
        keys
    })
}

/// A resolver that hands out RSA keys for the first few `EncryptedKey`s only: an input repeating
/// `EncryptedKey`s would otherwise spend the whole run in RSA decryptions (the engine's own budget
/// of 64 is for real documents, not for millions of executions).
#[derive(Debug)]
struct Budgeted {
    keys: &'static Keys,
    rsa_lookups: AtomicUsize,
}

const FUZZ_RSA_LOOKUPS: usize = 2;

impl Budgeted {
    fn new() -> Budgeted {
        Budgeted {
            keys: fixed_keys(),
            rsa_lookups: AtomicUsize::new(0),
        }
    }
}

impl KeyResolver for Budgeted {
    fn symmetric_keys(&self, name: &str) -> Vec<&SecretBytes> {
        self.keys.symmetric_keys(name)
    }

    fn rsa_keys(&self, key_info: &KeyInfo) -> Vec<&dyn RsaKeyCandidate> {
        if self.rsa_lookups.fetch_add(1, Ordering::Relaxed) < FUZZ_RSA_LOOKUPS {
            self.keys.rsa_keys(key_info)
        } else {
            Vec::new()
        }
    }

    fn available(&self) -> Vec<String> {
        self.keys.available()
    }
}

/// The kinds a decryption may fail with on any input.
const DECRYPT_KINDS: &[ErrorKind] = &[
    ErrorKind::Xml,
    ErrorKind::Limit,
    ErrorKind::Format,
    ErrorKind::UnsupportedAlgorithm,
    ErrorKind::NoMatchingKey,
    ErrorKind::Decrypt,
];

/// What an error may be: one of `allowed`; a decryption failure has the one uniform message; no
/// message shows a fixed key (in hex or base64) that the input did not itself contain.
fn check_error(e: &Error, allowed: &[ErrorKind], input: &[u8], what: &str) {
    assert!(
        allowed.contains(&e.kind()),
        "{what}: unexpected error kind {:?}: {e}",
        e.kind()
    );
    if e.kind() == ErrorKind::Decrypt {
        assert_eq!(
            e.message(),
            DECRYPT_MESSAGE,
            "{what}: non-uniform decrypt error"
        );
    }
    let message = e.message().as_bytes();
    for needle in key_needles() {
        // The message is short: look there first.
        if contains(message, needle) {
            assert!(contains(input, needle), "{what}: a key shows in: {e}");
        }
    }
}

/// Each fixed symmetric key in lower- and upper-case hex and in base64.
fn key_needles() -> &'static [Vec<u8>] {
    static NEEDLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        FIXED_SYMMETRIC_KEYS
            .iter()
            .flat_map(|(_, hex)| {
                let b64 = xmlenc::model::encode_base64(&unhex(hex));
                [
                    hex.as_bytes().to_vec(),
                    hex.to_uppercase().into_bytes(),
                    b64.into_bytes(),
                ]
            })
            .collect()
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn encrypted_data_paths(doc: &Element) -> Vec<crate::xml::Path> {
    doc.paths_where(&mut |e| e.is(Some(NS_XENC), "EncryptedData"))
}

/// `EncryptedData`, `EncryptedKey` and `KeyInfo` models parsed from arbitrary XML; then
/// `decrypt_document` and `decrypt_encrypted_data` with no keys at all, which can fail in every
/// way except a decryption failure (nothing may be tried without a key), and never change the
/// document when they fail.
pub fn xmlenc_model(data: &[u8]) {
    let Ok(doc) = xml::parse(data) else { return };
    let model_kinds = [ErrorKind::Format, ErrorKind::Limit];
    for el in std::iter::once(&doc).chain(doc.descendants()).take(256) {
        if el.is(Some(NS_XENC), "EncryptedData") {
            if let Err(e) = EncryptedData::parse(el) {
                check_error(&e, &model_kinds, data, "EncryptedData::parse");
            }
        } else if el.is(Some(NS_XENC), "EncryptedKey") {
            if let Err(e) = EncryptedKey::parse(el) {
                check_error(&e, &model_kinds, data, "EncryptedKey::parse");
            }
        } else if el.is(Some(NS_DS), "KeyInfo")
            && let Err(e) = KeyInfo::parse(el)
        {
            check_error(&e, &model_kinds, data, "KeyInfo::parse");
        }
    }
    let none = Keys::new();
    let no_decrypt: Vec<ErrorKind> = DECRYPT_KINDS
        .iter()
        .copied()
        .filter(|k| *k != ErrorKind::Decrypt)
        .collect();
    for path in encrypted_data_paths(&doc).into_iter().take(8) {
        let Some(ed) = doc.at(&path) else { continue };
        match xmlenc::decrypt_encrypted_data(ed, &doc, &none) {
            Ok(_) => panic!("decrypted without any key"),
            Err(e) => check_error(&e, &no_decrypt, data, "decrypt_encrypted_data (no keys)"),
        }
    }
    let mut copy = doc.clone();
    match xmlenc::decrypt_document(&mut copy, &none) {
        Ok(n) => {
            assert_eq!(
                n, 0,
                "decrypt_document decrypted {n} elements without any key"
            );
            assert!(
                copy == doc,
                "decrypt_document changed a document it did not decrypt"
            );
        }
        Err(e) => {
            check_error(&e, &no_decrypt, data, "decrypt_document (no keys)");
            assert!(
                copy == doc,
                "a failed decrypt_document changed the document"
            );
        }
    }
}

/// Arbitrary XML decrypted with [`fixed_keys`]: every `EncryptedData` (a few), then the whole
/// document, then the root as ASP.NET's decryptor reads it. Failures are of the documented kinds
/// with the uniform message; a failed `decrypt_document` leaves the document as it was; and every
/// success is consistent: the content key fits the algorithm and decrypts the cipher value to the
/// plaintext reported, XML plaintext parses, decrypting twice gives the same answer, and a
/// decrypted document holds no `EncryptedData` any more.
pub fn decrypt_fixed_key(data: &[u8]) {
    let Ok(doc) = xml::parse(data) else { return };
    for path in encrypted_data_paths(&doc).into_iter().take(4) {
        let Some(ed) = doc.at(&path) else { continue };
        let first = xmlenc::decrypt_encrypted_data_with_details(ed, &doc, &Budgeted::new());
        let again = xmlenc::decrypt_encrypted_data_with_details(ed, &doc, &Budgeted::new());
        match (&first, &again) {
            (Ok(d), Ok(d2)) => {
                check_success(ed, d);
                assert_eq!(
                    d.plaintext.expose(),
                    d2.plaintext.expose(),
                    "two decryptions of the same data differ"
                );
            }
            (Err(e), Err(e2)) => {
                check_error(e, DECRYPT_KINDS, data, "decrypt_encrypted_data");
                assert_eq!(
                    (e.kind(), e.message()),
                    (e2.kind(), e2.message()),
                    "two decryptions of the same data fail differently"
                );
            }
            _ => panic!("two decryptions of the same data disagree on success"),
        }
    }
    let mut copy = doc.clone();
    match xmlenc::decrypt_document(&mut copy, &Budgeted::new()) {
        Ok(n) => {
            assert!(
                encrypted_data_paths(&copy).is_empty(),
                "a decrypted document still holds EncryptedData"
            );
            if n == 0 {
                assert!(copy == doc, "nothing decrypted, yet the document changed");
            }
        }
        Err(e) => {
            check_error(&e, DECRYPT_KINDS, data, "decrypt_document");
            assert!(
                copy == doc,
                "a failed decrypt_document changed the document"
            );
        }
    }
    if doc.is(Some(NS_XENC), "EncryptedData") {
        match xmlenc::decrypt_element_type(&doc, &Budgeted::new()) {
            Ok(el) => {
                let bytes = xml::to_secret_bytes(el.expose(), WriteOptions::COMPACT);
                assert!(
                    xml::parse(&bytes).is_ok_and(|again| &again == el.expose()),
                    "a decrypted element does not round-trip"
                );
            }
            Err(e) => check_error(&e, DECRYPT_KINDS, data, "decrypt_element_type"),
        }
    }
}

/// A successful decryption is what it says: the content key has the algorithm's length and
/// decrypts the cipher value to exactly the plaintext reported; XML plaintext is UTF-8 XML.
fn check_success(ed: &Element, d: &xmlenc::DecryptedData) {
    assert_eq!(
        d.content_key.len(),
        d.content_algorithm.key_len(),
        "content key of the wrong length"
    );
    if let Ok(parsed) = EncryptedData::parse(ed)
        && let CipherData::Value(ct) = &parsed.cipher_data
    {
        let pt = d
            .content_algorithm
            .decrypt(d.content_key.expose(), ct)
            .unwrap_or_else(|_| panic!("the reported content key does not decrypt the data"));
        assert_eq!(
            &pt[..],
            d.plaintext.expose(),
            "the reported plaintext differs"
        );
    }
    if d.data_type.is_xml() {
        assert!(
            std::str::from_utf8(d.plaintext.expose()).is_ok(),
            "XML plaintext is not UTF-8"
        );
    }
}

/// The documents [`decrypt_spliced`] mutates: the `ok-*` controls of the hostile corpus, which
/// decrypt with [`fixed_keys`] (built by `scripts/make_malformed.py` with pyca/cryptography). The
/// order is the template number in the first input byte.
pub const SPLICE_TEMPLATES: &[(&str, &[u8])] = &[
    (
        "ok-rsa15-aes256cbc.xml",
        include_bytes!("../fixtures/malformed/ok-rsa15-aes256cbc.xml"),
    ),
    (
        "ok-oaep-aes128gcm.xml",
        include_bytes!("../fixtures/malformed/ok-oaep-aes128gcm.xml"),
    ),
    (
        "ok-kwaes256-tripledes.xml",
        include_bytes!("../fixtures/malformed/ok-kwaes256-tripledes.xml"),
    ),
    (
        "ok-kwtripledes-aes192cbc.xml",
        include_bytes!("../fixtures/malformed/ok-kwtripledes-aes192cbc.xml"),
    ),
    (
        "ok-kwaes128-aes256gcm.xml",
        include_bytes!("../fixtures/malformed/ok-kwaes128-aes256gcm.xml"),
    ),
    (
        "ok-direct-aes128gcm.xml",
        include_bytes!("../fixtures/malformed/ok-direct-aes128gcm.xml"),
    ),
];

/// A template, parsed and decrypted once.
struct Template {
    name: &'static str,
    doc: Element,
    /// The document whose content slots are mutated: for an RSA-wrapped key, the same content
    /// key wrapped with `kw-aes256` under `jed` instead, so that only the key slots pay for an
    /// RSA decryption (thousands of executions a second rather than dozens).
    content_doc: Element,
    /// The path of the `EncryptedData`'s `CipherValue`, and its bytes.
    content_path: crate::xml::Path,
    content: Vec<u8>,
    /// The path of the `EncryptedKey`'s `CipherValue`, its bytes, and whether its algorithm
    /// authenticates it (AES/3DES key wrap and OAEP do, PKCS#1 v1.5 does not).
    key: Option<(crate::xml::Path, Vec<u8>, bool)>,
    algorithm: ContentAlgorithm,
    plaintext: Vec<u8>,
    content_key: Vec<u8>,
}

fn templates() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        SPLICE_TEMPLATES
            .iter()
            .map(|(name, bytes)| {
                let doc = xml::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                let d = xmlenc::decrypt_encrypted_data_with_details(&doc, &doc, fixed_keys())
                    .unwrap_or_else(|e| panic!("{name} does not decrypt: {e}"));
                let values = doc.paths_where(&mut |e| e.is(Some(NS_XENC), "CipherValue"));
                let bytes_at = |path: &crate::xml::Path| -> Vec<u8> {
                    let text = doc.at(path).map(Element::text).unwrap_or_default();
                    xmlenc::model::decode_base64(&text, 1 << 20, "template")
                        .unwrap_or_else(|e| panic!("{name}: {e}"))
                };
                let content_path = values
                    .iter()
                    .find(|p| p.len() == 2)
                    .cloned()
                    .unwrap_or_else(|| panic!("{name}: no EncryptedData CipherValue"));
                let key = values.iter().find(|p| p.len() > 2).map(|p| {
                    let parsed = EncryptedData::parse(&doc).ok();
                    let authenticated = parsed
                        .as_ref()
                        .and_then(|ed| ed.key_info.as_ref())
                        .and_then(|ki| {
                            ki.items.iter().find_map(|i| match i {
                                xmlenc::KeyInfoItem::EncryptedKey(ek) => {
                                    Some(ek.method.algorithm != xmlenc::algorithms::RSA_1_5)
                                }
                                _ => None,
                            })
                        })
                        .unwrap_or(true);
                    (p.clone(), bytes_at(p), authenticated)
                });
                let content_doc = match &key {
                    Some((p, _, _)) if rsa_wrapped(&doc) => {
                        kw_instead_of_rsa(&doc, p, d.content_key.expose())
                    }
                    _ => doc.clone(),
                };
                let again =
                    xmlenc::decrypt_encrypted_data(&content_doc, &content_doc, fixed_keys())
                        .unwrap_or_else(|e| panic!("{name} with a KW key does not decrypt: {e}"));
                assert_eq!(&again[..], d.plaintext.expose(), "{name}: KW variant");
                Template {
                    name,
                    content: bytes_at(&content_path),
                    content_path,
                    content_doc,
                    key,
                    algorithm: d.content_algorithm,
                    plaintext: d.plaintext.expose().to_vec(),
                    content_key: d.content_key.expose().to_vec(),
                    doc,
                }
            })
            .collect()
    })
}

fn rsa_wrapped(doc: &Element) -> bool {
    doc.find(Some(NS_XENC), "EncryptedKey")
        .and_then(|ek| ek.element(Some(NS_XENC), "EncryptionMethod"))
        .and_then(|m| m.attribute(None, "Algorithm"))
        .is_some_and(|a| a.contains("rsa"))
}

/// `doc` with the `EncryptedKey` holding the cipher value at `key_value_path` replaced by one
/// wrapping `content_key` with `kw-aes256` under the fixed key `jed`.
fn kw_instead_of_rsa(doc: &Element, key_value_path: &[usize], content_key: &[u8]) -> Element {
    let kek = FIXED_SYMMETRIC_KEYS
        .iter()
        .find(|(n, _)| *n == "jed")
        .map(|(_, h)| unhex(h))
        .unwrap_or_default();
    let wrapped = crate::KeyWrapAlgorithm::Aes256
        .wrap(&kek, content_key)
        .unwrap_or_else(|e| panic!("wrapping a template key: {e}"));
    let ek = xml::parse(
        format!(
            r#"<EncryptedKey xmlns="{NS_XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{NS_DS}"><KeyName>jed</KeyName></KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedKey>"#,
            xmlenc::algorithms::KW_AES256,
            xmlenc::model::encode_base64(&wrapped)
        )
        .as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut out = doc.clone();
    let ek_path = key_value_path
        .get(..key_value_path.len().saturating_sub(2))
        .unwrap_or(&[]);
    out.replace_at(ek_path, Node::Element(ek));
    out
}

fn xor_prefix(original: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = original.to_vec();
    for (o, m) in out.iter_mut().zip(mask) {
        *o ^= m;
    }
    out
}

fn xor_suffix(original: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = original.to_vec();
    for (o, m) in out.iter_mut().rev().zip(mask.iter().rev()) {
        *o ^= m;
    }
    out
}

fn with_cipher_value(doc: &Element, path: &[usize], bytes: &[u8]) -> Element {
    let mut doc = doc.clone();
    if let Some(el) = doc.at_mut(path) {
        *el.children_mut() = vec![Node::Text(xmlenc::model::encode_base64(bytes))];
    }
    doc
}

/// Structured mutation of valid documents, so that the fuzzer spends its time in the ciphers:
/// the first byte picks a template (bits 3..) and a slot (bits 0..2): 0 replaces the content
/// cipher value, 1 XORs it from the front, 2 replaces the IV, 3 XORs it from the back (the GCM
/// tag, the CBC pad block), 4 replaces the wrapped key, 5 XORs it. The rest of the input is the
/// replacement or the mask.
///
/// Invariants: the only failures are the uniform decryption error (and the size limit for an
/// over-long wrapped key); the untouched template decrypts to its plaintext; a changed wrapped
/// key under an authenticated wrap (KW, OAEP), or a changed GCM value, never decrypts; a changed
/// PKCS#1 v1.5 wrapped key that decrypts yields the same content key and plaintext; a changed CBC
/// IV changes exactly the first plaintext block, by the XOR of the two IVs.
pub fn decrypt_spliced(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let all = templates();
    let Some(t) = all.get(usize::from(selector >> 3) % all.len().max(1)) else {
        return;
    };
    let mut slot = (selector & 7) % 6;
    if slot >= 4 && t.key.is_none() {
        slot -= 4;
    }
    let iv_len = t.algorithm.iv_len();
    let (path, original, new): (&[usize], &[u8], Vec<u8>) = match (slot, &t.key) {
        (4, Some((p, w, _))) => (p, w, rest.to_vec()),
        (5, Some((p, w, _))) => (p, w, xor_prefix(w, rest)),
        (0, _) => (&t.content_path, &t.content, rest.to_vec()),
        (1, _) => (&t.content_path, &t.content, xor_prefix(&t.content, rest)),
        (2, _) => {
            let mut iv: Vec<u8> = rest.iter().copied().take(iv_len).collect();
            iv.resize(iv_len, 0);
            iv.extend_from_slice(t.content.get(iv_len..).unwrap_or(&[]));
            (&t.content_path, &t.content, iv)
        }
        _ => (&t.content_path, &t.content, xor_suffix(&t.content, rest)),
    };
    let key_slot = slot >= 4;
    let base = if key_slot { &t.doc } else { &t.content_doc };
    let doc = with_cipher_value(base, path, &new);
    let result = xmlenc::decrypt_encrypted_data_with_details(&doc, &doc, &Budgeted::new());
    let what = format!("{} slot {slot}", t.name);
    let d = match result {
        Err(e) => {
            assert!(new != original, "{what}: the untouched template fails: {e}");
            let limit_allowed = key_slot && new.len() > xmlenc::MAX_WRAPPED_KEY_BYTES;
            let allowed: &[ErrorKind] = if limit_allowed {
                &[ErrorKind::Limit]
            } else {
                &[ErrorKind::Decrypt]
            };
            check_error(&e, allowed, data, &what);
            return;
        }
        Ok(d) => d,
    };
    check_success(&doc, &d);
    let pt = d.plaintext.expose();
    if new == original {
        assert_eq!(
            pt,
            &t.plaintext[..],
            "{what}: the template decrypts differently"
        );
        return;
    }
    if let (true, Some((_, _, authenticated))) = (key_slot, &t.key) {
        assert!(
            !authenticated,
            "{what}: a changed authenticated wrapped key was accepted"
        );
        assert_eq!(
            d.content_key.expose(),
            &t.content_key[..],
            "{what}: a changed wrapped key decrypted under another content key"
        );
        assert_eq!(pt, &t.plaintext[..], "{what}: plaintext differs");
        return;
    }
    let gcm = matches!(
        t.algorithm,
        ContentAlgorithm::Aes128Gcm | ContentAlgorithm::Aes192Gcm | ContentAlgorithm::Aes256Gcm
    );
    assert!(!gcm, "{what}: a changed GCM value decrypted");
    if slot == 2 {
        // CBC: P1' = D(C1) ⊕ IV' = P1 ⊕ IV ⊕ IV'; every later block is untouched.
        assert_eq!(
            pt.len(),
            t.plaintext.len(),
            "{what}: IV change altered the length"
        );
        let (iv, iv_new) = (t.content.get(..iv_len), new.get(..iv_len));
        if let (Some(iv), Some(iv_new)) = (iv, iv_new) {
            for (i, (p, o)) in pt.iter().zip(&t.plaintext).enumerate() {
                let expected = match (iv.get(i), iv_new.get(i)) {
                    (Some(a), Some(b)) => o ^ a ^ b,
                    _ => *o,
                };
                assert_eq!(*p, expected, "{what}: byte {i} of the plaintext");
            }
        }
    }
}

/// The password the certificate target tries on every input (the fixtures' test password), and
/// the empty one (Key Vault certificate secrets).
pub const FIXED_CERTIFICATE_PASSWORD: &str = "test-password";

/// PEM, DER, PKCS#8 (plain and encrypted), PKCS#1 and PFX loading: nothing panics, failures are
/// of the documented kinds, and what loads is consistent (thumbprint shape, a matching key, no
/// password in `Debug`).
pub fn certificate_load(data: &[u8]) {
    use crate::certificate::{
        Certificate, CertificateWithKey, private_key_from_der, private_key_from_pem,
    };
    use crate::secret::Password;
    let expected = |e: &crate::Error| {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Certificate | ErrorKind::Limit | ErrorKind::Format | ErrorKind::Config
            ),
            "unexpected error kind {:?}: {e}",
            e.kind()
        );
        assert!(
            !e.to_string().contains(FIXED_CERTIFICATE_PASSWORD),
            "the password leaked into an error"
        );
    };
    let check_loaded = |c: &CertificateWithKey| {
        let t = c.thumbprint();
        assert!(
            t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()),
            "bad thumbprint {t}"
        );
        assert!(!format!("{c:?}").contains(FIXED_CERTIFICATE_PASSWORD));
        // The loader checked that the key belongs to the certificate: the public keys agree.
        let public = c.certificate().public_key().map(|k| k.modulus());
        assert!(
            public.is_ok_and(|m| m == c.private_key().public_key().modulus()),
            "key and certificate differ"
        );
    };
    match Certificate::from_pem_or_der(data) {
        Ok(c) => {
            let _ = (
                c.subject(),
                c.issuer(),
                c.serial_number_decimal(),
                c.subject_key_identifier(),
            );
            let _ = (c.not_before(), c.not_after(), c.key_size_bits());
        }
        Err(e) => expected(&e),
    }
    for password in [
        Password::from(FIXED_CERTIFICATE_PASSWORD),
        Password::from(""),
    ] {
        match CertificateWithKey::from_pkcs12(data, &password) {
            Ok(c) => check_loaded(&c),
            Err(e) => expected(&e),
        }
        match CertificateWithKey::from_pem_bundle(data, Some(&password)) {
            Ok(c) => check_loaded(&c),
            Err(e) => expected(&e),
        }
        if let Err(e) = private_key_from_pem(data, Some(&password)) {
            expected(&e);
        }
        if let Err(e) = private_key_from_der(data, Some(&password)) {
            expected(&e);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match CertificateWithKey::from_pkcs12_base64(text, &Password::from("")) {
            Ok(c) => check_loaded(&c),
            Err(e) => expected(&e),
        }
    }
}

/// A KEK resolver that answers every kid with the fixed RSA key, so that arbitrary `kid`s still
/// reach the unwrap and AES paths.
#[derive(Debug)]
struct AnyKid(std::sync::Arc<dyn crate::azure::KeyEncryptionKey>);

#[async_trait::async_trait]
impl crate::azure::KeyEncryptionKeyResolver for AnyKid {
    async fn resolve(
        &self,
        _kid: &str,
    ) -> crate::Result<std::sync::Arc<dyn crate::azure::KeyEncryptionKey>> {
        Ok(std::sync::Arc::clone(&self.0))
    }
}

/// The Azure Key Vault `<encryptedKey>`: parse, write back and parse again to the same value, and
/// decrypt with the fixed RSA key as the KEK. Errors only of the documented kinds; a decryption
/// failure is the uniform one.
pub fn azure_encrypted_key(data: &[u8]) {
    use crate::azure::{AzureKeyVaultXmlDecryptor, LocalRsaKek};
    use crate::protector::XmlDecryptor;
    type AzureEncryptedKey = crate::azure::EncryptedKey;
    static DECRYPTOR: OnceLock<AzureKeyVaultXmlDecryptor> = OnceLock::new();
    let decryptor = DECRYPTOR.get_or_init(|| {
        let rsa = RsaPrivateKey::from_pkcs8_der(FIXED_RSA_PKCS8)
            .unwrap_or_else(|e| panic!("the fixed RSA key does not load: {e}"));
        let kek = std::sync::Arc::new(LocalRsaKek::new(
            "https://fuzz.vault.azure.net/keys/fixed/1",
            rsa,
        ));
        AzureKeyVaultXmlDecryptor::new(std::sync::Arc::new(AnyKid(kek)))
    });
    let Ok(element) = xml::parse(data) else {
        return;
    };
    if let Ok(parsed) = AzureEncryptedKey::from_element(&element) {
        let again = AzureEncryptedKey::from_element(&parsed.to_element(" fuzz "));
        assert!(
            again.is_ok_and(|a| a == parsed),
            "encryptedKey does not round-trip"
        );
    }
    match run_ready(decryptor.decrypt(&element)) {
        None | Some(Ok(_)) => {}
        Some(Err(e)) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Format
                        | ErrorKind::Limit
                        | ErrorKind::Decrypt
                        | ErrorKind::Xml
                        | ErrorKind::NoMatchingKey
                ),
                "unexpected error kind {:?}: {e}",
                e.kind()
            );
            if e.kind() == ErrorKind::Decrypt {
                assert_eq!(e.to_string(), DECRYPT_MESSAGE);
            }
        }
    }
}
