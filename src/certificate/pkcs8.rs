//! Reading RSA private keys: PKCS#8 (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`,
//! every scheme of [`crate::crypto::pbe`]), PKCS#1 (`RSA PRIVATE KEY`, also OpenSSL's encrypted
//! traditional form), as PEM or DER.

use der::asn1::OctetString;
use der::{Decode, Reader};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use super::pem;
use super::x509::not_rsa;
use crate::crypto::{RsaPrivateKey, pbe};
use crate::error::{Error, Result};
use crate::secret::Password;

/// Reads an RSA private key from PEM text: the first private-key block found. `password` is
/// needed for `ENCRYPTED PRIVATE KEY` and for encrypted traditional (`Proc-Type: 4,ENCRYPTED`)
/// blocks, and ignored otherwise.
pub fn private_key_from_pem(pem: &[u8], password: Option<&Password>) -> Result<RsaPrivateKey> {
    let blocks = pem::parse(pem)?;
    let block = first_key_block(&blocks)?.ok_or_else(no_key_block)?;
    key_from_block(block, password)
}

/// Reads an RSA private key from DER: PKCS#8 `PrivateKeyInfo`, PKCS#1 `RSAPrivateKey`, or (with
/// `password`) PKCS#8 `EncryptedPrivateKeyInfo`.
pub fn private_key_from_der(der: &[u8], password: Option<&Password>) -> Result<RsaPrivateKey> {
    match classify(der) {
        Some(DerKind::Pkcs8) => from_pkcs8(der),
        Some(DerKind::Pkcs1) => RsaPrivateKey::from_pkcs1_der(der),
        Some(DerKind::EncryptedPkcs8) => {
            let password = password.ok_or_else(needs_password)?;
            let plain = decrypt_pkcs8(der, password)?;
            from_pkcs8(&plain).map_err(|e| decrypted_but_invalid(&plain, e))
        }
        None => Err(Error::certificate(
            "the private key is not PKCS#8 or PKCS#1 DER (is it PEM text?)",
        )),
    }
}

fn no_key_block() -> Error {
    Error::certificate(
        "no private key found: expected a PEM block 'PRIVATE KEY', 'RSA PRIVATE KEY' or \
         'ENCRYPTED PRIVATE KEY'",
    )
}

fn needs_password() -> Error {
    Error::certificate("the private key is encrypted; give its password")
}

/// Labels that hold a private key of some kind.
fn is_key_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
}

/// The first private-key block; `Err` when several are present (which one was meant?).
pub(crate) fn first_key_block(blocks: &[pem::Block]) -> Result<Option<&pem::Block>> {
    let mut keys = blocks.iter().filter(|b| is_key_label(&b.label));
    let first = keys.next();
    if keys.next().is_some() {
        return Err(Error::certificate(
            "the PEM text holds more than one private key; keep only the certificate's own key",
        ));
    }
    Ok(first)
}

/// Decodes one private-key PEM block.
pub(crate) fn key_from_block(
    block: &pem::Block,
    password: Option<&Password>,
) -> Result<RsaPrivateKey> {
    match block.label.as_str() {
        "PRIVATE KEY" => from_pkcs8(&block.der),
        "ENCRYPTED PRIVATE KEY" => {
            let password = password.ok_or_else(needs_password)?;
            let plain = decrypt_pkcs8(&block.der, password)?;
            from_pkcs8(&plain).map_err(|e| decrypted_but_invalid(&plain, e))
        }
        "RSA PRIVATE KEY" => {
            if block
                .header("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"))
            {
                let password = password.ok_or_else(needs_password)?;
                let dek = block.header("DEK-Info").ok_or_else(|| {
                    Error::certificate("the encrypted PEM private key has no DEK-Info header")
                })?;
                let plain = pbe::decrypt_legacy_pem(dek, &block.der, password.expose())?;
                // A wrong password leaves bytes that unpad by chance about 1 time in 256.
                RsaPrivateKey::from_pkcs1_der(&plain).map_err(|_| pbe::wrong_password())
            } else {
                RsaPrivateKey::from_pkcs1_der(&block.der)
            }
        }
        "EC PRIVATE KEY" => Err(not_rsa("the private key", "1.2.840.10045.2.1")),
        "DSA PRIVATE KEY" => Err(not_rsa("the private key", "1.2.840.10040.4.1")),
        "OPENSSH PRIVATE KEY" => Err(Error::certificate(
            "the private key is in OpenSSH format; convert it with ssh-keygen -p -m PKCS8 -f FILE",
        )),
        other => Err(Error::certificate(format!(
            "the PEM block '{other}' is not a private key dpwrap can read"
        ))),
    }
}

/// A decrypted key that does not parse: a wrong password, unless it is a well-formed key of
/// another algorithm (then say that).
fn decrypted_but_invalid(plain: &[u8], error: Error) -> Error {
    match algorithm_of_pkcs8(plain) {
        Some(_) => error,
        None => pbe::wrong_password(),
    }
}

/// Reads an unencrypted PKCS#8 key, naming the algorithm when it is not RSA.
fn from_pkcs8(der: &[u8]) -> Result<RsaPrivateKey> {
    if let Some(oid) = algorithm_of_pkcs8(der)
        && oid != "1.2.840.113549.1.1.1"
    {
        return Err(not_rsa("the private key", &oid));
    }
    RsaPrivateKey::from_pkcs8_der(der)
}

/// The algorithm OID of a well-formed PKCS#8 `PrivateKeyInfo`.
pub(crate) fn algorithm_of_pkcs8(der: &[u8]) -> Option<String> {
    rsa::pkcs8::PrivateKeyInfoRef::try_from(der)
        .ok()
        .map(|info| info.algorithm.oid.to_string())
}

fn decrypt_pkcs8(der: &[u8], password: &Password) -> Result<Zeroizing<Vec<u8>>> {
    let malformed = || Error::certificate("the encrypted private key is malformed");
    let mut reader = der::SliceReader::new(der).map_err(|_| malformed())?;
    let (alg, data) = reader
        .sequence(|r| {
            let alg = AlgorithmIdentifierOwned::decode(r)?;
            let data = OctetString::decode(r)?;
            Ok::<_, der::Error>((alg, data))
        })
        .map_err(|_| malformed())?;
    reader.finish().map_err(|_| malformed())?;
    let params = match &alg.parameters {
        Some(any) => Some(der::Encode::to_der(any).map_err(|_| malformed())?),
        None => None,
    };
    pbe::decrypt_pkcs8(
        alg.oid,
        params.as_deref(),
        data.as_bytes(),
        password.expose(),
    )
}

enum DerKind {
    Pkcs8,
    Pkcs1,
    EncryptedPkcs8,
}

/// Tells the three key structures apart by their first fields: PKCS#8 starts
/// `INTEGER, SEQUENCE`, PKCS#1 `INTEGER, INTEGER`, encrypted PKCS#8 `SEQUENCE`.
fn classify(der: &[u8]) -> Option<DerKind> {
    let mut reader = der::SliceReader::new(der).ok()?;
    let header = der::Header::decode(&mut reader).ok()?;
    if header.tag() != der::Tag::Sequence {
        return None;
    }
    let first = der::Header::peek(&reader).ok()?.tag();
    if first == der::Tag::Sequence {
        return Some(DerKind::EncryptedPkcs8);
    }
    if first != der::Tag::Integer {
        return None;
    }
    let _version = der::asn1::AnyRef::decode(&mut reader).ok()?;
    match der::Header::peek(&reader).ok()?.tag() {
        der::Tag::Sequence => Some(DerKind::Pkcs8),
        der::Tag::Integer => Some(DerKind::Pkcs1),
        _ => None,
    }
}
