//! The hostile corpus in fixtures/malformed/ (built by scripts/make_malformed.py with an
//! independent implementation, pyca/cryptography): every file fails with exactly the error kind
//! its manifest entry names, nothing panics, the inputs that try to make the parser allocate are
//! refused within a bounded peak allocation, and the controls decrypt to the plaintext the
//! generator recorded.
//!
//! Key files protected with the test-only certificate go through dpwrap's real
//! `CertificateXmlDecryptor`; the keyless cases go through a thin adapter over
//! `xmlenc::decrypt_element_type` registered under `EncryptedXmlDecryptor`'s name, so that they
//! exercise the engine without any key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};
use serde_json::Value;

use dpwrap::error::DECRYPT_MESSAGE;
use dpwrap::key_file::{self, RingElement};
use dpwrap::xml::{self, Element, NS_XENC};
use dpwrap::xmlenc::algorithms::{KeyAlgorithm, content_algorithm, key_algorithm};
use dpwrap::xmlenc::{self, CipherData, EncryptedData, KeyInfoItem, Keys};
use dpwrap::{
    DecryptorType, Decryptors, ErrorKind, NullXmlDecryptor, RsaPrivateKey, SecretBytes,
    SecretElement, XmlDecryptor,
};

/// Counts every allocation of this test binary, so that a case can assert its peak. This binary
/// has one test, so no other test allocates concurrently.
#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn dir() -> PathBuf {
    common::fixture("malformed")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("manifest.json")).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The fixture keys a case names, built from the manifest's key table.
fn keys_for(manifest: &Value, names: &[String]) -> Keys {
    let mut keys = Keys::new();
    for name in names {
        let k = &manifest["keys"][name];
        match k["kind"].as_str().unwrap() {
            "symmetric" => {
                keys.add_symmetric(
                    name.clone(),
                    SecretBytes::new(unhex(k["hex"].as_str().unwrap())),
                );
            }
            "rsa" => {
                let der = std::fs::read(dir().join(k["pkcs8_der"].as_str().unwrap())).unwrap();
                let cert =
                    std::fs::read(dir().join(k["certificate_der"].as_str().unwrap())).unwrap();
                keys.add_rsa(
                    Some(name.clone()),
                    RsaPrivateKey::from_pkcs8_der(&der).unwrap(),
                    Some(cert),
                );
            }
            other => panic!("unknown key kind {other} for {name}"),
        }
    }
    keys
}

/// An XML Encryption decryptor over a key store, under `EncryptedXmlDecryptor`'s name.
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

fn decryptors_for(manifest: &Value, case: &Value, keys: &[String]) -> Decryptors {
    let mut d = Decryptors::new();
    for name in strings(&case["decryptors"]) {
        match name.as_str() {
            "null" => d.register(Arc::new(NullXmlDecryptor)),
            // Key files protected with the test-only certificate go through the real certificate
            // decryptor; the keyless cases exercise the engine under the same decryptor name.
            "xmlenc" if !keys.is_empty() => {
                d.register(Arc::new(certificate_decryptor(manifest, keys)))
            }
            "xmlenc" => d.register(Arc::new(XmlEncDecryptor(keys_for(manifest, keys)))),
            other => panic!("unknown decryptor {other}"),
        };
    }
    d
}

/// dpwrap's `CertificateXmlDecryptor` holding the manifest's RSA keys with their certificates.
fn certificate_decryptor(manifest: &Value, names: &[String]) -> dpwrap::CertificateXmlDecryptor {
    let certs = names.iter().map(|name| {
        let k = &manifest["keys"][name];
        assert_eq!(
            k["kind"], "rsa",
            "{name}: only certificates go through the certificate decryptor"
        );
        let der = std::fs::read(dir().join(k["pkcs8_der"].as_str().unwrap())).unwrap();
        let cert = std::fs::read(dir().join(k["certificate_der"].as_str().unwrap())).unwrap();
        Arc::new(dpwrap::CertificateWithKey::from_der(&cert, &der).unwrap())
    });
    dpwrap::CertificateXmlDecryptor::new(certs)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Futures here never wait on I/O.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// What a successful run produced, for the controls.
enum Success {
    Parsed,
    MasterKey(String),
    Plaintext(Vec<u8>),
}

fn first_encrypted_data(doc: &Element) -> &Element {
    if doc.is(Some(NS_XENC), "EncryptedData") {
        doc
    } else {
        doc.find(Some(NS_XENC), "EncryptedData")
            .expect("the case has an EncryptedData")
    }
}

/// Runs one case through its entry point.
fn run(manifest: &Value, case: &Value, bytes: &[u8], scratch: &Path) -> dpwrap::Result<Success> {
    let keys = strings(&case["keys"]);
    match case["entry"].as_str().unwrap() {
        "xml" => xml::parse(bytes).map(|_| Success::Parsed),
        "key_file" => {
            let element = match case["save_as"].as_str() {
                Some(name) => {
                    let path = scratch.join(name);
                    std::fs::write(&path, bytes).unwrap();
                    key_file::read_file(&path)?
                }
                None => RingElement::from_element(xml::parse(bytes)?)?,
            };
            match element {
                RingElement::Key(key) => {
                    let decryptors = decryptors_for(manifest, case, &keys);
                    let mk = block_on(key.master_key(&decryptors))?;
                    Ok(Success::MasterKey(mk.to_base64().to_string()))
                }
                RingElement::Revocation(_) => Ok(Success::Parsed),
            }
        }
        "envelope" => {
            let element = xml::parse(bytes)?;
            let decryptors = decryptors_for(manifest, case, &keys);
            block_on(dpwrap::envelope::decrypt_element(&element, &decryptors))
                .map(|_| Success::Parsed)
        }
        "xmlenc" => {
            let doc = xml::parse(bytes)?;
            let store = keys_for(manifest, &keys);
            xmlenc::decrypt_encrypted_data(first_encrypted_data(&doc), &doc, &store)
                .map(|pt| Success::Plaintext(pt.to_vec()))
        }
        other => panic!("unknown entry point '{other}' (add it to tests/malformed.rs)"),
    }
}

/// For cases that must fail past key unwrapping: unwrap the first key of the first
/// `EncryptedData` with the fixture keys through dpwrap's primitives, and check it has the length
/// the content algorithm needs (or, for `key-length`, that it unwraps to another length).
fn check_reaches(manifest: &Value, case: &Value, bytes: &[u8]) {
    let Some(stage) = case["reaches"].as_str() else {
        return;
    };
    let file = case["file"].as_str().unwrap();
    if matches!(stage, "rsa-decrypt" | "key-unwrap") {
        // A Decrypt error (asserted by the caller) is only given once a key was applied.
        return;
    }
    let doc = xml::parse(bytes).unwrap();
    let ed = EncryptedData::parse(first_encrypted_data(&doc)).unwrap();
    let alg = content_algorithm(&ed.method.as_ref().unwrap().algorithm).unwrap();
    let store_names = strings(&case["keys"]);
    let key_info = ed.key_info.as_ref().unwrap();
    let key: Vec<u8> = match key_info.items.first().unwrap() {
        KeyInfoItem::KeyName(name) => unhex(manifest["keys"][name]["hex"].as_str().unwrap()),
        KeyInfoItem::EncryptedKey(ek) => {
            let CipherData::Value(wrapped) = &ek.cipher_data else {
                panic!("{file}: wrapped key by reference")
            };
            match key_algorithm(&ek.method).unwrap() {
                KeyAlgorithm::Rsa(padding) => {
                    let k = &manifest["keys"][&store_names[0]];
                    let der = std::fs::read(dir().join(k["pkcs8_der"].as_str().unwrap())).unwrap();
                    RsaPrivateKey::from_pkcs8_der(&der)
                        .unwrap()
                        .decrypt(&padding, wrapped)
                        .unwrap_or_else(|e| panic!("{file}: RSA unwrap fails: {e}"))
                        .to_vec()
                }
                KeyAlgorithm::Wrap(kw) => {
                    let name = ek.key_info.as_ref().unwrap().key_names().next().unwrap();
                    let kek = unhex(manifest["keys"][name]["hex"].as_str().unwrap());
                    kw.unwrap(&kek, wrapped)
                        .unwrap_or_else(|e| panic!("{file}: key unwrap fails: {e}"))
                        .to_vec()
                }
            }
        }
        other => panic!("{file}: unexpected first KeyInfo item {other:?}"),
    };
    if stage == "key-length" {
        assert_ne!(
            key.len(),
            alg.key_len(),
            "{file}: the key has the right length"
        );
        return;
    }
    assert_eq!(
        key.len(),
        alg.key_len(),
        "{file}: the key has the wrong length"
    );
    let CipherData::Value(data) = &ed.cipher_data else {
        panic!("{file}: cipher data by reference")
    };
    let content = alg.decrypt(&key, data);
    match stage {
        "plaintext-check" => assert!(content.is_ok(), "{file}: content does not decrypt"),
        "content-decrypt" | "content-unpad" => {
            assert!(content.is_err(), "{file}: content decrypts")
        }
        other => panic!("{file}: unknown stage {other}"),
    }
}

#[test]
fn every_hostile_file_fails_with_its_exact_kind_without_panicking_in_bounded_memory() {
    let manifest = manifest();
    let cases = manifest["cases"].as_array().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // The manifest and the folder agree, and the corpus is as large as promised.
    let listed: BTreeSet<String> = cases
        .iter()
        .map(|c| c["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), cases.len(), "a file is listed twice");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json")
        .collect();
    assert_eq!(
        listed, on_disk,
        "manifest.json and fixtures/malformed differ"
    );
    let hostile = listed.iter().filter(|n| n.starts_with("fail-")).count();
    assert!(hostile >= 50, "only {hostile} hostile files");

    let mut failures = Vec::new();
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    let mut peaks = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let expected = case["expected"].as_str().unwrap();
        assert!(
            expected == "ok" || ErrorKind::from_name(expected).is_some(),
            "{file}: '{expected}' is not an ErrorKind name"
        );
        assert_eq!(
            file.starts_with("ok-"),
            expected == "ok",
            "{file}: controls are named ok-*, hostile files fail-*"
        );
        let bytes = std::fs::read(dir().join(file)).unwrap();

        ALLOC.reset_peak_memory();
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&manifest, case, &bytes, scratch.path())
        }));
        let peak = ALLOC.get_peak_memory();
        let elapsed = started.elapsed();
        if let Some(max) = case["max_millis"].as_u64()
            && elapsed.as_millis() > u128::from(max)
        {
            failures.push(format!("{file}: took {elapsed:?}, bound {max} ms"));
        }

        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                failures.push(format!("{file}: panicked"));
                continue;
            }
        };
        if let Some(max) = case["max_peak_bytes"].as_u64() {
            peaks.push(format!(
                "{file}: {} KiB in, peak {} KiB",
                bytes.len() / 1024,
                peak / 1024
            ));
            if peak as u64 > max {
                failures.push(format!(
                    "{file}: peak allocation {peak} bytes exceeds {max} (input {} bytes)",
                    bytes.len()
                ));
            }
        }
        *by_kind.entry(expected.to_owned()).or_default() += 1;
        match (expected, result) {
            ("ok", Ok(success)) => match success {
                Success::MasterKey(mk) => {
                    assert_eq!(mk, case["expected_master_key"].as_str().unwrap(), "{file}")
                }
                Success::Plaintext(pt) => assert_eq!(
                    pt,
                    case["expected_plaintext"].as_str().unwrap().as_bytes(),
                    "{file}"
                ),
                Success::Parsed => {}
            },
            ("ok", Err(e)) => failures.push(format!("{file}: control failed: {:?}: {e}", e.kind())),
            (_, Ok(_)) => failures.push(format!("{file}: succeeded, expected {expected}")),
            (_, Err(e)) => {
                if e.kind().as_str() != expected {
                    failures.push(format!(
                        "{file}: {} instead of {expected}: {e}",
                        e.kind().as_str()
                    ));
                    continue;
                }
                if e.kind() == ErrorKind::Decrypt {
                    assert_eq!(e.message(), DECRYPT_MESSAGE, "{file}");
                }
                check_reaches(&manifest, case, &bytes);
            }
        }
    }
    println!("malformed corpus: {} cases, {by_kind:?}", cases.len());
    println!("bounded cases:\n  {}", peaks.join("\n  "));
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
