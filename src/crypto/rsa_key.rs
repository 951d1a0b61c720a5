//! RSA keys and key transport (PKCS#1 v1.5 and OAEP).
//!
//! PKCS#1 v1.5 decryption uses implicit rejection (the `rsa` crate returns a deterministic
//! synthetic message for a bad padding instead of an error), so a wrong key shows up as a content
//! key of the wrong length or a failed unpadding later, never as a distinguishable padding error.
//! Private operations are blinded.
//!
//! Two backends, chosen at build time: the pure-Rust `rsa` crate (always, the default), and with
//! feature `aws-lc` AWS-LC for the private-key decryptions it supports (see [`aws_lc`]), with
//! the same results on every input, `rsa`'s implicit rejection included.

use std::fmt;

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use super::Digest;
use crate::error::{Error, ErrorKind, Result};

#[cfg(feature = "aws-lc")]
mod aws_lc;

/// Largest RSA ciphertext accepted (an 8192-bit modulus).
const MAX_CIPHERTEXT: usize = 1024;

/// How a key is encrypted under RSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    /// PKCS#1 v1.5 (`xenc#rsa-1_5`).
    Pkcs1v15,
    /// OAEP with the given digest, MGF1 digest and label (`xenc#rsa-oaep-mgf1p`, `xenc11#rsa-oaep`).
    Oaep {
        /// The OAEP digest.
        digest: Digest,
        /// The MGF1 digest.
        mgf: Digest,
        /// The OAEP label (`OAEPparams`), if any.
        label: Option<Vec<u8>>,
    },
}

impl RsaPadding {
    /// OAEP with SHA-1 and MGF1-SHA-1, no label: `rsa-oaep-mgf1p` as .NET and Key Vault's
    /// `RSA-OAEP` use it.
    pub fn oaep_sha1() -> RsaPadding {
        RsaPadding::Oaep {
            digest: Digest::Sha1,
            mgf: Digest::Sha1,
            label: None,
        }
    }

    /// OAEP with SHA-256 and MGF1-SHA-256 (Key Vault's `RSA-OAEP-256`).
    pub fn oaep_sha256() -> RsaPadding {
        RsaPadding::Oaep {
            digest: Digest::Sha256,
            mgf: Digest::Sha256,
            label: None,
        }
    }
}

/// Applies `$body` with `$D` and `$M` bound to the digest types of `$digest` and `$mgf`.
macro_rules! with_oaep {
    ($digest:expr, $mgf:expr, |$D:ident, $M:ident| $body:expr) => {{
        macro_rules! inner {
            ($d:ty) => {{
                match $mgf {
                    Digest::Sha1 => {
                        type $D = $d;
                        type $M = sha1::Sha1;
                        $body
                    }
                    Digest::Sha224 => {
                        type $D = $d;
                        type $M = sha2::Sha224;
                        $body
                    }
                    Digest::Sha256 => {
                        type $D = $d;
                        type $M = sha2::Sha256;
                        $body
                    }
                    Digest::Sha384 => {
                        type $D = $d;
                        type $M = sha2::Sha384;
                        $body
                    }
                    Digest::Sha512 => {
                        type $D = $d;
                        type $M = sha2::Sha512;
                        $body
                    }
                }
            }};
        }
        match $digest {
            Digest::Sha1 => inner!(sha1::Sha1),
            Digest::Sha224 => inner!(sha2::Sha224),
            Digest::Sha256 => inner!(sha2::Sha256),
            Digest::Sha384 => inner!(sha2::Sha384),
            Digest::Sha512 => inner!(sha2::Sha512),
        }
    }};
}

/// An RSA private key. Wiped on drop; its `Debug` shows only the modulus size.
pub struct RsaPrivateKey {
    key: rsa::PrivateKey,
    /// AWS-LC's copy, made on the first decryption (`None` inside when AWS-LC refuses the key).
    #[cfg(feature = "aws-lc")]
    fast: std::sync::OnceLock<Option<aws_lc::Fast>>,
}

impl RsaPrivateKey {
    fn wrap(key: rsa::PrivateKey) -> RsaPrivateKey {
        RsaPrivateKey {
            key,
            #[cfg(feature = "aws-lc")]
            fast: std::sync::OnceLock::new(),
        }
    }

    /// Reads an unencrypted PKCS#8 `PrivateKeyInfo` (DER).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<RsaPrivateKey> {
        match rsa::PrivateKey::from_pkcs8_der(der) {
            Ok(key) => Ok(RsaPrivateKey::wrap(key)),
            Err(rsa::pkcs8::Error::KeyMalformed(_)) | Err(rsa::pkcs8::Error::Asn1(_)) => Err(
                Error::certificate("the private key is not a valid PKCS#8 RSA key"),
            ),
            Err(rsa::pkcs8::Error::PublicKey(_)) | Err(_) => Err(Error::certificate(
                "the private key is not an RSA key; dpwrap protects keys with RSA certificates only",
            )),
        }
    }

    /// Reads a PKCS#1 `RSAPrivateKey` (DER).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<RsaPrivateKey> {
        rsa::PrivateKey::from_pkcs1_der(der)
            .map(RsaPrivateKey::wrap)
            .map_err(|_| Error::certificate("the private key is not a valid PKCS#1 RSA key"))
    }

    /// Generates a new key of `bits` bits (2048, 3072 or 4096).
    pub fn generate(bits: usize) -> Result<RsaPrivateKey> {
        if !matches!(bits, 2048 | 3072 | 4096) {
            return Err(Error::new(
                ErrorKind::Config,
                "RSA key size must be 2048, 3072 or 4096 bits",
            ));
        }
        let mut rng = rand::rng();
        rsa::PrivateKey::new(&mut rng, bits)
            .map(RsaPrivateKey::wrap)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    format!("RSA key generation failed: {e}"),
                )
            })
    }

    /// The key as PKCS#8 DER, in a buffer wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.key
            .to_pkcs8_der()
            .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .map_err(|_| Error::certificate("the private key could not be encoded"))
    }

    /// The key as PKCS#1 DER, in a buffer wiped on drop.
    pub fn to_pkcs1_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.key
            .to_pkcs1_der()
            .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .map_err(|_| Error::certificate("the private key could not be encoded"))
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey {
            key: self.key.to_public_key(),
        }
    }

    /// The modulus size in bits.
    pub fn size_bits(&self) -> usize {
        self.key.n().bit_width() as usize
    }

    /// The modulus size in bytes (the ciphertext length).
    pub fn size_bytes(&self) -> usize {
        self.size_bits().div_ceil(8)
    }

    /// Decrypts a wrapped key. Every failure is the uniform decryption error; PKCS#1 v1.5 uses
    /// implicit rejection, so a bad padding yields unrelated bytes rather than an error. With
    /// feature `aws-lc`, AWS-LC does the paddings it supports (same results), `rsa` the rest.
    pub fn decrypt(&self, padding: &RsaPadding, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() > MAX_CIPHERTEXT || ciphertext.len() != self.size_bytes() {
            return Err(Error::decrypt());
        }
        #[cfg(feature = "aws-lc")]
        if let Some(fast) = self.fast()
            && let Some(result) = fast.decrypt(padding, ciphertext)
        {
            return result;
        }
        self.decrypt_with_rsa(padding, ciphertext)
    }

    /// AWS-LC's copy of the key, imported on first use.
    #[cfg(feature = "aws-lc")]
    fn fast(&self) -> Option<&aws_lc::Fast> {
        self.fast
            .get_or_init(|| {
                let der = self.to_pkcs8_der().ok()?;
                aws_lc::Fast::new(&self.key, &der)
            })
            .as_ref()
    }

    /// Whether AWS-LC decrypts `padding` with this key (always false without feature `aws-lc`).
    pub fn uses_aws_lc(&self, padding: &RsaPadding) -> bool {
        #[cfg(feature = "aws-lc")]
        {
            self.fast().is_some_and(|f| f.supports(padding))
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            let _ = padding;
            false
        }
    }

    /// [`decrypt`](Self::decrypt) with the pure-Rust `rsa` backend, whatever the build: the
    /// reference the fast backend is tested against, and a way to compare the two.
    pub fn decrypt_with_rsa(
        &self,
        padding: &RsaPadding,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() > MAX_CIPHERTEXT || ciphertext.len() != self.size_bytes() {
            return Err(Error::decrypt());
        }
        let out = match padding {
            RsaPadding::Pkcs1v15 => self.key.pkcs1v15_decrypt(ciphertext),
            RsaPadding::Oaep { digest, mgf, label } => with_oaep!(digest, mgf, |D, M| {
                let p = match label {
                    Some(l) => rsa::Oaep::<D, M>::new_with_mgf_hash_and_label(l.clone()),
                    None => rsa::Oaep::<D, M>::new_with_mgf_hash(),
                };
                self.key.decrypt(p, ciphertext)
            }),
        };
        out.map(Zeroizing::new).map_err(|_| Error::decrypt())
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 and SHA-256 (certificates, authenticated keys).
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.key
            .pkcs1v15_sign::<sha2::Sha256>(message)
            .map_err(|e| Error::new(ErrorKind::Backend, format!("RSA signing failed: {e}")))
    }

    /// RSASSA-PKCS1-v1_5 over an already computed SHA-256 digest (what Key Vault's `sign` does).
    #[cfg(feature = "test-util")]
    pub(crate) fn sign_sha256_prehash(&self, digest: &[u8]) -> Result<Vec<u8>> {
        self.key
            .pkcs1v15_sign_prehash::<sha2::Sha256>(digest)
            .map_err(|e| Error::new(ErrorKind::Backend, format!("RSA signing failed: {e}")))
    }

    /// The underlying `rsa` key (for the certificate builder).
    pub(crate) fn inner(&self) -> &rsa::PrivateKey {
        &self.key
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, redacted)", self.size_bits())
    }
}

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    key: rsa::PublicKey,
}

impl RsaPublicKey {
    /// Reads a `SubjectPublicKeyInfo` (DER).
    pub fn from_spki_der(der: &[u8]) -> Result<RsaPublicKey> {
        rsa::PublicKey::from_public_key_der(der).map(|key| RsaPublicKey { key }).map_err(|_| {
            Error::certificate("the public key is not an RSA key; dpwrap protects keys with RSA certificates only")
        })
    }

    /// Builds a key from its big-endian modulus and exponent (a JSON Web Key's `n` and `e`).
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<RsaPublicKey> {
        let bad = || Error::format("the RSA public key components are invalid");
        if n.len() > MAX_CIPHERTEXT || e.len() > 8 {
            return Err(bad());
        }
        let n = rsa::BoxedUint::from_be_slice_vartime(n);
        let e = rsa::BoxedUint::from_be_slice_vartime(e);
        rsa::PublicKey::new(n, e)
            .map(|key| RsaPublicKey { key })
            .map_err(|_| bad())
    }

    /// The key as `SubjectPublicKeyInfo` DER.
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        self.key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| Error::certificate("the public key could not be encoded"))
    }

    /// The modulus, big-endian.
    pub fn modulus(&self) -> Vec<u8> {
        self.key.n_bytes().to_vec()
    }

    /// The public exponent, big-endian.
    pub fn exponent(&self) -> Vec<u8> {
        self.key.e_bytes().to_vec()
    }

    /// The modulus size in bits.
    pub fn size_bits(&self) -> usize {
        self.key.n().bit_width() as usize
    }

    /// Encrypts (wraps) a key.
    pub fn encrypt(&self, padding: &RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut rng = rand::rng();
        let out = match padding {
            RsaPadding::Pkcs1v15 => self.key.encrypt(&mut rng, rsa::Pkcs1v15Encrypt, plaintext),
            RsaPadding::Oaep { digest, mgf, label } => with_oaep!(digest, mgf, |D, M| {
                let p = match label {
                    Some(l) => rsa::Oaep::<D, M>::new_with_mgf_hash_and_label(l.clone()),
                    None => rsa::Oaep::<D, M>::new_with_mgf_hash(),
                };
                self.key.encrypt(&mut rng, p, plaintext)
            }),
        };
        out.map_err(|e| Error::new(ErrorKind::Backend, format!("RSA encryption failed: {e}")))
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature.
    pub fn verify_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key
            .pkcs1v15_verify::<sha2::Sha256>(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.size_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oaep_and_v15_round_trip_and_wrong_key() {
        let k = RsaPrivateKey::generate(2048).unwrap();
        let other = RsaPrivateKey::generate(2048).unwrap();
        let pubk = k.public_key();
        let secret = [42u8; 32];
        for p in [
            RsaPadding::Pkcs1v15,
            RsaPadding::oaep_sha1(),
            RsaPadding::oaep_sha256(),
            RsaPadding::Oaep {
                digest: Digest::Sha512,
                mgf: Digest::Sha1,
                label: Some(b"label".to_vec()),
            },
        ] {
            let ct = pubk.encrypt(&p, &secret).unwrap();
            assert_eq!(&*k.decrypt(&p, &ct).unwrap(), &secret);
            match other.decrypt(&p, &ct) {
                // Implicit rejection: PKCS#1 v1.5 with the wrong key gives other bytes.
                Ok(v) => {
                    assert_eq!(p, RsaPadding::Pkcs1v15);
                    assert_ne!(&*v, &secret);
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::Decrypt),
            }
        }
        assert_eq!(
            k.decrypt(&RsaPadding::Pkcs1v15, &[1, 2, 3])
                .unwrap_err()
                .kind(),
            ErrorKind::Decrypt
        );
        assert!(!format!("{k:?}").contains("d:"));
    }

    /// With `aws-lc`, the fast path must give what `rsa` gives, on good and bad input alike: the
    /// same plaintexts, the same implicit-rejection messages for bad PKCS#1 v1.5 padding, errors
    /// where `rsa` errs. Without it, `decrypt` is `rsa` and this holds trivially.
    #[test]
    fn the_backends_agree_on_good_and_bad_ciphertexts() {
        use rand::RngExt as _;
        for bits in [2048usize, 3072] {
            let k = RsaPrivateKey::generate(bits).unwrap();
            let pubk = k.public_key();
            let size = k.size_bytes();
            let paddings = [
                RsaPadding::Pkcs1v15,
                RsaPadding::oaep_sha1(),
                RsaPadding::oaep_sha256(),
                RsaPadding::Oaep {
                    digest: Digest::Sha512,
                    mgf: Digest::Sha512,
                    label: Some(b"label".to_vec()),
                },
                RsaPadding::Oaep {
                    digest: Digest::Sha256,
                    mgf: Digest::Sha1,
                    label: None,
                },
            ];
            for p in &paddings {
                let fast = k.uses_aws_lc(p);
                let expect_fast = cfg!(feature = "aws-lc")
                    && !matches!(p, RsaPadding::Oaep { digest, mgf, .. } if digest != mgf);
                assert_eq!(fast, expect_fast, "{p:?}");
                for len in [16usize, 32, 0] {
                    let secret: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                    let ct = pubk.encrypt(p, &secret).unwrap();
                    assert_eq!(&*k.decrypt(p, &ct).unwrap(), &secret);
                    assert_eq!(&*k.decrypt_with_rsa(p, &ct).unwrap(), &secret);
                    // One bit flipped: a bad padding (nearly always).
                    let mut bad = ct.clone();
                    bad[size / 2] ^= 1;
                    compare(&k, p, &bad);
                }
                let mut rng = rand::rng();
                for _ in 0..24 {
                    let mut ct = vec![0u8; size];
                    rng.fill(&mut ct[..]);
                    ct[0] &= 0x3f; // below the modulus (its top bit is set)
                    compare(&k, p, &ct);
                }
                // Not below the modulus: an error in both, never a synthetic message.
                let ct = vec![0xffu8; size];
                assert_eq!(k.decrypt(p, &ct).unwrap_err().kind(), ErrorKind::Decrypt);
                assert_eq!(
                    k.decrypt_with_rsa(p, &ct).unwrap_err().kind(),
                    ErrorKind::Decrypt
                );
            }
        }
    }

    fn compare(k: &RsaPrivateKey, p: &RsaPadding, ct: &[u8]) {
        match (k.decrypt(p, ct), k.decrypt_with_rsa(p, ct)) {
            (Ok(a), Ok(b)) => assert_eq!(&*a, &*b, "{p:?}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), ErrorKind::Decrypt);
                assert_eq!(b.kind(), ErrorKind::Decrypt);
            }
            (a, b) => panic!("{p:?}: fast {:?}, rsa {:?}", a.is_ok(), b.is_ok()),
        }
        if *p == RsaPadding::Pkcs1v15 {
            // Implicit rejection in both: never an error for a ciphertext below the modulus.
            assert!(k.decrypt(p, ct).is_ok());
        }
    }
}
