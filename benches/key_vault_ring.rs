//! A 100-key ring behind the local Key Vault with 20 ms of latency per request: unwrapped one key
//! at a time, at the default concurrency (8) and at 32.
//!
//! ```text
//! cargo bench --features azure,test-util --bench key_vault_ring
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use dpwrap::azure::key_vault::{KeyVaultClient, KeyVaultOptions, KeyVaultResolver};
use dpwrap::azure::ring::{RingUnwrapOptions, unwrap_all};
use dpwrap::azure::transport::TransportOptions;
use dpwrap::azure::{AzureKeyVaultXmlDecryptor, AzureKeyVaultXmlEncryptor, LocalRsaKek};
use dpwrap::testing::LocalKeyVault;
use dpwrap::xml::{self, Element, Name};
use dpwrap::{Decryptors, Key, MasterKey, RsaPrivateKey};

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
            "bench-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

async fn ring(encryptor: &AzureKeyVaultXmlEncryptor, n: usize) -> Vec<Key> {
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let master = MasterKey::generate(64).unwrap();
        let text = format!(
            r#"<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>{}</value></masterKey></descriptor>"#,
            &*master.to_base64()
        );
        let descriptor = xml::parse(text.as_bytes()).unwrap();
        let encrypted = dpwrap::envelope::encrypt_if_necessary(encryptor, &descriptor)
            .await
            .unwrap()
            .unwrap();
        let date = |n: &str| Element::new(Name::local(n)).with_text("2026-01-01T00:00:00Z");
        let key = Element::new(Name::local("key"))
            .with_attribute(Name::local("id"), uuid::Uuid::new_v4().to_string())
            .with_attribute(Name::local("version"), "1")
            .with_child(date("creationDate"))
            .with_child(date("activationDate"))
            .with_child(date("expirationDate"))
            .with_child(
                Element::new(Name::local("descriptor"))
                    .with_attribute(Name::local("deserializerType"), "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection")
                    .with_child(encrypted),
            );
        keys.push(Key::from_element(key).unwrap());
    }
    keys
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (vault, keys, decryptors) = rt.block_on(async {
        let vault = LocalKeyVault::start().await.unwrap();
        let key = RsaPrivateKey::generate(2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let kid = vault
            .import_key("ring", RsaPrivateKey::from_pkcs8_der(&der).unwrap())
            .unwrap();
        let local = AzureKeyVaultXmlEncryptor::new(Arc::new(LocalRsaKek::new(kid, key)));
        let keys = ring(&local, 100).await;
        let options = KeyVaultOptions {
            transport: TransportOptions {
                trusted_roots_pem: Some(vault.ca_pem().as_bytes().to_vec()),
                ..TransportOptions::default()
            },
            verify_challenge_resource: false,
            ..KeyVaultOptions::default()
        };
        let client =
            Arc::new(KeyVaultClient::new(vault.url(), Arc::new(StaticToken), options).unwrap());
        let decryptors = Decryptors::new().with(Arc::new(AzureKeyVaultXmlDecryptor::new(
            Arc::new(KeyVaultResolver::new(client)),
        )));
        vault.set_latency(Duration::from_millis(20));
        (vault, keys, decryptors)
    });

    let mut group = c.benchmark_group("key_vault_ring_100_keys_20ms");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(25));
    for concurrency in [1usize, 8, 32] {
        group.bench_function(format!("concurrency_{concurrency}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let got = unwrap_all(
                        &keys,
                        &decryptors,
                        &RingUnwrapOptions::with_concurrency(concurrency),
                    )
                    .await
                    .unwrap();
                    assert_eq!(got.len(), 100);
                })
            })
        });
    }
    group.finish();
    let stats = vault.stats();
    eprintln!(
        "vault: {} requests, max {} in flight",
        stats.total, stats.max_in_flight
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
