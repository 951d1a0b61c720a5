//! Authenticated keys: resistance to key planting.
//!
//! In both ASP.NET formats, anyone who can write to the key store and holds only the public
//! certificate (or only Key Vault `wrapKey` permission) can write a key that every node accepts
//! and uses, because nothing proves who wrote it (FORMATS.md §5). An authenticated key carries a
//! proof that its writer held a secret the planter lacks: a signature by the protecting
//! certificate's private key (or a Key Vault key), over everything in the key element.
//!
//! The proof is one extra child of `<key>`, which .NET ignores (it reads `creationDate`,
//! `activationDate`, `expirationDate` and `descriptor` by name), so authenticated keys stay
//! readable by every .NET node:
//!
//! ```xml
//! <authentication xmlns="urn:dpwrap:key-authentication:v1" algorithm="RS256"
//!                 signer="thumbprint:3BFD1BAE91D198645590F1DAC2FE7C2250292A65">base64</authentication>
//! ```
//!
//! What is signed is a digest of the `<key>` element without the `authentication` child: element
//! names and namespaces, attributes (sorted), and text, in document order, with comments and
//! whitespace-only text left out. Re-indenting or changing namespace prefixes (as re-saving a Blob
//! document may) keeps the digest; any change to the id, the dates, the descriptor or the
//! ciphertext breaks it. Verification needs only public material and happens before anything is
//! decrypted, so under [`AuthenticationPolicy::Require`] a planted key never reaches a private key.
//!
//! The mode is opt-in for writers and the policy is the reader's choice: the default stays .NET's
//! behaviour (accept unauthenticated keys), and tools report which keys are not authenticated.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use sha2::Digest as _;

use crate::certificate::{Certificate, CertificateWithKey};
use crate::crypto::{RsaPrivateKey, RsaPublicKey};
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::Key;
use crate::xml::{Element, Name, Node};

/// The namespace of the `authentication` element.
pub const NS_AUTHENTICATION: &str = "urn:dpwrap:key-authentication:v1";

/// The only signature algorithm: RSASSA-PKCS1-v1_5 with SHA-256 (JWA `RS256`, which Key Vault's
/// `sign` operation also offers).
pub const ALGORITHM_RS256: &str = "RS256";

/// Largest signature accepted (an 8192-bit RSA key).
const MAX_SIGNATURE: usize = 1024;

/// What the reader requires of keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthenticationPolicy {
    /// Accept unauthenticated keys, as .NET does (tools warn about them). Keys that carry a proof
    /// that does not verify are still refused: that is tampering, not an old key.
    #[default]
    Accept,
    /// Refuse every key without a valid proof from a trusted signer.
    Require,
}

/// The outcome of checking a key's proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthenticationStatus {
    /// The key carries no proof.
    Unsigned,
    /// The proof verifies under a trusted signer (named).
    Verified(String),
    /// The key carries a proof, but from a signer that is not trusted here (named).
    UntrustedSigner(String),
    /// The key carries a proof that does not verify: the key was altered, or the proof forged.
    Invalid,
}

impl AuthenticationStatus {
    /// A short name for tables and JSON: `unsigned`, `verified`, `untrusted-signer`, `invalid`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthenticationStatus::Unsigned => "unsigned",
            AuthenticationStatus::Verified(_) => "verified",
            AuthenticationStatus::UntrustedSigner(_) => "untrusted-signer",
            AuthenticationStatus::Invalid => "invalid",
        }
    }

    /// Whether the key is authenticated.
    pub fn is_verified(&self) -> bool {
        matches!(self, AuthenticationStatus::Verified(_))
    }

    /// Applies `policy`: `Ok` when the key may be used, else an [`ErrorKind::Unauthenticated`]
    /// error saying why.
    pub fn check(&self, policy: AuthenticationPolicy, key_id: &uuid::Uuid) -> Result<()> {
        let refuse = |why: String| {
            Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("key {key_id} {why}"),
            ))
        };
        match (self, policy) {
            (AuthenticationStatus::Verified(_), _) => Ok(()),
            (AuthenticationStatus::Invalid, _) => refuse(
                "carries an authentication proof that does not verify: the key was altered or the proof forged; do not use it".into(),
            ),
            (AuthenticationStatus::Unsigned, AuthenticationPolicy::Accept) => Ok(()),
            (AuthenticationStatus::UntrustedSigner(_), AuthenticationPolicy::Accept) => Ok(()),
            (AuthenticationStatus::Unsigned, AuthenticationPolicy::Require) => refuse(
                "is not authenticated, and authenticated keys are required; anyone who can write to the key store could have planted it".into(),
            ),
            (AuthenticationStatus::UntrustedSigner(s), AuthenticationPolicy::Require) => {
                refuse(format!("is signed by {s}, which is not a trusted signer here"))
            }
        }
    }
}

impl fmt::Display for AuthenticationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthenticationStatus::Verified(s) => write!(f, "verified ({s})"),
            AuthenticationStatus::UntrustedSigner(s) => write!(f, "signed by untrusted {s}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The proof a key carries, as read from its `authentication` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProof {
    /// Who signed: `thumbprint:HEX` or `kid:URL`.
    pub signer: String,
    /// The algorithm (`RS256`).
    pub algorithm: String,
    /// The signature.
    pub signature: Vec<u8>,
}

impl KeyProof {
    /// The proof in `key`, if it has one. A malformed `authentication` element is an error.
    pub fn of(key_element: &Element) -> Result<Option<KeyProof>> {
        let mut found = key_element.elements_named(Some(NS_AUTHENTICATION), "authentication");
        let el = match (found.next(), found.next()) {
            (None, _) => return Ok(None),
            (Some(el), None) => el,
            (Some(_), Some(_)) => {
                return Err(Error::format(
                    "the key has more than one authentication element",
                ));
            }
        };
        let signer = el
            .attribute(None, "signer")
            .ok_or_else(|| Error::format("the key's authentication element has no signer"))?
            .to_owned();
        let algorithm = el.attribute(None, "algorithm").unwrap_or("").to_owned();
        let text: String = el
            .text()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if text.len() > MAX_SIGNATURE.div_ceil(3) * 4 {
            return Err(Error::new(
                ErrorKind::Limit,
                "limit signature size exceeded: the key's authentication element is too long",
            ));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| Error::format("the key's authentication element is not valid base64"))?;
        // The text bound rounds up to a base64 quantum; the bound is on the decoded bytes.
        if signature.len() > MAX_SIGNATURE {
            return Err(Error::new(
                ErrorKind::Limit,
                "limit signature size exceeded: the key's authentication element is too long",
            ));
        }
        Ok(Some(KeyProof {
            signer,
            algorithm,
            signature,
        }))
    }
}

/// The message signed for `key_element`: a domain-separation tag and the digest of the element
/// without its `authentication` child.
pub fn signed_message(key_element: &Element) -> Vec<u8> {
    let mut h = sha2::Sha256::new();
    let mut put = |tag: u8, bytes: &[u8]| {
        h.update([tag]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    // Iterative walk: (element, next child index).
    let mut stack: Vec<(&Element, usize)> = vec![(key_element, 0)];
    start(&mut put, key_element);
    while let Some((el, i)) = stack.pop() {
        match el.children().get(i) {
            None => put(4, b""),
            Some(node) => {
                stack.push((el, i + 1));
                match node {
                    // Only the key's own proof (a direct child) is left out; an `authentication`
                    // element anywhere deeper is content like any other, or it could hide a
                    // change from the signature.
                    Node::Element(child)
                        if std::ptr::eq(el, key_element)
                            && child.is(Some(NS_AUTHENTICATION), "authentication") => {}
                    Node::Element(child) => {
                        start(&mut put, child);
                        stack.push((child, 0));
                    }
                    Node::Text(t) => put(3, t.as_bytes()),
                    Node::Comment(_) | Node::ProcessingInstruction { .. } => {}
                }
            }
        }
    }
    let mut message = b"dpwrap key authentication v1\n".to_vec();
    message.extend_from_slice(&h.finalize());
    message
}

fn start(put: &mut impl FnMut(u8, &[u8]), el: &Element) {
    put(1, el.name().namespace().unwrap_or("").as_bytes());
    put(1, el.name().local_name().as_bytes());
    let mut attrs: Vec<(&str, &str, &str)> = el
        .attributes()
        .iter()
        .map(|a| {
            (
                a.name.namespace().unwrap_or(""),
                a.name.local_name(),
                a.value.as_str(),
            )
        })
        .collect();
    attrs.sort();
    for (ns, local, value) in attrs {
        put(2, ns.as_bytes());
        put(2, local.as_bytes());
        put(2, value.as_bytes());
    }
}

/// Something that can sign keys: the protecting certificate's private key, a local RSA key, or a
/// Key Vault key (with `sign` permission).
#[async_trait]
pub trait KeySigner: Send + Sync + fmt::Debug {
    /// The signer's name as written in `signer` (`thumbprint:HEX` or `kid:URL`).
    fn signer(&self) -> String;
    /// Signs `message` with RS256.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// Signs with a certificate's private key.
#[derive(Debug)]
pub struct CertificateSigner(pub std::sync::Arc<CertificateWithKey>);

#[async_trait]
impl KeySigner for CertificateSigner {
    fn signer(&self) -> String {
        format!("thumbprint:{}", self.0.thumbprint())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.0.private_key().sign_sha256(message)
    }
}

/// Signs with a bare RSA key named by a key id (a local copy of a Key Vault key).
pub struct RsaKeySigner {
    kid: String,
    key: RsaPrivateKey,
}

impl RsaKeySigner {
    /// A signer for `kid` with `key`.
    pub fn new(kid: impl Into<String>, key: RsaPrivateKey) -> RsaKeySigner {
        RsaKeySigner {
            kid: kid.into(),
            key,
        }
    }
}

impl fmt::Debug for RsaKeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKeySigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeySigner for RsaKeySigner {
    fn signer(&self) -> String {
        format!("kid:{}", self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.key.sign_sha256(message)
    }
}

/// Adds (or replaces) the `authentication` element of `key_element`, signed by `signer`.
pub async fn authenticate(key_element: &mut Element, signer: &dyn KeySigner) -> Result<()> {
    if !key_element.is(None, "key") {
        return Err(Error::format("only <key> elements can be authenticated"));
    }
    key_element.children_mut().retain(
        |n| !matches!(n, Node::Element(e) if e.is(Some(NS_AUTHENTICATION), "authentication")),
    );
    let signature = signer.sign(&signed_message(key_element)).await?;
    let proof = Element::new(Name::ns(NS_AUTHENTICATION, "authentication"))
        .with_attribute(Name::local("algorithm"), ALGORITHM_RS256)
        .with_attribute(Name::local("signer"), signer.signer())
        .with_text(base64::engine::general_purpose::STANDARD.encode(signature));
    key_element.push(Node::Element(proof));
    Ok(())
}

/// The signers a reader trusts: certificates (public part is enough) and RSA public keys named by
/// key id.
#[derive(Clone, Debug, Default)]
pub struct TrustedSigners {
    signers: Vec<(String, RsaPublicKey)>,
}

impl TrustedSigners {
    /// No trusted signers.
    pub fn new() -> TrustedSigners {
        TrustedSigners::default()
    }

    /// Trusts `certificate` (matched by thumbprint).
    pub fn with_certificate(mut self, certificate: &Certificate) -> Result<TrustedSigners> {
        self.signers.push((
            format!("thumbprint:{}", certificate.thumbprint()),
            certificate.public_key()?,
        ));
        Ok(self)
    }

    /// Trusts the RSA key named `kid` (a Key Vault key's public part).
    pub fn with_key(mut self, kid: &str, key: RsaPublicKey) -> TrustedSigners {
        self.signers.push((format!("kid:{kid}"), key));
        self
    }

    /// Whether no signer is trusted.
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }

    /// Checks `key`'s proof.
    pub fn verify(&self, key: &Key) -> AuthenticationStatus {
        let proof = match KeyProof::of(key.element()) {
            Ok(Some(p)) => p,
            Ok(None) => return AuthenticationStatus::Unsigned,
            Err(_) => return AuthenticationStatus::Invalid,
        };
        if proof.algorithm != ALGORITHM_RS256 {
            return AuthenticationStatus::Invalid;
        }
        let Some((_, public)) = self
            .signers
            .iter()
            .find(|(name, _)| signer_eq(name, &proof.signer))
        else {
            return AuthenticationStatus::UntrustedSigner(proof.signer);
        };
        if public.verify_sha256(&signed_message(key.element()), &proof.signature) {
            AuthenticationStatus::Verified(proof.signer)
        } else {
            AuthenticationStatus::Invalid
        }
    }
}

/// Signer names compare case-insensitively for thumbprints (hex) and exactly for key ids.
fn signer_eq(a: &str, b: &str) -> bool {
    match (a.strip_prefix("thumbprint:"), b.strip_prefix("thumbprint:")) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    #[test]
    fn the_digest_ignores_layout_and_prefixes_but_not_content() {
        let a = xml::parse(br#"<key id="1" version="1"><creationDate>x</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><!-- c --><value>AAAA</value></masterKey></descriptor></key>"#).unwrap();
        let b = xml::parse(b"<key version=\"1\" id=\"1\">\n  <creationDate>x</creationDate>\n  <descriptor>\n    <masterKey d1p1:requiresEncryption=\"true\" xmlns:d1p1=\"http://schemas.asp.net/2015/03/dataProtection\">\n      <value>AAAA</value>\n    </masterKey>\n  </descriptor>\n</key>").unwrap();
        assert_eq!(signed_message(&a), signed_message(&b));
        let c = xml::parse(br#"<key id="2" version="1"><creationDate>x</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>AAAA</value></masterKey></descriptor></key>"#).unwrap();
        assert_ne!(signed_message(&a), signed_message(&c));
        let d = xml::parse(br#"<key id="1" version="1"><creationDate>y</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>AAAA</value></masterKey></descriptor></key>"#).unwrap();
        assert_ne!(signed_message(&a), signed_message(&d));
        // Only the key's own proof is left out: one nested deeper is signed content.
        let proof = r#"<authentication xmlns="urn:dpwrap:key-authentication:v1" algorithm="RS256" signer="x">AA==</authentication>"#;
        let with_proof = xml::parse(format!(r#"<key id="1" version="1">{proof}<creationDate>x</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>AAAA</value></masterKey></descriptor></key>"#).as_bytes()).unwrap();
        assert_eq!(signed_message(&a), signed_message(&with_proof));
        let nested = xml::parse(format!(r#"<key id="1" version="1"><creationDate>x</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>AAAA</value></masterKey>{proof}</descriptor></key>"#).as_bytes()).unwrap();
        assert_ne!(signed_message(&a), signed_message(&nested));
        // Moving text across element boundaries changes the digest.
        let e = xml::parse(br#"<key id="1" version="1"><creationDate>x</creationDate><descriptor><masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection"><value>AAA</value>A</masterKey></descriptor></key>"#).unwrap();
        assert_ne!(signed_message(&a), signed_message(&e));
    }

    #[test]
    fn policy_outcomes() {
        let id = uuid::Uuid::nil();
        assert!(
            AuthenticationStatus::Unsigned
                .check(AuthenticationPolicy::Accept, &id)
                .is_ok()
        );
        let e = AuthenticationStatus::Unsigned
            .check(AuthenticationPolicy::Require, &id)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(
            AuthenticationStatus::Invalid
                .check(AuthenticationPolicy::Accept, &id)
                .is_err()
        );
        assert!(
            AuthenticationStatus::Verified("x".into())
                .check(AuthenticationPolicy::Require, &id)
                .is_ok()
        );
        assert!(
            AuthenticationStatus::UntrustedSigner("x".into())
                .check(AuthenticationPolicy::Require, &id)
                .is_err()
        );
    }
}
