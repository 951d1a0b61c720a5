//! [`Certificate`]: the public part of an X.509 certificate, with the identifiers XML Encryption
//! and .NET use to name it (thumbprint, issuer and serial number, subject key identifier,
//! subject name).

use std::fmt;

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use super::{MAX_CERTIFICATE_DER, MAX_CHAIN, name, pem};
use crate::crypto::{Digest, RsaPublicKey};
use crate::error::{Error, Result};

/// An X.509 certificate (public part only).
///
/// Its `Debug` shows the thumbprint and subject only.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
    thumbprint: [u8; 20],
    serial: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A readable name for a public-key algorithm, for error messages.
pub(crate) fn key_algorithm_name(oid: &str) -> &'static str {
    match oid {
        RSA_ENCRYPTION => "RSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.2.1" => "EC",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        _ => "an unknown algorithm",
    }
}

pub(crate) fn not_rsa(what: &str, oid: &str) -> Error {
    Error::certificate(format!(
        "{what} is {} ({oid}), not RSA; dpwrap protects keys with RSA certificates only",
        key_algorithm_name(oid)
    ))
}

impl Certificate {
    /// Reads a DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        if der.len() > MAX_CERTIFICATE_DER {
            return Err(Error::new(
                crate::ErrorKind::Limit,
                format!(
                    "limit certificate size ({MAX_CERTIFICATE_DER} bytes) exceeded: the certificate is {} bytes",
                    der.len()
                ),
            ));
        }
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
            Error::certificate(format!("the certificate is not valid X.509 DER: {e}"))
        })?;
        let tbs = cert.tbs_certificate();
        let serial = tbs
            .serial_number()
            .to_der()
            .ok()
            .and_then(|tlv| integer_contents(&tlv))
            .ok_or_else(|| Error::certificate("the certificate's serial number is malformed"))?;
        let validity = tbs.validity();
        let not_before = to_offset(validity.not_before.to_unix_duration())?;
        let not_after = to_offset(validity.not_after.to_unix_duration())?;
        // The thumbprint is the SHA-1 of the bytes as given (what .NET hashes), which for valid
        // DER equals `cert.hash::<Sha1>()` of the re-encoding.
        let mut thumbprint = [0u8; 20];
        thumbprint.copy_from_slice(&Digest::Sha1.hash(der));
        Ok(Certificate {
            der: der.to_vec(),
            cert,
            thumbprint,
            serial,
            not_before,
            not_after,
        })
    }

    /// Reads the first `CERTIFICATE` block of PEM text (other blocks, such as a private key or
    /// the rest of a chain, are ignored).
    pub fn from_pem(pem: &[u8]) -> Result<Certificate> {
        Certificate::from_pem_all(pem)?
            .into_iter()
            .next()
            .ok_or_else(no_certificate)
    }

    /// Reads every `CERTIFICATE` block of PEM text (a chain), in order. Fails when there is none.
    pub fn from_pem_all(pem: &[u8]) -> Result<Vec<Certificate>> {
        let certs = certificates_in(&pem::parse(pem)?)?;
        if certs.is_empty() {
            return Err(no_certificate());
        }
        Ok(certs)
    }

    /// Reads a certificate that is either PEM text or DER (a `.cer`/`.crt` file of either kind).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Certificate> {
        if bytes.first() == Some(&0x30) {
            Certificate::from_der(bytes)
        } else {
            Certificate::from_pem(bytes)
        }
    }

    /// Reads a certificate file, PEM or DER (at most 1 MiB).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Certificate> {
        let path = path.as_ref();
        let bytes = super::read_bounded(path)?;
        Certificate::from_pem_or_der(&bytes).map_err(|e| e.context(path.display()))
    }

    /// The certificate's DER encoding (what `X509Certificate` elements carry in base64).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der).to_string()
    }

    /// The SHA-1 thumbprint in upper-case hex, as .NET's `X509Certificate2.Thumbprint` shows it.
    pub fn thumbprint(&self) -> String {
        hex_upper(&self.thumbprint)
    }

    /// The SHA-1 thumbprint as bytes.
    pub fn thumbprint_bytes(&self) -> [u8; 20] {
        self.thumbprint
    }

    /// Whether `thumbprint` (hex, any case, spaces or colons allowed) is this certificate's.
    pub fn matches_thumbprint(&self, thumbprint: &str) -> bool {
        let compact: String = thumbprint
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        compact.eq_ignore_ascii_case(&self.thumbprint())
    }

    /// The subject as an RFC 4514 string (`CN=Foo,O=Bar`, most specific first).
    pub fn subject(&self) -> String {
        name::to_rfc4514(self.cert.tbs_certificate().subject())
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        name::to_rfc4514(self.cert.tbs_certificate().issuer())
    }

    /// The serial number as encoded: big-endian two's complement, so a leading `00` byte is kept
    /// when the first byte has its high bit set (the bytes .NET's `SerialNumber` shows in hex).
    pub fn serial_number(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number in decimal, as XML Signature's `X509SerialNumber` carries it.
    pub fn serial_number_decimal(&self) -> String {
        match self.serial.first() {
            Some(b) if b & 0x80 != 0 => format!("-{}", to_decimal(&twos_complement(&self.serial))),
            _ => to_decimal(&self.serial),
        }
    }

    /// The subject key identifier extension's value, when the certificate has one.
    pub fn subject_key_identifier(&self) -> Option<Vec<u8>> {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The end of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn key_algorithm_oid(&self) -> String {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .algorithm
            .oid
            .to_string()
    }

    /// The RSA public key. Fails when the certificate's key is not RSA.
    pub fn public_key(&self) -> Result<RsaPublicKey> {
        let oid = self.key_algorithm_oid();
        if oid != RSA_ENCRYPTION {
            return Err(not_rsa("the certificate's key", &oid));
        }
        let spki = self
            .cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| Error::certificate("the certificate's public key is malformed"))?;
        RsaPublicKey::from_spki_der(&spki)
    }

    /// The RSA modulus size in bits. Fails when the certificate's key is not RSA.
    pub fn key_size_bits(&self) -> Result<usize> {
        self.public_key().map(|k| k.size_bits())
    }

    /// Whether an `X509IssuerSerial` names this certificate: the issuer compared as a
    /// distinguished name (RFC 4514, .NET and OpenSSL text forms all work) and the serial number
    /// compared as an integer. A serial whose DER is negative also matches its unsigned reading,
    /// which is how .NET writes it.
    pub fn matches_issuer_serial(&self, issuer_name: &str, serial_decimal: &str) -> bool {
        self.matches_serial(serial_decimal)
            && name::matches(self.cert.tbs_certificate().issuer(), issuer_name)
    }

    fn matches_serial(&self, decimal: &str) -> bool {
        let text = decimal.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let Some(wanted) = from_decimal(digits) else {
            return false;
        };
        let high_bit = self.serial.first().is_some_and(|b| b & 0x80 != 0);
        if negative {
            high_bit && strip_zeros(&twos_complement(&self.serial)) == wanted.as_slice()
        } else {
            strip_zeros(&self.serial) == wanted.as_slice()
        }
    }

    /// Whether an `X509SKI` names this certificate. Without the extension, the identifier is
    /// computed as SHA-1 of the public key (RFC 5280 §4.2.1.2 method 1), and SHA-1 of the whole
    /// `SubjectPublicKeyInfo` is also accepted (what Windows computes).
    pub fn matches_ski(&self, ski: &[u8]) -> bool {
        if let Some(own) = self.subject_key_identifier() {
            return own == ski;
        }
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let key_bits = Digest::Sha1.hash(spki.subject_public_key.raw_bytes());
        let whole = spki
            .to_der()
            .map(|d| Digest::Sha1.hash(&d))
            .unwrap_or_default();
        key_bits == ski || whole == ski
    }

    /// Whether an `X509SubjectName` names this certificate (compared as a distinguished name).
    pub fn matches_subject_name(&self, subject_name: &str) -> bool {
        name::matches(self.cert.tbs_certificate().subject(), subject_name)
    }

    /// The parsed certificate (for the certificate builder and the XML-Encryption engine).
    pub(crate) fn x509(&self) -> &x509_cert::Certificate {
        &self.cert
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Certificate) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("thumbprint", &self.thumbprint())
            .field("subject", &self.subject())
            .finish()
    }
}

fn no_certificate() -> Error {
    Error::certificate("no CERTIFICATE block found in the PEM text")
}

/// The certificates among PEM blocks, in order.
pub(crate) fn certificates_in(blocks: &[pem::Block]) -> Result<Vec<Certificate>> {
    let certs: Vec<Certificate> = blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE" || b.label == "X509 CERTIFICATE")
        .map(|b| Certificate::from_der(&b.der))
        .collect::<Result<_>>()?;
    if certs.len() > MAX_CHAIN {
        return Err(Error::certificate(format!(
            "the PEM text holds more than {MAX_CHAIN} certificates"
        )));
    }
    Ok(certs)
}

fn to_offset(since_epoch: std::time::Duration) -> Result<OffsetDateTime> {
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| Error::certificate("the certificate's validity dates are out of range"))
}

/// The contents of a DER INTEGER TLV (short or long form length).
fn integer_contents(tlv: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = tlv.split_first()?;
    if tag != 0x02 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let body = if len < 0x80 {
        rest
    } else {
        rest.get(usize::from(len & 0x7f)..)?
    };
    if body.is_empty() {
        return None;
    }
    Some(body.to_vec())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The magnitude of a negative two's complement number.
fn twos_complement(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = bytes.iter().map(|b| !b).collect();
    for b in out.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
    out
}

/// Big-endian unsigned bytes to decimal.
fn to_decimal(bytes: &[u8]) -> String {
    let mut n = strip_zeros(bytes).to_vec();
    if n.is_empty() {
        return "0".to_owned();
    }
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = u8::try_from(cur / 10).unwrap_or(0);
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + u8::try_from(rem).unwrap_or(0)));
        n = strip_zeros(&n).to_vec();
    }
    digits.iter().rev().collect()
}

/// Decimal digits to big-endian unsigned bytes without leading zeros. `None` unless the text is
/// 1 to 100 ASCII digits.
fn from_decimal(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() > 100 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: Vec<u8> = Vec::new();
    for d in text.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in n.iter_mut().rev() {
            let cur = u32::from(*b) * 10 + carry;
            *b = (cur & 0xff) as u8;
            carry = cur >> 8;
        }
        while carry > 0 {
            n.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    Some(strip_zeros(&n).to_vec())
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_conversions() {
        assert_eq!(to_decimal(&[]), "0");
        assert_eq!(to_decimal(&[0x10, 0x00]), "4096");
        assert_eq!(from_decimal("4096").unwrap(), vec![0x10, 0x00]);
        assert_eq!(from_decimal("0").unwrap(), Vec::<u8>::new());
        // 2^64 + 1
        assert_eq!(
            from_decimal("18446744073709551617").unwrap(),
            vec![1, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            to_decimal(&[1, 0, 0, 0, 0, 0, 0, 0, 1]),
            "18446744073709551617"
        );
        assert!(from_decimal("12a").is_none());
        assert!(from_decimal("").is_none());
        assert_eq!(twos_complement(&[0xff]), vec![0x01]);
        assert_eq!(twos_complement(&[0x80, 0x00]), vec![0x80, 0x00]);
    }

    #[test]
    fn integer_contents_reads_short_and_long_forms() {
        assert_eq!(integer_contents(&[2, 2, 0, 0xf3]).unwrap(), vec![0, 0xf3]);
        let mut long = vec![2, 0x81, 0x81];
        long.extend(std::iter::repeat_n(7u8, 0x81));
        assert_eq!(integer_contents(&long).unwrap().len(), 0x81);
        assert!(integer_contents(&[4, 1, 0]).is_none());
    }
}
