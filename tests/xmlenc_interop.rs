//! XML Encryption interop in both directions: what dpwrap encrypts, xmlsec1 and .NET's own
//! `EncryptedXml` (the Mono peer, through ASP.NET's `EncryptedXmlDecryptor` read path) decrypt;
//! what .NET encrypts (`CertificateXmlEncryptor`, every session cipher and padding it can use),
//! dpwrap decrypts. Certificates come from the peer's `gen-cert` (openssl).
//!
//! Skips with `SKIPPED:` when mono, the peer or xmlsec1 is missing; fails instead under
//! `DPWRAP_INTEROP=require`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use der::{Decode as _, Encode as _};
use dpwrap::xml::{self, Element, NS_XENC, WriteOptions};
use dpwrap::xmlenc::{self, EncryptedDataBuilder, Keys, Recipient};
use dpwrap::{ContentAlgorithm, RsaPadding, RsaPrivateKey, RsaPublicKey};

use common::interop::{self, Peer};

const ENCRYPTED_XML_DECRYPTOR: &str = "Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60";

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!(
            "dpwrap-xmlenc-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate made by the peer's `gen-cert`, read with x509-cert (not dpwrap).
struct Material {
    cert_pem: PathBuf,
    key_pem: PathBuf,
    cert_der: Vec<u8>,
    public_key: RsaPublicKey,
    thumbprint: String,
}

impl Material {
    fn generate(peer: &Peer, dir: &Path, bits: u32) -> Material {
        let name = format!("rsa{bits}");
        peer.gen_cert(dir, bits, "pw", &name);
        let cert_pem = dir.join(format!("{name}.cert.pem"));
        let key_pem = dir.join(format!("{name}.key.pem"));
        let cert_der = pem_body(&cert_pem);
        let cert = x509_cert::Certificate::from_der(&cert_der).unwrap();
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap();
        let thumbprint = std::fs::read_to_string(dir.join(format!("{name}.thumbprint")))
            .unwrap()
            .trim()
            .to_owned();
        Material {
            cert_pem,
            key_pem,
            cert_der,
            public_key: RsaPublicKey::from_spki_der(&spki).unwrap(),
            thumbprint,
        }
    }

    fn keys(&self) -> Keys {
        let mut keys = Keys::new();
        let key = RsaPrivateKey::from_pkcs8_der(&pem_body(&self.key_pem)).unwrap();
        keys.add_rsa(None, key, Some(self.cert_der.clone()));
        keys
    }
}

fn pem_body(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
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

/// A `<masterKey>` as ASP.NET writes it, with a fresh random value.
fn master_key() -> (Element, String) {
    let value =
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(4));
    let el = xml::parse(
        format!(
            r#"<masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an unencrypted form. --><value>{value}</value></masterKey>"#
        )
        .as_bytes(),
    )
    .unwrap();
    (el, value)
}

fn xmlsec_decrypt(xmlsec: &Path, key_pem: &Path, file: &Path) -> Element {
    let out = Command::new(xmlsec)
        .args(["--decrypt", "--privkey-pem"])
        .arg(key_pem)
        .args(["--node-xpath", "//*[local-name()='EncryptedData']"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    xml::parse(&out.stdout).unwrap()
}

#[test]
fn dpwrap_encryption_is_read_by_xmlsec1_and_dotnet() {
    let Some(peer) = interop::peer() else { return };
    let Some(xmlsec) = interop::xmlsec1() else {
        return;
    };
    let scratch = Scratch::new("out");
    let mut checked = 0;
    for bits in [2048, 3072, 4096] {
        let m = Material::generate(&peer, &scratch.0, bits);
        for padding in [RsaPadding::oaep_sha1(), RsaPadding::Pkcs1v15] {
            let (secret, value) = master_key();
            let ed = EncryptedDataBuilder::new()
                .recipient(
                    Recipient::certificate(m.cert_der.clone(), m.public_key.clone())
                        .rsa_padding(padding.clone()),
                )
                .encrypt_element(&secret)
                .unwrap();
            let tag = format!("{bits}-{}", matches!(padding, RsaPadding::Pkcs1v15));

            // xmlsec1: the EncryptedData as a document of its own.
            let file = scratch.0.join(format!("ed-{tag}.xml"));
            std::fs::write(&file, xml::to_bytes(&ed, WriteOptions::DOCUMENT)).unwrap();
            assert_eq!(
                xmlsec_decrypt(&xmlsec, &m.key_pem, &file),
                secret,
                "xmlsec1, {tag}"
            );

            // .NET: inside <encryptedSecret>, through the EncryptedXmlDecryptor read path.
            let wrapped = Element::new(xml::Name::ns(xml::NS_DP, "encryptedSecret"))
                .with_attribute(xml::Name::local("decryptorType"), ENCRYPTED_XML_DECRYPTOR)
                .with_child(ed);
            let file = scratch.0.join(format!("secret-{tag}.xml"));
            std::fs::write(&file, xml::to_bytes(&wrapped, WriteOptions::KEY_FILE)).unwrap();
            let out = peer.ok([
                "decrypt-key".as_ref(),
                "--in".as_ref(),
                file.as_os_str(),
                "--cert".as_ref(),
                m.cert_pem.as_os_str(),
                "--key".as_ref(),
                m.key_pem.as_os_str(),
            ]);
            let decrypted = xml::parse(out.trim().as_bytes()).unwrap();
            assert_eq!(decrypted, secret, ".NET, {tag}");
            assert_eq!(decrypted.element(None, "value").unwrap().text(), value);
            checked += 1;
        }
    }
    println!("xmlenc interop: {checked} dpwrap-encrypted secrets read by xmlsec1 and .NET");
    assert_eq!(checked, 6);
}

/// The `EncryptedData` of a key file, with every `CipherValue` emptied (the random parts).
fn shape(ed: &Element) -> String {
    let mut ed = ed.clone();
    let mut stack = vec![&mut ed];
    while let Some(el) = stack.pop() {
        if el.is(Some(NS_XENC), "CipherValue") {
            el.children_mut().clear();
        }
        for n in el.children_mut() {
            if let xml::Node::Element(e) = n {
                stack.push(e);
            }
        }
    }
    xml::to_compact_string(&ed)
}

#[test]
fn dotnet_encryption_is_read_by_dpwrap_and_has_our_shape() {
    let Some(peer) = interop::peer() else { return };
    let scratch = Scratch::new("in");
    let m = Material::generate(&peer, &scratch.0, 2048);
    let keys = m.keys();
    let mut checked = 0;
    for format in ["cert", "cert-oaep"] {
        for (sym, alg) in [
            ("aes128", ContentAlgorithm::Aes128Cbc),
            ("aes192", ContentAlgorithm::Aes192Cbc),
            ("aes256", ContentAlgorithm::Aes256Cbc),
            ("3des", ContentAlgorithm::TripleDesCbc),
        ] {
            for padding in ["iso10126", "pkcs7"] {
                let file = scratch.0.join(format!("key-{format}-{sym}-{padding}.xml"));
                let out = peer.ok([
                    "encrypt-key".as_ref(),
                    "--out".as_ref(),
                    file.as_os_str(),
                    "--format".as_ref(),
                    format.as_ref(),
                    "--cert".as_ref(),
                    m.cert_pem.as_os_str(),
                    "--sym".as_ref(),
                    sym.as_ref(),
                    "--padding".as_ref(),
                    padding.as_ref(),
                    "--json".as_ref(),
                ]);
                let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
                let expected = json["master_key_b64"].as_str().unwrap();
                let doc = xml::parse(&std::fs::read(&file).unwrap()).unwrap();
                let ed = doc.find(Some(NS_XENC), "EncryptedData").unwrap();
                let tag = format!("{format}/{sym}/{padding}");

                let secret = xmlenc::decrypt_element_type(ed, &keys)
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                assert_eq!(
                    secret.expose().element(None, "value").unwrap().text(),
                    expected,
                    "{tag}"
                );
                let details = xmlenc::decrypt_encrypted_data_with_details(ed, &doc, &keys).unwrap();
                assert_eq!(details.content_algorithm, alg, "{tag}");
                assert!(details.key_source.contains(&m.thumbprint), "{tag}");

                // The whole key file, EncryptedData replaced in place.
                let mut whole = doc.clone();
                assert_eq!(xmlenc::decrypt_document(&mut whole, &keys).unwrap(), 1);
                assert!(whole.find(Some(NS_XENC), "EncryptedData").is_none());

                // Same structure, names, namespaces and attribute order as our builder's.
                let transport = if format == "cert" {
                    RsaPadding::Pkcs1v15
                } else {
                    RsaPadding::oaep_sha1()
                };
                let ours = EncryptedDataBuilder::new()
                    .content_algorithm(alg)
                    .recipient(
                        Recipient::certificate(m.cert_der.clone(), m.public_key.clone())
                            .rsa_padding(transport),
                    )
                    .encrypt_element(secret.expose())
                    .unwrap();
                assert_eq!(shape(&ours), shape(ed), "{tag}");
                checked += 1;
            }
        }
    }
    println!("xmlenc interop: {checked} .NET-encrypted secrets read by dpwrap");
    assert_eq!(checked, 16);
}
