//! The null protector: ASP.NET's `NullXmlEncryptor` and `NullXmlDecryptor`.
//!
//! It wraps the secret element in `<unencryptedKey>` without encrypting it. Keys written this way
//! are readable by anyone who can read the store; it exists for parity with .NET and for tests.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::protector::{DecryptorType, EncryptedXmlInfo, XmlDecryptor, XmlEncryptor};
use crate::secret::SecretElement;
use crate::xml::{Element, Name};

/// Writes `<unencryptedKey><!-- This key is not encrypted. -->{secret}</unencryptedKey>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullXmlEncryptor;

/// Reads what [`NullXmlEncryptor`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullXmlDecryptor;

#[async_trait]
impl XmlEncryptor for NullXmlEncryptor {
    async fn encrypt(&self, secret: &Element) -> Result<EncryptedXmlInfo> {
        let element = Element::new(Name::local("unencryptedKey"))
            .with_comment(" This key is not encrypted. ")
            .with_child(secret.clone());
        Ok(EncryptedXmlInfo {
            encrypted_element: element,
            decryptor_type: DecryptorType::null(),
        })
    }
}

#[async_trait]
impl XmlDecryptor for NullXmlDecryptor {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::null()]
    }

    async fn decrypt(&self, encrypted: &Element) -> Result<SecretElement> {
        let mut children = encrypted.elements();
        match (children.next(), children.next()) {
            (Some(child), None) => Ok(SecretElement::new(child.clone())),
            _ => Err(Error::format(
                "an unencryptedKey element must contain exactly one element",
            )),
        }
    }
}
