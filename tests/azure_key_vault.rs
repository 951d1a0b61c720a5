//! The Key Vault protector through the real Azure SDK client against the local Key Vault
//! (HTTPS on 127.0.0.1, the real authentication challenge, Key Vault's errors, injected faults).
//! Ring material comes from the Mono peer (ASP.NET's encryptor on .NET's crypto) where it is
//! installed, and key material from openssl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use dpwrap::azure::credentials::{CredentialConfig, CredentialKind};
use dpwrap::azure::key_vault::{KeyVaultClient, KeyVaultOptions, KeyVaultResolver};
use dpwrap::azure::retry::RetryPolicy;
use dpwrap::azure::ring::{RingUnwrapOptions, unwrap_all, unwrap_each};
use dpwrap::azure::secret::KeyVaultSecrets;
use dpwrap::azure::transport::TransportOptions;
use dpwrap::azure::{
    AzureKeyVaultXmlDecryptor, AzureKeyVaultXmlEncryptor, EncryptedKey, KeyEncryptionKey,
    LocalRsaKek, WrapAlgorithm,
};
use dpwrap::testing::key_vault::TENANT;
use dpwrap::testing::{Fault, LocalKeyVault};
use dpwrap::xml::{self, Element, Name, WriteOptions};
use dpwrap::{Decryptors, ErrorKind, Key, MasterKey, Password, XmlDecryptor, XmlEncryptor};

use common::interop;

#[derive(Debug)]
struct StaticToken;

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            "test-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(10),
    }
}

fn options(vault: &LocalKeyVault, retry: RetryPolicy) -> KeyVaultOptions {
    KeyVaultOptions {
        transport: TransportOptions {
            trusted_roots_pem: Some(vault.ca_pem().as_bytes().to_vec()),
            ..TransportOptions::default()
        },
        retry,
        api_version: None,
        // The vault is reached by IP address; see dpwrap::testing::key_vault.
        verify_challenge_resource: false,
    }
}

fn client(vault: &LocalKeyVault, retry: RetryPolicy) -> Arc<KeyVaultClient> {
    Arc::new(
        KeyVaultClient::new(vault.url(), Arc::new(StaticToken), options(vault, retry)).unwrap(),
    )
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dpwrap-akv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA-2048 key made by openssl (PKCS#8 PEM).
fn openssl_key(dir: &Path) -> PathBuf {
    let path = dir.join("kek.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        path.to_str().unwrap(),
    ]);
    path
}

fn descriptor(master: &MasterKey) -> Element {
    let text = format!(
        r#"<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an unencrypted form. --><value>{}</value></masterKey></descriptor>"#,
        &*master.to_base64()
    );
    xml::parse(text.as_bytes()).unwrap()
}

fn key_element(id: &uuid::Uuid, descriptor: Element) -> Element {
    let date = |n: &str, v: &str| Element::new(Name::local(n)).with_text(v);
    Element::new(Name::local("key"))
        .with_attribute(Name::local("id"), id.to_string())
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

/// A key protected with `encryptor`, and its master key.
async fn protected_key(encryptor: &dyn XmlEncryptor) -> (Key, MasterKey) {
    let master = MasterKey::generate(64).unwrap();
    let encrypted = dpwrap::envelope::encrypt_if_necessary(encryptor, &descriptor(&master))
        .await
        .unwrap()
        .unwrap();
    let id = uuid::Uuid::new_v4();
    (
        Key::from_element(key_element(&id, encrypted)).unwrap(),
        master,
    )
}

fn decryptors(resolver: KeyVaultResolver) -> Decryptors {
    Decryptors::new().with(Arc::new(AzureKeyVaultXmlDecryptor::new(Arc::new(resolver))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_the_sdk_with_the_real_challenge() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("DataProtection").unwrap();
    let client = client(&vault, fast_retries());
    let resolver = KeyVaultResolver::new(Arc::clone(&client));
    // Configured without a version, as ProtectKeysWithAzureKeyVault usually is: the stored kid
    // must be the versioned one the vault answered with.
    let versionless = format!("{}/keys/DataProtection", vault.url());
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(resolver.kek(&versionless).unwrap()));
    let (key, master) = protected_key(&encryptor).await;
    let encrypted = key
        .element()
        .descendants()
        .find(|e| e.is(None, "encryptedKey"))
        .unwrap();
    assert_eq!(EncryptedKey::from_element(encrypted).unwrap().kid, kid);

    let got = key.master_key(&decryptors(resolver)).await.unwrap();
    assert!(got.ct_eq(&master));
    let stats = vault.stats();
    assert_eq!(
        stats.challenged_with_body, 0,
        "the SDK must send the first request without its body"
    );
    assert!(stats.challenges >= 1, "{stats:?}");
    assert_eq!((stats.wraps, stats.unwraps), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_resource_is_verified_by_default() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let mut opts = options(&vault, RetryPolicy::none());
    opts.verify_challenge_resource = true;
    let client = Arc::new(KeyVaultClient::new(vault.url(), Arc::new(StaticToken), opts).unwrap());
    let kek = client.kek(&kid).unwrap();
    let e = kek
        .unwrap_key(WrapAlgorithm::RsaOaep, &[1; 256])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string().contains("doesn't match the requested domain"),
        "{e}"
    );
    assert_eq!(vault.stats().unwraps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wrap_algorithm_round_trips_and_matches_local_rsa() {
    let dir = tempdir("algs");
    let pem = std::fs::read_to_string(openssl_key(&dir)).unwrap();
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.import_pem("k", &pem).unwrap();
    let client = client(&vault, fast_retries());
    let remote = client.kek(&kid).unwrap();
    let local = LocalRsaKek::from_pem(kid.clone(), &pem).unwrap();
    for alg in [
        WrapAlgorithm::RsaOaep,
        WrapAlgorithm::RsaOaep256,
        WrapAlgorithm::Rsa1_5,
    ] {
        let content_key = [0x5a; 16];
        // Wrapped by the vault, unwrapped locally; and the other way round.
        let wrapped = remote.wrap_key(alg, &content_key).await.unwrap();
        assert_eq!(wrapped.kid, kid);
        assert_eq!(
            local
                .unwrap_key(alg, &wrapped.wrapped)
                .await
                .unwrap()
                .expose(),
            &content_key
        );
        let wrapped = local.wrap_key(alg, &content_key).await.unwrap();
        assert_eq!(
            remote
                .unwrap_key(alg, &wrapped.wrapped)
                .await
                .unwrap()
                .expose(),
            &content_key
        );
    }
    // The local wrap path (get + public key) stores the versioned kid too.
    let versionless = format!("{}/keys/k", vault.url());
    let kek = client.kek(&versionless).unwrap().wrap_locally(true);
    let wrapped = kek
        .wrap_key(WrapAlgorithm::RsaOaep, &[1; 16])
        .await
        .unwrap();
    assert_eq!(wrapped.kid, kid);
    assert_eq!(
        local
            .unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
            .await
            .unwrap()
            .expose(),
        &[1; 16]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kid_version_is_used_as_written() {
    let vault = LocalKeyVault::start().await.unwrap();
    let old_kid = vault.create_key("rotated").unwrap();
    let client = client(&vault, fast_retries());
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(client.kek(&old_kid).unwrap()));
    let (key, master) = protected_key(&encryptor).await;
    // Rotation: a new version becomes the latest. The old key must still unwrap with the old one.
    let new_kid = vault.create_key("rotated").unwrap();
    assert_ne!(old_kid, new_kid);
    let got = key
        .master_key(&decryptors(KeyVaultResolver::new(Arc::clone(&client))))
        .await
        .unwrap();
    assert!(got.ct_eq(&master));
    // Disabling the old version makes that key unreadable, naming the kid and the reason.
    let old_version = old_kid.rsplit('/').next().unwrap();
    vault.set_enabled("rotated", Some(old_version), false);
    let e = key
        .master_key(&decryptors(KeyVaultResolver::new(client)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string().contains("disabled") && e.to_string().contains(&old_kid),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_unavailability_bursts_are_survived() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let client = client(&vault, fast_retries());
    let kek = client.kek(&kid).unwrap();
    let wrapped = kek
        .wrap_key(WrapAlgorithm::RsaOaep, &[9; 16])
        .await
        .unwrap();
    vault.reset_stats();

    // 429 with x-ms-retry-after-ms: three in a row, then success.
    vault.inject(
        Fault::TooManyRequests {
            retry_after_secs: 30,
            retry_after_ms: Some(50),
        },
        3,
    );
    let started = Instant::now();
    let key = kek
        .unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .unwrap();
    assert_eq!(key.expose(), &[9; 16]);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the 50 ms waits were not honoured"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Retry-After (30 s) was used instead of x-ms-retry-after-ms"
    );
    let stats = vault.stats();
    assert_eq!((stats.faults, stats.unwraps), (3, 1), "{stats:?}");

    // 503 and 500 mixed.
    vault.inject(Fault::Status(503), 2);
    vault.inject(Fault::Status(500), 1);
    kek.unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .unwrap();
    assert_eq!(vault.stats().faults, 6);

    // Retry-After in seconds is honoured.
    vault.inject(
        Fault::TooManyRequests {
            retry_after_secs: 1,
            retry_after_ms: None,
        },
        1,
    );
    let started = Instant::now();
    kek.unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(990),
        "waited only {:?}",
        started.elapsed()
    );

    // A burst longer than the retries is an error that says so, after exactly 5 attempts.
    vault.reset_stats();
    vault.inject(Fault::Status(503), 10);
    let e = kek
        .unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(e.to_string().contains("503 after 5 attempts"), "{e}");
    assert_eq!(
        vault.stats().faults,
        5,
        "the SDK must not retry on its own as well"
    );
    vault.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_an_error_after_the_retries_not_a_hang() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let policy = RetryPolicy {
        max_retries: 2,
        attempt_timeout: Duration::from_millis(300),
        ..fast_retries()
    };
    let client = client(&vault, policy);
    let kek = client.kek(&kid).unwrap();
    // Authenticate first, so that only the unwrap attempts meet the slow vault.
    let wrapped = kek
        .wrap_key(WrapAlgorithm::RsaOaep, &[3; 16])
        .await
        .unwrap();
    vault.inject(Fault::Delay(Duration::from_secs(30)), 3);
    let started = Instant::now();
    let e = kek
        .unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(
        e.to_string().contains("3 attempts") && e.to_string().contains(&kid),
        "{e}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_names_the_permission_and_the_kid() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let client = client(&vault, fast_retries());
    let resolver = KeyVaultResolver::new(Arc::clone(&client));
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(resolver.kek(&kid).unwrap()));
    let (key, _) = protected_key(&encryptor).await;

    vault.deny("unwrapKey", Some("k"));
    let e = key
        .master_key(&decryptors(resolver.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    let text = e.to_string();
    assert!(
        text.contains("403") && text.contains("'unwrapKey' permission") && text.contains(&kid),
        "{text}"
    );

    vault.deny("wrapKey", None);
    let master = MasterKey::generate(64).unwrap();
    let e = dpwrap::envelope::encrypt_if_necessary(&encryptor, &descriptor(&master))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string().contains("'wrapKey' permission") && e.to_string().contains(&kid),
        "{e}"
    );

    vault.deny("get", None);
    let kek = resolver.kek(&kid).unwrap().wrap_locally(true);
    let e = kek
        .wrap_key(WrapAlgorithm::RsaOaep, &[1; 16])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'get' permission"), "{e}");
    assert_eq!(vault.stats().faults, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_names_the_kid() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let client = client(&vault, fast_retries());
    let missing_version = format!("{}/keys/k/00000000000000000000000000000000", vault.url());
    let missing_key = format!("{}/keys/nothere/0123", vault.url());
    for wanted in [&missing_version, &missing_key] {
        let e = client
            .kek(wanted)
            .unwrap()
            .unwrap_key(WrapAlgorithm::RsaOaep, &[1; 256])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
        assert!(
            e.to_string().contains(wanted.as_str()) && e.to_string().contains("404"),
            "{e}"
        );
    }
    // The existing key is still fine.
    assert!(client.kek(&kid).unwrap().public_key().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kid_from_another_vault_is_refused() {
    let vault = LocalKeyVault::start().await.unwrap();
    vault.create_key("k").unwrap();
    let resolver = KeyVaultResolver::new(client(&vault, fast_retries()));
    let foreign = "https://attacker.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef";
    let e = resolver.kek(foreign).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let text = e.to_string();
    assert!(
        text.contains("https://attacker.vault.azure.net") && text.contains(vault.url()),
        "{text}"
    );
    // Through the decryptor as well, and without a single request to any vault.
    let element = EncryptedKey {
        kid: foreign.into(),
        wrapped_key: vec![1; 256],
        iv: vec![0; 16],
        value: vec![0; 32],
    }
    .to_element(dpwrap::azure::format::COMMENT);
    let decryptor = AzureKeyVaultXmlDecryptor::new(Arc::new(resolver));
    let e = decryptor.decrypt(&element).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(vault.stats().total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_wrapped_key_is_the_uniform_decrypt_error() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let client = client(&vault, fast_retries());
    let e = client
        .kek(&kid)
        .unwrap()
        .unwrap_key(WrapAlgorithm::RsaOaep, &[7; 256])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decrypt);
    assert_eq!(e.to_string(), dpwrap::error::DECRYPT_MESSAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_never_exceed_the_concurrency_for_a_100_key_ring() {
    let dir = tempdir("ring100");
    let pem = std::fs::read_to_string(openssl_key(&dir)).unwrap();
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.import_pem("ring", &pem).unwrap();
    // Write the ring offline with the same KEK (as a migration would), read it through the vault.
    let local =
        AzureKeyVaultXmlEncryptor::new(Arc::new(LocalRsaKek::from_pem(kid.clone(), &pem).unwrap()));
    let mut keys = Vec::new();
    let mut masters = Vec::new();
    for _ in 0..100 {
        let (k, m) = protected_key(&local).await;
        keys.push(k);
        masters.push(m);
    }
    vault.set_latency(Duration::from_millis(20));
    let decryptors = decryptors(KeyVaultResolver::new(client(&vault, fast_retries())));
    for concurrency in [8usize, 3] {
        vault.reset_stats();
        let started = Instant::now();
        let got = unwrap_all(
            &keys,
            &decryptors,
            &RingUnwrapOptions::with_concurrency(concurrency),
        )
        .await
        .unwrap();
        let elapsed = started.elapsed();
        let stats = vault.stats();
        assert_eq!(got.len(), 100);
        for ((id, m), (k, want)) in got.iter().zip(keys.iter().zip(&masters)) {
            assert_eq!(*id, k.id());
            assert!(m.ct_eq(want));
        }
        assert_eq!(stats.unwraps, 100, "{stats:?}");
        assert!(
            stats.max_in_flight <= concurrency,
            "{concurrency}: {stats:?}"
        );
        assert!(stats.max_in_flight >= 2, "never concurrent: {stats:?}");
        eprintln!(
            "concurrency {concurrency}: 100 keys in {elapsed:?}, max in flight {}",
            stats.max_in_flight
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_key_fails_the_whole_ring_and_names_the_key() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("good").unwrap();
    let gone = vault.create_key("gone").unwrap();
    let client = client(&vault, fast_retries());
    let mut keys = Vec::new();
    for (i, k) in [&kid, &kid, &gone, &kid].into_iter().enumerate() {
        let enc = AzureKeyVaultXmlEncryptor::new(Arc::new(client.kek(k).unwrap()));
        let (key, _) = protected_key(&enc).await;
        keys.push((i, key));
    }
    vault.deny("unwrapKey", Some("gone"));
    let decryptors = decryptors(KeyVaultResolver::new(client));
    let refs: Vec<&Key> = keys.iter().map(|(_, k)| k).collect();
    let e = unwrap_all(
        refs.iter().copied(),
        &decryptors,
        &RingUnwrapOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains(&keys[2].1.id().to_string()), "{e}");
    let each = unwrap_each(
        refs.iter().copied(),
        &decryptors,
        &RingUnwrapOptions::default(),
    )
    .await;
    let ok: Vec<bool> = each.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, true, false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_ring_unwrap() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    let client = client(&vault, fast_retries());
    let enc = AzureKeyVaultXmlEncryptor::new(Arc::new(client.kek(&kid).unwrap()));
    let mut keys = Vec::new();
    for _ in 0..6 {
        keys.push(protected_key(&enc).await.0);
    }
    vault.set_latency(Duration::from_secs(2));
    let token = tokio_util::sync::CancellationToken::new();
    let options = RingUnwrapOptions {
        concurrency: 2,
        cancel: Some(token.clone()),
    };
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel();
    });
    let started = Instant::now();
    let each = unwrap_each(&keys, &decryptors(KeyVaultResolver::new(client)), &options).await;
    canceller.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        each.iter()
            .all(|r| r.as_ref().err().map(|e| e.kind()) == Some(ErrorKind::Cancelled))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_get_latest_and_by_version_and_set() {
    let vault = LocalKeyVault::start().await.unwrap();
    let first = vault.set_secret("dp-cert", "MIIK...base64pfx", Some("application/x-pkcs12"));
    let secrets = KeyVaultSecrets::new(
        vault.url(),
        Arc::new(StaticToken),
        options(&vault, fast_retries()),
    )
    .unwrap();
    let got = secrets.get("dp-cert", None).await.unwrap();
    assert_eq!(
        (got.expose(), got.id(), got.content_type()),
        (
            "MIIK...base64pfx",
            first.as_str(),
            Some("application/x-pkcs12")
        )
    );
    assert!(!format!("{got:?}").contains("MIIK"));
    let second = secrets.set("dp-cert", "second value", None).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(vault.secret("dp-cert").as_deref(), Some("second value"));
    assert_eq!(
        secrets.get("dp-cert", None).await.unwrap().expose(),
        "second value"
    );
    let v1 = first.rsplit('/').next().unwrap();
    assert_eq!(
        secrets.get("dp-cert", Some(v1)).await.unwrap().expose(),
        "MIIK...base64pfx"
    );

    let e = secrets.get("missing", None).await.unwrap_err();
    assert!(
        e.to_string().contains("'missing'") && e.to_string().contains("404"),
        "{e}"
    );
    vault.deny("getSecret", None);
    let e = secrets.get("dp-cert", None).await.unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
}

fn credential_config(vault: &LocalKeyVault, kind: CredentialKind) -> CredentialConfig {
    CredentialConfig {
        kind: Some(kind),
        tenant_id: Some(TENANT.into()),
        client_id: Some("11111111-2222-3333-4444-555555555555".into()),
        authority_host: Some(vault.authority_host().to_owned()),
        transport: TransportOptions {
            trusted_roots_pem: Some(vault.ca_pem().as_bytes().to_vec()),
            ..TransportOptions::default()
        },
        ..CredentialConfig::default()
    }
}

async fn unwrap_with(
    vault: &LocalKeyVault,
    credential: Arc<dyn TokenCredential>,
    kid: &str,
) -> dpwrap::Result<()> {
    let client = Arc::new(KeyVaultClient::new(
        vault.url(),
        credential,
        options(vault, RetryPolicy::none()),
    )?);
    let kek = client.kek(kid)?;
    let wrapped = kek.wrap_key(WrapAlgorithm::RsaOaep, &[4; 16]).await?;
    kek.unwrap_key(WrapAlgorithm::RsaOaep, &wrapped.wrapped)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_credential_end_to_end() {
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    vault.require_issued_tokens(true);
    vault.add_client_secret("11111111-2222-3333-4444-555555555555", "s3cr3t-value");
    let mut config = credential_config(&vault, CredentialKind::ClientSecret);
    config.client_secret = Some(Arc::new(Password::from("s3cr3t-value")));
    unwrap_with(&vault, config.build().unwrap(), &kid)
        .await
        .unwrap();
    assert_eq!(vault.stats().tokens_issued, 1);

    config.client_secret = Some(Arc::new(Password::from("wrong")));
    let e = unwrap_with(&vault, config.build().unwrap(), &kid)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string().contains("AADSTS7000215") && !e.to_string().contains("wrong"),
        "{e}"
    );
    // A static token the vault did not issue is refused after the challenge.
    let e = unwrap_with(&vault, Arc::new(StaticToken), &kid)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_credential_end_to_end_without_openssl_in_the_build() {
    let dir = tempdir("clientcert");
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "2",
        "-subj",
        "/CN=dpwrap-test-app",
    ]);
    let both = dir.join("both.pem");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&cert).unwrap(),
        std::fs::read_to_string(&key).unwrap()
    );
    std::fs::write(&both, text).unwrap();
    // What the app registration knows: openssl's thumbprint and public key.
    let fingerprint = String::from_utf8(openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha1",
    ]))
    .unwrap();
    let hex: String = fingerprint
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "");
    let thumbprint: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let spki_pem = String::from_utf8(openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-pubkey",
    ]))
    .unwrap();
    let spki_der = openssl_der_of_pubkey(&spki_pem, &dir);
    let public = dpwrap::RsaPublicKey::from_spki_der(&spki_der).unwrap();

    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault.create_key("k").unwrap();
    vault.require_issued_tokens(true);
    vault.add_client_certificate("11111111-2222-3333-4444-555555555555", public, &thumbprint);
    let mut config = credential_config(&vault, CredentialKind::ClientCertificate);
    config.client_certificate_path = Some(both);
    unwrap_with(&vault, config.build().unwrap(), &kid)
        .await
        .unwrap();
    assert_eq!(vault.stats().tokens_issued, 1);

    // Another certificate for the same app is refused.
    let other_key = dir.join("other.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        other_key.to_str().unwrap(),
        "-out",
        dir.join("other.crt").to_str().unwrap(),
        "-days",
        "2",
        "-subj",
        "/CN=other",
    ]);
    let other = dir.join("other-both.pem");
    std::fs::write(
        &other,
        format!(
            "{}{}",
            std::fs::read_to_string(dir.join("other.crt")).unwrap(),
            std::fs::read_to_string(&other_key).unwrap()
        ),
    )
    .unwrap();
    config.client_certificate_path = Some(other);
    let e = unwrap_with(&vault, config.build().unwrap(), &kid)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AADSTS7000215"), "{e}");
}

fn openssl_der_of_pubkey(pem: &str, dir: &Path) -> Vec<u8> {
    let path = dir.join("pub.pem");
    std::fs::write(&path, pem).unwrap();
    openssl(&[
        "pkey",
        "-pubin",
        "-in",
        path.to_str().unwrap(),
        "-outform",
        "DER",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_ring_decrypts_through_the_vault_and_our_output_decrypts_in_the_peer() {
    let Some(peer) = interop::peer() else { return };
    let dir = tempdir("peer");
    let kek_pem = openssl_key(&dir);
    let vault = LocalKeyVault::start().await.unwrap();
    let kid = vault
        .import_pem(
            "dataprotection",
            &std::fs::read_to_string(&kek_pem).unwrap(),
        )
        .unwrap();
    let ring_dir = dir.join("ring");
    peer.ok([
        "gen-ring",
        "--count",
        "8",
        "--out",
        ring_dir.to_str().unwrap(),
        "--formats",
        "akv,akv-legacy",
        "--key",
        kek_pem.to_str().unwrap(),
        "--kid",
        &kid,
    ]);
    let manifest = std::fs::read_to_string(ring_dir.join("manifest.jsonl")).unwrap();
    let ring = dpwrap::Ring::read_directory(&ring_dir).unwrap();
    let client = client(&vault, fast_retries());
    let decryptors = decryptors(KeyVaultResolver::new(Arc::clone(&client)));
    let keys: Vec<&Key> = ring.keys.iter().map(|(_, k)| k).collect();
    let got = unwrap_all(
        keys.iter().copied(),
        &decryptors,
        &RingUnwrapOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 8);
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id: uuid::Uuid = v["key_id"].as_str().unwrap().parse().unwrap();
        let (_, m) = got.iter().find(|(k, _)| *k == id).unwrap();
        assert_eq!(
            m.to_base64().as_str(),
            v["master_key_b64"].as_str().unwrap()
        );
    }
    assert_eq!(vault.stats().unwraps, 8);

    // dpwrap wraps through the vault; .NET's decryptor (peer) unwraps with the same key.
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(client.kek(&kid).unwrap()));
    let (key, master) = protected_key(&encryptor).await;
    let file = dir.join(format!("key-{}.xml", key.id()));
    std::fs::write(&file, xml::to_bytes(key.element(), WriteOptions::KEY_FILE)).unwrap();
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
        Some(master.to_base64().as_str())
    );
    assert_eq!(v["kid"].as_str(), Some(kid.as_str()));
}

/// A certificate kept in Key Vault (its secret: the base64 PFX, empty password, as Key Vault
/// stores certificates; or a PEM bundle) is usable as the certificate protector's material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_a_key_vault_secret_decrypts_the_real_aspnet_key() {
    use base64::Engine as _;
    use dpwrap::{CertificateWithKey, CertificateXmlDecryptor, Decryptors, Password};
    let vault = LocalKeyVault::start().await.unwrap();
    let dir = common::shared("vectors/aspnet/dotnet-aspnetcore-trimming");
    // Key Vault keeps a certificate as a PFX with an empty password: re-export the ASP.NET test
    // certificate that way (openssl-independent: the loader is tested against openssl elsewhere).
    let original = CertificateWithKey::from_pkcs12_file(
        dir.join("TestCert-user-example-com.pfx"),
        &Password::from("password"),
    )
    .unwrap();
    let pfx = original.to_pkcs12(&Password::from("")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pfx);
    vault.set_secret("dp-cert", &b64, Some("application/x-pkcs12"));
    let pem = format!(
        "{}{}",
        original.to_pem_certificate(),
        original.to_pem_private_key().unwrap().as_str()
    );
    vault.set_secret("dp-cert-pem", &pem, Some("application/x-pem-file"));
    let secrets = KeyVaultSecrets::new(
        vault.url(),
        Arc::new(StaticToken),
        options(&vault, fast_retries()),
    )
    .unwrap();
    let key = match dpwrap::key_file::read_file(
        &dir.join("key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml"),
    )
    .unwrap()
    {
        dpwrap::RingElement::Key(k) => k,
        _ => panic!("not a key"),
    };
    for name in ["dp-cert", "dp-cert-pem"] {
        let cert = secrets.certificate(name, None, None).await.unwrap();
        assert_eq!(
            cert.thumbprint(),
            "3BFD1BAE91D198645590F1DAC2FE7C2250292A65"
        );
        let decryptors =
            Decryptors::new().with(Arc::new(CertificateXmlDecryptor::new([Arc::new(cert)])));
        let master = key.master_key(&decryptors).await.unwrap();
        assert_eq!(
            &*master.to_base64(),
            "HfIK4QgxlajUlAj2se0A90ZAtJmkI4zOLQrCwEl86WM77WlKbDQlXhnd/DYDZKHUW6t0pg0J054XFJeFZ4U6hg=="
        );
    }
    // A wrong password names the secret, not the password.
    let err = secrets
        .certificate("dp-cert", None, Some(&Password::from("nope")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate);
    assert!(err.to_string().contains("dp-cert"), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");
}

/// Authenticated keys signed by a Key Vault key: the vault signs (RS256 over dpwrap's message),
/// openssl verifies the signature with the key's public half, readers trust the versioned kid,
/// and an identity with `wrapKey` but not `sign` can wrap a key but not authenticate it, so a key
/// it plants is refused under `Require`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_signed_by_a_vault_key_verify_and_a_wrap_only_planter_cannot_sign() {
    use dpwrap::authentication::{
        AuthenticationPolicy, AuthenticationStatus, KeyProof, TrustedSigners, authenticate,
        signed_message,
    };
    let dir = tempdir("sign");
    let vault = LocalKeyVault::start().await.unwrap();
    let kek_kid = vault.create_key("DataProtection").unwrap();
    let pem_path = openssl_key(&dir);
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let signing_kid = vault.import_pem("key-signing", &pem).unwrap();
    let client = client(&vault, fast_retries());
    let resolver = KeyVaultResolver::new(Arc::clone(&client));
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(resolver.kek(&kek_kid).unwrap()));

    // Named without a version, the signer pins the latest one and names it in every proof.
    let signer = client
        .signer(&format!("{}/keys/key-signing", vault.url()))
        .await
        .unwrap();
    assert_eq!(signer.kid(), signing_kid);
    let (trusted_kid, trusted_public) = client.trusted_key(&signing_kid).await.unwrap();
    assert_eq!(trusted_kid, signing_kid);
    let trusted = TrustedSigners::new().with_key(&trusted_kid, trusted_public);

    let (key, master) = protected_key(&encryptor).await;
    let mut element = key.element().clone();
    authenticate(&mut element, &signer).await.unwrap();
    let signed = Key::from_element(element.clone()).unwrap();
    assert_eq!(
        trusted.verify(&signed),
        AuthenticationStatus::Verified(format!("kid:{signing_kid}"))
    );
    assert!(
        signed
            .master_key(&decryptors(resolver.clone()))
            .await
            .unwrap()
            .ct_eq(&master)
    );

    // openssl checks the vault's signature over the signed message with the public half.
    let proof = KeyProof::of(&element).unwrap().unwrap();
    assert_eq!(proof.algorithm, "RS256");
    let public_pem = dir.join("signing.pub.pem");
    openssl(&[
        "pkey",
        "-in",
        pem_path.to_str().unwrap(),
        "-pubout",
        "-out",
        public_pem.to_str().unwrap(),
    ]);
    std::fs::write(dir.join("message"), signed_message(&element)).unwrap();
    std::fs::write(dir.join("signature"), &proof.signature).unwrap();
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public_pem.to_str().unwrap(),
        "-signature",
        dir.join("signature").to_str().unwrap(),
        dir.join("message").to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");

    // A changed date breaks the proof.
    let mut altered = element.clone();
    let date = altered
        .paths_where(&mut |e| e.is(None, "expirationDate"))
        .remove(0);
    *altered.at_mut(&date).unwrap() =
        Element::new(Name::local("expirationDate")).with_text("2099-01-01T00:00:00Z");
    assert_eq!(
        trusted.verify(&Key::from_element(altered).unwrap()),
        AuthenticationStatus::Invalid
    );

    // The planter: wrapKey (and get) but no sign.
    vault.deny("sign", None);
    let (planted, _) = protected_key(&encryptor).await;
    let mut planted_element = planted.element().clone();
    let e = authenticate(&mut planted_element, &signer)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    let text = e.to_string();
    assert!(
        text.contains("403") && text.contains("'sign' permission") && text.contains(&signing_kid),
        "{text}"
    );
    let status = trusted.verify(&planted);
    assert_eq!(status, AuthenticationStatus::Unsigned);
    let e = status
        .check(AuthenticationPolicy::Require, &planted.id())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(
        status
            .check(AuthenticationPolicy::Accept, &planted.id())
            .is_ok()
    );
    assert_eq!(vault.stats().signs, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
