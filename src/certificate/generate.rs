//! Self-signed certificates for protecting key rings (`dpwrap cert new`, the quickstart, tests).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::Encode;
use spki::{EncodePublicKey, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::{Certificate, CertificateWithKey};
use crate::crypto::{RsaPrivateKey, random_bytes};
use crate::error::{Error, ErrorKind, Result};

/// Longest validity accepted, in days (100 years).
const MAX_DAYS: u32 = 36_500;

/// A self-signed end-entity profile for a key-encryption certificate: keyUsage
/// keyEncipherment + dataEncipherment (critical), basicConstraints CA:FALSE (critical) and a
/// subject key identifier. The CA/B Forum root profile of `x509-cert` would make a CA and insist
/// on C, O and CN.
struct KeyEncipherment {
    subject: Name,
}

impl BuilderProfile for KeyEncipherment {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut extensions = Vec::new();
        extensions.push(
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &extensions)?,
        );
        extensions.push(
            KeyUsage(KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment)
                .to_extension(tbs.subject(), &extensions)?,
        );
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        extensions.push(ski.to_extension(tbs.subject(), &extensions)?);
        Ok(extensions)
    }
}

/// Reads `subject` as an RFC 4514 name (`CN=My App,O=Contoso`), or as a bare common name when it
/// has no `=`.
fn subject_name(subject: &str) -> Result<Name> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(Error::config("the certificate subject is empty"));
    }
    let text = if subject.contains('=') {
        subject.to_owned()
    } else {
        let mut escaped = String::from("CN=");
        for c in subject.chars() {
            if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '#' | '=') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped
    };
    Name::from_str(&text).map_err(|_| {
        Error::config(format!(
            "'{}' is not a valid subject; write it like CN=My App,O=Contoso",
            subject.chars().take(200).collect::<String>()
        ))
    })
}

impl CertificateWithKey {
    /// Generates a new RSA key (`bits`: 2048, 3072 or 4096) and a self-signed certificate for it,
    /// valid from now for `days` days, signed with SHA-256. `subject` is an RFC 4514 name or a
    /// bare common name. The certificate is a key-encipherment end-entity certificate, not a CA.
    pub fn generate_self_signed(
        subject: &str,
        bits: usize,
        days: u32,
    ) -> Result<CertificateWithKey> {
        if days == 0 || days > MAX_DAYS {
            return Err(Error::config(format!(
                "the validity must be 1 to {MAX_DAYS} days"
            )));
        }
        let subject = subject_name(subject)?;
        let key = RsaPrivateKey::generate(bits)?;
        let failed = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Backend,
                format!("certificate generation failed: {e}"),
            )
        };

        // 16 random bytes, first bit clear (a positive INTEGER), second set (no leading zero).
        let mut serial = random_bytes(16)?;
        if let Some(first) = serial.first_mut() {
            *first = (*first & 0x7f) | 0x40;
        }
        let serial = SerialNumber::new(&serial).map_err(|e| failed(&e))?;

        let now = SystemTime::now();
        let end = now + Duration::from_secs(u64::from(days) * 86_400);
        let validity = Validity::new(
            Time::try_from(now).map_err(|e| failed(&e))?,
            Time::try_from(end).map_err(|e| failed(&e))?,
        );
        let spki = key
            .inner()
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| failed(&e))?
            .decode_msg::<spki::SubjectPublicKeyInfoOwned>()
            .map_err(|e| failed(&e))?;
        let builder = CertificateBuilder::new(KeyEncipherment { subject }, serial, validity, spki)
            .map_err(|e| failed(&e))?;
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.inner().clone());
        let cert = builder
            .build::<_, rsa::pkcs1v15::Signature>(&signer)
            .map_err(|e| failed(&e))?;
        let der = cert.to_der().map_err(|e| failed(&e))?;
        CertificateWithKey::new(Certificate::from_der(&der)?, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_forms() {
        assert_eq!(
            subject_name("My App, Inc.").unwrap().to_string(),
            "CN=My App\\, Inc."
        );
        assert_eq!(subject_name("CN=a,O=b").unwrap().to_string(), "CN=a,O=b");
        assert_eq!(subject_name(" ").unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(subject_name("XX=1").unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn bad_sizes_and_days_are_config_errors() {
        for (bits, days) in [(1024, 10), (2048, 0), (2048, MAX_DAYS + 1)] {
            let e = CertificateWithKey::generate_self_signed("x", bits, days).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
        }
    }
}
