//! The seams: [`XmlEncryptor`] and [`XmlDecryptor`], as ASP.NET's `IXmlEncryptor` and
//! `IXmlDecryptor`, and the [`DecryptorType`] name that ties a stored secret to its decryptor.
//!
//! A key ring holds an `Arc<dyn XmlEncryptor>` for writing and a
//! [`Decryptors`](crate::decryptors::Decryptors) registry for reading. Both traits are
//! dyn-compatible through `async-trait`, `Send + Sync + Debug`, and need no particular runtime.

use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::secret::SecretElement;
use crate::xml::Element;

/// Encrypts a secret element (a `masterKey`) for storage.
#[async_trait]
pub trait XmlEncryptor: Send + Sync + fmt::Debug {
    /// Encrypts `secret`, returning the element to store inside `encryptedSecret` and the
    /// decryptor type to name there. Must not keep or log `secret`.
    async fn encrypt(&self, secret: &Element) -> Result<EncryptedXmlInfo>;
}

/// Decrypts what an [`XmlEncryptor`] produced.
#[async_trait]
pub trait XmlDecryptor: Send + Sync + fmt::Debug {
    /// The decryptor type names this decryptor answers to: the primary .NET name first, then
    /// aliases (for example both Azure package names).
    fn decryptor_types(&self) -> Vec<DecryptorType>;

    /// Decrypts the single child of an `encryptedSecret`, returning the secret element.
    async fn decrypt(&self, encrypted: &Element) -> Result<SecretElement>;
}

/// What an encryptor returns: the element to store and the decryptor that reads it.
#[derive(Debug, Clone)]
pub struct EncryptedXmlInfo {
    /// The element placed inside `encryptedSecret`.
    pub encrypted_element: Element,
    /// The decryptor type written in `encryptedSecret/@decryptorType`.
    pub decryptor_type: DecryptorType,
}

/// A .NET assembly-qualified type name, as stored in `decryptorType` and `deserializerType`.
///
/// Two names are the same type when their namespace-qualified type names and assembly names are
/// equal; version, culture and public key token are ignored, as .NET ignores them. The pre-1.0
/// `Microsoft.AspNet.DataProtection` names are mapped to `Microsoft.AspNetCore.DataProtection`.
/// The full text is kept, so writing emits exactly what was read or configured.
#[derive(Clone)]
pub struct DecryptorType {
    full: Box<str>,
    type_name: Box<str>,
    assembly: Option<Box<str>>,
}

const ASPNET_VERSION: &str = "Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60";
const AZURE_KEYS_VERSION: &str =
    "Version=1.6.0.0, Culture=neutral, PublicKeyToken=92742159e12e44c8";
const AZURE_LEGACY_VERSION: &str =
    "Version=3.1.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60";

fn legacy_to_core(s: &str) -> String {
    const OLD: &str = "Microsoft.AspNet.DataProtection";
    const NEW: &str = "Microsoft.AspNetCore.DataProtection";
    match s.strip_prefix(OLD) {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("{NEW}{rest}"),
        _ => s.to_owned(),
    }
}

impl DecryptorType {
    /// Parses an assembly-qualified name (`Type, Assembly[, Version=…, Culture=…, PublicKeyToken=…]`).
    pub fn parse(full: &str) -> Result<DecryptorType> {
        let full = full.trim();
        if full.is_empty() {
            return Err(Error::format("the type name is empty"));
        }
        if full.len() > 1024 {
            return Err(Error::format(
                "the type name is longer than 1024 characters",
            ));
        }
        let mut parts = full.split(',').map(str::trim);
        let type_name = parts.next().unwrap_or("");
        if type_name.is_empty() {
            return Err(Error::format(format!(
                "'{full}' does not start with a type name"
            )));
        }
        let assembly = parts.next().filter(|a| !a.is_empty() && !a.contains('='));
        Ok(DecryptorType {
            full: full.into(),
            type_name: legacy_to_core(type_name).into(),
            assembly: assembly.map(|a| legacy_to_core(a).into()),
        })
    }

    fn known(type_name: &str, assembly: &str, version: &str) -> DecryptorType {
        DecryptorType {
            full: format!("{type_name}, {assembly}, {version}").into(),
            type_name: type_name.into(),
            assembly: Some(assembly.into()),
        }
    }

    /// `EncryptedXmlDecryptor`: certificate protection (W3C XML Encryption).
    pub fn encrypted_xml() -> DecryptorType {
        Self::known(
            "Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor",
            "Microsoft.AspNetCore.DataProtection",
            ASPNET_VERSION,
        )
    }

    /// `NullXmlDecryptor`: an explicitly unencrypted key.
    pub fn null() -> DecryptorType {
        Self::known(
            "Microsoft.AspNetCore.DataProtection.XmlEncryption.NullXmlDecryptor",
            "Microsoft.AspNetCore.DataProtection",
            ASPNET_VERSION,
        )
    }

    /// The current Azure Key Vault decryptor (`Azure.Extensions.AspNetCore.DataProtection.Keys`).
    pub fn azure_key_vault() -> DecryptorType {
        Self::known(
            "Azure.Extensions.AspNetCore.DataProtection.Keys.AzureKeyVaultXmlDecryptor",
            "Azure.Extensions.AspNetCore.DataProtection.Keys",
            AZURE_KEYS_VERSION,
        )
    }

    /// The old Azure Key Vault decryptor (`Microsoft.AspNetCore.DataProtection.AzureKeyVault`).
    pub fn azure_key_vault_legacy() -> DecryptorType {
        Self::known(
            "Microsoft.AspNetCore.DataProtection.AzureKeyVault.AzureKeyVaultXmlDecryptor",
            "Microsoft.AspNetCore.DataProtection.AzureKeyVault",
            AZURE_LEGACY_VERSION,
        )
    }

    /// Windows DPAPI.
    pub fn dpapi() -> DecryptorType {
        Self::known(
            "Microsoft.AspNetCore.DataProtection.XmlEncryption.DpapiXmlDecryptor",
            "Microsoft.AspNetCore.DataProtection",
            ASPNET_VERSION,
        )
    }

    /// Windows DPAPI-NG.
    pub fn dpapi_ng() -> DecryptorType {
        Self::known(
            "Microsoft.AspNetCore.DataProtection.XmlEncryption.DpapiNGXmlDecryptor",
            "Microsoft.AspNetCore.DataProtection",
            ASPNET_VERSION,
        )
    }

    /// The name exactly as read or as it will be written.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The namespace-qualified type name (legacy names mapped).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The assembly name, without version, culture or token (legacy names mapped).
    pub fn assembly(&self) -> Option<&str> {
        self.assembly.as_deref()
    }

    /// Whether both name the same type: equal type names, and equal assemblies where both give one.
    pub fn matches(&self, other: &DecryptorType) -> bool {
        self.type_name == other.type_name
            && match (&self.assembly, &other.assembly) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// What kind of protection this decryptor type stands for.
    pub fn protection(&self) -> Protection {
        let known = [
            (Self::encrypted_xml(), Protection::Certificate),
            (Self::azure_key_vault(), Protection::AzureKeyVault),
            (Self::azure_key_vault_legacy(), Protection::AzureKeyVault),
            (Self::null(), Protection::Null),
            (Self::dpapi(), Protection::Dpapi),
            (Self::dpapi_ng(), Protection::DpapiNg),
        ];
        known
            .into_iter()
            .find(|(t, _)| t.matches(self))
            .map(|(_, p)| p)
            .unwrap_or(Protection::Unknown)
    }
}

impl PartialEq for DecryptorType {
    fn eq(&self, other: &DecryptorType) -> bool {
        self.matches(other)
    }
}

impl fmt::Debug for DecryptorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecryptorType({:?})", self.full)
    }
}

impl fmt::Display for DecryptorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// How a key's master key is protected at rest.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protection {
    /// W3C XML Encryption with an X.509 certificate (`ProtectKeysWithCertificate`).
    Certificate,
    /// Azure Key Vault (`ProtectKeysWithAzureKeyVault`), either package.
    AzureKeyVault,
    /// `NullXmlEncryptor`: wrapped in `encryptedSecret` but not encrypted.
    Null,
    /// No protection at all: the master key is in the clear.
    None,
    /// Windows DPAPI: only Windows can decrypt it, as the account that wrote it.
    Dpapi,
    /// Windows DPAPI-NG: only Windows can decrypt it, as a principal of its protection descriptor.
    DpapiNg,
    /// A decryptor type dpwrap does not know.
    Unknown,
}

impl Protection {
    /// The name used in CLI and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Certificate => "certificate",
            Protection::AzureKeyVault => "azure-key-vault",
            Protection::Null => "null",
            Protection::None => "none",
            Protection::Dpapi => "dpapi",
            Protection::DpapiNg => "dpapi-ng",
            Protection::Unknown => "unknown",
        }
    }

    /// Whether the master key is readable without any key material.
    pub fn is_unprotected(self) -> bool {
        matches!(self, Protection::None | Protection::Null)
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_culture_and_token_are_ignored() {
        let a = DecryptorType::parse("Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor, Microsoft.AspNetCore.DataProtection, Version=3.1.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60").unwrap();
        let b = DecryptorType::parse(
            "Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor, Microsoft.AspNetCore.DataProtection",
        )
        .unwrap();
        assert!(a.matches(&b));
        assert!(a.matches(&DecryptorType::encrypted_xml()));
        assert_eq!(a.protection(), Protection::Certificate);
        assert!(!a.matches(&DecryptorType::null()));
    }

    #[test]
    fn legacy_aspnet_names_map_to_aspnetcore() {
        let old = DecryptorType::parse(
            "Microsoft.AspNet.DataProtection.XmlEncryption.NullXmlDecryptor, Microsoft.AspNet.DataProtection, Version=1.0.0.0",
        )
        .unwrap();
        assert!(old.matches(&DecryptorType::null()));
        assert_eq!(old.protection(), Protection::Null);
        // The full text is kept for writing back.
        assert!(
            old.as_str()
                .starts_with("Microsoft.AspNet.DataProtection.XmlEncryption")
        );
        // Only the namespace prefix is mapped, not look-alikes.
        let other = DecryptorType::parse("Microsoft.AspNet.DataProtectionX.Foo, A").unwrap();
        assert_eq!(other.type_name(), "Microsoft.AspNet.DataProtectionX.Foo");
    }

    #[test]
    fn both_azure_names_are_azure() {
        assert_eq!(
            DecryptorType::azure_key_vault().protection(),
            Protection::AzureKeyVault
        );
        assert_eq!(
            DecryptorType::azure_key_vault_legacy().protection(),
            Protection::AzureKeyVault
        );
        assert!(
            !DecryptorType::azure_key_vault().matches(&DecryptorType::azure_key_vault_legacy())
        );
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(
            DecryptorType::parse("Foo.Bar, Baz").unwrap().protection(),
            Protection::Unknown
        );
        assert!(DecryptorType::parse("  ").is_err());
        assert!(DecryptorType::parse(", Asm").is_err());
    }
}
