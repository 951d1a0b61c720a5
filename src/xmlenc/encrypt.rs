//! Encryption: an `EncryptedData` for one or more recipients, shaped exactly as .NET's
//! `EncryptedXml.Encrypt(element, certificate)` shapes it.
//!
//! A fresh content key and IV per call; CBC uses PKCS#7 padding, which is one valid instance of
//! the ISO 10126 padding .NET expects. The plaintext of an element is its compact serialization
//! (no BOM, no declaration: .NET's decryptor refuses both).

use std::fmt;

use crate::crypto::{self, ContentAlgorithm, KeyWrapAlgorithm, RsaPadding, RsaPublicKey};
use crate::error::{Error, Result};
use crate::secret::SecretBytes;
use crate::xml::{self, Element, NS_DS, NS_XENC, Name, Node, WriteOptions};

use super::algorithms::{TYPE_ELEMENT, content_algorithm_uri, key_wrap_uri, rsa_method};
use super::model::{EncryptionMethod, encode_base64};

/// Someone who can decrypt: an RSA public key (usually a certificate's) or a named symmetric
/// key-encryption key. Each recipient gets one `EncryptedKey` holding the content key.
pub struct Recipient {
    kind: RecipientKind,
}

enum RecipientKind {
    Rsa {
        public_key: RsaPublicKey,
        certificate_der: Option<Vec<u8>>,
        key_name: Option<String>,
        padding: RsaPadding,
    },
    Wrap {
        key_name: String,
        kek: SecretBytes,
        algorithm: KeyWrapAlgorithm,
    },
}

impl Recipient {
    /// A certificate (DER) and its RSA public key: the `EncryptedKey` carries the certificate in
    /// `KeyInfo/X509Data/X509Certificate`, where .NET looks for it. Key transport defaults to
    /// `rsa-oaep-mgf1p` (SHA-1, no `DigestMethod`); see [`rsa_padding`](Self::rsa_padding).
    ///
    /// The caller vouches that `public_key` is the certificate's.
    pub fn certificate(certificate_der: Vec<u8>, public_key: RsaPublicKey) -> Recipient {
        Recipient {
            kind: RecipientKind::Rsa {
                public_key,
                certificate_der: Some(certificate_der),
                key_name: None,
                padding: RsaPadding::oaep_sha1(),
            },
        }
    }

    /// A bare RSA public key, named by a `ds:KeyName` (not readable by .NET, which needs a
    /// certificate).
    pub fn rsa_key(key_name: impl Into<String>, public_key: RsaPublicKey) -> Recipient {
        Recipient {
            kind: RecipientKind::Rsa {
                public_key,
                certificate_der: None,
                key_name: Some(key_name.into()),
                padding: RsaPadding::oaep_sha1(),
            },
        }
    }

    /// A symmetric key-encryption key named by a `ds:KeyName`, wrapping with `algorithm`.
    pub fn symmetric(
        key_name: impl Into<String>,
        kek: SecretBytes,
        algorithm: KeyWrapAlgorithm,
    ) -> Recipient {
        Recipient {
            kind: RecipientKind::Wrap {
                key_name: key_name.into(),
                kek,
                algorithm,
            },
        }
    }

    /// The RSA key transport. .NET reads only [`RsaPadding::Pkcs1v15`] (`rsa-1_5`, what .NET
    /// itself writes) and [`RsaPadding::oaep_sha1`] (`rsa-oaep-mgf1p`, the default here); other
    /// OAEP digests are written with `DigestMethod`/`MGF` for other readers. No effect on a
    /// symmetric recipient.
    pub fn rsa_padding(mut self, padding: RsaPadding) -> Recipient {
        if let RecipientKind::Rsa { padding: p, .. } = &mut self.kind {
            *p = padding;
        }
        self
    }

    fn encrypted_key(&self, content_key: &[u8]) -> Result<Element> {
        let (method, key_info, wrapped) = match &self.kind {
            RecipientKind::Rsa {
                public_key,
                certificate_der,
                key_name,
                padding,
            } => {
                let mut ki = Element::new(Name::ns(NS_DS, "KeyInfo"));
                if let Some(n) = key_name {
                    ki.push(Node::Element(
                        Element::new(Name::ns(NS_DS, "KeyName")).with_text(n.clone()),
                    ));
                }
                if let Some(der) = certificate_der {
                    ki.push(Node::Element(
                        Element::new(Name::ns(NS_DS, "X509Data")).with_child(
                            Element::new(Name::ns(NS_DS, "X509Certificate"))
                                .with_text(encode_base64(der)),
                        ),
                    ));
                }
                (
                    rsa_method(padding)?,
                    ki,
                    public_key.encrypt(padding, content_key)?,
                )
            }
            RecipientKind::Wrap {
                key_name,
                kek,
                algorithm,
            } => (
                EncryptionMethod::new(key_wrap_uri(*algorithm)),
                Element::new(Name::ns(NS_DS, "KeyInfo")).with_child(
                    Element::new(Name::ns(NS_DS, "KeyName")).with_text(key_name.clone()),
                ),
                algorithm.wrap(kek.expose(), content_key)?,
            ),
        };
        let mut ek =
            Element::new(Name::ns(NS_XENC, "EncryptedKey")).with_child(method.to_element());
        if !key_info.children().is_empty() {
            ek.push(Node::Element(key_info));
        }
        Ok(ek.with_child(cipher_data(&wrapped)))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RecipientKind::Rsa {
                public_key,
                certificate_der,
                key_name,
                padding,
            } => f
                .debug_struct("Recipient")
                .field("public_key", public_key)
                .field(
                    "certificate",
                    &certificate_der.as_deref().map(super::sha1_thumbprint),
                )
                .field("key_name", key_name)
                .field("padding", padding)
                .finish(),
            RecipientKind::Wrap {
                key_name,
                algorithm,
                ..
            } => f
                .debug_struct("Recipient")
                .field("key_name", key_name)
                .field("key_wrap", algorithm)
                .finish_non_exhaustive(),
        }
    }
}

/// Builds `EncryptedData` elements: a content algorithm (AES-256-CBC unless told otherwise) and
/// the recipients.
///
/// ```
/// # fn main() -> dpwrap::Result<()> {
/// use dpwrap::xmlenc::{EncryptedDataBuilder, Recipient};
/// use dpwrap::{KeyWrapAlgorithm, SecretBytes};
/// let element = dpwrap::xml::parse(b"<secret>42</secret>")?;
/// let encrypted = EncryptedDataBuilder::new()
///     .recipient(Recipient::symmetric("kek", SecretBytes::copy_from(&[7; 32]), KeyWrapAlgorithm::Aes256))
///     .encrypt_element(&element)?;
/// assert!(encrypted.is(Some(dpwrap::xml::NS_XENC), "EncryptedData"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EncryptedDataBuilder {
    content_algorithm: ContentAlgorithm,
    recipients: Vec<Recipient>,
}

impl Default for EncryptedDataBuilder {
    fn default() -> EncryptedDataBuilder {
        EncryptedDataBuilder {
            content_algorithm: ContentAlgorithm::Aes256Cbc,
            recipients: Vec::new(),
        }
    }
}

impl EncryptedDataBuilder {
    /// A builder for AES-256-CBC (what ASP.NET writes) with no recipients yet.
    pub fn new() -> EncryptedDataBuilder {
        EncryptedDataBuilder::default()
    }

    /// The content algorithm. .NET reads the CBC ones only.
    pub fn content_algorithm(mut self, algorithm: ContentAlgorithm) -> EncryptedDataBuilder {
        self.content_algorithm = algorithm;
        self
    }

    /// Adds a recipient. .NET tries only the first `EncryptedKey`, so a file meant for .NET
    /// readers should list their certificate first.
    pub fn recipient(mut self, recipient: Recipient) -> EncryptedDataBuilder {
        self.recipients.push(recipient);
        self
    }

    /// Encrypts `element` into an `EncryptedData` of `Type` Element.
    pub fn encrypt_element(&self, element: &Element) -> Result<Element> {
        let plaintext = xml::to_secret_bytes(element, WriteOptions::COMPACT);
        self.build(&plaintext, Some(TYPE_ELEMENT))
    }

    /// Encrypts octets into an `EncryptedData` without `Type`.
    pub fn encrypt_octets(&self, plaintext: &[u8]) -> Result<Element> {
        self.build(plaintext, None)
    }

    fn build(&self, plaintext: &[u8], data_type: Option<&str>) -> Result<Element> {
        if self.recipients.is_empty() {
            return Err(Error::config(
                "an EncryptedData needs at least one recipient (a certificate or key)",
            ));
        }
        let alg = self.content_algorithm;
        let content_key = crypto::random_bytes(alg.key_len())?;
        let ciphertext = alg.encrypt(&content_key, plaintext)?;
        let mut key_info = Element::new(Name::ns(NS_DS, "KeyInfo"));
        for r in &self.recipients {
            key_info.push(Node::Element(r.encrypted_key(&content_key)?));
        }
        let mut ed = Element::new(Name::ns(NS_XENC, "EncryptedData"));
        if let Some(t) = data_type {
            ed.set_attribute(Name::local("Type"), t);
        }
        Ok(ed
            .with_child(EncryptionMethod::new(content_algorithm_uri(alg)).to_element())
            .with_child(key_info)
            .with_child(cipher_data(&ciphertext)))
    }
}

fn cipher_data(bytes: &[u8]) -> Element {
    Element::new(Name::ns(NS_XENC, "CipherData"))
        .with_child(Element::new(Name::ns(NS_XENC, "CipherValue")).with_text(encode_base64(bytes)))
}
