//! Types that hold secrets: wiped on drop, never printed.
//!
//! None of these types implements `Display` or `Clone`; their `Debug` shows only that a secret is
//! there and, where harmless, its length.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::xml::Element;

/// Bytes that are secret: a master key, a content key, a decrypted plaintext. Wiped on drop.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes` (which will be wiped on drop).
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret buffer.
    pub fn copy_from(bytes: &[u8]) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret bytes. Keep the borrow short and never log what it returns.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(v: Zeroizing<Vec<u8>>) -> SecretBytes {
        SecretBytes(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.0.len())
    }
}

/// A master key: the key-ring secret inside a key's descriptor (usually 64 bytes).
pub struct MasterKey(SecretBytes);

impl MasterKey {
    /// Largest master key accepted from a key file. ASP.NET writes 64 bytes; the bound keeps a
    /// hostile file from making us decode and hold an arbitrary amount.
    pub const MAX_LEN: usize = 1024;

    /// Wraps raw master key bytes.
    pub fn new(bytes: SecretBytes) -> MasterKey {
        MasterKey(bytes)
    }

    /// A fresh random master key of `len` bytes (ASP.NET uses 64).
    pub fn generate(len: usize) -> Result<MasterKey> {
        let mut v = Zeroizing::new(vec![0u8; len]);
        getrandom::fill(&mut v).map_err(|e| {
            Error::new(
                crate::ErrorKind::Backend,
                format!("the system random generator failed: {e}"),
            )
        })?;
        Ok(MasterKey(SecretBytes(v)))
    }

    /// Decodes the base64 text of a `<value>` element (whitespace allowed, as .NET allows it).
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        let mut compact = Zeroizing::new(String::with_capacity(text.len()));
        compact.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
        if compact.len() > MasterKey::MAX_LEN.div_ceil(3) * 4 {
            return Err(Error::new(
                crate::ErrorKind::Limit,
                format!(
                    "limit master key length ({}) exceeded: the masterKey value is too long",
                    MasterKey::MAX_LEN
                ),
            ));
        }
        // Constant-time base64 (base64ct): the text is the secret itself.
        let mut out = Zeroizing::new(vec![0u8; compact.len() / 4 * 3 + 3]);
        let len = <base64ct::Base64 as base64ct::Encoding>::decode(compact.as_bytes(), &mut out)
            .map_err(|_| Error::format("the masterKey value is not valid base64"))?
            .len();
        out.truncate(len);
        if out.is_empty() {
            return Err(Error::format("the masterKey value is empty"));
        }
        // The character count bounded the allocation; the limit is on the key's bytes (up to two
        // more fit in the last base64 quantum).
        if out.len() > MasterKey::MAX_LEN {
            return Err(Error::new(
                crate::ErrorKind::Limit,
                format!(
                    "limit master key length ({}) exceeded: the masterKey value has {} bytes",
                    MasterKey::MAX_LEN,
                    out.len()
                ),
            ));
        }
        Ok(MasterKey(SecretBytes(out)))
    }

    /// The key as base64, in a buffer wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        // Constant-time base64 (base64ct), into a buffer sized exactly so nothing is reallocated.
        let mut buf = Zeroizing::new(vec![0u8; self.0.len().div_ceil(3) * 4]);
        let len = <base64ct::Base64 as base64ct::Encoding>::encode(self.0.expose(), &mut buf)
            .map(str::len)
            .unwrap_or(0);
        let mut s = Zeroizing::new(String::with_capacity(len));
        s.push_str(std::str::from_utf8(buf.get(..len).unwrap_or(&[])).unwrap_or(""));
        s
    }

    /// The raw key bytes. Keep the borrow short and never log what it returns.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty (never true for a key read through dpwrap).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with another master key (for verifying a re-wrap).
    pub fn ct_eq(&self, other: &MasterKey) -> bool {
        let (a, b) = (self.expose(), other.expose());
        if a.len() != b.len() {
            return false;
        }
        let mut diff = 0u8;
        for (x, y) in a.iter().zip(b) {
            diff |= x ^ y;
        }
        diff == 0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({} bytes, redacted)", self.0.len())
    }
}

/// An XML element that holds a secret (a decrypted `masterKey`, or a key element with its master
/// key in the clear). All its text and attribute values are wiped on drop.
pub struct SecretElement(Element);

impl SecretElement {
    /// Takes ownership of `element`.
    pub fn new(element: Element) -> SecretElement {
        SecretElement(element)
    }

    /// The element. Never log it or its text.
    pub fn expose(&self) -> &Element {
        &self.0
    }

    /// The element, mutable.
    pub fn expose_mut(&mut self) -> &mut Element {
        &mut self.0
    }

    /// Hands the element over as no longer secret. Only for elements whose secrets have all been
    /// removed (replaced by their encrypted form).
    pub fn declassify(mut self) -> Element {
        std::mem::replace(
            &mut self.0,
            Element::new(crate::xml::Name::local("declassified")),
        )
    }
}

impl Drop for SecretElement {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretElement(<{}>, redacted)", self.0.name())
    }
}

/// A password (for a PFX or an encrypted PKCS#8 key). Wiped on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of `password`.
    pub fn new(password: String) -> Password {
        Password(Zeroizing::new(password))
    }

    /// The password text. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Password {
        Password::new(s.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn master_key_base64_round_trip_with_whitespace() {
        let k = MasterKey::from_base64(" AAEC\n  AwQF ").unwrap();
        assert_eq!(k.expose(), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(&*k.to_base64(), "AAECAwQF");
        assert!(!format!("{k:?}").contains("AAEC"));
    }

    #[test]
    fn master_key_rejects_bad_and_huge_values() {
        assert_eq!(
            MasterKey::from_base64("!!!").unwrap_err().kind(),
            crate::ErrorKind::Format
        );
        assert_eq!(
            MasterKey::from_base64("").unwrap_err().kind(),
            crate::ErrorKind::Format
        );
        // Exactly at the bound, and just past it (within the same number of base64 characters).
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![1u8; n]);
        assert_eq!(MasterKey::from_base64(&b64(1024)).unwrap().len(), 1024);
        for n in [1025, 1026] {
            assert_eq!(
                MasterKey::from_base64(&b64(n)).unwrap_err().kind(),
                crate::ErrorKind::Limit
            );
        }
        let huge = "A".repeat(4096);
        assert_eq!(
            MasterKey::from_base64(&huge).unwrap_err().kind(),
            crate::ErrorKind::Limit
        );
    }

    #[test]
    fn ct_eq_compares() {
        let a = MasterKey::from_base64("AAEC").unwrap();
        let b = MasterKey::from_base64("AAEC").unwrap();
        let c = MasterKey::from_base64("AAED").unwrap();
        assert!(a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
    }
}
