//! Replays the committed fuzz corpora (fuzz/seeds/<target>, fuzz/regressions/<target>) and the
//! shared vectors through the fuzz targets' entry points, so every crash the fuzzers ever found
//! stays fixed without running a fuzzer in CI.
#![cfg(feature = "fuzzing")]

mod common;

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Every committed input of `target`, plus the given extra files.
fn replay(target: &str, extra: &[std::path::PathBuf], run: fn(&[u8])) -> usize {
    let mut inputs = files(&common::repo().join("fuzz/seeds").join(target));
    inputs.extend(files(&common::repo().join("fuzz/regressions").join(target)));
    inputs.extend(extra.iter().cloned());
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target} panicked on {}", path.display());
    }
    inputs.len()
}

fn vector_xml() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for dir in [
        "vectors/aspnet/dotnet-aspnetcore-trimming",
        "vectors/aspnet/recognition",
        "vectors/aspnet/azure-sdk-akv-mock",
    ] {
        v.extend(
            files(&common::shared(dir))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "xml")),
        );
    }
    for dir in [
        "vectors/xmlenc/merlin-xmlenc-five",
        "vectors/xmlenc/01-phaos-xmlenc-3",
        "vectors/xmlenc/xmlenc11-interop-2012",
    ] {
        v.extend(
            files(&common::shared(dir))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "xml")),
        );
    }
    v
}

#[test]
fn xml_parse_corpus() {
    let n = replay("xml_parse", &vector_xml(), dpwrap::fuzzing::xml_round_trip);
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn key_file_corpus() {
    let n = replay("key_file", &vector_xml(), dpwrap::fuzzing::key_file);
    assert!(n > 40, "only {n} inputs");
}

/// The hostile corpus, whose files are built to reach deep into the parsers.
fn malformed_xml() -> Vec<std::path::PathBuf> {
    files(&common::fixture("malformed"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect()
}

#[test]
fn xmlenc_model_corpus() {
    let mut extra = vector_xml();
    extra.extend(malformed_xml());
    let n = replay("xmlenc_model", &extra, dpwrap::fuzzing::xmlenc_model);
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn decrypt_fixed_key_corpus() {
    let mut extra = vector_xml();
    extra.extend(malformed_xml());
    let n = replay(
        "decrypt_fixed_key",
        &extra,
        dpwrap::fuzzing::decrypt_fixed_key,
    );
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn decrypt_spliced_corpus() {
    let n = replay("decrypt_spliced", &[], dpwrap::fuzzing::decrypt_spliced);
    assert!(n >= 30, "only {n} inputs");
}

/// The decryption seeds are worth their name: each decrypts with the fuzzers' fixed keys, so the
/// fuzzer starts inside the ciphers rather than at the parser.
#[test]
fn decrypt_fixed_key_seeds_decrypt() {
    use dpwrap::xml::NS_XENC;
    let keys = dpwrap::fuzzing::fixed_keys();
    let seeds = files(&common::repo().join("fuzz/seeds/decrypt_fixed_key"));
    assert!(seeds.len() >= 8);
    for path in seeds {
        let doc = dpwrap::xml::parse(&std::fs::read(&path).unwrap()).unwrap();
        let eds = doc.paths_where(&mut |e| e.is(Some(NS_XENC), "EncryptedData"));
        assert!(!eds.is_empty(), "{}", path.display());
        for p in eds {
            let ed = doc.at(&p).unwrap();
            let r = dpwrap::xmlenc::decrypt_encrypted_data(ed, &doc, keys);
            assert!(r.is_ok(), "{}: {:?}", path.display(), r.err());
        }
        let mut copy = doc.clone();
        match dpwrap::xmlenc::decrypt_document(&mut copy, keys) {
            Ok(n) => assert!(n >= 1, "{}", path.display()),
            // Octets cannot go back into a tree.
            Err(e) => assert!(
                path.ends_with("octets.xml") && e.kind() == dpwrap::ErrorKind::Format,
                "{}: {e}",
                path.display()
            ),
        }
    }
}

/// Certificates, keys and PFX files made by OpenSSL, .NET and the W3C suites' authors.
fn certificate_inputs() -> Vec<std::path::PathBuf> {
    let mut v = files(&common::fixture("certs"));
    for dir in [
        "vectors/aspnet/dotnet-aspnetcore-trimming",
        "vectors/xmlenc/merlin-xmlenc-five",
        "vectors/xmlenc/01-phaos-xmlenc-3",
        "vectors/xmlenc/xmlenc11-interop-2012",
    ] {
        v.extend(files(&common::shared(dir)).into_iter().filter(|p| {
            p.extension()
                .is_some_and(|e| ["pem", "pfx", "p12", "der", "b64"].iter().any(|x| e == *x))
        }));
    }
    v
}

#[test]
fn certificate_load_corpus() {
    let n = replay(
        "certificate_load",
        &certificate_inputs(),
        dpwrap::fuzzing::certificate_load,
    );
    assert!(n > 80, "only {n} inputs");
}

/// The target's fixed password is the fixtures' password, so the fuzzer starts from files that
/// load (and reaches the key checks) rather than from wrong-password rejections.
#[test]
fn certificate_load_inputs_load_with_the_fixed_password() {
    use dpwrap::certificate::CertificateWithKey;
    use dpwrap::secret::Password;
    let password = Password::from(dpwrap::fuzzing::FIXED_CERTIFICATE_PASSWORD);
    let read = |name: &str| std::fs::read(common::fixture("certs").join(name)).unwrap();
    for pfx in [
        "rsa2048.modern.pfx",
        "rsa2048.3des.pfx",
        "rsa2048.legacy.pfx",
        "chain.pfx",
    ] {
        let r = CertificateWithKey::from_pkcs12(&read(pfx), &password);
        assert!(r.is_ok(), "{pfx}: {:?}", r.err());
    }
    let r =
        CertificateWithKey::from_pem_bundle(&read("rsa2048.bundle-encrypted.pem"), Some(&password));
    assert!(r.is_ok(), "{:?}", r.err());
    let b64 = String::from_utf8(read("rsa2048.empty-password.pfx.b64")).unwrap();
    let r = CertificateWithKey::from_pkcs12_base64(&b64, &Password::from(""));
    assert!(r.is_ok(), "{:?}", r.err());
}

fn azure_seed_dir() -> std::path::PathBuf {
    common::repo().join("fuzz/seeds/azure_encrypted_key")
}

#[test]
fn azure_encrypted_key_corpus() {
    let extra: Vec<_> = files(&common::shared("vectors/aspnet/azure-sdk-akv-mock"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    assert_eq!(extra.len(), 1);
    let n = replay(
        "azure_encrypted_key",
        &extra,
        dpwrap::fuzzing::azure_encrypted_key,
    );
    assert!(n >= 4, "only {n} inputs");
}

fn fixed_rsa_kek() -> std::sync::Arc<dpwrap::azure::LocalRsaKek> {
    let rsa = dpwrap::RsaPrivateKey::from_pkcs8_der(dpwrap::fuzzing::FIXED_RSA_PKCS8).unwrap();
    std::sync::Arc::new(dpwrap::azure::LocalRsaKek::new(
        "https://fuzz.vault.azure.net/keys/fixed/1",
        rsa,
    ))
}

/// The Key Vault seeds unwrap with the fuzzer's fixed RSA key, so mutations start past the
/// parser, inside RSA-OAEP and AES-CBC.
#[tokio::test]
async fn azure_encrypted_key_seeds_decrypt() {
    use dpwrap::protector::XmlDecryptor;
    let mut resolver = dpwrap::azure::LocalKekResolver::new();
    resolver.add(fixed_rsa_kek());
    let decryptor = dpwrap::azure::AzureKeyVaultXmlDecryptor::new(std::sync::Arc::new(resolver));
    let seeds = files(&azure_seed_dir());
    assert!(seeds.len() >= 3, "{} seeds", seeds.len());
    for path in seeds {
        let element = dpwrap::xml::parse(&std::fs::read(&path).unwrap()).unwrap();
        let r = decryptor.decrypt(&element).await;
        assert!(r.is_ok(), "{}: {:?}", path.display(), r.err());
    }
}

/// Writes the Key Vault seeds (run once with `--ignored`; the files are committed).
#[tokio::test]
#[ignore = "writes fuzz/seeds/azure_encrypted_key"]
async fn write_azure_encrypted_key_seeds() {
    use dpwrap::protector::XmlEncryptor;
    let encryptor = dpwrap::azure::AzureKeyVaultXmlEncryptor::new(fixed_rsa_kek());
    std::fs::create_dir_all(azure_seed_dir()).unwrap();
    let plain = [
        (
            "master-key",
            "<masterKey xmlns:d=\"http://schemas.asp.net/2015/03/dataProtection\" d:requiresEncryption=\"true\"><value>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==</value></masterKey>",
        ),
        ("empty", "<e/>"),
        ("text", "<a b=\"c\">some text &amp; more</a>"),
    ];
    for (name, xml) in plain {
        let element = dpwrap::xml::parse(xml.as_bytes()).unwrap();
        let info = encryptor.encrypt(&element).await.unwrap();
        let bytes =
            dpwrap::xml::to_bytes(&info.encrypted_element, dpwrap::xml::WriteOptions::COMPACT);
        std::fs::write(azure_seed_dir().join(format!("{name}.xml")), bytes).unwrap();
    }
}
