//! Every file under ../shared/vectors/aspnet is recognised for what it is, and the unencrypted
//! keys' master keys read back through the library as the manifest says.

mod common;

use dpwrap::key_file::{self, Fragment, RingElement};
use dpwrap::{Decryptors, ErrorKind, Protection};

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(common::shared("vectors/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// The protection of the file at `rel` under vectors/, as a key or as a fragment.
fn protection_of(rel: &str) -> Protection {
    let path = common::shared(&format!("vectors/{rel}"));
    match key_file::read_file(&path) {
        Ok(RingElement::Key(k)) => k.protection(),
        Ok(other) => panic!("{rel}: not a key: {other:?}"),
        Err(_) => {
            let element = key_file::read_element(&path).expect("well-formed");
            Fragment::recognise(&element)
                .unwrap_or_else(|| panic!("{rel}: not recognised"))
                .protection
        }
    }
}

#[test]
fn every_aspnet_vector_is_classified() {
    let expected = [
        (
            "aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml",
            Protection::Certificate,
        ),
        (
            "aspnet/recognition/dpapi-key-7b636973-76e8-49e3-961a-3c4b763a009d.xml",
            Protection::Dpapi,
        ),
        (
            "aspnet/recognition/dpapi-ng-encryptedKey-docs-sample-truncated.xml",
            Protection::DpapiNg,
        ),
        (
            "aspnet/recognition/plain-key-d17a439d-8228-4216-9ea5-16a5424a0788.xml",
            Protection::None,
        ),
        (
            "aspnet/recognition/plain-key-de1dd770-8b81-4ff8-b8ff-d559b1c9eeef.xml",
            Protection::None,
        ),
        (
            "aspnet/azure-sdk-akv-mock/encryptedKey.xml",
            Protection::AzureKeyVault,
        ),
        (
            "aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.EncryptedData.xml",
            Protection::Certificate,
        ),
        (
            "aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.decrypted-by-xmlsec1.xml",
            Protection::None,
        ),
    ];
    for (rel, protection) in expected {
        assert_eq!(protection_of(rel), protection, "{rel}");
    }
    // Every XML file in the folder is covered above.
    let mut xml_files = 0;
    for dir in [
        "aspnet/dotnet-aspnetcore-trimming",
        "aspnet/recognition",
        "aspnet/azure-sdk-akv-mock",
    ] {
        for entry in std::fs::read_dir(common::shared(&format!("vectors/{dir}"))).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".xml") {
                xml_files += 1;
                assert!(
                    expected.iter().any(|(r, _)| r.ends_with(&name)),
                    "{name} not classified by the test"
                );
            }
        }
    }
    assert_eq!(xml_files, expected.len());
}

#[test]
fn unencrypted_master_keys_read_as_the_manifest_says() {
    let mut checked = 0;
    for entry in manifest() {
        let result = entry["expected_result"].as_str().unwrap_or_default();
        if entry["kind"] != "aspnet-key" || !result.contains("unencrypted masterKey") {
            continue;
        }
        let path = common::shared(&format!("vectors/{}", entry["file"].as_str().unwrap()));
        let RingElement::Key(key) = key_file::read_file(&path).unwrap() else {
            panic!("not a key")
        };
        assert_eq!(key.protection(), Protection::None);
        let master = common::block_on(key.master_key(&Decryptors::new())).unwrap();
        assert_eq!(
            &*master.to_base64(),
            entry["expected_value"].as_str().unwrap()
        );
        assert_eq!(master.len(), 64);
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn dpapi_keys_say_they_are_windows_only() {
    let path = common::shared(
        "vectors/aspnet/recognition/dpapi-key-7b636973-76e8-49e3-961a-3c4b763a009d.xml",
    );
    let RingElement::Key(key) = key_file::read_file(&path).unwrap() else {
        panic!("not a key")
    };
    let err = common::block_on(key.master_key(&Decryptors::new())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WindowsOnly);
    let text = err.to_string();
    assert!(text.contains("DPAPI") && text.contains("Windows"), "{text}");
    assert!(text.contains("ProtectKeysWithCertificate"), "{text}");
    // The decryptor type keeps its .NET name (version 5.0.0.0) for display.
    assert!(
        key.decryptor_type()
            .unwrap()
            .as_str()
            .contains("Version=5.0.0.0")
    );
}

#[test]
fn the_real_aspnet_key_is_parsed_without_key_material() {
    let path = common::shared(
        "vectors/aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml",
    );
    let RingElement::Key(key) = key_file::read_file(&path).unwrap() else {
        panic!("not a key")
    };
    assert_eq!(key.id().to_string(), "9c15d488-4417-49ab-ae39-ed2f36a9ebe3");
    assert_eq!(key.creation_date().as_str(), "2023-05-04T19:16:30.3590154Z");
    assert_eq!(key.encryption_algorithm(), Some("AES_256_CBC"));
    assert_eq!(key.validation_algorithm(), Some("HMACSHA256"));
    // Without a certificate decryptor the error names what to configure.
    let err = common::block_on(key.master_key(&Decryptors::new())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownDecryptor);
    assert!(err.to_string().contains("certificate"));
}
