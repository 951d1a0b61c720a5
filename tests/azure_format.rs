//! The Azure Key Vault format against data .NET produced: the Azure SDK's own mock-wrapped sample,
//! and rings from the Mono peer (which runs .NET's AES and RSA-OAEP the way ASP.NET's encryptor
//! and decryptor use them) in both directions.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use dpwrap::azure::kek::WrappedKey;
use dpwrap::azure::{
    AzureKeyVaultXmlDecryptor, AzureKeyVaultXmlEncryptor, EncryptedKey, KeyEncryptionKey,
    LocalKekResolver, LocalRsaKek, WrapAlgorithm,
};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{
    ContentAlgorithm, DecryptorType, Decryptors, ErrorKind, Ring, SecretBytes, XmlDecryptor,
    XmlEncryptor,
};

use common::{block_on, interop, shared};

/// The KEK of the Azure SDK's `AzureKeyVaultXmlEncryptorTests`: wrapping reverses the bytes.
#[derive(Debug)]
struct ReversingKek;

#[async_trait]
impl KeyEncryptionKey for ReversingKek {
    fn key_id(&self) -> &str {
        "KeyId"
    }
    async fn wrap_key(&self, _: WrapAlgorithm, key: &[u8]) -> dpwrap::Result<WrappedKey> {
        Ok(WrappedKey {
            kid: "KeyId".into(),
            wrapped: key.iter().rev().copied().collect(),
        })
    }
    async fn unwrap_key(&self, _: WrapAlgorithm, wrapped: &[u8]) -> dpwrap::Result<SecretBytes> {
        Ok(SecretBytes::new(wrapped.iter().rev().copied().collect()))
    }
}

fn mock_dir() -> PathBuf {
    shared("vectors/aspnet/azure-sdk-akv-mock")
}

fn decryptor_over(kek: Arc<dyn KeyEncryptionKey>) -> AzureKeyVaultXmlDecryptor {
    AzureKeyVaultXmlDecryptor::new(Arc::new(LocalKekResolver::new().with(kek)))
}

#[test]
fn azure_sdk_mock_vector_decrypts_with_the_reversing_kek() {
    let bytes = std::fs::read(mock_dir().join("encryptedKey.xml")).unwrap();
    let encrypted = xml::parse(&bytes).unwrap();
    let decryptor = decryptor_over(Arc::new(ReversingKek));
    let out = block_on(decryptor.decrypt(&encrypted)).unwrap();
    // The manifest's expected value.
    assert_eq!(out.expose(), &xml::parse(b"<Element />").unwrap());
    assert_eq!(xml::to_compact_string(out.expose()), "<Element />");
}

#[test]
fn our_plaintext_is_byte_for_byte_what_xelement_save_wrote() {
    // Encrypt <Element /> the way the SDK test does, then open our own ciphertext with the raw
    // AES primitive: the plaintext must equal the vector's, which .NET produced.
    let expected = std::fs::read(mock_dir().join("encryptedKey.plaintext")).unwrap();
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(ReversingKek));
    let info = block_on(encryptor.encrypt(&xml::parse(b"<Element />").unwrap())).unwrap();
    assert!(
        info.decryptor_type
            .matches(&DecryptorType::azure_key_vault())
    );
    let ek = EncryptedKey::from_element(&info.encrypted_element).unwrap();
    assert_eq!(ek.kid, "KeyId");
    let content_key: Vec<u8> = ek.wrapped_key.iter().rev().copied().collect();
    assert_eq!(content_key.len(), 16, "the current package writes AES-128");
    assert_eq!(ek.iv.len(), 16);
    let plaintext = ContentAlgorithm::Aes128Cbc
        .cbc_decrypt(&content_key, &ek.iv, &ek.value)
        .unwrap();
    assert_eq!(&plaintext[..], &expected[..]);
    // Strict PKCS#7 padding, as .NET's Aes writes it: a full block when the length is aligned.
    let pad = 16 - expected.len() % 16;
    assert_eq!(ek.value.len(), expected.len() + pad);
    let text = xml::to_compact_string(&info.encrypted_element);
    assert!(
        text.starts_with("<encryptedKey><!-- This key is encrypted with Azure Key Vault. --><kid>KeyId</kid><key>"),
        "{text}"
    );
}

#[test]
fn legacy_encryptor_writes_the_old_type_and_comment() {
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(ReversingKek)).legacy(true);
    let info = block_on(encryptor.encrypt(&xml::parse(b"<Element />").unwrap())).unwrap();
    assert_eq!(
        info.decryptor_type.as_str(),
        "Microsoft.AspNetCore.DataProtection.AzureKeyVault.AzureKeyVaultXmlDecryptor, Microsoft.AspNetCore.DataProtection.AzureKeyVault, Version=3.1.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60"
    );
    assert!(
        xml::to_compact_string(&info.encrypted_element)
            .contains("<!-- This key is encrypted with Azure KeyVault. -->")
    );
}

#[test]
fn tampering_and_wrong_keys_give_the_uniform_error() {
    let bytes = std::fs::read(mock_dir().join("encryptedKey.xml")).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    // Flip the last ciphertext block: the padding (or the XML) breaks.
    let tampered = text.replace("LQ==</value>", "LA==</value>");
    assert_ne!(tampered, text);
    let decryptor = decryptor_over(Arc::new(ReversingKek));
    let e = block_on(decryptor.decrypt(&xml::parse(tampered.as_bytes()).unwrap())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decrypt);

    // A real RSA KEK registered under the same kid cannot unwrap a reversed key.
    let kek = LocalRsaKek::from_pem_file("KeyId", &openssl_key(&tempdir("wrongkek"))).unwrap();
    let decryptor = decryptor_over(Arc::new(kek));
    let e = block_on(decryptor.decrypt(&xml::parse(text.as_bytes()).unwrap())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decrypt);
    assert_eq!(e.to_string(), dpwrap::error::DECRYPT_MESSAGE);
}

#[test]
fn unknown_kid_is_named() {
    let bytes = std::fs::read(mock_dir().join("encryptedKey.xml")).unwrap();
    let resolver = LocalKekResolver::new(); // nothing configured
    let decryptor = AzureKeyVaultXmlDecryptor::new(Arc::new(resolver));
    let e = block_on(decryptor.decrypt(&xml::parse(&bytes).unwrap())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    assert!(e.to_string().contains("'KeyId'"), "{e}");
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dpwrap-azure-format-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An RSA-2048 key made by openssl (PKCS#8 PEM).
fn openssl_key(dir: &Path) -> PathBuf {
    let path = dir.join("kek.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

const KID: &str =
    "https://dpwrap-test.vault.azure.net/keys/dataprotection/0123456789abcdef0123456789abcdef";

struct ManifestLine {
    file: String,
    format: String,
    master_key_b64: String,
}

fn manifest_line(line: &str) -> ManifestLine {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let field = |k: &str| v[k].as_str().unwrap().to_owned();
    ManifestLine {
        file: field("file"),
        format: field("format"),
        master_key_b64: field("master_key_b64"),
    }
}

#[test]
fn peer_rings_decrypt_under_both_type_names() {
    let Some(peer) = interop::peer() else { return };
    let dir = tempdir("peer-ring");
    let kek_pem = openssl_key(&dir);
    let ring_dir = dir.join("ring");
    peer.ok([
        "gen-ring",
        "--count",
        "6",
        "--out",
        ring_dir.to_str().unwrap(),
        "--formats",
        "akv,akv-legacy",
        "--key",
        kek_pem.to_str().unwrap(),
        "--kid",
        KID,
    ]);
    let manifest = std::fs::read_to_string(ring_dir.join("manifest.jsonl")).unwrap();
    let lines: Vec<ManifestLine> = manifest
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(manifest_line)
        .collect();
    assert_eq!(lines.len(), 6);
    let formats: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l.format.as_str()).collect();
    assert_eq!(formats, ["akv", "akv-legacy"].into_iter().collect());

    let kek = LocalRsaKek::from_pem_file(KID, &kek_pem).unwrap();
    let decryptor = decryptor_over(Arc::new(kek));
    let decryptors = Decryptors::new().with(Arc::new(decryptor));
    let ring = Ring::read_directory(&ring_dir).unwrap();
    assert_eq!(ring.keys.len(), 6);
    for line in &lines {
        let (_, key) = ring.keys.iter().find(|(src, _)| *src == line.file).unwrap();
        let expected = if line.format == "akv" {
            DecryptorType::azure_key_vault()
        } else {
            DecryptorType::azure_key_vault_legacy()
        };
        assert!(
            key.decryptor_type().unwrap().matches(&expected),
            "{}",
            line.file
        );
        let master = block_on(key.master_key(&decryptors)).unwrap();
        assert_eq!(*master.to_base64(), line.master_key_b64, "{}", line.file);
    }

    // A kid with another version is not silently accepted...
    let other = KID.replace(
        "0123456789abcdef0123456789abcdef",
        "ffffffffffffffffffffffffffffffff",
    );
    let kek = LocalRsaKek::from_pem_file(other.clone(), &kek_pem).unwrap();
    let strict = Decryptors::new().with(Arc::new(decryptor_over(Arc::new(kek))));
    let (_, first) = &ring.keys[0];
    let e = block_on(first.master_key(&strict)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    // ...unless any version is explicitly allowed.
    let kek = LocalRsaKek::from_pem_file(other, &kek_pem).unwrap();
    let lenient = LocalKekResolver::new()
        .with(Arc::new(kek))
        .allow_any_version(true);
    let lenient =
        Decryptors::new().with(Arc::new(AzureKeyVaultXmlDecryptor::new(Arc::new(lenient))));
    assert!(block_on(first.master_key(&lenient)).is_ok());
}

/// A whole key file around `descriptor`, as XmlKeyManager writes it.
fn key_file(id: &str, descriptor: dpwrap::xml::Element) -> dpwrap::xml::Element {
    use dpwrap::xml::{Element, Name};
    let date = |n: &str, v: &str| Element::new(Name::local(n)).with_text(v);
    Element::new(Name::local("key"))
        .with_attribute(Name::local("id"), id)
        .with_attribute(Name::local("version"), "1")
        .with_child(date("creationDate", "2026-01-01T00:00:00Z"))
        .with_child(date("activationDate", "2026-01-01T00:00:00Z"))
        .with_child(date("expirationDate", "2026-04-01T00:00:00Z"))
        .with_child(
            Element::new(Name::local("descriptor"))
                .with_attribute(
                    Name::local("deserializerType"),
                    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60",
                )
                .with_child(descriptor),
        )
}

#[test]
fn our_output_decrypts_in_the_peer() {
    let Some(peer) = interop::peer() else { return };
    let dir = tempdir("to-peer");
    let kek_pem = openssl_key(&dir);
    for (i, legacy) in [false, true].into_iter().enumerate() {
        let master = dpwrap::MasterKey::generate(64).unwrap();
        let descriptor_text = format!(
            r#"<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an unencrypted form. --><value>{}</value></masterKey></descriptor>"#,
            &*master.to_base64()
        );
        let descriptor = xml::parse(descriptor_text.as_bytes()).unwrap();
        let kek = LocalRsaKek::from_pem_file(KID, &kek_pem).unwrap();
        let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(kek)).legacy(legacy);
        let encrypted = block_on(dpwrap::envelope::encrypt_if_necessary(
            &encryptor,
            &descriptor,
        ))
        .unwrap()
        .unwrap();
        let text = xml::to_compact_string(&encrypted);
        assert!(!text.contains(&*master.to_base64()));
        let id = format!("6f3b2c4e-0000-4000-8000-00000000000{i}");
        let file = dir.join(format!("key-{id}.xml"));
        std::fs::write(
            &file,
            xml::to_bytes(&key_file(&id, encrypted), WriteOptions::KEY_FILE),
        )
        .unwrap();
        let out = peer.ok([
            "decrypt-key",
            "--in",
            file.to_str().unwrap(),
            "--key",
            kek_pem.to_str().unwrap(),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            v["master_key_b64"].as_str(),
            Some(master.to_base64().as_str()),
            "peer output: {out}"
        );
        assert_eq!(
            v["format"].as_str(),
            Some(if legacy { "akv-legacy" } else { "akv" })
        );
        assert_eq!(v["akv_key_bits"].as_str(), Some("128"));
    }
}
