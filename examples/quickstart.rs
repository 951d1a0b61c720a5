//! Quickstart: protect a new ASP.NET Core key with a certificate, read it back, and decrypt a key
//! that ASP.NET Core itself protected.
//!
//! Run: `cargo run --example quickstart`. The certificate is made in memory; the ASP.NET key and
//! its PFX are the built-in fixtures. Nothing secret is printed.

use std::sync::Arc;

use dpwrap::key_file::{self, Key, RingElement};
use dpwrap::new_key::NewKey;
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors, MasterKey,
    Password, Result,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/aspnet");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // 1. A self-signed RSA certificate, made in memory (no OS certificate store anywhere).
    let certificate = CertificateWithKey::generate_self_signed("CN=dpwrap quickstart", 2048, 30)?;
    println!(
        "certificate {} ({})",
        certificate.thumbprint(),
        certificate.certificate().subject()
    );

    // 2. A new key exactly as ASP.NET's key manager makes it, protected as
    //    ProtectKeysWithCertificate protects it, in ASP.NET's key-file layout.
    let encryptor = CertificateXmlEncryptor::new(certificate.certificate().clone())?;
    let spec = NewKey::new(None, time::Duration::days(90))?;
    let master_key = MasterKey::generate(64)?;
    let file = xml::to_bytes(
        &spec.protect(&master_key, &encryptor).await?,
        WriteOptions::KEY_FILE,
    );
    println!(
        "protected key {}: {} bytes, EncryptedXml with RSA-OAEP and AES-256-CBC",
        spec.id,
        file.len()
    );

    // 3. Read it back: the decryptor holds the certificate and its private key.
    let decryptors = Decryptors::new().with(Arc::new(CertificateXmlDecryptor::new([Arc::new(
        certificate,
    )])));
    let key = Key::from_element(xml::parse(&file)?)?;
    let read = key.master_key(&decryptors).await?;
    println!(
        "  decrypted: master key {}",
        if read.ct_eq(&master_key) {
            "matches"
        } else {
            "DIFFERS"
        }
    );

    // 4. A key protected by ASP.NET Core itself (rsa-1_5), with the PFX it was protected with
    //    (a legacy RC2-40 PFX, as older Windows tools write them).
    let aspnet = CertificateWithKey::from_pkcs12_file(
        format!("{FIXTURES}/TestCert-user-example-com.pfx"),
        &Password::from("password"),
    )?;
    let decryptors =
        Decryptors::new().with(Arc::new(CertificateXmlDecryptor::new([Arc::new(aspnet)])));
    let path = format!("{FIXTURES}/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml");
    if let RingElement::Key(key) = key_file::read_file(std::path::Path::new(&path))? {
        let master = key.master_key(&decryptors).await?;
        println!(
            "ASP.NET key {} (created {}, {}): {}-byte master key decrypted",
            key.id(),
            key.creation_date(),
            key.protection(),
            master.len()
        );
    }
    Ok(())
}
