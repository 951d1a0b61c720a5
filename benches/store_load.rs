//! Loading a 10,000-key ring (Key Vault-protected keys, the size ASP.NET writes them) from a
//! Redis list and from an Azure blob in Azurite, both on loopback and started here.
//!
//! ```text
//! cargo bench --features azure,redis --bench store_load
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::azurite::Azurite;
use common::redis_server::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};
use dpwrap::azure::{AzureKeyVaultXmlEncryptor, LocalRsaKek};
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::store::{Addition, BlobOptions, BlobStore, KeyStore, RedisOptions, RedisStore};
use dpwrap::xml::{Element, Name};
use dpwrap::{MasterKey, RsaPrivateKey};

const KEYS: usize = 10_000;

/// 10,000 key elements: eight Key Vault-protected keys, repeated under fresh ids.
fn ring(rt: &tokio::runtime::Runtime) -> Vec<Addition> {
    let kek = LocalRsaKek::new(
        "https://bench.vault.azure.net/keys/dataprotection/0123456789abcdef0123456789abcdef",
        RsaPrivateKey::generate(2048).unwrap(),
    );
    let encryptor = AzureKeyVaultXmlEncryptor::new(Arc::new(kek));
    let templates: Vec<Element> = (0..8)
        .map(|_| {
            let master = MasterKey::generate(64).unwrap();
            let key = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
            rt.block_on(key.protect(&master, &encryptor)).unwrap()
        })
        .collect();
    (0..KEYS)
        .map(|i| {
            let mut e = templates[i % templates.len()].clone();
            e.set_attribute(Name::local("id"), uuid::Uuid::new_v4().to_string());
            Addition::named_as_dotnet(e).unwrap()
        })
        .collect()
}

fn report(name: &str, store: &dyn KeyStore, rt: &tokio::runtime::Runtime) {
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let loaded = rt.block_on(store.load()).unwrap();
        best = best.min(t.elapsed());
        assert_eq!(loaded.len(), KEYS);
        bytes = loaded.iter().map(|e| e.raw().len()).sum::<usize>();
    }
    eprintln!(
        "{name}: {KEYS} keys ({:.1} MiB of elements) loaded in {:.0} ms (best of 5), {:.1} µs per key",
        bytes as f64 / 1_048_576.0,
        best.as_secs_f64() * 1000.0,
        best.as_secs_f64() * 1e6 / KEYS as f64
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let additions = ring(&rt);
    let mut group = c.benchmark_group("store_load_10000_keys");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    if let Some(server) = RedisServer::start(&[]) {
        let store = RedisStore::open(&server.url("?key=bench"), RedisOptions::default()).unwrap();
        for chunk in additions.chunks(1000) {
            rt.block_on(store.append(chunk)).unwrap();
        }
        report("redis", &store, &rt);
        group.bench_function("redis", |b| {
            b.iter(|| rt.block_on(store.load()).unwrap());
        });
    }

    if let Some(az) = Azurite::start() {
        rt.block_on(az.create_container("bench"));
        let store = BlobStore::open(
            &az.sas_url("bench", "ring.xml", "racwdl"),
            BlobOptions::default(),
        )
        .unwrap();
        rt.block_on(store.append(&additions)).unwrap();
        report("azurite blob", &store, &rt);
        group.bench_function("azurite_blob", |b| {
            // A fresh store each time: no ETag cache, the whole blob downloaded and parsed.
            b.iter(|| {
                let fresh = BlobStore::open(
                    &az.sas_url("bench", "ring.xml", "racwdl"),
                    BlobOptions::default(),
                )
                .unwrap();
                rt.block_on(fresh.load()).unwrap()
            });
        });
        group.bench_function("azurite_blob_unchanged", |b| {
            // The same store: If-None-Match answered 304, the cached bytes parsed again.
            b.iter(|| rt.block_on(store.load()).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
