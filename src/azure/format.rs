//! The `<encryptedKey>` element written by ASP.NET's Azure Key Vault encryptor.
//!
//! ```xml
//! <encryptedKey xmlns="">
//!   <!-- This key is encrypted with Azure Key Vault. -->
//!   <kid>https://{vault}.vault.azure.net/keys/{name}/{version}</kid>
//!   <key>base64 of the wrapped AES key</key>
//!   <iv>base64 of the 16-byte IV</iv>
//!   <value>base64 of the AES-CBC (PKCS#7) ciphertext</value>
//! </encryptedKey>
//! ```
//!
//! The plaintext is the secret element as `XElement.Save` writes it: UTF-8 BOM, XML declaration,
//! no formatting. The AES size follows the unwrapped key (the current package writes 16 bytes).
//! There is no MAC: integrity rests on unwrapping and unpadding alone.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::crypto::ContentAlgorithm;
use crate::error::{Error, Result};
use crate::secret::{SecretBytes, SecretElement};
use crate::xml::{self, Element, Limits, Name, WriteOptions};

/// The comment the current package writes.
pub const COMMENT: &str = " This key is encrypted with Azure Key Vault. ";
/// The comment the old package (and early versions of the new one) wrote.
pub const LEGACY_COMMENT: &str = " This key is encrypted with Azure KeyVault. ";

/// Longest `kid` accepted, in characters.
pub const MAX_KID_LEN: usize = 2048;
/// Largest wrapped key accepted, in bytes (an RSA-8192 ciphertext).
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;
/// Largest ciphertext accepted, in bytes. A `masterKey` element is a few hundred bytes.
pub const MAX_VALUE_LEN: usize = 256 * 1024;
/// The AES block (and IV) size.
pub const IV_LEN: usize = 16;
/// The content key length the current .NET package writes (AES-128).
pub const CONTENT_KEY_LEN: usize = 16;

/// A parsed `<encryptedKey>`: which KEK wrapped the content key, and the encrypted parts.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedKey {
    /// The Key Vault key identifier, as written (its version is used as written when unwrapping).
    pub kid: String,
    /// The content key wrapped by the KEK.
    pub wrapped_key: Vec<u8>,
    /// The AES-CBC IV.
    pub iv: Vec<u8>,
    /// The AES-CBC ciphertext of the secret element.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for EncryptedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedKey")
            .field("kid", &self.kid)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("value_len", &self.value.len())
            .finish_non_exhaustive()
    }
}

impl EncryptedKey {
    /// Reads an `<encryptedKey>` element (no namespace, as .NET writes it). Structural problems
    /// (missing or repeated children, bad base64, sizes over the limits) are format errors.
    pub fn from_element(element: &Element) -> Result<EncryptedKey> {
        if !element.is(None, "encryptedKey") {
            return Err(Error::format(format!(
                "expected an <encryptedKey> element (Azure Key Vault protection), found <{}>",
                element.name()
            )));
        }
        let kid = child_text(element, "kid")?;
        let kid = kid.trim();
        if kid.is_empty() {
            return Err(Error::format("the encryptedKey's <kid> is empty"));
        }
        if kid.chars().count() > MAX_KID_LEN {
            return Err(Error::new(
                crate::ErrorKind::Limit,
                format!(
                    "limit kid length ({MAX_KID_LEN}) exceeded: the encryptedKey's <kid> is too long"
                ),
            ));
        }
        let wrapped_key = base64_child(element, "key", MAX_WRAPPED_KEY_LEN)?;
        let iv = base64_child(element, "iv", IV_LEN)?;
        let value = base64_child(element, "value", MAX_VALUE_LEN)?;
        Ok(EncryptedKey {
            kid: kid.to_owned(),
            wrapped_key,
            iv,
            value,
        })
    }

    /// Writes the element as .NET does, with `comment` (see [`COMMENT`] and [`LEGACY_COMMENT`]).
    pub fn to_element(&self, comment: &str) -> Element {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        Element::new(Name::local("encryptedKey"))
            .with_comment(comment)
            .with_child(Element::new(Name::local("kid")).with_text(self.kid.clone()))
            .with_child(Element::new(Name::local("key")).with_text(b64(&self.wrapped_key)))
            .with_child(Element::new(Name::local("iv")).with_text(b64(&self.iv)))
            .with_child(Element::new(Name::local("value")).with_text(b64(&self.value)))
    }
}

fn child<'a>(element: &'a Element, name: &'a str) -> Result<&'a Element> {
    let mut it = element.elements_named(None, name);
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        (None, _) => Err(Error::format(format!(
            "the encryptedKey element has no <{name}>"
        ))),
        (Some(_), Some(_)) => Err(Error::format(format!(
            "the encryptedKey element has more than one <{name}>"
        ))),
    }
}

fn child_text(element: &Element, name: &str) -> Result<String> {
    Ok(child(element, name)?.text())
}

/// Decodes the base64 text of a child, refusing anything that would decode to more than `max`
/// bytes before decoding it (whitespace is allowed, as `Convert.FromBase64String` allows it).
fn base64_child(element: &Element, name: &str, max: usize) -> Result<Vec<u8>> {
    let text = child_text(element, name)?;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > max.div_ceil(3) * 4 {
        return Err(Error::new(
            crate::ErrorKind::Limit,
            format!(
                "limit {name} length ({max} bytes) exceeded: the encryptedKey's <{name}> is too long"
            ),
        ));
    }
    let out = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| Error::format(format!("the encryptedKey's <{name}> is not valid base64")))?;
    if out.is_empty() {
        return Err(Error::format(format!(
            "the encryptedKey's <{name}> is empty"
        )));
    }
    // The character count bounds the allocation; the bound itself is on the decoded bytes (up to
    // two more fit in the last base64 quantum), as in `xmlenc::model::decode_base64`.
    if out.len() > max {
        return Err(Error::new(
            crate::ErrorKind::Limit,
            format!(
                "limit {name} length ({max} bytes) exceeded: the encryptedKey's <{name}> has {} bytes",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Encrypts `secret` as the .NET encryptor does: the plaintext is BOM + declaration + the element
/// unformatted, AES-CBC with PKCS#7 padding under `content_key` and a fresh random IV.
/// Returns `(iv, ciphertext)`.
pub(crate) fn seal(content_key: &[u8], secret: &Element) -> Result<(Vec<u8>, Vec<u8>)> {
    let alg = ContentAlgorithm::aes_cbc_for_key_len(content_key.len()).ok_or_else(|| {
        Error::new(
            crate::ErrorKind::Config,
            "the content key must be 16, 24 or 32 bytes",
        )
    })?;
    let plaintext = xml::to_secret_bytes(secret, WriteOptions::DOCUMENT);
    let iv = crate::crypto::random_bytes(IV_LEN)?;
    let value = alg.cbc_encrypt(content_key, &iv, &plaintext)?;
    Ok((iv.to_vec(), value))
}

/// Decrypts the ciphertext with the unwrapped content key. The AES size follows the key length;
/// every failure (key size, IV size, padding, plaintext that is not XML) is [`Error::decrypt`].
pub(crate) fn open(content_key: &SecretBytes, encrypted: &EncryptedKey) -> Result<SecretElement> {
    let alg =
        ContentAlgorithm::aes_cbc_for_key_len(content_key.len()).ok_or_else(Error::decrypt)?;
    if encrypted.iv.len() != IV_LEN {
        return Err(Error::decrypt());
    }
    let plaintext: Zeroizing<Vec<u8>> =
        alg.cbc_decrypt(content_key.expose(), &encrypted.iv, &encrypted.value)?;
    let limits = Limits {
        max_input_bytes: MAX_VALUE_LEN,
        ..Limits::default()
    };
    // A wrong key that happens to unpad yields noise; it must fail like any other wrong key.
    let element = xml::parse_with(&plaintext, &limits).map_err(|_| Error::decrypt())?;
    Ok(SecretElement::new(element))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EncryptedKey {
        EncryptedKey {
            kid: "https://v.vault.azure.net/keys/k/0123".into(),
            wrapped_key: vec![1; 256],
            iv: vec![2; 16],
            value: vec![3; 32],
        }
    }

    #[test]
    fn element_round_trip() {
        let ek = sample();
        let el = ek.to_element(COMMENT);
        let text = xml::to_compact_string(&el);
        assert!(text.starts_with("<encryptedKey><!-- This key is encrypted with Azure Key Vault. --><kid>https://v.vault.azure.net/keys/k/0123</kid><key>AQEB"), "{text}");
        assert_eq!(EncryptedKey::from_element(&el).unwrap(), ek);
    }

    #[test]
    fn structure_errors_are_format_errors() {
        let parse = |s: &str| EncryptedKey::from_element(&xml::parse(s.as_bytes()).unwrap());
        let k =
            parse("<encryptedKey><key>AA==</key><iv>AA==</iv><value>AA==</value></encryptedKey>");
        assert_eq!(k.unwrap_err().kind(), crate::ErrorKind::Format);
        let k = parse(
            "<encryptedKey><kid>x</kid><key>!!</key><iv>AA==</iv><value>AA==</value></encryptedKey>",
        );
        assert_eq!(k.unwrap_err().kind(), crate::ErrorKind::Format);
        let k = parse(
            "<encryptedKey><kid>x</kid><kid>y</kid><key>AA==</key><iv>AA==</iv><value>AA==</value></encryptedKey>",
        );
        assert_eq!(k.unwrap_err().kind(), crate::ErrorKind::Format);
        let k = parse("<other/>");
        assert_eq!(k.unwrap_err().kind(), crate::ErrorKind::Format);
    }

    #[test]
    fn oversized_parts_are_refused_before_decoding() {
        let big = "A".repeat(4 * 1024);
        let s = format!(
            "<encryptedKey><kid>x</kid><key>{big}</key><iv>AA==</iv><value>AA==</value></encryptedKey>"
        );
        let e = EncryptedKey::from_element(&xml::parse(s.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Limit);
        let s = "<encryptedKey><kid>x</kid><key>AA==</key><iv>AAAAAAAAAAAAAAAAAAAAAAAAAAAA</iv><value>AA==</value></encryptedKey>";
        let e = EncryptedKey::from_element(&xml::parse(s.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Limit);
    }

    /// The bounds are exact in decoded bytes: base64 rounds up, so a value a byte or two over the
    /// bound has as many characters as one at the bound.
    #[test]
    fn the_bounds_are_exact_in_decoded_bytes() {
        use base64::Engine as _;
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let parse = |key: usize, iv: usize| {
            let s = format!(
                "<encryptedKey><kid>x</kid><key>{}</key><iv>{}</iv><value>AA==</value></encryptedKey>",
                b64(key),
                b64(iv)
            );
            EncryptedKey::from_element(&xml::parse(s.as_bytes()).unwrap())
        };
        assert!(parse(MAX_WRAPPED_KEY_LEN, IV_LEN).is_ok());
        for (key, iv) in [
            (MAX_WRAPPED_KEY_LEN + 1, IV_LEN),
            (256, IV_LEN + 1),
            (256, IV_LEN + 2),
        ] {
            let e = parse(key, iv).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Limit, "{key} {iv}: {e}");
        }
    }

    #[test]
    fn aes_size_follows_the_key_and_plaintext_may_lack_bom_and_declaration() {
        let secret = xml::parse(b"<masterKey><value>AAAA</value></masterKey>").unwrap();
        for (len, alg) in [
            (16, ContentAlgorithm::Aes128Cbc),
            (24, ContentAlgorithm::Aes192Cbc),
            (32, ContentAlgorithm::Aes256Cbc),
        ] {
            let key = SecretBytes::copy_from(&vec![0x11; len]);
            for options in [WriteOptions::DOCUMENT, WriteOptions::COMPACT] {
                let plaintext = xml::to_bytes(&secret, options);
                let iv = vec![0x22; 16];
                let value = alg.cbc_encrypt(key.expose(), &iv, &plaintext).unwrap();
                let ek = EncryptedKey {
                    kid: "k".into(),
                    wrapped_key: vec![0],
                    iv,
                    value,
                };
                assert_eq!(
                    open(&key, &ek).unwrap().expose(),
                    &secret,
                    "{len} {options:?}"
                );
            }
        }
    }

    #[test]
    fn seal_then_open_and_uniform_failures() {
        let secret = xml::parse(b"<masterKey><value>AAAA</value></masterKey>").unwrap();
        let key = SecretBytes::copy_from(&[7u8; 16]);
        let (iv, value) = seal(key.expose(), &secret).unwrap();
        let ek = EncryptedKey {
            kid: "k".into(),
            wrapped_key: vec![0],
            iv,
            value,
        };
        assert_eq!(open(&key, &ek).unwrap().expose(), &secret);

        let wrong_len = SecretBytes::copy_from(&[7u8; 20]);
        let wrong_key = SecretBytes::copy_from(&[8u8; 16]);
        let mut bad_iv = ek.clone();
        bad_iv.iv.truncate(8);
        let mut tampered = ek.clone();
        if let Some(b) = tampered.value.last_mut() {
            *b ^= 0x55;
        }
        let errors = [
            open(&wrong_len, &ek).unwrap_err(),
            open(&wrong_key, &ek).unwrap_err(),
            open(&key, &bad_iv).unwrap_err(),
            open(&key, &tampered).unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind(), crate::ErrorKind::Decrypt);
            assert_eq!(e.to_string(), crate::error::DECRYPT_MESSAGE);
        }
    }
}
