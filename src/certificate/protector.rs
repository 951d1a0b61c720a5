//! The certificate protector: ASP.NET's `CertificateXmlEncryptor` and `EncryptedXmlDecryptor`,
//! with the certificate and private key held in memory (never an OS certificate store).
//!
//! Writing produces what .NET's `EncryptedXml.Encrypt(element, certificate)` produces (FORMATS.md
//! §3.1): an `EncryptedData` of type Element, AES-256-CBC with a random IV, and one `EncryptedKey`
//! per recipient carrying the recipient's certificate in `X509Data/X509Certificate`. Key
//! transport is RSA-OAEP with SHA-1 by default; PKCS#1 v1.5 (ASP.NET's own default) on request.
//!
//! Reading accepts every `EncryptedKey` the decryptor holds a certificate for, not only the first
//! (.NET tries the first one only), matching certificates by SHA-1 thumbprint, issuer and serial,
//! subject key identifier or subject name, and the whole breadth of W3C XML Encryption that the
//! [`xmlenc`](crate::xmlenc) engine reads.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Certificate, CertificateWithKey};
use crate::crypto::{ContentAlgorithm, RsaPadding, RsaPrivateKey};
use crate::error::{Error, Result};
use crate::protector::{DecryptorType, EncryptedXmlInfo, XmlDecryptor, XmlEncryptor};
use crate::secret::SecretElement;
use crate::xml::Element;
use crate::xmlenc::{
    self, EncryptedDataBuilder, KeyInfo, KeyInfoItem, Keys, Recipient, RsaKeyCandidate,
};

/// How the content key is encrypted under each certificate's RSA key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyTransport {
    /// `xenc#rsa-oaep-mgf1p`: RSA-OAEP with SHA-1 and MGF1-SHA-1. The default: .NET reads it, and
    /// it does not invite padding oracles.
    #[default]
    RsaOaep,
    /// `xenc#rsa-1_5`: PKCS#1 v1.5, what ASP.NET itself writes. For parity only.
    Rsa15,
}

impl KeyTransport {
    fn padding(self) -> RsaPadding {
        match self {
            KeyTransport::RsaOaep => RsaPadding::oaep_sha1(),
            KeyTransport::Rsa15 => RsaPadding::Pkcs1v15,
        }
    }
}

/// Encrypts secret elements for one or more certificates (`ProtectKeysWithCertificate`).
///
/// With several recipients, each gets an `EncryptedKey`, the primary first. .NET tries only the
/// first `EncryptedKey`, so .NET nodes can read the output only with the primary certificate;
/// dpwrap reads it with any of them.
#[derive(Clone)]
pub struct CertificateXmlEncryptor {
    recipients: Vec<(Certificate, crate::crypto::RsaPublicKey)>,
    key_transport: KeyTransport,
}

impl CertificateXmlEncryptor {
    /// An encryptor for `primary` (its public key must be RSA).
    pub fn new(primary: Certificate) -> Result<CertificateXmlEncryptor> {
        let key = primary.public_key()?;
        Ok(CertificateXmlEncryptor {
            recipients: vec![(primary, key)],
            key_transport: KeyTransport::default(),
        })
    }

    /// Adds another recipient after the primary one.
    pub fn with_recipient(mut self, certificate: Certificate) -> Result<CertificateXmlEncryptor> {
        let key = certificate.public_key()?;
        self.recipients.push((certificate, key));
        Ok(self)
    }

    /// Chooses the key transport (RSA-OAEP by default).
    pub fn key_transport(mut self, key_transport: KeyTransport) -> CertificateXmlEncryptor {
        self.key_transport = key_transport;
        self
    }

    /// The recipients, the primary first.
    pub fn recipients(&self) -> impl Iterator<Item = &Certificate> {
        self.recipients.iter().map(|(c, _)| c)
    }
}

impl fmt::Debug for CertificateXmlEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateXmlEncryptor")
            .field(
                "recipients",
                &self.recipients.iter().map(|(c, _)| c).collect::<Vec<_>>(),
            )
            .field("key_transport", &self.key_transport)
            .finish()
    }
}

#[async_trait]
impl XmlEncryptor for CertificateXmlEncryptor {
    async fn encrypt(&self, secret: &Element) -> Result<EncryptedXmlInfo> {
        let mut builder =
            EncryptedDataBuilder::new().content_algorithm(ContentAlgorithm::Aes256Cbc);
        for (certificate, key) in &self.recipients {
            builder = builder.recipient(
                Recipient::certificate(certificate.der().to_vec(), key.clone())
                    .rsa_padding(self.key_transport.padding()),
            );
        }
        let encrypted_element = builder.encrypt_element(secret)?;
        Ok(EncryptedXmlInfo {
            encrypted_element,
            decryptor_type: DecryptorType::encrypted_xml(),
        })
    }
}

/// Decrypts certificate-protected secrets with any of the certificates it holds
/// (`UnprotectKeysWithAnyCertificate`, for rotation).
#[derive(Clone, Default)]
pub struct CertificateXmlDecryptor {
    certificates: Vec<Arc<CertificateWithKey>>,
}

impl CertificateXmlDecryptor {
    /// A decryptor holding `certificates`.
    pub fn new(
        certificates: impl IntoIterator<Item = Arc<CertificateWithKey>>,
    ) -> CertificateXmlDecryptor {
        CertificateXmlDecryptor {
            certificates: certificates.into_iter().collect(),
        }
    }

    /// Adds a certificate.
    pub fn with_certificate(
        mut self,
        certificate: Arc<CertificateWithKey>,
    ) -> CertificateXmlDecryptor {
        self.certificates.push(certificate);
        self
    }

    /// The certificates held.
    pub fn certificates(&self) -> &[Arc<CertificateWithKey>] {
        &self.certificates
    }

    fn keys(&self) -> Keys {
        let mut keys = Keys::new();
        for c in &self.certificates {
            keys.add_candidate(Box::new(CertificateCandidate(Arc::clone(c))));
        }
        keys
    }

    /// Decrypts an `EncryptedData` (the child of a certificate-protected `encryptedSecret`).
    pub fn decrypt_encrypted_data(&self, encrypted_data: &Element) -> Result<SecretElement> {
        if self.certificates.is_empty() {
            return Err(Error::new(
                crate::ErrorKind::NoMatchingKey,
                "no certificate with a private key is configured; supply the certificate that protects the ring",
            ));
        }
        xmlenc::decrypt_element_type(encrypted_data, &self.keys())
    }
}

impl fmt::Debug for CertificateXmlDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateXmlDecryptor")
            .field("certificates", &self.certificates)
            .finish()
    }
}

#[async_trait]
impl XmlDecryptor for CertificateXmlDecryptor {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::encrypted_xml()]
    }

    async fn decrypt(&self, encrypted: &Element) -> Result<SecretElement> {
        self.decrypt_encrypted_data(encrypted)
    }
}

/// A certificate with its key, as a key candidate of the XML Encryption engine.
struct CertificateCandidate(Arc<CertificateWithKey>);

impl fmt::Debug for CertificateCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RsaKeyCandidate for CertificateCandidate {
    fn private_key(&self) -> &RsaPrivateKey {
        self.0.private_key()
    }

    fn matches(&self, key_info: &KeyInfo) -> bool {
        let certificate = self.0.certificate();
        key_info.items.iter().any(|item| match item {
            KeyInfoItem::X509Data(data) => {
                data.certificates
                    .iter()
                    .any(|der| der.as_slice() == certificate.der())
                    || data.issuer_serials.iter().any(|s| {
                        certificate.matches_issuer_serial(&s.issuer_name, &s.serial_number)
                    })
                    || data.skis.iter().any(|ski| certificate.matches_ski(ski))
                    || data
                        .subject_names
                        .iter()
                        .any(|n| certificate.matches_subject_name(n))
            }
            KeyInfoItem::RsaKeyValue { modulus, .. } => certificate
                .public_key()
                .is_ok_and(|k| strip_zeros(&k.modulus()) == strip_zeros(modulus)),
            _ => false,
        })
    }

    fn description(&self) -> String {
        let c = self.0.certificate();
        format!("certificate {} ({})", c.thumbprint(), c.subject())
    }
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|b| **b == 0).count();
    v.get(n..).unwrap_or(&[])
}
