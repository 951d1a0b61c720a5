//! The `requiresEncryption` ⇄ `encryptedSecret` walk, as ASP.NET's `XmlEncryptionExtensions`.
//!
//! Writing: every element marked `dp:requiresEncryption="true"` is handed (as a copy) to the
//! encryptor and replaced by
//! `<encryptedSecret decryptorType="…" xmlns="http://schemas.asp.net/2015/03/dataProtection">`
//! around what the encryptor returned. Reading: every `dp:encryptedSecret` is dispatched by its
//! `decryptorType` and replaced by the decrypted element. As in .NET, the outermost marked element
//! wins, and an `encryptedSecret` that appears inside decrypted output is not decrypted again.

use crate::decryptors::Decryptors;
use crate::error::{Error, Result};
use crate::protector::{DecryptorType, XmlEncryptor};
use crate::secret::SecretElement;
use crate::xml::{Element, NS_DP, Name, Node};

/// Whether `element` carries `dp:requiresEncryption` with a true value (`true` or `1`, as
/// `XmlConvert.ToBoolean` reads it).
pub fn requires_encryption(element: &Element) -> bool {
    matches!(
        element
            .attribute(Some(NS_DP), "requiresEncryption")
            .map(str::trim),
        Some("true" | "1")
    )
}

/// Whether anything in `element` (itself included) requires encryption.
pub fn has_secrets_to_encrypt(element: &Element) -> bool {
    requires_encryption(element) || element.descendants().any(requires_encryption)
}

/// Encrypts every element of `element` that requires encryption. Returns `None` when nothing
/// does, as .NET's `EncryptIfNecessary` returns null.
pub async fn encrypt_if_necessary(
    encryptor: &dyn XmlEncryptor,
    element: &Element,
) -> Result<Option<Element>> {
    let paths = element.paths_where(&mut |e| requires_encryption(e));
    if paths.is_empty() {
        return Ok(None);
    }
    let mut out = SecretElement::new(element.clone());
    for path in paths {
        let secret = match out.expose().at(&path) {
            Some(e) => SecretElement::new(e.clone()),
            None => return Err(Error::format("internal error: a marked element moved")),
        };
        let info = encryptor.encrypt(secret.expose()).await?;
        let wrapper = encrypted_secret(&info.decryptor_type, info.encrypted_element);
        if path.is_empty() {
            // The whole element was the secret: the result is the wrapper alone, and nothing of
            // the plaintext remains in `out` once it is dropped (it is wiped on drop).
            return Ok(Some(wrapper));
        }
        if let Some(Node::Element(mut old)) =
            out.expose_mut().replace_at(&path, Node::Element(wrapper))
        {
            zeroize::Zeroize::zeroize(&mut old);
        }
    }
    // Nothing secret is left in `out`: every marked element was replaced.
    Ok(Some(out.declassify()))
}

/// `<encryptedSecret decryptorType="…" xmlns="dp">child</encryptedSecret>`.
pub fn encrypted_secret(decryptor_type: &DecryptorType, child: Element) -> Element {
    Element::new(Name::ns(NS_DP, "encryptedSecret"))
        .with_attribute(Name::local("decryptorType"), decryptor_type.as_str())
        .with_child(child)
}

/// The single element inside an `encryptedSecret`, and the decryptor type it names.
pub fn open_encrypted_secret(encrypted_secret: &Element) -> Result<(DecryptorType, &Element)> {
    let name = encrypted_secret
        .attribute(None, "decryptorType")
        .ok_or_else(|| {
            Error::format("an encryptedSecret element has no decryptorType attribute")
        })?;
    let decryptor_type = DecryptorType::parse(name)?;
    let mut children = encrypted_secret.elements();
    let (Some(child), None) = (children.next(), children.next()) else {
        return Err(Error::format(
            "an encryptedSecret element must contain exactly one element",
        ));
    };
    Ok((decryptor_type, child))
}

/// Decrypts every `encryptedSecret` in `element` with the matching decryptor from `decryptors`,
/// returning the element with the secrets in the clear.
pub async fn decrypt_element(element: &Element, decryptors: &Decryptors) -> Result<SecretElement> {
    let paths = element.paths_where(&mut |e| e.is(Some(NS_DP), "encryptedSecret"));
    let mut out = SecretElement::new(element.clone());
    for path in paths {
        let decrypted = {
            let Some(wrapper) = out.expose().at(&path) else {
                return Err(Error::format("internal error: an encryptedSecret moved"));
            };
            let (decryptor_type, child) = open_encrypted_secret(wrapper)?;
            let decryptor = decryptors.get(&decryptor_type)?;
            decryptor.decrypt(child).await?
        };
        if path.is_empty() {
            return Ok(decrypted);
        }
        out.expose_mut()
            .replace_at(&path, Node::Element(decrypted.expose().clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::null::{NullXmlDecryptor, NullXmlEncryptor};
    use crate::xml::{self, WriteOptions};
    use std::sync::Arc;

    /// A minimal executor: these futures never pend.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    const DESCRIPTOR: &str = r#"<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an unencrypted form. --><value>AAAA</value></masterKey></descriptor>"#;

    #[test]
    fn null_round_trip_writes_what_dotnet_writes() {
        let el = xml::parse(DESCRIPTOR.as_bytes()).unwrap();
        let enc = block_on(encrypt_if_necessary(&NullXmlEncryptor, &el))
            .unwrap()
            .unwrap();
        let text = xml::to_compact_string(&enc);
        assert!(text.contains(r#"<encryptedSecret decryptorType="Microsoft.AspNetCore.DataProtection.XmlEncryption.NullXmlDecryptor, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60" xmlns="http://schemas.asp.net/2015/03/dataProtection"><unencryptedKey xmlns=""><!-- This key is not encrypted. --><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection">"#), "{text}");
        let decryptors = Decryptors::new().with(Arc::new(NullXmlDecryptor));
        let dec = block_on(decrypt_element(&enc, &decryptors)).unwrap();
        assert_eq!(dec.expose(), &el);
        assert_eq!(
            xml::to_bytes(dec.expose(), WriteOptions::COMPACT),
            DESCRIPTOR.as_bytes()
        );
    }

    #[test]
    fn nothing_to_encrypt_gives_none() {
        let el = xml::parse(b"<descriptor><masterKey><value>AAAA</value></masterKey></descriptor>")
            .unwrap();
        assert!(
            block_on(encrypt_if_necessary(&NullXmlEncryptor, &el))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn unknown_decryptor_is_named() {
        let el = xml::parse(br#"<d><encryptedSecret decryptorType="Foo.Bar, Baz" xmlns="http://schemas.asp.net/2015/03/dataProtection"><x xmlns="" /></encryptedSecret></d>"#).unwrap();
        let e = block_on(decrypt_element(&el, &Decryptors::new())).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::UnknownDecryptor);
        assert!(e.to_string().contains("Foo.Bar"));
    }
}
