//! Per-key certificate protection at 2048, 3072 and 4096 bits: decrypting and encrypting one
//! master key (`EncryptedData` with an `EncryptedKey`, rsa-1_5 as ASP.NET writes it and RSA-OAEP),
//! and the raw RSA private operation underneath, with the pure-Rust `rsa` backend and, when built
//! with `--features aws-lc`, the AWS-LC one.
//!
//! ```text
//! cargo bench --bench certificate                      # rsa backend
//! cargo bench --bench certificate --features aws-lc    # AWS-LC for the decryptions
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dpwrap::xml::{self, Element};
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, KeyTransport, MasterKey,
    RsaPadding, XmlEncryptor,
};

fn master_key_element() -> Element {
    let master = MasterKey::generate(64).unwrap();
    let text = format!(
        r#"<masterKey xmlns:p4="http://schemas.asp.net/2015/03/dataProtection" p4:requiresEncryption="true"><value>{}</value></masterKey>"#,
        master.to_base64().as_str()
    );
    xml::parse(text.as_bytes()).unwrap()
}

fn transports() -> [(&'static str, KeyTransport, RsaPadding); 2] {
    [
        ("rsa-1_5", KeyTransport::Rsa15, RsaPadding::Pkcs1v15),
        ("rsa-oaep", KeyTransport::RsaOaep, RsaPadding::oaep_sha1()),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let secret = master_key_element();
    let backend = if cfg!(feature = "aws-lc") {
        "aws-lc"
    } else {
        "rsa"
    };

    for bits in [2048usize, 3072, 4096] {
        // Generated here, in the setup, never inside a measurement.
        let cert = std::sync::Arc::new(
            CertificateWithKey::generate_self_signed("CN=dpwrap bench", bits, 30).unwrap(),
        );
        let decryptor = CertificateXmlDecryptor::new([std::sync::Arc::clone(&cert)]);
        let key = cert.private_key();

        let mut group = c.benchmark_group(format!("certificate_{bits}"));
        group.sample_size(if bits == 4096 { 20 } else { 40 });
        group.measurement_time(Duration::from_secs(if bits == 4096 { 8 } else { 4 }));
        for (name, transport, padding) in transports() {
            let encryptor = CertificateXmlEncryptor::new(cert.certificate().clone())
                .unwrap()
                .key_transport(transport);
            let encrypted = rt
                .block_on(encryptor.encrypt(&secret))
                .unwrap()
                .encrypted_element;

            group.bench_function(BenchmarkId::new(format!("decrypt/{backend}"), name), |b| {
                b.iter(|| {
                    decryptor
                        .decrypt_encrypted_data(black_box(&encrypted))
                        .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("encrypt", name), |b| {
                b.iter(|| rt.block_on(encryptor.encrypt(black_box(&secret))).unwrap())
            });

            // The private operation alone, both backends.
            let wrapped = key.public_key().encrypt(&padding, &[7u8; 32]).unwrap();
            group.bench_function(BenchmarkId::new("rsa_private_op/rsa", name), |b| {
                b.iter(|| key.decrypt_with_rsa(&padding, black_box(&wrapped)).unwrap())
            });
            if key.uses_aws_lc(&padding) {
                group.bench_function(BenchmarkId::new("rsa_private_op/aws-lc", name), |b| {
                    b.iter(|| key.decrypt(&padding, black_box(&wrapped)).unwrap())
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
