//! Algorithm URIs of W3C XML Encryption (1.0 and 1.1) and their mapping to dpwrap's primitives
//! ([`ContentAlgorithm`], [`KeyWrapAlgorithm`], [`RsaPadding`]).
//!
//! Unknown URIs are [`ErrorKind::UnsupportedAlgorithm`](crate::ErrorKind::UnsupportedAlgorithm)
//! errors that name the URI, so that a user can tell "dpwrap does not do this" from "wrong key".

use crate::crypto::{ContentAlgorithm, Digest, KeyWrapAlgorithm, RsaPadding};
use crate::error::{Error, Result};

use super::model::EncryptionMethod;

/// `xenc#aes128-cbc`.
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
/// `xenc#aes192-cbc`.
pub const AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
/// `xenc#aes256-cbc` (what ASP.NET writes).
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
/// `xenc#tripledes-cbc`.
pub const TRIPLEDES_CBC: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
/// `xenc11#aes128-gcm`.
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
/// `xenc11#aes192-gcm`.
pub const AES192_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes192-gcm";
/// `xenc11#aes256-gcm`.
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";

/// `xenc#rsa-1_5`: RSA PKCS#1 v1.5 key transport.
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
/// `xenc#rsa-oaep-mgf1p`: RSA-OAEP with MGF1-SHA-1 (digest SHA-1 unless a `DigestMethod` says
/// otherwise).
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// `xenc11#rsa-oaep`: RSA-OAEP with a configurable digest and MGF.
pub const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

/// `xenc#kw-aes128` (RFC 3394).
pub const KW_AES128: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes128";
/// `xenc#kw-aes192` (RFC 3394).
pub const KW_AES192: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes192";
/// `xenc#kw-aes256` (RFC 3394).
pub const KW_AES256: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes256";
/// `xenc#kw-tripledes` (RFC 3217).
pub const KW_TRIPLEDES: &str = "http://www.w3.org/2001/04/xmlenc#kw-tripledes";

/// `ds#sha1`.
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// `xmldsig-more#sha224`.
pub const SHA224: &str = "http://www.w3.org/2001/04/xmldsig-more#sha224";
/// `xenc#sha256`.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// `xmldsig-more#sha384`.
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
/// `xenc#sha512`.
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// `xenc11#mgf1sha1` (the default MGF of `xenc11#rsa-oaep`).
pub const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
/// `xenc11#mgf1sha224`.
pub const MGF1_SHA224: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha224";
/// `xenc11#mgf1sha256`.
pub const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
/// `xenc11#mgf1sha384`.
pub const MGF1_SHA384: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha384";
/// `xenc11#mgf1sha512`.
pub const MGF1_SHA512: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha512";

/// `Type` of an `EncryptedData` holding one element.
pub const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";
/// `Type` of an `EncryptedData` holding the content of an element.
pub const TYPE_CONTENT: &str = "http://www.w3.org/2001/04/xmlenc#Content";
/// `Type` of a `RetrievalMethod` pointing at an `EncryptedKey`.
pub const TYPE_ENCRYPTED_KEY: &str = "http://www.w3.org/2001/04/xmlenc#EncryptedKey";

/// The XPath transform (`CipherReference`).
pub const TRANSFORM_XPATH: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";
/// The base64 decoding transform (`CipherReference`).
pub const TRANSFORM_BASE64: &str = "http://www.w3.org/2000/09/xmldsig#base64";

/// The content algorithm named by `uri`.
pub fn content_algorithm(uri: &str) -> Result<ContentAlgorithm> {
    match uri.trim() {
        AES128_CBC => Ok(ContentAlgorithm::Aes128Cbc),
        AES192_CBC => Ok(ContentAlgorithm::Aes192Cbc),
        AES256_CBC => Ok(ContentAlgorithm::Aes256Cbc),
        TRIPLEDES_CBC => Ok(ContentAlgorithm::TripleDesCbc),
        AES128_GCM => Ok(ContentAlgorithm::Aes128Gcm),
        AES192_GCM => Ok(ContentAlgorithm::Aes192Gcm),
        AES256_GCM => Ok(ContentAlgorithm::Aes256Gcm),
        other => Err(unsupported("content encryption algorithm", other)),
    }
}

/// The URI of a content algorithm.
pub fn content_algorithm_uri(algorithm: ContentAlgorithm) -> &'static str {
    match algorithm {
        ContentAlgorithm::Aes128Cbc => AES128_CBC,
        ContentAlgorithm::Aes192Cbc => AES192_CBC,
        ContentAlgorithm::Aes256Cbc => AES256_CBC,
        ContentAlgorithm::TripleDesCbc => TRIPLEDES_CBC,
        ContentAlgorithm::Aes128Gcm => AES128_GCM,
        ContentAlgorithm::Aes192Gcm => AES192_GCM,
        ContentAlgorithm::Aes256Gcm => AES256_GCM,
    }
}

/// The URI of a key-wrap algorithm.
pub fn key_wrap_uri(algorithm: KeyWrapAlgorithm) -> &'static str {
    match algorithm {
        KeyWrapAlgorithm::Aes128 => KW_AES128,
        KeyWrapAlgorithm::Aes192 => KW_AES192,
        KeyWrapAlgorithm::Aes256 => KW_AES256,
        KeyWrapAlgorithm::TripleDes => KW_TRIPLEDES,
    }
}

/// How an `EncryptedKey` protects its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA key transport with this padding: the key-encryption key is an RSA private key.
    Rsa(RsaPadding),
    /// Symmetric key wrap: the key-encryption key is a symmetric key (named, or itself wrapped).
    Wrap(KeyWrapAlgorithm),
}

/// The key algorithm of an `EncryptedKey`'s `EncryptionMethod`, with its OAEP parameters.
pub fn key_algorithm(method: &EncryptionMethod) -> Result<KeyAlgorithm> {
    let uri = method.algorithm.trim();
    match uri {
        RSA_1_5 => Ok(KeyAlgorithm::Rsa(RsaPadding::Pkcs1v15)),
        RSA_OAEP_MGF1P => {
            // The URI fixes MGF1-SHA-1; an MGF child saying otherwise contradicts it.
            if let Some(mgf) = &method.mgf
                && mgf.trim() != MGF1_SHA1
            {
                return Err(Error::unsupported(format!(
                    "the MGF '{}' is not allowed with {RSA_OAEP_MGF1P}, which means MGF1 with SHA-1",
                    shorten(mgf)
                )));
            }
            Ok(KeyAlgorithm::Rsa(RsaPadding::Oaep {
                digest: oaep_digest(method.digest.as_deref())?,
                mgf: Digest::Sha1,
                label: method.oaep_params.clone(),
            }))
        }
        RSA_OAEP_11 => Ok(KeyAlgorithm::Rsa(RsaPadding::Oaep {
            digest: oaep_digest(method.digest.as_deref())?,
            mgf: match method.mgf.as_deref().map(str::trim) {
                None | Some(MGF1_SHA1) => Digest::Sha1,
                Some(MGF1_SHA224) => Digest::Sha224,
                Some(MGF1_SHA256) => Digest::Sha256,
                Some(MGF1_SHA384) => Digest::Sha384,
                Some(MGF1_SHA512) => Digest::Sha512,
                Some(other) => return Err(unsupported("mask generation function", other)),
            },
            label: method.oaep_params.clone(),
        })),
        KW_AES128 => Ok(KeyAlgorithm::Wrap(KeyWrapAlgorithm::Aes128)),
        KW_AES192 => Ok(KeyAlgorithm::Wrap(KeyWrapAlgorithm::Aes192)),
        KW_AES256 => Ok(KeyAlgorithm::Wrap(KeyWrapAlgorithm::Aes256)),
        KW_TRIPLEDES => Ok(KeyAlgorithm::Wrap(KeyWrapAlgorithm::TripleDes)),
        other => Err(unsupported("key transport or key wrap algorithm", other)),
    }
}

/// The `EncryptionMethod` URI (and, for OAEP, the children) that describe `padding`.
pub(crate) fn rsa_method(padding: &RsaPadding) -> Result<EncryptionMethod> {
    match padding {
        RsaPadding::Pkcs1v15 => Ok(EncryptionMethod::new(RSA_1_5)),
        RsaPadding::Oaep { digest, mgf, label } => {
            let digest_uri = match digest {
                Digest::Sha1 => None,
                other => Some(digest_uri(*other).to_owned()),
            };
            let (algorithm, mgf_uri) = match mgf {
                Digest::Sha1 => (RSA_OAEP_MGF1P, None),
                Digest::Sha224 => (RSA_OAEP_11, Some(MGF1_SHA224)),
                Digest::Sha256 => (RSA_OAEP_11, Some(MGF1_SHA256)),
                Digest::Sha384 => (RSA_OAEP_11, Some(MGF1_SHA384)),
                Digest::Sha512 => (RSA_OAEP_11, Some(MGF1_SHA512)),
            };
            Ok(EncryptionMethod {
                algorithm: algorithm.to_owned(),
                digest: digest_uri,
                mgf: mgf_uri.map(str::to_owned),
                oaep_params: label.clone(),
            })
        }
    }
}

/// The digest named by a `DigestMethod` URI, for OAEP (SHA-1 when absent).
fn oaep_digest(uri: Option<&str>) -> Result<Digest> {
    match uri.map(str::trim) {
        None | Some(SHA1) => Ok(Digest::Sha1),
        Some(SHA224) => Ok(Digest::Sha224),
        Some(SHA256) => Ok(Digest::Sha256),
        Some(SHA384) => Ok(Digest::Sha384),
        Some(SHA512) => Ok(Digest::Sha512),
        Some(other) => Err(unsupported("OAEP digest", other)),
    }
}

fn digest_uri(digest: Digest) -> &'static str {
    match digest {
        Digest::Sha1 => SHA1,
        Digest::Sha224 => SHA224,
        Digest::Sha256 => SHA256,
        Digest::Sha384 => SHA384,
        Digest::Sha512 => SHA512,
    }
}

/// A URI as it may appear in a message: hostile input can be long.
pub(crate) fn shorten(uri: &str) -> String {
    const MAX: usize = 200;
    let uri = uri.trim();
    if uri.chars().count() <= MAX {
        uri.to_owned()
    } else {
        let mut s: String = uri.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

fn unsupported(what: &str, uri: &str) -> Error {
    Error::unsupported(format!(
        "unsupported {what} '{}': dpwrap does not implement it",
        shorten(uri)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn content_uris_round_trip() {
        for alg in [
            ContentAlgorithm::Aes128Cbc,
            ContentAlgorithm::Aes192Cbc,
            ContentAlgorithm::Aes256Cbc,
            ContentAlgorithm::TripleDesCbc,
            ContentAlgorithm::Aes128Gcm,
            ContentAlgorithm::Aes192Gcm,
            ContentAlgorithm::Aes256Gcm,
        ] {
            assert_eq!(content_algorithm(content_algorithm_uri(alg)).unwrap(), alg);
        }
        let e = content_algorithm("http://example.org/rot13").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
        assert!(e.message().contains("http://example.org/rot13"));
    }

    #[test]
    fn oaep_parameters_are_read() {
        let mut m = EncryptionMethod::new(RSA_OAEP_MGF1P);
        assert_eq!(
            key_algorithm(&m).unwrap(),
            KeyAlgorithm::Rsa(RsaPadding::oaep_sha1())
        );
        m.digest = Some(SHA256.to_owned());
        m.oaep_params = Some(b"12345678".to_vec());
        assert_eq!(
            key_algorithm(&m).unwrap(),
            KeyAlgorithm::Rsa(RsaPadding::Oaep {
                digest: Digest::Sha256,
                mgf: Digest::Sha1,
                label: Some(b"12345678".to_vec())
            })
        );
        m.mgf = Some(MGF1_SHA256.to_owned());
        assert_eq!(
            key_algorithm(&m).unwrap_err().kind(),
            ErrorKind::UnsupportedAlgorithm
        );
        let mut m11 = EncryptionMethod::new(RSA_OAEP_11);
        m11.digest = Some(SHA384.to_owned());
        m11.mgf = Some(MGF1_SHA512.to_owned());
        assert_eq!(
            key_algorithm(&m11).unwrap(),
            KeyAlgorithm::Rsa(RsaPadding::Oaep {
                digest: Digest::Sha384,
                mgf: Digest::Sha512,
                label: None
            })
        );
        m11.digest = Some("http://example.org/md5".to_owned());
        let e = key_algorithm(&m11).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
        assert!(e.message().contains("http://example.org/md5"));
        let e = key_algorithm(&EncryptionMethod::new("urn:x")).unwrap_err();
        assert!(e.message().contains("urn:x"));
    }

    #[test]
    fn rsa_methods_read_back_as_the_same_padding() {
        for p in [
            RsaPadding::Pkcs1v15,
            RsaPadding::oaep_sha1(),
            RsaPadding::oaep_sha256(),
            RsaPadding::Oaep {
                digest: Digest::Sha512,
                mgf: Digest::Sha1,
                label: Some(vec![1, 2]),
            },
        ] {
            let m = rsa_method(&p).unwrap();
            assert_eq!(key_algorithm(&m).unwrap(), KeyAlgorithm::Rsa(p));
        }
        assert_eq!(
            rsa_method(&RsaPadding::oaep_sha1()).unwrap(),
            EncryptionMethod::new(RSA_OAEP_MGF1P)
        );
    }

    #[test]
    fn long_uris_are_shortened_in_messages() {
        let long = format!("urn:{}", "x".repeat(10_000));
        let e = content_algorithm(&long).unwrap_err();
        assert!(e.message().len() < 400);
    }
}
