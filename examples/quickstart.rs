//! Quickstart: read a real ASP.NET Core key, create and protect a new key, read it back.
//!
//! Run: `cargo run --example quickstart`. Everything happens in memory and in a temporary
//! directory; no secret is printed.

use std::sync::Arc;

use dpwrap::envelope::decrypt_element;
use dpwrap::key_file::{self, RingElement, master_key_of};
use dpwrap::new_key::NewKey;
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{Decryptors, MasterKey, NullXmlDecryptor, NullXmlEncryptor, Result};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // 1. A key file written by ASP.NET Core (unencrypted), read without any key material.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aspnet/plain-key-de1dd770-8b81-4ff8-b8ff-d559b1c9eeef.xml"
    );
    let RingElement::Key(key) = key_file::read_file(std::path::Path::new(path))? else {
        return Err(dpwrap::Error::new(
            dpwrap::ErrorKind::Format,
            "the fixture is not a key",
        ));
    };
    println!(
        "ASP.NET key {}: created {}, {} + {}, protection: {}",
        key.id(),
        key.creation_date(),
        key.encryption_algorithm().unwrap_or("?"),
        key.validation_algorithm().unwrap_or("?"),
        key.protection()
    );
    let decryptors = Decryptors::new().with(Arc::new(NullXmlDecryptor));
    println!(
        "  its master key: {} bytes (never printed)",
        key.master_key(&decryptors).await?.len()
    );

    // 2. A new key as ASP.NET's key manager creates it, protected and serialized as a key file.
    let key = NewKey::new(None, time::Duration::days(90))?;
    let master_key = MasterKey::generate(64)?;
    let protected = key.protect(&master_key, &NullXmlEncryptor).await?;
    let bytes = xml::to_bytes(&protected, WriteOptions::KEY_FILE);
    println!(
        "new key {}: {} bytes in ASP.NET's key-file layout",
        key.id,
        bytes.len()
    );

    // 3. Read it back and check the master key survived.
    let parsed = xml::parse(&bytes)?;
    let descriptor = decrypt_element(&parsed, &decryptors).await?;
    let read_back = master_key_of(descriptor.expose())?;
    println!(
        "  read back: master key {}",
        if read_back.ct_eq(&master_key) {
            "matches"
        } else {
            "DIFFERS"
        }
    );
    Ok(())
}
