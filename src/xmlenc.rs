//! W3C XML Encryption (1.0 and the 1.1 algorithms): one engine for ASP.NET Core key files and for
//! any other document.
//!
//! Decryption reads what .NET, xmlsec, Java and SAML stacks write: AES-CBC, 3DES-CBC and AES-GCM
//! content; RSA PKCS#1 v1.5 and OAEP (any SHA digest, MGF and label) key transport; AES and 3DES
//! key wrap; keys found through inline `EncryptedKey`s (every one is tried, not only the first as
//! .NET does), `KeyName`s (direct, or an `EncryptedKey`'s `CarriedKeyName`), same-document
//! `RetrievalMethod`s and `X509Data`. Keys come from a [`KeyResolver`], usually a [`Keys`] store.
//!
//! Encryption ([`EncryptedDataBuilder`]) writes what `EncryptedXml.Encrypt(element, certificate)`
//! writes, so .NET reads it.
//!
//! Everything read is bounded: the sizes below, the XML [`Limits`](crate::xml::Limits), and a
//! refusal to follow any reference outside the document.
//!
//! ```
//! # fn main() -> dpwrap::Result<()> {
//! use dpwrap::xmlenc::{self, EncryptedDataBuilder, Keys, Recipient};
//! use dpwrap::{KeyWrapAlgorithm, SecretBytes};
//!
//! let kek = [9u8; 16];
//! let secret = dpwrap::xml::parse(b"<masterKey><value>AAEC</value></masterKey>")?;
//! let encrypted = EncryptedDataBuilder::new()
//!     .recipient(Recipient::symmetric("kek-1", SecretBytes::copy_from(&kek), KeyWrapAlgorithm::Aes128))
//!     .encrypt_element(&secret)?;
//!
//! let mut keys = Keys::new();
//! keys.add_symmetric("kek-1", SecretBytes::copy_from(&kek));
//! let decrypted = xmlenc::decrypt_element_type(&encrypted, &keys)?;
//! assert_eq!(decrypted.expose(), &secret);
//! # Ok(()) }
//! ```

pub mod algorithms;
mod decrypt;
mod encrypt;
pub mod model;
mod reference;
pub mod resolve;

pub use decrypt::{
    DecryptedData, decrypt_document, decrypt_element_type, decrypt_encrypted_data,
    decrypt_encrypted_data_with_details,
};
pub use encrypt::{EncryptedDataBuilder, Recipient};
pub use model::{
    CipherData, CipherReference, DataType, EncryptedData, EncryptedKey, EncryptionMethod,
    IssuerSerial, KeyInfo, KeyInfoItem, RetrievalMethod, Transform, X509Data,
};
pub use resolve::{KeyResolver, Keys, RsaKeyCandidate, names_thumbprint, sha1_thumbprint};

/// Largest `EncryptedData` ciphertext accepted (decoded), checked before base64 decoding.
pub const MAX_CIPHER_VALUE_BYTES: usize = 4 * 1024 * 1024;
/// Largest wrapped key accepted (an RSA-8192 ciphertext).
pub const MAX_WRAPPED_KEY_BYTES: usize = 1024;
/// Most `EncryptedKey`s tried for one `EncryptedData`, nested and referenced ones included.
pub const MAX_ENCRYPTED_KEYS: usize = 32;
/// Most RSA decryptions tried for one `EncryptedData` (RSA keys times `EncryptedKey`s).
pub const MAX_RSA_ATTEMPTS: usize = 64;
/// Deepest chain of `EncryptedKey`s (keys wrapped in wrapped keys, `RetrievalMethod` chains).
pub const MAX_KEY_DEPTH: usize = 4;
/// Most children of one `KeyInfo`.
pub const MAX_KEY_INFO_ITEMS: usize = 64;
/// Most `EncryptedData` elements decrypted in one pass over a document.
pub const MAX_ENCRYPTED_DATA: usize = 4096;
/// Most passes over a document whose decrypted content holds further `EncryptedData`.
pub const MAX_DOCUMENT_PASSES: usize = 4;
