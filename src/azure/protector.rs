//! [`AzureKeyVaultXmlEncryptor`] and [`AzureKeyVaultXmlDecryptor`]: ASP.NET's Key Vault
//! `IXmlEncryptor` and `IXmlDecryptor` over the [`KeyEncryptionKey`] traits.

use std::sync::Arc;

use async_trait::async_trait;

use super::format::{self, CONTENT_KEY_LEN, EncryptedKey};
use super::kek::{KeyEncryptionKey, KeyEncryptionKeyResolver, WrapAlgorithm};
use crate::error::{Error, ErrorKind, Result};
use crate::protector::{DecryptorType, EncryptedXmlInfo, XmlDecryptor, XmlEncryptor};
use crate::secret::{SecretBytes, SecretElement};
use crate::xml::Element;

/// Encrypts secret elements as `ProtectKeysWithAzureKeyVault` does: a fresh 16-byte AES key per
/// element, wrapped by the KEK with `RSA-OAEP`, the element encrypted with AES-128-CBC.
#[derive(Debug, Clone)]
pub struct AzureKeyVaultXmlEncryptor {
    kek: Arc<dyn KeyEncryptionKey>,
    algorithm: WrapAlgorithm,
    legacy: bool,
}

impl AzureKeyVaultXmlEncryptor {
    /// An encryptor wrapping with `kek`, writing the current package's decryptor type.
    pub fn new(kek: Arc<dyn KeyEncryptionKey>) -> AzureKeyVaultXmlEncryptor {
        AzureKeyVaultXmlEncryptor {
            kek,
            algorithm: WrapAlgorithm::RsaOaep,
            legacy: false,
        }
    }

    /// Write the old `Microsoft.AspNetCore.DataProtection.AzureKeyVault` decryptor type (and its
    /// comment), for readers that still run that package.
    pub fn legacy(mut self, legacy: bool) -> AzureKeyVaultXmlEncryptor {
        self.legacy = legacy;
        self
    }

    /// Wrap with another algorithm. .NET's decryptor always unwraps with `RSA-OAEP`, so anything
    /// else is readable only by dpwrap.
    pub fn algorithm(mut self, algorithm: WrapAlgorithm) -> AzureKeyVaultXmlEncryptor {
        self.algorithm = algorithm;
        self
    }
}

#[async_trait]
impl XmlEncryptor for AzureKeyVaultXmlEncryptor {
    async fn encrypt(&self, secret: &Element) -> Result<EncryptedXmlInfo> {
        let content_key = SecretBytes::from(crate::crypto::random_bytes(CONTENT_KEY_LEN)?);
        let (iv, value) = format::seal(content_key.expose(), secret)?;
        let wrapped = self
            .kek
            .wrap_key(self.algorithm, content_key.expose())
            .await?;
        if wrapped.kid.trim().is_empty() || wrapped.wrapped.is_empty() {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "the key-encryption key '{}' returned an empty key id or wrapped key",
                    self.kek.key_id()
                ),
            ));
        }
        let encrypted = EncryptedKey {
            kid: wrapped.kid,
            wrapped_key: wrapped.wrapped,
            iv,
            value,
        };
        let (comment, decryptor_type) = if self.legacy {
            (
                format::LEGACY_COMMENT,
                DecryptorType::azure_key_vault_legacy(),
            )
        } else {
            (format::COMMENT, DecryptorType::azure_key_vault())
        };
        Ok(EncryptedXmlInfo {
            encrypted_element: encrypted.to_element(comment),
            decryptor_type,
        })
    }
}

/// Decrypts `<encryptedKey>` elements, answering to both Azure package names: it resolves the
/// stored `kid` (version as written) and unwraps the content key there.
#[derive(Debug, Clone)]
pub struct AzureKeyVaultXmlDecryptor {
    resolver: Arc<dyn KeyEncryptionKeyResolver>,
    algorithm: WrapAlgorithm,
}

impl AzureKeyVaultXmlDecryptor {
    /// A decryptor that finds KEKs through `resolver` and unwraps with `RSA-OAEP`, as .NET does.
    pub fn new(resolver: Arc<dyn KeyEncryptionKeyResolver>) -> AzureKeyVaultXmlDecryptor {
        AzureKeyVaultXmlDecryptor {
            resolver,
            algorithm: WrapAlgorithm::RsaOaep,
        }
    }

    /// Unwrap with another algorithm (for keys dpwrap wrote with one).
    pub fn algorithm(mut self, algorithm: WrapAlgorithm) -> AzureKeyVaultXmlDecryptor {
        self.algorithm = algorithm;
        self
    }
}

#[async_trait]
impl XmlDecryptor for AzureKeyVaultXmlDecryptor {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![
            DecryptorType::azure_key_vault(),
            DecryptorType::azure_key_vault_legacy(),
        ]
    }

    async fn decrypt(&self, encrypted: &Element) -> Result<SecretElement> {
        let parsed = EncryptedKey::from_element(encrypted)?;
        let kek = self.resolver.resolve(&parsed.kid).await?;
        let content_key = kek.unwrap_key(self.algorithm, &parsed.wrapped_key).await?;
        format::open(&content_key, &parsed)
    }
}
