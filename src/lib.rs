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

pub mod certificate;
pub(crate) mod crypto;
pub mod decryptors;
pub mod envelope;
pub mod error;
pub mod key_file;
pub mod null;
pub mod protector;
pub mod secret;
pub mod timestamp;
pub mod xml;

pub use certificate::{Certificate, CertificateWithKey};
pub use crypto::{
    ContentAlgorithm, Digest, KeyWrapAlgorithm, RsaPadding, RsaPrivateKey, RsaPublicKey,
};
pub use decryptors::Decryptors;
pub use error::{Error, ErrorKind, Result};
pub use key_file::{Key, Revocation, Ring, RingElement};
pub use null::{NullXmlDecryptor, NullXmlEncryptor};
pub use protector::{DecryptorType, EncryptedXmlInfo, Protection, XmlDecryptor, XmlEncryptor};
pub use secret::{MasterKey, Password, SecretBytes, SecretElement};
pub use timestamp::Timestamp;
