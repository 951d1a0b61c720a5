//! The W3C XML Encryption engine against third-party vectors: the Merlin, Phaos and XML
//! Encryption 1.1 interop suites (as shipped by xmlsec) and a real ASP.NET Core key, all driven by
//! `../shared/vectors/manifest.json`. Expected octets, session keys and documents were produced by
//! xmlsec1, libxmlsec1 1.3 and an independent pyca/cryptography decryptor (see the vectors'
//! README); nothing here was produced by dpwrap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use der::{Decode as _, Encode as _};
use dpwrap::xml::{self, Element, NS_XENC};
use dpwrap::xmlenc::{self, Keys};
use dpwrap::{ContentAlgorithm, ErrorKind, RsaPrivateKey, RsaPublicKey, SecretBytes};
use serde_json::Value;

fn vector_path(rel: &str) -> std::path::PathBuf {
    common::shared(&format!("vectors/{rel}"))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vector_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn manifest() -> Vec<Value> {
    serde_json::from_slice(&read("manifest.json")).unwrap()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// dpwrap refuses DTDs on untrusted input. Two Merlin vectors (and their `.data`) carry an
/// internal subset whose only job is to declare `Id` attributes as IDs; dpwrap finds `Id`
/// attributes without it, so the test cuts the DOCTYPE out before parsing.
fn strip_doctype(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    match text.find("<!DOCTYPE") {
        Some(start) => {
            let end = text[start..].find("]>").map(|e| start + e + 2).unwrap();
            let mut out = text[..start].to_owned();
            out.push_str(&text[end..]);
            out.into_bytes()
        }
        None => bytes.to_vec(),
    }
}

fn parse_vector(rel: &str) -> Element {
    xml::parse(&strip_doctype(&read(rel))).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn first_encrypted_data(doc: &Element) -> &Element {
    if doc.is(Some(NS_XENC), "EncryptedData") {
        return doc;
    }
    doc.find(Some(NS_XENC), "EncryptedData")
        .expect("an EncryptedData")
}

/// Every base64 `X509Certificate` in the files of a suite folder, decoded.
fn certificates_in(folder: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(vector_path(folder)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("X509Certificate>") {
            let rest = &text[i + "X509Certificate>".len()..];
            let body: String = rest[..rest.find('<').unwrap_or(0)]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if body.is_empty() {
                continue;
            }
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body)
                && !out.contains(&der)
            {
                out.push(der);
            }
        }
    }
    out
}

/// The certificate among `candidates` whose public key is `key`'s: the pairing is proven by the
/// RSA modulus (parsed with x509-cert), not by anything dpwrap computes.
fn certificate_for(key: &RsaPrivateKey, candidates: &[Vec<u8>]) -> Vec<u8> {
    let modulus = key.public_key().modulus();
    candidates
        .iter()
        .find(|der| {
            let cert = x509_cert::Certificate::from_der(der).unwrap();
            let spki = cert
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap();
            RsaPublicKey::from_spki_der(&spki).is_ok_and(|p| p.modulus() == modulus)
        })
        .cloned()
        .expect("a certificate for the key in the suite's documents")
}

/// An RSA private key in DER. The vectors' README calls the Phaos and XML Encryption 1.1 `.der`
/// files PKCS#8, but they are PKCS#1 `RSAPrivateKey`s (`openssl asn1parse`: a SEQUENCE starting
/// with INTEGER 0 and the modulus, no AlgorithmIdentifier), like Merlin's `rsapriv.der`.
fn rsa_der(rel: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs1_der(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The keys of all three suites in one store, as a user with all of them would configure it:
/// symmetric keys under their KeyName (from the `sym-*.key` files, cross-checked with the
/// manifest's hex), the Phaos RSA key by name, the Merlin and XML Encryption 1.1 RSA keys by
/// certificate.
fn suite_keys() -> Keys {
    let mut keys = Keys::new();
    let mut seen = BTreeMap::new();
    for v in manifest() {
        if v["kind"] != "xmlenc" {
            continue;
        }
        let (Some(name), Some(file)) = (v["key_name"].as_str(), v["key_file"].as_str()) else {
            continue;
        };
        if !file.ends_with(".key") {
            continue;
        }
        let bytes = read(file);
        if let Some(h) = v["key_hex"].as_str() {
            assert_eq!(to_hex(&bytes), h.to_lowercase(), "{file} vs manifest");
        }
        if seen.insert(name.to_owned(), bytes.clone()).is_none() {
            keys.add_symmetric(name, SecretBytes::new(bytes));
        }
    }
    assert!(seen.len() >= 10, "symmetric keys found: {:?}", seen.keys());

    let merlin = rsa_der("xmlenc/merlin-xmlenc-five/rsapriv.der");
    let merlin_cert = certificate_for(&merlin, &certificates_in("xmlenc/merlin-xmlenc-five"));
    keys.add_rsa(None, merlin, Some(merlin_cert));

    let phaos = rsa_der("xmlenc/01-phaos-xmlenc-3/rsa-priv-key.der");
    keys.add_rsa(Some("my-rsa-key".to_owned()), phaos, None);

    let xenc11_certs = certificates_in("xmlenc/xmlenc11-interop-2012");
    for bits in [2048, 3072, 4096] {
        let k = rsa_der(&format!(
            "xmlenc/xmlenc11-interop-2012/RSA-{bits}_SHA256WithRSA.der"
        ));
        let cert = certificate_for(&k, &xenc11_certs);
        keys.add_rsa(None, k, Some(cert));
    }
    keys
}

fn content_alg(name: &str) -> ContentAlgorithm {
    match name {
        "aes128-cbc" => ContentAlgorithm::Aes128Cbc,
        "aes192-cbc" => ContentAlgorithm::Aes192Cbc,
        "aes256-cbc" => ContentAlgorithm::Aes256Cbc,
        "tripledes-cbc" => ContentAlgorithm::TripleDesCbc,
        "aes128-gcm" => ContentAlgorithm::Aes128Gcm,
        "aes192-gcm" => ContentAlgorithm::Aes192Gcm,
        "aes256-gcm" => ContentAlgorithm::Aes256Gcm,
        other => panic!("unknown content algorithm {other}"),
    }
}

#[test]
fn xmlenc_vectors_decrypt_exactly_and_negatives_fail() {
    let keys = suite_keys();
    let (mut positives, mut exact, mut documents, mut negatives, mut rejected) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for v in manifest() {
        if v["kind"] != "xmlenc" {
            continue;
        }
        let id = v["id"].as_str().unwrap();
        let file = v["file"].as_str().unwrap();
        let doc = parse_vector(file);
        let ed = first_encrypted_data(&doc);
        if v["expected_result"] == "error" {
            negatives += 1;
            match xmlenc::decrypt_encrypted_data(ed, &doc, &keys) {
                Err(e) if e.kind() == ErrorKind::Decrypt => {
                    let mut copy = doc.clone();
                    let e2 = xmlenc::decrypt_document(&mut copy, &keys).unwrap_err();
                    assert_eq!(e2.kind(), ErrorKind::Decrypt, "{id}");
                    assert_eq!(e.message(), e2.message());
                    rejected += 1;
                }
                Err(e) => failures.push(format!("{id}: wrong error kind {:?}: {e}", e.kind())),
                Ok(_) => failures.push(format!("{id}: decrypted, but must fail")),
            }
            continue;
        }
        positives += 1;
        let expected = read(v["expected_plaintext_file"].as_str().unwrap());
        let details = match xmlenc::decrypt_encrypted_data_with_details(ed, &doc, &keys) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{id}: {:?}: {e}", e.kind()));
                continue;
            }
        };
        if details.plaintext.expose() != expected.as_slice() {
            failures.push(format!("{id}: plaintext differs from .plaintext"));
            continue;
        }
        assert_eq!(
            details.content_algorithm,
            content_alg(v["content_alg"].as_str().unwrap()),
            "{id}"
        );
        if let Some(sk) = v["expected_session_key_hex"].as_str() {
            assert_eq!(
                to_hex(details.content_key.expose()),
                sk.to_lowercase(),
                "{id}: session key"
            );
        }
        // The octets API returns the same thing.
        let octets = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap();
        assert_eq!(&octets[..], expected.as_slice(), "{id}");
        exact += 1;

        match v["type"].as_str() {
            Some("Element") | Some("Content") => {
                let mut decrypted = doc.clone();
                assert_eq!(
                    xmlenc::decrypt_document(&mut decrypted, &keys).unwrap(),
                    1,
                    "{id}"
                );
                if let Some(data) = v["expected_file"].as_str() {
                    let want = parse_vector(data);
                    assert!(
                        decrypted == want,
                        "{id}: the decrypted document differs from {data}:\n{}\n---\n{}",
                        xml::to_compact_string(&decrypted),
                        xml::to_compact_string(&want)
                    );
                    documents += 1;
                }
            }
            _ => {
                // Untyped data: xmlsec's `.data` is the raw octets.
                if let Some(data) = v["expected_file"].as_str() {
                    assert_eq!(details.plaintext.expose(), read(data).as_slice(), "{id}");
                }
                let mut copy = doc.clone();
                assert_eq!(
                    xmlenc::decrypt_document(&mut copy, &keys)
                        .unwrap_err()
                        .kind(),
                    ErrorKind::Format,
                    "{id}: octets cannot replace an element"
                );
            }
        }
    }
    println!(
        "xmlenc vectors: {exact}/{positives} exact, {rejected}/{negatives} rejected, {documents} documents equal to xmlsec's"
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_eq!((exact, positives), (38, 38));
    assert_eq!((rejected, negatives), (2, 2));
    assert!(documents >= 30, "{documents} documents compared");
}

/// Decodes the first PEM block of a file.
fn pem(rel: &str) -> Vec<u8> {
    let text = String::from_utf8(read(rel)).unwrap();
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn aspnet_entry() -> Value {
    manifest()
        .into_iter()
        .find(|v| {
            v["id"]
                .as_str()
                .is_some_and(|i| i.contains("dotnet-aspnetcore-trimming"))
        })
        .unwrap()
}

const ASPNET: &str = "aspnet/dotnet-aspnetcore-trimming/TestCert-user-example-com";

#[test]
fn the_real_aspnet_key_decrypts_to_its_master_key() {
    let v = aspnet_entry();
    let key = RsaPrivateKey::from_pkcs8_der(&pem(&format!("{ASPNET}.key.pem"))).unwrap();
    let cert = pem(&format!("{ASPNET}.cert.pem"));
    let mut keys = Keys::new();
    keys.add_rsa(None, key, Some(cert));

    let file = parse_vector(v["file"].as_str().unwrap());
    let ed = first_encrypted_data(&file);
    let master_key = xmlenc::decrypt_element_type(ed, &keys).unwrap();
    let el = master_key.expose();
    assert!(el.is(None, "masterKey"));
    assert_eq!(
        el.attribute(Some(xml::NS_DP), "requiresEncryption"),
        Some("true")
    );
    assert_eq!(
        el.element(None, "value").unwrap().text(),
        v["expected_value"].as_str().unwrap()
    );

    let details = xmlenc::decrypt_encrypted_data_with_details(ed, &file, &keys).unwrap();
    assert_eq!(
        to_hex(details.content_key.expose()),
        v["expected_session_key_hex"].as_str().unwrap()
    );
    assert_eq!(
        details.plaintext.expose(),
        read(v["expected_plaintext_file"].as_str().unwrap()).as_slice()
    );
    assert!(details.key_source.contains("rsa-1_5"));
    // The certificate .NET identifies the key by (thumbprint in the manifest, from openssl).
    assert!(
        details
            .key_source
            .contains("3BFD1BAE91D198645590F1DAC2FE7C2250292A65")
    );

    // The standalone EncryptedData cut out by the vector's author decrypts the same way.
    let standalone = parse_vector(v["standalone_encrypted_data_file"].as_str().unwrap());
    let again = xmlenc::decrypt_element_type(&standalone, &keys).unwrap();
    assert_eq!(again.expose(), el);
}

#[test]
fn a_missing_certificate_is_named_with_its_thumbprint() {
    let v = aspnet_entry();
    let mut keys = Keys::new();
    keys.add_rsa(
        Some("unrelated".to_owned()),
        RsaPrivateKey::generate(2048).unwrap(),
        None,
    );
    keys.add_symmetric("jed", SecretBytes::copy_from(&[0; 32]));
    let file = parse_vector(v["file"].as_str().unwrap());
    let e = xmlenc::decrypt_element_type(first_encrypted_data(&file), &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    let m = e.message();
    assert!(
        m.contains("3BFD1BAE91D198645590F1DAC2FE7C2250292A65"),
        "{m}"
    );
    assert!(m.contains("'unrelated'") && m.contains("'jed'"), "{m}");
}

#[test]
fn keys_without_hints_match_only_when_trying_every_rsa_key() {
    // The XML Encryption 1.1 RSA vectors name their key by X509Data only.
    let v = manifest()
        .into_iter()
        .find(|v| v["id"].as_str().unwrap().contains("RSA-4096__aes256-gcm"))
        .unwrap();
    let doc = parse_vector(v["file"].as_str().unwrap());
    let ed = first_encrypted_data(&doc);
    let mut keys = Keys::new();
    for bits in [2048, 3072, 4096] {
        keys.add_rsa(
            None,
            rsa_der(&format!(
                "xmlenc/xmlenc11-interop-2012/RSA-{bits}_SHA256WithRSA.der"
            )),
            None,
        );
    }
    let e = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    assert!(
        e.message().contains("CN=RSA-4096_SHA256WithRSA"),
        "{}",
        e.message()
    );
    keys.try_all_rsa_keys(true);
    let pt = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap();
    assert_eq!(
        &pt[..],
        read(v["expected_plaintext_file"].as_str().unwrap()).as_slice()
    );
}

/// A key candidate as the certificate module will provide one: it matches `X509IssuerSerial`,
/// which the built-in store cannot (it would need a parsed certificate).
#[derive(Debug)]
struct ByIssuerSerial {
    key: RsaPrivateKey,
    issuer_cn: String,
    serial: String,
}

impl xmlenc::RsaKeyCandidate for ByIssuerSerial {
    fn private_key(&self) -> &RsaPrivateKey {
        &self.key
    }

    fn matches(&self, key_info: &xmlenc::KeyInfo) -> bool {
        key_info.x509_data().any(|x| {
            x.issuer_serials.iter().any(|is| {
                is.serial_number == self.serial && is.issuer_name.contains(&self.issuer_cn)
            })
        })
    }

    fn description(&self) -> String {
        format!("certificate {} serial {}", self.issuer_cn, self.serial)
    }
}

#[test]
fn custom_candidates_match_what_the_store_cannot() {
    let v = manifest()
        .into_iter()
        .find(|v| v["id"].as_str().unwrap().contains("RSA-4096__aes256-gcm"))
        .unwrap();
    let doc = parse_vector(v["file"].as_str().unwrap());
    let ed = first_encrypted_data(&doc);
    let key = rsa_der("xmlenc/xmlenc11-interop-2012/RSA-4096_SHA256WithRSA.der");
    let der = certificate_for(&key, &certificates_in("xmlenc/xmlenc11-interop-2012"));
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let serial = cert
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
        .to_string();
    let issuer = cert.tbs_certificate().issuer().to_string();
    let issuer_cn = issuer
        .split(',')
        .find(|p| p.starts_with("CN="))
        .unwrap()
        .to_owned();
    let mut keys = Keys::new();
    keys.add_candidate(Box::new(ByIssuerSerial {
        key,
        issuer_cn,
        serial,
    }));
    let d = xmlenc::decrypt_encrypted_data_with_details(ed, &doc, &keys).unwrap();
    assert_eq!(
        d.plaintext.expose(),
        read(v["expected_plaintext_file"].as_str().unwrap()).as_slice()
    );
    assert!(
        d.key_source.contains("serial 5267385727536888004"),
        "{}",
        d.key_source
    );
}
