//! Decrypting a whole ring of 1,000 certificate-protected keys (2048-bit certificate, half
//! rsa-1_5 as ASP.NET writes them, half RSA-OAEP): one key at a time, and with `dpwrap::ring`
//! spreading the work over the available cores. The keys are parsed elements already; reading
//! the files is the `key_file` bench.
//!
//! ```text
//! cargo bench --bench ring [--features aws-lc]
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::ring::{self, RingOptions, Source};
use dpwrap::xml::Element;
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors, KeyTransport,
    MasterKey,
};

const KEYS: usize = 1000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cert =
        Arc::new(CertificateWithKey::generate_self_signed("CN=dpwrap bench", 2048, 30).unwrap());
    let elements: Vec<Element> = (0..KEYS)
        .map(|i| {
            let transport = if i % 2 == 0 {
                KeyTransport::Rsa15
            } else {
                KeyTransport::RsaOaep
            };
            let encryptor = CertificateXmlEncryptor::new(cert.certificate().clone())
                .unwrap()
                .key_transport(transport);
            rt.block_on(
                NewKey::new(None, DEFAULT_LIFETIME)
                    .unwrap()
                    .protect(&MasterKey::generate(64).unwrap(), &encryptor),
            )
            .unwrap()
        })
        .collect();
    let decryptors =
        Decryptors::new().with(Arc::new(CertificateXmlDecryptor::new([Arc::clone(&cert)])));
    let backend = if cfg!(feature = "aws-lc") {
        "aws-lc"
    } else {
        "rsa"
    };

    let mut group = c.benchmark_group(format!("ring_1000_keys_2048/{backend}"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(KEYS as u64));
    let modes = [
        ("sequential", RingOptions::sequential()),
        (
            "parallel",
            RingOptions::default(), // parallelism = available cores
        ),
    ];
    for (name, options) in modes {
        group.bench_function(name, |b| {
            b.iter(|| {
                let sources = elements.iter().map(|e| Source::element("", e.clone()));
                let mut n = 0;
                for d in ring::decrypt(sources, &decryptors, &options) {
                    assert!(d.master_key().is_some(), "{d:?}");
                    n += 1;
                }
                assert_eq!(n, KEYS);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
