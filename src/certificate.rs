//! X.509 certificates and their RSA private keys, loaded in memory from the forms people have
//! them in: PEM (certificate chains; PKCS#8, encrypted PKCS#8, PKCS#1 keys; one file with both),
//! DER, PFX/PKCS#12 (modern AES and legacy 3DES/RC2), and the base64 PFX of a Key Vault
//! certificate secret. Also self-signed certificate generation and PEM/PFX export.
//!
//! [`Certificate`] is the public part, with the identifiers XML Encryption uses to name a
//! certificate (thumbprint, issuer and serial, subject key identifier, subject name);
//! [`CertificateWithKey`] adds the private key that decrypts. Every buffer that holds a private
//! key or a password is wiped on drop, and neither type prints more than thumbprint and subject.

mod generate;
mod name;
mod pem;
mod pkcs12;
mod pkcs8;
mod protector;
mod with_key;
mod x509;

use std::io::Read as _;
use std::path::Path;

use zeroize::Zeroizing;

pub use pkcs8::{private_key_from_der, private_key_from_pem};
pub use protector::{CertificateXmlDecryptor, CertificateXmlEncryptor, KeyTransport};
pub use with_key::CertificateWithKey;
pub use x509::Certificate;

use crate::error::{Error, ErrorKind, Result};

/// Largest certificate, key, PEM or PFX file read (1 MiB; real ones are a few KiB).
pub const MAX_FILE: usize = 1024 * 1024;

/// Largest DER certificate accepted (64 KiB).
const MAX_CERTIFICATE_DER: usize = 64 * 1024;

/// Most certificates read from one PEM text or PFX.
const MAX_CHAIN: usize = 32;

/// Reads a whole file of at most [`MAX_FILE`] bytes, checking the size before reading. The
/// buffer is wiped on drop: the file may hold a private key.
fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path.display(), e))?
        .len();
    let too_large = |len: u64| {
        Error::new(
            ErrorKind::Limit,
            format!(
                "limit certificate file size ({MAX_FILE} bytes) exceeded: {} is {len} bytes",
                path.display()
            ),
        )
    };
    if len > MAX_FILE as u64 {
        return Err(too_large(len));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
    // `take` guards against a file that grows between the size check and the read.
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path.display(), e))?;
    if buf.len() > MAX_FILE {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}
