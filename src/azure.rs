//! Azure Key Vault protection (`ProtectKeysWithAzureKeyVault`).
//!
//! ASP.NET encrypts a secret element with a fresh AES content key, wraps that key with a Key
//! Vault key (RSA-OAEP) and stores `<encryptedKey>` with the key's `kid`, the wrapped key, the IV
//! and the ciphertext ([`format`](mod@format)). Both .NET packages write this format: the current
//! `Azure.Extensions.AspNetCore.DataProtection.Keys` and the old
//! `Microsoft.AspNetCore.DataProtection.AzureKeyVault`; [`AzureKeyVaultXmlDecryptor`] answers to
//! both names.
//!
//! The key-encryption key is reached through two small traits ([`kek`]): a
//! [`KeyEncryptionKey`] wraps and unwraps, a [`KeyEncryptionKeyResolver`] finds the KEK a stored
//! `kid` names. So the Key Vault client, a local RSA key (offline migrations, tests) and a test
//! fake are interchangeable.
//!
//! Always built: the format, the traits, the XML encryptor and decryptor, and [`LocalRsaKek`].
//! Behind feature `azure`: the Key Vault client on the official SDK crates
//! (`key_vault`), credential selection (`credentials`), Key Vault secrets (`secret`) and the
//! concurrent ring unwrap (`ring`), with their retry policy (`retry`) and HTTPS transport
//! (`transport`).

pub mod format;
pub mod kek;
pub mod protector;

#[cfg(feature = "azure")]
pub mod credentials;
#[cfg(feature = "azure")]
pub mod key_vault;
#[cfg(feature = "azure")]
pub mod retry;
#[cfg(feature = "azure")]
pub mod ring;
#[cfg(feature = "azure")]
pub mod secret;
#[cfg(feature = "azure")]
pub mod transport;

pub use format::EncryptedKey;
pub use kek::{
    KeyEncryptionKey, KeyEncryptionKeyResolver, LocalKekResolver, LocalRsaKek, WrapAlgorithm,
};
pub use protector::{AzureKeyVaultXmlDecryptor, AzureKeyVaultXmlEncryptor};
