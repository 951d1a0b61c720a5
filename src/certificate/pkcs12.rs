//! PFX / PKCS#12 reading and writing, through the `p12-keystore` crate.
//!
//! Reading goes through its raw bag view ([`p12_keystore::Pkcs12Archive`]) rather than its
//! `KeyStore`, because the keystore's strict import drops keys without a `localKeyId` attribute
//! (the W3C XML Encryption 1.1 PFX files have none), and because we pick the key's certificate
//! ourselves by comparing public keys.
//!
//! `p12-keystore` keeps decrypted keys in plain `Vec`s that it does not wipe: we copy each key
//! into a wiped buffer at once and drop the archive before doing anything else. The copies the
//! crate frees without wiping (and those its writer makes) are outside our reach.

use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::pkcs8::algorithm_of_pkcs8;
use super::x509::not_rsa;
use super::{Certificate, CertificateWithKey, MAX_CHAIN, MAX_FILE, read_bounded};
use crate::crypto::RsaPrivateKey;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Password;

/// PBKDF2 and MAC iterations written by [`CertificateWithKey::to_pkcs12`] (OpenSSL 3 writes 2048,
/// Java 10 000; more only slows every load).
const PFX_ITERATIONS: u32 = 10_000;

fn wrong_password() -> Error {
    Error::certificate(
        "wrong password, or the PFX file is damaged (its integrity check or decryption failed); \
         a PFX from a Key Vault certificate secret usually has an empty password",
    )
}

fn malformed() -> Error {
    Error::certificate("the data is not a valid PFX (PKCS#12) file")
}

fn too_large(what: &str, len: usize) -> Error {
    Error::new(
        ErrorKind::Limit,
        format!("limit PFX size ({MAX_FILE} bytes) exceeded: the {what} is {len} bytes"),
    )
}

impl CertificateWithKey {
    /// Reads a PFX (PKCS#12) file's private key and its certificate.
    ///
    /// Loads what Windows, .NET, OpenSSL 3 (`-export` default: PBES2/AES-256-CBC with an
    /// HMAC-SHA256 MAC), OpenSSL `-legacy` (RC2-40 certificate bag, 3DES key bag), Java and Key
    /// Vault write, with or without a password, MAC or bag encryption. When the file holds a
    /// chain, the certificate whose public key matches the private key is taken.
    pub fn from_pkcs12(pfx: &[u8], password: &Password) -> Result<CertificateWithKey> {
        if pfx.len() > MAX_FILE {
            return Err(too_large("PFX", pfx.len()));
        }
        // Parsing the outer structure first tells a damaged file from a wrong password.
        <pkcs12::pfx::Pfx as der::Decode>::from_der(pfx).map_err(|_| malformed())?;
        let (keys, certs) = {
            let archive = p12_keystore::Pkcs12Archive::from_pkcs12(pfx, password.expose())
                .map_err(map_error)?;
            let keys: Vec<Zeroizing<Vec<u8>>> = archive
                .keys
                .iter()
                .map(|k| Zeroizing::new(k.key.as_der().to_vec()))
                .collect();
            let certs: Vec<Vec<u8>> = archive
                .certs
                .iter()
                .map(|c| c.cert.as_der().to_vec())
                .collect();
            (keys, certs)
        };
        if keys.is_empty() {
            return Err(Error::certificate(
                "the PFX file holds no private key; export the certificate with its private key",
            ));
        }
        if certs.len() > MAX_CHAIN {
            return Err(Error::certificate(format!(
                "the PFX file holds more than {MAX_CHAIN} certificates"
            )));
        }
        let certs: Vec<Certificate> = certs
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<_>>()?;
        pick_key_and_certificate(&keys, certs)
    }

    /// Reads a base64-encoded PFX: the value of a Key Vault certificate's secret
    /// (`application/x-pkcs12`). Whitespace is ignored. Key Vault's PFX secrets have an empty
    /// password: pass `&Password::from("")`.
    pub fn from_pkcs12_base64(text: &str, password: &Password) -> Result<CertificateWithKey> {
        let mut compact = Zeroizing::new(String::with_capacity(text.len().min(MAX_FILE * 2)));
        for c in text.chars().filter(|c| !c.is_ascii_whitespace()) {
            if compact.len() > MAX_FILE.div_ceil(3) * 4 {
                return Err(too_large("base64 PFX", text.len()));
            }
            compact.push(c);
        }
        let mut der = Zeroizing::new(Vec::with_capacity(compact.len() / 4 * 3 + 3));
        base64::engine::general_purpose::STANDARD
            .decode_vec(compact.as_bytes(), &mut der)
            .map_err(|_| Error::certificate("the PFX text is not valid base64"))?;
        CertificateWithKey::from_pkcs12(&der, password)
    }

    /// [`from_pkcs12`](Self::from_pkcs12) with the file read from disk (at most 1 MiB).
    pub fn from_pkcs12_file(
        path: impl AsRef<Path>,
        password: &Password,
    ) -> Result<CertificateWithKey> {
        let path = path.as_ref();
        let bytes = read_bounded(path)?;
        CertificateWithKey::from_pkcs12(&bytes, password).map_err(|e| e.context(path.display()))
    }

    /// [`from_pkcs12_base64`](Self::from_pkcs12_base64) with the file read from disk (at most
    /// 1 MiB).
    pub fn from_pkcs12_base64_file(
        path: impl AsRef<Path>,
        password: &Password,
    ) -> Result<CertificateWithKey> {
        let path = path.as_ref();
        let bytes = read_bounded(path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::certificate("the PFX text is not valid base64"))
            .map_err(|e| e.context(path.display()))?;
        CertificateWithKey::from_pkcs12_base64(text, password)
            .map_err(|e| e.context(path.display()))
    }

    /// Writes a PFX: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for both bags and an HMAC-SHA256
    /// MAC, as OpenSSL 3 and .NET 5+ write by default. Windows 10 1709+, .NET Core, OpenSSL 1.1.1+
    /// and Java read it; Mono and old Windows do not (they need 3DES).
    pub fn to_pkcs12(&self, password: &Password) -> Result<Vec<u8>> {
        let failed =
            |what: &str| Error::certificate(format!("the PFX could not be written: {what}"));
        let cert = self.certificate();
        let key_der = self.private_key().to_pkcs8_der()?;
        let p12_cert = p12_keystore::Certificate::from_der(cert.der())
            .map_err(|_| failed("the certificate was refused"))?;
        let p12_key = p12_keystore::PrivateKey::from_der(&key_der)
            .map_err(|_| failed("the private key was refused"))?;
        // localKeyId = SHA-1 of the certificate, as OpenSSL and Windows set it.
        let chain = p12_keystore::PrivateKeyChain::new(
            cert.thumbprint_bytes().to_vec(),
            p12_key,
            [p12_cert],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            &friendly_name(cert),
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        store
            .writer(password.expose())
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .encryption_iterations(PFX_ITERATIONS)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
            .mac_iterations(PFX_ITERATIONS)
            .write()
            .map_err(|_| failed("encoding failed"))
    }
}

/// The common name, or the thumbprint when there is none.
fn friendly_name(cert: &Certificate) -> String {
    super::name::common_name(cert.x509().tbs_certificate().subject())
        .unwrap_or_else(|| cert.thumbprint())
}

/// Picks the first RSA key that has its certificate among `certs`.
fn pick_key_and_certificate(
    keys: &[Zeroizing<Vec<u8>>],
    certs: Vec<Certificate>,
) -> Result<CertificateWithKey> {
    let mut non_rsa = None;
    let mut rsa_keys = Vec::new();
    for der in keys {
        match algorithm_of_pkcs8(der) {
            Some(oid) if oid == "1.2.840.113549.1.1.1" => {
                rsa_keys.push(RsaPrivateKey::from_pkcs8_der(der)?)
            }
            Some(oid) => {
                non_rsa.get_or_insert(oid);
            }
            None => {
                return Err(Error::certificate(
                    "the PFX file's private key is malformed",
                ));
            }
        }
    }
    if rsa_keys.is_empty() {
        return Err(match non_rsa {
            Some(oid) => not_rsa("the PFX file's private key", &oid),
            None => malformed(),
        });
    }
    for key in rsa_keys {
        let public = key.public_key();
        if let Some(i) = certs
            .iter()
            .position(|c| c.public_key().is_ok_and(|p| p == public))
        {
            let mut certs = certs;
            let cert = certs.swap_remove(i);
            return CertificateWithKey::new(cert, key);
        }
    }
    Err(Error::certificate(if certs.is_empty() {
        "the PFX file holds a private key but no certificate"
    } else {
        "the PFX file's private key does not belong to any certificate in it"
    }))
}

fn map_error(e: p12_keystore::error::Error) -> Error {
    use p12_keystore::error::Error as E;
    match e {
        E::MacError(_) | E::UnpadError | E::Pkcs5Error(_) | E::InvalidLength => wrong_password(),
        E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => Error::certificate(
            "the PFX file uses an encryption or MAC algorithm dpwrap does not support; re-export \
             it with openssl pkcs12 -export (AES-256) or -legacy",
        ),
        E::InvalidParameters => Error::certificate(
            "the PFX file asks for more key-derivation work than dpwrap allows (iterations over \
             1000000, or scrypt memory over 1 GiB), or its parameters are invalid; re-export it \
             with openssl pkcs12 -export",
        ),
        // Without a MAC, a wrong password surfaces as bags that do not decode.
        E::DerError(_) | E::X509Error(_) | E::InvalidData | E::InvalidPrivateKey => {
            Error::certificate(
                "the PFX file's contents could not be read: wrong password, or the file is damaged",
            )
        }
        _ => malformed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/certs/").to_owned() + name)
            .unwrap()
    }

    #[test]
    fn picks_the_keys_certificate_when_the_ca_comes_first() {
        let ca = Certificate::from_pem(&fixture("ca.cert.pem")).unwrap();
        let leaf = Certificate::from_pem(&fixture("leaf.cert.pem")).unwrap();
        let key = super::super::private_key_from_pem(&fixture("leaf.key.pem"), None).unwrap();
        let key_der = key.to_pkcs8_der().unwrap();
        let picked = pick_key_and_certificate(&[key_der], vec![ca.clone(), leaf.clone()]).unwrap();
        assert_eq!(picked.certificate(), &leaf);
        let ca_key = super::super::private_key_from_pem(&fixture("ca.key.pem"), None).unwrap();
        let e =
            pick_key_and_certificate(&[ca_key.to_pkcs8_der().unwrap()], vec![leaf]).unwrap_err();
        assert!(e.message().contains("does not belong"), "{e}");
        let e = pick_key_and_certificate(&[ca_key.to_pkcs8_der().unwrap()], vec![]).unwrap_err();
        assert!(e.message().contains("no certificate"), "{e}");
    }
}
