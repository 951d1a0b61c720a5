//! [`CertificateWithKey`]: a certificate and its RSA private key, loaded from PEM or DER.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::pkcs8::{first_key_block, key_from_block, private_key_from_der};
use super::x509::certificates_in;
use super::{Certificate, pem, read_bounded};
use crate::crypto::RsaPrivateKey;
use crate::error::{Error, Result};
use crate::secret::Password;

/// A certificate with its RSA private key: what decrypts (and, for the certificate protector,
/// is named in) XML-encrypted master keys.
///
/// The private key is wiped on drop. `Debug` shows the thumbprint and subject only.
pub struct CertificateWithKey {
    certificate: Certificate,
    key: RsaPrivateKey,
}

impl CertificateWithKey {
    /// Pairs a certificate with its private key, checking that they belong together (same RSA
    /// modulus and exponent).
    pub fn new(certificate: Certificate, key: RsaPrivateKey) -> Result<CertificateWithKey> {
        if certificate.public_key()? != key.public_key() {
            return Err(mismatch());
        }
        Ok(CertificateWithKey { certificate, key })
    }

    /// Picks, among `candidates` (a chain in any order), the certificate of `key`.
    pub(crate) fn pick(
        candidates: Vec<Certificate>,
        key: RsaPrivateKey,
    ) -> Result<CertificateWithKey> {
        let public = key.public_key();
        let mut first_error = None;
        for cert in candidates {
            match cert.public_key() {
                Ok(p) if p == public => {
                    return Ok(CertificateWithKey {
                        certificate: cert,
                        key,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(match first_error {
            // Only non-RSA certificates: say so rather than "does not match".
            Some(e) => e,
            None => mismatch(),
        })
    }

    /// Reads a certificate (PEM; the first certificate whose public key matches the key is
    /// taken when it holds a chain) and its private key (PEM: PKCS#8, encrypted PKCS#8, PKCS#1
    /// or OpenSSL's encrypted traditional form). `password` decrypts an encrypted key.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        password: Option<&Password>,
    ) -> Result<CertificateWithKey> {
        let cert_blocks = pem::parse(cert_pem)?;
        let certs = certificates_in(&cert_blocks)?;
        if certs.is_empty() {
            let hint = if first_key_block(&cert_blocks).ok().flatten().is_some() {
                "; it holds a private key instead (were the certificate and key swapped?)"
            } else {
                ""
            };
            return Err(Error::certificate(format!(
                "no CERTIFICATE block found in the certificate PEM{hint}"
            )));
        }
        let key_blocks = pem::parse(key_pem)?;
        let block = first_key_block(&key_blocks)?.ok_or_else(|| {
            Error::certificate(
                "no private key found in the key PEM: expected a block 'PRIVATE KEY', \
                 'RSA PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY'",
            )
        })?;
        let key = key_from_block(block, password)?;
        CertificateWithKey::pick(certs, key)
    }

    /// Reads one PEM text that holds both the certificate (or a chain) and the private key, in
    /// any order.
    pub fn from_pem_bundle(pem: &[u8], password: Option<&Password>) -> Result<CertificateWithKey> {
        let blocks = pem::parse(pem)?;
        let certs = certificates_in(&blocks)?;
        if certs.is_empty() {
            return Err(Error::certificate(
                "no CERTIFICATE block found in the PEM bundle",
            ));
        }
        let block = first_key_block(&blocks)?.ok_or_else(|| {
            Error::certificate(
                "no private key found in the PEM bundle: expected a block 'PRIVATE KEY', \
                 'RSA PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY'",
            )
        })?;
        let key = key_from_block(block, password)?;
        CertificateWithKey::pick(certs, key)
    }

    /// Reads a DER certificate and an unencrypted DER private key (PKCS#8 or PKCS#1). For an
    /// encrypted key, read it with [`private_key_from_der`](super::private_key_from_der) and
    /// use [`new`](Self::new).
    pub fn from_der(cert_der: &[u8], key_der: &[u8]) -> Result<CertificateWithKey> {
        let certificate = Certificate::from_der(cert_der)?;
        let key = private_key_from_der(key_der, None)?;
        CertificateWithKey::new(certificate, key)
    }

    /// [`from_pem`](Self::from_pem) with the two files read from disk (at most 1 MiB each).
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
        password: Option<&Password>,
    ) -> Result<CertificateWithKey> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let cert = read_bounded(cert_path)?;
        let key = read_bounded(key_path)?;
        CertificateWithKey::from_pem(&cert, &key, password).map_err(|e| {
            e.context(format_args!(
                "{} + {}",
                cert_path.display(),
                key_path.display()
            ))
        })
    }

    /// [`from_pem_bundle`](Self::from_pem_bundle) with the file read from disk (at most 1 MiB).
    pub fn from_pem_bundle_file(
        path: impl AsRef<Path>,
        password: Option<&Password>,
    ) -> Result<CertificateWithKey> {
        let path = path.as_ref();
        let bytes = read_bounded(path)?;
        CertificateWithKey::from_pem_bundle(&bytes, password).map_err(|e| e.context(path.display()))
    }

    /// The certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The private key. Its `Debug` is redacted; never log what it decrypts.
    pub fn private_key(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// The certificate's thumbprint (upper-case hex SHA-1).
    pub fn thumbprint(&self) -> String {
        self.certificate.thumbprint()
    }

    /// The certificate as PEM.
    pub fn to_pem_certificate(&self) -> String {
        self.certificate.to_pem()
    }

    /// The private key as unencrypted PKCS#8 PEM (`PRIVATE KEY`), in a buffer wiped on drop.
    pub fn to_pem_private_key(&self) -> Result<Zeroizing<String>> {
        let der = self.key.to_pkcs8_der()?;
        Ok(pem::encode("PRIVATE KEY", &der))
    }

    /// The private key as encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`: PBES2 with
    /// PBKDF2-HMAC-SHA256, 600 000 iterations, and AES-256-CBC).
    pub fn to_pem_private_key_encrypted(&self, password: &Password) -> Result<Zeroizing<String>> {
        let der = self.key.to_pkcs8_der()?;
        let encrypted = crate::crypto::pbe::encrypt_pkcs8_pbes2(&der, password.expose(), 600_000)?;
        Ok(pem::encode("ENCRYPTED PRIVATE KEY", &encrypted))
    }
}

fn mismatch() -> Error {
    Error::certificate(
        "the private key does not belong to the certificate (their public keys differ); check \
         that the key file is the certificate's own",
    )
}

impl fmt::Debug for CertificateWithKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateWithKey")
            .field("thumbprint", &self.certificate.thumbprint())
            .field("subject", &self.certificate.subject())
            .finish()
    }
}
