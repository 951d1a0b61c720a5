//! Key-encryption keys: [`KeyEncryptionKey`] wraps and unwraps a content key,
//! [`KeyEncryptionKeyResolver`] finds the KEK a stored `kid` names.
//!
//! The Key Vault client (`azure::key_vault`, feature `azure`), [`LocalRsaKek`] and test
//! fakes all implement these, so the XML encryptor and decryptor never know which one they hold.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::crypto::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// A key-wrapping algorithm of Key Vault (JSON Web Algorithms names).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WrapAlgorithm {
    /// `RSA-OAEP`: OAEP with SHA-1 and MGF1-SHA-1. What ASP.NET uses.
    RsaOaep,
    /// `RSA-OAEP-256`: OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
    /// `RSA1_5`: PKCS#1 v1.5 (legacy; unwrapping uses implicit rejection).
    Rsa1_5,
}

impl WrapAlgorithm {
    /// The JWA name Key Vault uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WrapAlgorithm::RsaOaep => "RSA-OAEP",
            WrapAlgorithm::RsaOaep256 => "RSA-OAEP-256",
            WrapAlgorithm::Rsa1_5 => "RSA1_5",
        }
    }

    /// The algorithm with JWA name `name`.
    pub fn from_name(name: &str) -> Option<WrapAlgorithm> {
        [
            WrapAlgorithm::RsaOaep,
            WrapAlgorithm::RsaOaep256,
            WrapAlgorithm::Rsa1_5,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    pub(crate) fn rsa_padding(self) -> RsaPadding {
        match self {
            WrapAlgorithm::RsaOaep => RsaPadding::oaep_sha1(),
            WrapAlgorithm::RsaOaep256 => RsaPadding::oaep_sha256(),
            WrapAlgorithm::Rsa1_5 => RsaPadding::Pkcs1v15,
        }
    }
}

impl fmt::Display for WrapAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A content key wrapped by a KEK, with the identifier of the exact key (version included) that
/// wrapped it: Key Vault answers with the versioned `kid` even when asked for the latest version,
/// and that is what must be stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The identifier of the key that wrapped it, to store in `<kid>`.
    pub kid: String,
    /// The wrapped content key.
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("kid", &self.kid)
            .field("len", &self.wrapped.len())
            .finish()
    }
}

/// A key-encryption key: wraps content keys for storage and unwraps them.
#[async_trait]
pub trait KeyEncryptionKey: Send + Sync + fmt::Debug {
    /// The key identifier this KEK was configured with (for Key Vault, possibly without version).
    fn key_id(&self) -> &str;

    /// Wraps `key` (a content key) with `algorithm`.
    async fn wrap_key(&self, algorithm: WrapAlgorithm, key: &[u8]) -> Result<WrappedKey>;

    /// Unwraps `wrapped`. A key that does not unwrap is [`Error::decrypt`]; a service that
    /// refuses or fails is [`ErrorKind::Backend`].
    async fn unwrap_key(&self, algorithm: WrapAlgorithm, wrapped: &[u8]) -> Result<SecretBytes>;
}

/// Finds the KEK for a stored `kid`.
#[async_trait]
pub trait KeyEncryptionKeyResolver: Send + Sync + fmt::Debug {
    /// The KEK named by `kid`, or an error naming `kid` (never a different key silently).
    async fn resolve(&self, kid: &str) -> Result<Arc<dyn KeyEncryptionKey>>;
}

/// An RSA key-encryption key held locally: for offline migrations, for reading rings whose Key
/// Vault key was exported, and for tests.
pub struct LocalRsaKek {
    kid: String,
    private: RsaPrivateKey,
    public: RsaPublicKey,
}

impl LocalRsaKek {
    /// A KEK with identifier `kid` over `key`.
    pub fn new(kid: impl Into<String>, key: RsaPrivateKey) -> LocalRsaKek {
        let public = key.public_key();
        LocalRsaKek {
            kid: kid.into(),
            private: key,
            public,
        }
    }

    /// Reads an unencrypted RSA private key from PEM text: PKCS#8 (`PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`). The first private key in the text is used; certificates beside it are
    /// skipped.
    pub fn from_pem(kid: impl Into<String>, pem: &str) -> Result<LocalRsaKek> {
        Ok(LocalRsaKek::new(kid, rsa_private_key_from_pem(pem)?))
    }

    /// Reads the PEM file at `path` (see [`from_pem`](Self::from_pem)).
    pub fn from_pem_file(kid: impl Into<String>, path: &Path) -> Result<LocalRsaKek> {
        let bytes = Zeroizing::new(crate::key_file::read_bounded(path, 1024 * 1024)?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::certificate(format!("{}: the key file is not PEM text", path.display()))
        })?;
        LocalRsaKek::from_pem(kid, text).map_err(|e| e.context(path.display()))
    }

    /// The public half (for checking which key this is).
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }
}

impl fmt::Debug for LocalRsaKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRsaKek")
            .field("kid", &self.kid)
            .field("bits", &self.public.size_bits())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyEncryptionKey for LocalRsaKek {
    fn key_id(&self) -> &str {
        &self.kid
    }

    async fn wrap_key(&self, algorithm: WrapAlgorithm, key: &[u8]) -> Result<WrappedKey> {
        let wrapped = self.public.encrypt(&algorithm.rsa_padding(), key)?;
        Ok(WrappedKey {
            kid: self.kid.clone(),
            wrapped,
        })
    }

    async fn unwrap_key(&self, algorithm: WrapAlgorithm, wrapped: &[u8]) -> Result<SecretBytes> {
        let key = self.private.decrypt(&algorithm.rsa_padding(), wrapped)?;
        Ok(SecretBytes::from(key))
    }
}

/// PEM blocks in `text` as `(label, DER)`, in order. Bounded by the text's own size.
pub(crate) fn pem_blocks(text: &str) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = rest.get(start..).unwrap_or_default();
        let label_end = block
            .get(BEGIN.len()..)
            .and_then(|s| s.find("-----"))
            .ok_or_else(|| Error::certificate("a PEM block has a malformed BEGIN line"))?;
        let label = block
            .get(BEGIN.len()..BEGIN.len() + label_end)
            .unwrap_or_default()
            .to_owned();
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker).ok_or_else(|| {
            Error::certificate(format!("the PEM block '{label}' has no END line"))
        })?;
        let whole = block.get(..end + end_marker.len()).unwrap_or_default();
        let (decoded_label, der) = pem_rfc7468::decode_vec(whole.as_bytes()).map_err(|e| {
            Error::certificate(format!("the PEM block '{label}' is malformed: {e}"))
        })?;
        out.push((decoded_label.to_owned(), Zeroizing::new(der)));
        rest = block.get(end + end_marker.len()..).unwrap_or_default();
    }
    Ok(out)
}

/// The first RSA private key in PEM text.
pub(crate) fn rsa_private_key_from_pem(text: &str) -> Result<RsaPrivateKey> {
    let blocks = pem_blocks(text)?;
    for (label, der) in &blocks {
        match label.as_str() {
            "PRIVATE KEY" => return RsaPrivateKey::from_pkcs8_der(der),
            "RSA PRIVATE KEY" => return RsaPrivateKey::from_pkcs1_der(der),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::certificate(
                    "the private key is encrypted; decrypt it first (openssl pkcs8 -in KEY -out PLAIN.pem) or use a PFX",
                ));
            }
            _ => {}
        }
    }
    let found: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    Err(Error::certificate(format!(
        "no RSA private key found in the PEM text (expected 'PRIVATE KEY' or 'RSA PRIVATE KEY'; found {found:?})"
    )))
}

/// Splits a Key Vault key identifier `https://{vault}/keys/{name}[/{version}]` into the vault
/// (scheme, host and port, lower-cased), the key name (lower-cased: Key Vault names are
/// case-insensitive) and the version.
pub(crate) fn split_kid(kid: &str) -> Option<(String, String, Option<String>)> {
    let (scheme, rest) = kid.trim().split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/')?;
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if segments.next()? != "keys" {
        return None;
    }
    let name = segments.next()?.to_ascii_lowercase();
    let version = segments.next().map(str::to_owned);
    if segments.next().is_some() {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority
        .strip_suffix(":443")
        .filter(|_| scheme.eq_ignore_ascii_case("https"))
        .unwrap_or(&authority)
        .to_owned();
    Some((
        format!("{}://{authority}", scheme.to_ascii_lowercase()),
        name,
        version,
    ))
}

/// Resolves kids to a set of KEKs held locally (for example [`LocalRsaKek`]s).
///
/// A kid matches a KEK whose [`key_id`](KeyEncryptionKey::key_id) is the same string. With
/// [`allow_any_version`](Self::allow_any_version), a kid also matches a KEK of the same vault and
/// key name whatever the versions (useful when a local copy was registered without version); a
/// KEK whose id has the kid's exact version is still preferred.
#[derive(Clone, Default)]
pub struct LocalKekResolver {
    keks: Vec<Arc<dyn KeyEncryptionKey>>,
    any_version: bool,
}

impl LocalKekResolver {
    /// An empty resolver.
    pub fn new() -> LocalKekResolver {
        LocalKekResolver::default()
    }

    /// Adds a KEK.
    pub fn with(mut self, kek: Arc<dyn KeyEncryptionKey>) -> LocalKekResolver {
        self.keks.push(kek);
        self
    }

    /// Adds a KEK.
    pub fn add(&mut self, kek: Arc<dyn KeyEncryptionKey>) -> &mut LocalKekResolver {
        self.keks.push(kek);
        self
    }

    /// Also match kids that differ only in their version (off by default).
    pub fn allow_any_version(mut self, allow: bool) -> LocalKekResolver {
        self.any_version = allow;
        self
    }
}

impl fmt::Debug for LocalKekResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKekResolver")
            .field(
                "kids",
                &self.keks.iter().map(|k| k.key_id()).collect::<Vec<_>>(),
            )
            .field("any_version", &self.any_version)
            .finish()
    }
}

#[async_trait]
impl KeyEncryptionKeyResolver for LocalKekResolver {
    async fn resolve(&self, kid: &str) -> Result<Arc<dyn KeyEncryptionKey>> {
        let wanted = kid.trim();
        if let Some(k) = self.keks.iter().find(|k| k.key_id().trim() == wanted) {
            return Ok(Arc::clone(k));
        }
        if self.any_version
            && let Some((vault, name, _)) = split_kid(wanted)
        {
            let found = self
                .keks
                .iter()
                .find(|k| split_kid(k.key_id()).is_some_and(|(v, n, _)| v == vault && n == name));
            if let Some(k) = found {
                return Ok(Arc::clone(k));
            }
        }
        let have: BTreeSet<&str> = self.keks.iter().map(|k| k.key_id()).collect();
        Err(Error::new(
            ErrorKind::NoMatchingKey,
            format!(
                "no key-encryption key is configured for kid '{}'; configured: {:?}{}",
                truncate(wanted, 300),
                have,
                if self.any_version {
                    ""
                } else {
                    " (versions must match exactly unless any version is allowed)"
                }
            ),
        ))
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_split() {
        let (v, n, ver) =
            split_kid("https://My-Vault.vault.azure.net:443/keys/DataProt/abc").unwrap();
        assert_eq!(v, "https://my-vault.vault.azure.net");
        assert_eq!(n, "dataprot");
        assert_eq!(ver.as_deref(), Some("abc"));
        let (_, _, ver) = split_kid("https://x.vault.azure.net/keys/k").unwrap();
        assert_eq!(ver, None);
        assert!(split_kid("https://x.vault.azure.net/secrets/k/1").is_none());
        assert!(split_kid("KeyId").is_none());
        assert!(split_kid("https://x/keys/k/v/extra").is_none());
    }

    #[test]
    fn algorithm_names() {
        for a in [
            WrapAlgorithm::RsaOaep,
            WrapAlgorithm::RsaOaep256,
            WrapAlgorithm::Rsa1_5,
        ] {
            assert_eq!(WrapAlgorithm::from_name(a.as_str()), Some(a));
        }
        assert_eq!(WrapAlgorithm::from_name("A256KW"), None);
    }

    #[test]
    fn encrypted_pem_is_refused_clearly() {
        let pem =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = rsa_private_key_from_pem(pem).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Certificate);
        assert!(e.to_string().contains("encrypted"));
        let e = rsa_private_key_from_pem("no pem here").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Certificate);
    }
}
