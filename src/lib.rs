#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod authentication;
pub mod azure;
pub mod certificate;
pub(crate) mod crypto;
pub mod decryptors;
pub mod envelope;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod key_file;
pub mod new_key;
pub mod null;
pub mod protector;
pub mod ring;
pub mod secret;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod timestamp;
pub mod xml;
pub mod xmlenc;

pub use certificate::{
    Certificate, CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, KeyTransport,
};
pub use crypto::{
    ContentAlgorithm, Digest, KeyWrapAlgorithm, RsaPadding, RsaPrivateKey, RsaPublicKey,
};
pub use decryptors::Decryptors;
pub use error::{Error, ErrorKind, Result};
pub use key_file::{Key, Revocation, Ring, RingElement};
pub use null::{NullXmlDecryptor, NullXmlEncryptor};
pub use protector::{DecryptorType, EncryptedXmlInfo, Protection, XmlDecryptor, XmlEncryptor};
pub use secret::{MasterKey, Password, SecretBytes, SecretElement};
pub use store::KeyStore;
pub use timestamp::Timestamp;
