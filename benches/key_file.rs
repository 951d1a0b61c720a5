//! Reading and writing one key file, no cryptography: parsing the bytes of a certificate-protected
//! `key-{id}.xml` into an element, interpreting it as a key (ids, dates, protection), and
//! serializing it back as .NET lays the file out.
//!
//! ```text
//! cargo bench --bench key_file
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{CertificateWithKey, CertificateXmlEncryptor, Key, MasterKey};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cert = CertificateWithKey::generate_self_signed("CN=dpwrap bench", 2048, 30).unwrap();
    let encryptor = CertificateXmlEncryptor::new(cert.certificate().clone()).unwrap();
    let element = rt
        .block_on(
            NewKey::new(None, DEFAULT_LIFETIME)
                .unwrap()
                .protect(&MasterKey::generate(64).unwrap(), &encryptor),
        )
        .unwrap();
    let bytes = xml::to_bytes(&element, WriteOptions::KEY_FILE);

    let mut group = c.benchmark_group("key_file");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| xml::parse(black_box(&bytes)).unwrap())
    });
    group.bench_function("parse_and_read_key", |b| {
        b.iter(|| Key::from_element(xml::parse(black_box(&bytes)).unwrap()).unwrap())
    });
    group.bench_function("serialize", |b| {
        b.iter(|| xml::to_bytes(black_box(&element), WriteOptions::KEY_FILE))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
