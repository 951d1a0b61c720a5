//! A minimal key ring with dpwrap as its at-rest protector.
//!
//! It holds an `Arc<dyn XmlEncryptor>` for writing and a `Decryptors` registry for reading, creates
//! keys the way ASP.NET Core's `XmlKeyManager` does (a fresh 64-byte master key, the AES_256_CBC +
//! HMACSHA256 descriptor, ASP.NET's exact file layout), stores them protected in a directory as
//! `FileSystemXmlRepository` does, and reads them back.
//!
//! Run: `cargo run --example key_ring [DIR]` (a fresh temporary directory when DIR is omitted).
//! It protects keys with a certificate (made in memory here); any other `XmlEncryptor` fits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dpwrap::key_file::Ring;
use dpwrap::new_key::NewKey;
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors, MasterKey,
    Result, Timestamp, XmlEncryptor,
};

/// A key ring kept in a directory, protected by one encryptor and read with a set of decryptors.
pub struct KeyRing {
    dir: PathBuf,
    encryptor: Arc<dyn XmlEncryptor>,
    decryptors: Decryptors,
}

impl KeyRing {
    /// A ring in `dir`, writing with `encryptor` and reading with `decryptors`.
    pub fn new(
        dir: impl Into<PathBuf>,
        encryptor: Arc<dyn XmlEncryptor>,
        decryptors: Decryptors,
    ) -> KeyRing {
        KeyRing {
            dir: dir.into(),
            encryptor,
            decryptors,
        }
    }

    /// Creates a key as `XmlKeyManager.CreateNewKey` does, protects it and stores it as
    /// `key-{id}.xml`. Returns the key id.
    pub async fn create_key(
        &self,
        activation: Timestamp,
        lifetime_days: i64,
    ) -> Result<uuid::Uuid> {
        let key = NewKey::new(Some(activation), time::Duration::days(lifetime_days))?;
        let master_key = MasterKey::generate(64)?;
        let protected = key.protect(&master_key, self.encryptor.as_ref()).await?;
        let bytes = xml::to_bytes(&protected, WriteOptions::KEY_FILE);
        store(&self.dir, &format!("key-{}", key.id), &bytes)?;
        Ok(key.id)
    }

    /// Reads every key (revocations applied) and decrypts its master key.
    pub async fn load(&self) -> Result<Vec<(uuid::Uuid, bool, MasterKey)>> {
        let ring = Ring::read_directory(&self.dir)?;
        let mut out = Vec::new();
        for (_, key) in &ring.keys {
            let revoked = ring.revocation_for(key).is_some();
            out.push((key.id(), revoked, key.master_key(&self.decryptors).await?));
        }
        Ok(out)
    }
}

/// `FileSystemXmlRepository.StoreElement`: write a temporary file in the same directory, then move
/// it to its final name (never overwriting).
fn store(dir: &Path, friendly_name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| {
        dpwrap::Error::new(dpwrap::ErrorKind::Io, format!("{}: {e}", dir.display()))
    };
    let tmp = dir.join(format!("{}.tmp", uuid::Uuid::new_v4()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    let target = dir.join(format!("{friendly_name}.xml"));
    // A hard link fails when the target exists, so an existing key is never overwritten.
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(io)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("dpwrap-key-ring-{}", uuid::Uuid::new_v4())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| dpwrap::Error::new(dpwrap::ErrorKind::Io, e.to_string()))?;
    let certificate =
        CertificateWithKey::generate_self_signed("CN=dpwrap key ring example", 2048, 365)?;
    let encryptor = CertificateXmlEncryptor::new(certificate.certificate().clone())?;
    let decryptor = CertificateXmlDecryptor::new([Arc::new(certificate)]);
    let ring = KeyRing::new(
        &dir,
        Arc::new(encryptor),
        Decryptors::new().with(Arc::new(decryptor)),
    );
    let id = ring.create_key(Timestamp::now(), 90).await?;
    println!("created key {id} in {}", dir.display());
    for (id, revoked, master_key) in ring.load().await? {
        // Never print the key itself.
        println!(
            "read key {id}: {}-byte master key, revoked: {revoked}",
            master_key.len()
        );
    }
    Ok(())
}
