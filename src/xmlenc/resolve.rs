//! Key resolution: which keys the decryptor may try for a given `KeyInfo`.
//!
//! The decryptor walks the `KeyInfo` itself (inline and referenced `EncryptedKey`s, `KeyName`s,
//! `CarriedKeyName`s); a [`KeyResolver`] only answers two questions: "which symmetric keys go by
//! this name?" and "which RSA private keys do these hints name?". [`Keys`] is the ready-made
//! store; anything else (a certificate store, a key ring's configured certificates) implements
//! the trait, or implements [`RsaKeyCandidate`] and goes into a [`Keys`].

use std::fmt;

use crate::crypto::{Digest, RsaPrivateKey};
use crate::secret::SecretBytes;

use super::model::{KeyInfo, KeyInfoItem};

/// Answers the decryptor's questions about keys. Implementations never reveal key bytes in
/// anything but the returned key references.
pub trait KeyResolver: Send + Sync + fmt::Debug {
    /// The symmetric keys known under `name` (a `ds:KeyName`, already trimmed), in preference
    /// order.
    fn symmetric_keys(&self, name: &str) -> Vec<&SecretBytes>;

    /// The RSA private keys that the hints in `key_info` (an `EncryptedKey`'s `KeyInfo`, or an
    /// empty one when it has none) name, in preference order. May return keys the hints do not
    /// name, as a fallback; each is tried and a wrong one merely fails.
    fn rsa_keys(&self, key_info: &KeyInfo) -> Vec<&dyn RsaKeyCandidate>;

    /// What this resolver holds, for a "no matching key" message: names and certificate
    /// thumbprints, never key bytes.
    fn available(&self) -> Vec<String>;
}

/// An RSA private key the decryptor can try, and how it is identified.
///
/// The certificate module implements this for a certificate with its private key, matching
/// `X509IssuerSerial`, `X509SKI` and `X509SubjectName` too; the built-in entry of [`Keys`]
/// matches key names, certificate thumbprints and RSA public keys (`KeyValue`).
pub trait RsaKeyCandidate: Send + Sync + fmt::Debug {
    /// The private key.
    fn private_key(&self) -> &RsaPrivateKey;

    /// Whether the hints in `key_info` name this key.
    fn matches(&self, key_info: &KeyInfo) -> bool;

    /// How to name this key in messages (a thumbprint, a key name, a key size): never key bytes.
    fn description(&self) -> String;
}

/// The upper-case hex SHA-1 of a certificate's DER: the thumbprint .NET matches certificates by.
pub fn sha1_thumbprint(certificate_der: &[u8]) -> String {
    hex_upper(&Digest::Sha1.hash(certificate_der))
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Whether `key_info` carries an `X509Certificate` whose SHA-1 thumbprint is `thumbprint`
/// (hex, any case): the match .NET's `EncryptedXmlDecryptor` makes.
pub fn names_thumbprint(key_info: &KeyInfo, thumbprint: &str) -> bool {
    key_info
        .certificates()
        .any(|c| sha1_thumbprint(c).eq_ignore_ascii_case(thumbprint))
}

/// A store of keys: named symmetric keys and RSA private keys (with their certificate or name).
///
/// RSA keys are matched by `KeyName`, by the SHA-1 thumbprint of an `X509Certificate` (as .NET
/// does) and by an `RSAKeyValue` modulus. `X509IssuerSerial`, `X509SKI` and `X509SubjectName`
/// need a parsed certificate: add such keys through [`add_candidate`](Keys::add_candidate) with a
/// candidate that understands them, or enable [`try_all_rsa_keys`](Keys::try_all_rsa_keys).
#[derive(Default)]
pub struct Keys {
    symmetric: Vec<(String, SecretBytes)>,
    rsa: Vec<Box<dyn RsaKeyCandidate>>,
    try_all_rsa: bool,
}

impl Keys {
    /// An empty store.
    pub fn new() -> Keys {
        Keys::default()
    }

    /// Adds a symmetric key (a key-encryption key for `kw-*`, or a content key used directly)
    /// under `name`, the `ds:KeyName` that refers to it.
    pub fn add_symmetric(&mut self, name: impl Into<String>, key: SecretBytes) -> &mut Keys {
        self.symmetric.push((name.into(), key));
        self
    }

    /// Adds an RSA private key, known by `name` (a `ds:KeyName`) and/or by its certificate
    /// (DER; matched by SHA-1 thumbprint).
    pub fn add_rsa(
        &mut self,
        name: Option<String>,
        key: RsaPrivateKey,
        certificate_der: Option<Vec<u8>>,
    ) -> &mut Keys {
        let thumbprint = certificate_der.as_deref().map(sha1_thumbprint);
        let modulus = key.public_key().modulus();
        self.rsa.push(Box::new(RsaKeyEntry {
            name,
            thumbprint,
            modulus,
            key,
        }));
        self
    }

    /// Adds any RSA key candidate (for instance a certificate with its private key).
    pub fn add_candidate(&mut self, candidate: Box<dyn RsaKeyCandidate>) -> &mut Keys {
        self.rsa.push(candidate);
        self
    }

    /// When no RSA key matches an `EncryptedKey`'s hints (or it has none), try every RSA key.
    /// Off by default: hints are cheap to check, RSA decryptions are not.
    pub fn try_all_rsa_keys(&mut self, yes: bool) -> &mut Keys {
        self.try_all_rsa = yes;
        self
    }

    /// Whether the store holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.symmetric.is_empty() && self.rsa.is_empty()
    }
}

impl KeyResolver for Keys {
    fn symmetric_keys(&self, name: &str) -> Vec<&SecretBytes> {
        self.symmetric
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, k)| k)
            .collect()
    }

    fn rsa_keys(&self, key_info: &KeyInfo) -> Vec<&dyn RsaKeyCandidate> {
        let matched: Vec<&dyn RsaKeyCandidate> = self
            .rsa
            .iter()
            .filter(|c| c.matches(key_info))
            .map(|c| c.as_ref())
            .collect();
        if matched.is_empty() && self.try_all_rsa {
            self.rsa.iter().map(|c| c.as_ref()).collect()
        } else {
            matched
        }
    }

    fn available(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .symmetric
            .iter()
            .map(|(n, k)| format!("symmetric key '{n}' ({} bytes)", k.len()))
            .collect();
        out.extend(self.rsa.iter().map(|c| c.description()));
        out
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("available", &self.available())
            .field("try_all_rsa_keys", &self.try_all_rsa)
            .finish()
    }
}

/// The built-in RSA entry of [`Keys`].
struct RsaKeyEntry {
    name: Option<String>,
    thumbprint: Option<String>,
    modulus: Vec<u8>,
    key: RsaPrivateKey,
}

impl RsaKeyCandidate for RsaKeyEntry {
    fn private_key(&self) -> &RsaPrivateKey {
        &self.key
    }

    fn matches(&self, key_info: &KeyInfo) -> bool {
        if let Some(name) = &self.name
            && key_info.key_names().any(|n| n == name)
        {
            return true;
        }
        if let Some(t) = &self.thumbprint
            && names_thumbprint(key_info, t)
        {
            return true;
        }
        key_info
            .items
            .iter()
            .any(|i| matches!(i, KeyInfoItem::RsaKeyValue { modulus, .. } if strip_zeros(modulus) == strip_zeros(&self.modulus)))
    }

    fn description(&self) -> String {
        let bits = self.key.size_bits();
        match (&self.name, &self.thumbprint) {
            (Some(n), Some(t)) => format!("RSA key '{n}' ({bits} bits, certificate {t})"),
            (Some(n), None) => format!("RSA key '{n}' ({bits} bits)"),
            (None, Some(t)) => format!("RSA key ({bits} bits, certificate {t})"),
            (None, None) => format!("RSA key ({bits} bits, no name or certificate)"),
        }
    }
}

impl fmt::Debug for RsaKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn key_info(xml: &str) -> KeyInfo {
        let doc = format!("<KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\">{xml}</KeyInfo>");
        KeyInfo::parse(&parse(doc.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn thumbprint_is_upper_hex_sha1() {
        // SHA-1("abc"), FIPS 180 example.
        assert_eq!(
            sha1_thumbprint(b"abc"),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
    }

    #[test]
    fn rsa_keys_match_by_name_thumbprint_and_modulus_and_fall_back_on_request() {
        let k1 = RsaPrivateKey::generate(2048).unwrap();
        let k2 = RsaPrivateKey::generate(2048).unwrap();
        let m2 = crate::xmlenc::model::encode_base64(&k2.public_key().modulus());
        let mut keys = Keys::new();
        keys.add_rsa(Some("one".into()), k1, Some(b"abc".to_vec()));
        keys.add_rsa(None, k2, None);
        keys.add_symmetric("jed", SecretBytes::copy_from(&[1; 32]));

        let by_name = key_info("<KeyName>one</KeyName>");
        assert_eq!(keys.rsa_keys(&by_name).len(), 1);
        // "abc" in base64 is YWJj: the certificate whose thumbprint was registered.
        let by_cert = key_info("<X509Data><X509Certificate>YWJj</X509Certificate></X509Data>");
        assert_eq!(keys.rsa_keys(&by_cert).len(), 1);
        let by_modulus = key_info(&format!(
            "<KeyValue><RSAKeyValue><Modulus>{m2}</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue>"
        ));
        let found = keys.rsa_keys(&by_modulus);
        assert_eq!(found.len(), 1);
        assert!(found[0].description().contains("no name"));

        let nothing = key_info("<KeyName>two</KeyName>");
        assert!(keys.rsa_keys(&nothing).is_empty());
        assert!(keys.rsa_keys(&KeyInfo::default()).is_empty());
        keys.try_all_rsa_keys(true);
        assert_eq!(keys.rsa_keys(&nothing).len(), 2);
        assert_eq!(keys.rsa_keys(&by_name).len(), 1);

        assert_eq!(keys.symmetric_keys("jed").len(), 1);
        assert!(keys.symmetric_keys("jeb").is_empty());
        let debug = format!("{keys:?}");
        assert!(debug.contains("A9993E36"));
        assert!(debug.contains("'jed'"));
    }
}
