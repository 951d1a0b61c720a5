//! [`Decryptors`]: an explicit registry from decryptor type to decryptor.
//!
//! There is no global registry: a key ring builds one value with the decryptors it trusts and
//! passes it where keys are read. A decryptor may answer to several names (both Azure packages
//! share one decryptor).

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::protector::{DecryptorType, Protection, XmlDecryptor};

/// A registry of decryptors, keyed by the decryptor type names they answer to.
#[derive(Clone, Default)]
pub struct Decryptors {
    entries: Vec<(DecryptorType, Arc<dyn XmlDecryptor>)>,
}

impl Decryptors {
    /// An empty registry.
    pub fn new() -> Decryptors {
        Decryptors::default()
    }

    /// Registers `decryptor` under every name it answers to. A later registration for the same
    /// name takes precedence over an earlier one.
    pub fn register(&mut self, decryptor: Arc<dyn XmlDecryptor>) -> &mut Decryptors {
        for t in decryptor.decryptor_types() {
            self.entries.insert(0, (t, Arc::clone(&decryptor)));
        }
        self
    }

    /// Builder form of [`register`](Self::register).
    pub fn with(mut self, decryptor: Arc<dyn XmlDecryptor>) -> Decryptors {
        self.register(decryptor);
        self
    }

    /// Registers `decryptor` under an extra name, in addition to its own.
    pub fn register_alias(
        &mut self,
        name: DecryptorType,
        decryptor: Arc<dyn XmlDecryptor>,
    ) -> &mut Decryptors {
        self.entries.insert(0, (name, decryptor));
        self
    }

    /// The decryptor for `decryptor_type`, or an error that says what is missing.
    pub fn get(&self, decryptor_type: &DecryptorType) -> Result<&Arc<dyn XmlDecryptor>> {
        if let Some((_, d)) = self.entries.iter().find(|(t, _)| t.matches(decryptor_type)) {
            return Ok(d);
        }
        Err(missing_decryptor(decryptor_type))
    }

    /// Whether a decryptor is registered for `decryptor_type`.
    pub fn contains(&self, decryptor_type: &DecryptorType) -> bool {
        self.entries.iter().any(|(t, _)| t.matches(decryptor_type))
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &DecryptorType> {
        self.entries.iter().map(|(t, _)| t)
    }
}

/// The error for a decryptor type with no registered decryptor: Windows-only protections say so;
/// known ones say which key material to configure; unknown ones name the type.
pub(crate) fn missing_decryptor(decryptor_type: &DecryptorType) -> Error {
    match decryptor_type.protection() {
        Protection::Dpapi => windows_only(Protection::Dpapi),
        Protection::DpapiNg => windows_only(Protection::DpapiNg),
        Protection::Certificate => Error::new(
            ErrorKind::UnknownDecryptor,
            "the key is protected with a certificate, but no certificate decryptor is configured; supply the certificate and its private key",
        ),
        Protection::AzureKeyVault => Error::new(
            ErrorKind::UnknownDecryptor,
            "the key is protected with Azure Key Vault, but no Key Vault decryptor is configured; supply the Key Vault key (or a local copy of the key-encryption key)",
        ),
        Protection::Null => Error::new(
            ErrorKind::UnknownDecryptor,
            "the key uses the null decryptor, which is not registered",
        ),
        Protection::None | Protection::Unknown => Error::new(
            ErrorKind::UnknownDecryptor,
            format!(
                "no decryptor is known for type '{}'; dpwrap reads certificate, Azure Key Vault and null protection",
                truncate(decryptor_type.as_str(), 200)
            ),
        ),
    }
}

/// The error for DPAPI and DPAPI-NG keys.
pub(crate) fn windows_only(protection: Protection) -> Error {
    let what = match protection {
        Protection::DpapiNg => {
            "the key is protected with Windows DPAPI-NG: only Windows can decrypt it, as a principal named in its protection descriptor (a user, group or certificate)"
        }
        _ => {
            "the key is protected with Windows DPAPI: only Windows can decrypt it, as the user or machine account that wrote it"
        }
    };
    Error::new(
        ErrorKind::WindowsOnly,
        format!(
            "{what}; to read this ring elsewhere, re-protect it on that Windows machine with ProtectKeysWithCertificate or ProtectKeysWithAzureKeyVault"
        ),
    )
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl fmt::Debug for Decryptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(t, d)| (t.type_name(), d)))
            .finish()
    }
}
