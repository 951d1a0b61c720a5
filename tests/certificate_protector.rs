//! The certificate protector end to end: the real ASP.NET key, round trips with certificates made
//! in the test, several recipients, wrong certificates and tampering, and interop both ways with
//! the .NET peer (EncryptedXml on Mono) and xmlsec1.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use dpwrap::key_file::{self, Key, RingElement};
use dpwrap::new_key::NewKey;
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{
    Certificate, CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors,
    ErrorKind, KeyTransport, MasterKey, NullXmlDecryptor, Password,
};

fn manifest_entry(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(common::shared("vectors/manifest.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().find(|e| e["id"] == id).unwrap()
}

fn decryptors(certs: Vec<CertificateWithKey>) -> Decryptors {
    Decryptors::new()
        .with(Arc::new(CertificateXmlDecryptor::new(
            certs.into_iter().map(Arc::new),
        )))
        .with(Arc::new(NullXmlDecryptor))
}

fn read_key(path: &Path) -> Key {
    match key_file::read_file(path).unwrap() {
        RingElement::Key(k) => *k,
        other => panic!("{}: not a key: {other:?}", path.display()),
    }
}

async fn new_protected_key(encryptor: &CertificateXmlEncryptor) -> (Key, MasterKey) {
    let spec = NewKey::new(None, time::Duration::days(90)).unwrap();
    let master = MasterKey::generate(64).unwrap();
    let element = spec.protect(&master, encryptor).await.unwrap();
    let bytes = xml::to_bytes(&element, WriteOptions::KEY_FILE);
    (
        Key::from_element(xml::parse(&bytes).unwrap()).unwrap(),
        master,
    )
}

#[test]
fn the_real_aspnet_key_decrypts_with_its_pfx_and_with_its_pem() {
    let entry = manifest_entry(
        "aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3",
    );
    let dir = common::shared("vectors/aspnet/dotnet-aspnetcore-trimming");
    let key = read_key(&dir.join("key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml"));
    let pfx = CertificateWithKey::from_pkcs12_file(
        dir.join("TestCert-user-example-com.pfx"),
        &Password::from(entry["key_password"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(pfx.thumbprint(), "3BFD1BAE91D198645590F1DAC2FE7C2250292A65");
    let pem = CertificateWithKey::from_pem_files(
        dir.join("TestCert-user-example-com.cert.pem"),
        dir.join("TestCert-user-example-com.key.pem"),
        None,
    )
    .unwrap();
    for material in [pfx, pem] {
        let master = common::block_on(key.master_key(&decryptors(vec![material]))).unwrap();
        assert_eq!(
            &*master.to_base64(),
            entry["expected_value"].as_str().unwrap()
        );
    }
}

#[test]
fn round_trips_with_both_key_transports_and_the_rsa15_wrong_key_is_uniform() {
    let a = CertificateWithKey::generate_self_signed("CN=dpwrap test A", 2048, 30).unwrap();
    let b = CertificateWithKey::generate_self_signed("CN=dpwrap test B", 2048, 30).unwrap();
    for transport in [KeyTransport::RsaOaep, KeyTransport::Rsa15] {
        let enc = CertificateXmlEncryptor::new(a.certificate().clone())
            .unwrap()
            .key_transport(transport);
        let (key, master) = common::block_on(new_protected_key(&enc));
        assert_eq!(key.protection(), dpwrap::Protection::Certificate);
        let text = xml::to_compact_string(key.element());
        let uri = match transport {
            KeyTransport::RsaOaep => "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
            KeyTransport::Rsa15 => "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        };
        assert!(text.contains(uri));
        assert!(text.contains("http://www.w3.org/2001/04/xmlenc#aes256-cbc"));
        let dec = decryptors(vec![
            CertificateWithKey::from_der(
                a.certificate().der(),
                &a.private_key().to_pkcs8_der().unwrap(),
            )
            .unwrap(),
        ]);
        let read = common::block_on(key.master_key(&dec)).unwrap();
        assert!(read.ct_eq(&master));

        // A certificate the key was not written for: nothing matches, and the error says which
        // thumbprint the key wants.
        let other = decryptors(vec![
            CertificateWithKey::from_der(
                b.certificate().der(),
                &b.private_key().to_pkcs8_der().unwrap(),
            )
            .unwrap(),
        ]);
        let err = common::block_on(key.master_key(&other)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoMatchingKey);
        assert!(err.to_string().contains(&a.thumbprint()), "{err}");
    }
}

#[test]
fn several_recipients_any_certificate_decrypts() {
    let certs: Vec<CertificateWithKey> = (0..3)
        .map(|i| {
            CertificateWithKey::generate_self_signed(&format!("CN=recipient {i}"), 2048, 30)
                .unwrap()
        })
        .collect();
    let enc = CertificateXmlEncryptor::new(certs[0].certificate().clone())
        .unwrap()
        .with_recipient(certs[1].certificate().clone())
        .unwrap()
        .with_recipient(certs[2].certificate().clone())
        .unwrap();
    let (key, master) = common::block_on(new_protected_key(&enc));
    let text = xml::to_compact_string(key.element());
    assert_eq!(text.matches("<EncryptedKey").count(), 3);
    // The primary comes first.
    let first = text
        .find(&certs[0].certificate().to_pem().lines().nth(1).unwrap()[..40])
        .unwrap();
    let second = text
        .find(&certs[1].certificate().to_pem().lines().nth(1).unwrap()[..40])
        .unwrap();
    assert!(first < second);
    for c in &certs {
        let one = CertificateWithKey::from_der(
            c.certificate().der(),
            &c.private_key().to_pkcs8_der().unwrap(),
        )
        .unwrap();
        let read = common::block_on(key.master_key(&decryptors(vec![one]))).unwrap();
        assert!(read.ct_eq(&master));
    }
}

#[test]
fn tampering_is_the_uniform_decrypt_error() {
    let a = CertificateWithKey::generate_self_signed("CN=tamper", 2048, 30).unwrap();
    let enc = CertificateXmlEncryptor::new(a.certificate().clone()).unwrap();
    let (key, _) = common::block_on(new_protected_key(&enc));
    let text = xml::to_compact_string(key.element());
    // Flip a character in the content CipherValue (the last one in the document).
    let start = text.rfind("<CipherValue>").unwrap() + "<CipherValue>".len();
    let mut bytes = text.into_bytes();
    bytes[start + 30] = if bytes[start + 30] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = Key::from_element(xml::parse(&bytes).unwrap()).unwrap();
    let err = common::block_on(tampered.master_key(&decryptors(vec![a]))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decrypt);
    assert_eq!(err.to_string(), dpwrap::error::DECRYPT_MESSAGE);
}

#[test]
fn debug_output_never_shows_key_material() {
    let a = CertificateWithKey::generate_self_signed("CN=debug", 2048, 30).unwrap();
    let pkcs8 = a.private_key().to_pkcs8_der().unwrap();
    let enc = CertificateXmlEncryptor::new(a.certificate().clone()).unwrap();
    let dec = CertificateXmlDecryptor::new([Arc::new(a)]);
    for text in [format!("{enc:?}"), format!("{dec:?}")] {
        for window in pkcs8.chunks(16).skip(2).take(20) {
            let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
            assert!(!text.to_lowercase().contains(&hex), "{text}");
        }
    }
}

fn peer_manifest(dir: &Path) -> HashMap<String, serde_json::Value> {
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["file"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// dpwrap decrypts every key of peer rings made with 2048/3072/4096-bit certificates, loading the
/// key material as PEM (PKCS#8 and PKCS#1), AES PFX and 3DES PFX.
#[test]
fn dpwrap_reads_peer_rings_with_every_material_form() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut decrypted = 0;
    for bits in [2048u32, 3072, 4096] {
        let certs = tmp.path().join(format!("certs{bits}"));
        let name = format!("rsa{bits}");
        peer.gen_cert(&certs, bits, "pw", &name);
        let ring = tmp.path().join(format!("ring{bits}"));
        let cert = certs.join(format!("{name}.cert.pem"));
        peer.ok([
            "gen-ring",
            "--count",
            "8",
            "--out",
            ring.to_str().unwrap(),
            "--formats",
            "cert,cert-oaep,null,none",
            "--cert",
            cert.to_str().unwrap(),
        ]);
        let expected = peer_manifest(&ring);
        let pw = Password::from("pw");
        let materials = [
            CertificateWithKey::from_pem_files(&cert, certs.join(format!("{name}.key.pem")), None)
                .unwrap(),
            CertificateWithKey::from_pem_files(&cert, certs.join(format!("{name}.rsa.pem")), None)
                .unwrap(),
            CertificateWithKey::from_pkcs12_file(certs.join(format!("{name}.pfx")), &pw).unwrap(),
            CertificateWithKey::from_pkcs12_file(certs.join(format!("{name}.3des.pfx")), &pw)
                .unwrap(),
        ];
        let thumbprint = std::fs::read_to_string(certs.join(format!("{name}.thumbprint"))).unwrap();
        for material in materials {
            assert_eq!(material.thumbprint(), thumbprint.trim());
            let dec = decryptors(vec![material]);
            for (file, m) in &expected {
                let key = read_key(&ring.join(file));
                let master = common::block_on(key.master_key(&dec)).unwrap();
                assert_eq!(
                    &*master.to_base64(),
                    m["master_key_b64"].as_str().unwrap(),
                    "{file} ({bits})"
                );
                decrypted += 1;
            }
        }
    }
    assert_eq!(decrypted, 3 * 4 * 8);
    eprintln!(
        "dpwrap decrypted {decrypted}/{decrypted} peer keys (3 sizes x 4 material forms x 8 keys)"
    );
}

/// The peer (.NET's EncryptedXml) and xmlsec1 decrypt every key dpwrap protects, with OAEP and
/// with rsa-1_5, for 2048/3072/4096-bit certificates.
#[test]
fn peer_and_xmlsec1_read_what_dpwrap_protects() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let xmlsec1 = common::interop::xmlsec1();
    let tmp = tempfile::tempdir().unwrap();
    let (mut by_peer, mut by_xmlsec) = (0, 0);
    for bits in [2048u32, 3072, 4096] {
        let certs = tmp.path().join(format!("certs{bits}"));
        let name = format!("rsa{bits}");
        peer.gen_cert(&certs, bits, "pw", &name);
        let cert_pem = certs.join(format!("{name}.cert.pem"));
        let key_pem = certs.join(format!("{name}.key.pem"));
        let certificate = Certificate::from_file(&cert_pem).unwrap();
        for transport in [KeyTransport::RsaOaep, KeyTransport::Rsa15] {
            let ring = tmp.path().join(format!("ring{bits}-{transport:?}"));
            std::fs::create_dir_all(&ring).unwrap();
            let enc = CertificateXmlEncryptor::new(certificate.clone())
                .unwrap()
                .key_transport(transport);
            let mut ours = HashMap::new();
            for _ in 0..3 {
                let spec = NewKey::new(None, time::Duration::days(90)).unwrap();
                let master = MasterKey::generate(64).unwrap();
                let element = common::block_on(spec.protect(&master, &enc)).unwrap();
                let file = ring.join(format!("key-{}.xml", spec.id));
                std::fs::write(&file, xml::to_bytes(&element, WriteOptions::KEY_FILE)).unwrap();
                ours.insert(spec.id.to_string(), master.to_base64().to_string());
            }
            let out = peer.ok([
                "decrypt-ring",
                "--dir",
                ring.to_str().unwrap(),
                "--cert",
                cert_pem.to_str().unwrap(),
                "--key",
                key_pem.to_str().unwrap(),
            ]);
            for line in out.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let id = v["key_id"].as_str().unwrap();
                assert_eq!(
                    v["master_key_b64"].as_str().unwrap(),
                    ours[id],
                    "peer, {bits} {transport:?}"
                );
                by_peer += 1;
            }
            if let Some(xmlsec1) = &xmlsec1 {
                for entry in std::fs::read_dir(&ring).unwrap() {
                    let file = entry.unwrap().path();
                    let out = std::process::Command::new(xmlsec1)
                        .args(["--decrypt", "--privkey-pem", key_pem.to_str().unwrap()])
                        .args(["--node-xpath", "//*[local-name()='EncryptedData']"])
                        .arg(&file)
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "xmlsec1: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let text = String::from_utf8(out.stdout).unwrap();
                    let id = file
                        .file_stem()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .trim_start_matches("key-");
                    assert!(
                        text.contains(&format!("<value>{}</value>", ours[id])),
                        "xmlsec1, {bits} {transport:?}"
                    );
                    by_xmlsec += 1;
                }
            }
        }
    }
    assert_eq!(by_peer, 18);
    eprintln!("peer decrypted {by_peer}/18 dpwrap keys; xmlsec1 decrypted {by_xmlsec}/18");
}
