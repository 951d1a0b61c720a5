//! The fast backend (feature `aws-lc`): RSA private-key decryption through AWS-LC, about five
//! times faster than the pure-Rust `rsa` crate (CRATES.md §7).
//!
//! AWS-LC does: PKCS#1 v1.5, and OAEP when the digest and the MGF1 digest are the same SHA-1,
//! SHA-256, SHA-384 or SHA-512 (labels included), for 2048- to 8192-bit keys. Everything else
//! stays with `rsa`, decided per call before any private operation: OAEP with mixed digests
//! (xmlenc11 `rsa-oaep` with SHA-256 and its default MGF1-SHA-1), SHA-224, keys AWS-LC refuses
//! (under 2048 bits), and signing, encryption and key generation (not on the hot path).
//!
//! # PKCS#1 v1.5 without a padding oracle
//!
//! AWS-LC rejects a bad PKCS#1 v1.5 padding with an error; the `rsa` backend answers with a
//! synthetic message instead (implicit rejection, draft-irtf-cfrg-rsa-guidance §7.2), so that
//! "bad padding" and "good padding, wrong key" look alike to everything downstream. We keep the
//! second behaviour, bit for bit: the synthetic message is derived as the draft says (and as
//! `rsa` derives it) from the private exponent and the ciphertext, computed on **every** call
//! whether AWS-LC succeeded or not, and the answer is chosen between the two with a
//! constant-time select. The alternatives, and why not:
//!
//! - falling back to `rsa` when AWS-LC fails: a second private operation (about 1 ms) only on bad
//!   padding is a padding oracle anyone with a stopwatch can read;
//! - substituting a random key of the expected length (TLS, RFC 5246 §7.4.7.1): sound, but
//!   [`RsaPrivateKey::decrypt`](super::RsaPrivateKey::decrypt) does not know the expected
//!   length (the XML Encryption engine tries candidate keys before it knows which content key
//!   it unwraps), and a random answer would make the two backends disagree on the same input.
//!
//! What is left: AWS-LC decodes the padding in constant time but reports failure through its
//! error path, and `aws-lc-rs` branches on it; that is a difference of well under a microsecond
//! on a 230 µs operation. dpwrap decrypts key files at rest, where no attacker submits
//! ciphertexts and times the answers; a service that decrypts attacker-chosen rsa-1_5
//! ciphertexts and exposes its timing should build without `aws-lc`, or not accept rsa-1_5.
//!
//! # Key material
//!
//! AWS-LC holds its own copy of the private key in C memory (two `EVP_PKEY`s, one per padding
//! family, imported from the PKCS#8 DER in a wiped buffer). It is freed with the key, and
//! AWS-LC's allocator wipes every allocation it frees (`OPENSSL_free` cleanses), but unlike the
//! Rust copy it is outside `zeroize`'s reach while alive. The SHA-256 of the private exponent
//! (the implicit-rejection key) is kept in a `Zeroizing` buffer.

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepAlgorithm, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
};
use hmac::{Hmac, KeyInit, Mac};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeGreater};
use zeroize::Zeroizing;

use super::{Digest, RsaPadding};
use crate::error::{Error, Result};

/// A key as AWS-LC holds it.
pub(super) struct Fast {
    pkcs1: Pkcs1PrivateDecryptingKey,
    oaep: OaepPrivateDecryptingKey,
    /// `SHA-256(I2OSP(d, k))`: the key of the implicit-rejection KDF (draft §7.1 step 3.1.2).
    dh: Zeroizing<[u8; 32]>,
    /// The modulus, big-endian, `k` bytes (to refuse ciphertexts ≥ n as `rsa` does).
    modulus: Vec<u8>,
}

impl Fast {
    /// Imports `key` (given also as PKCS#8 DER). `None` when AWS-LC refuses it.
    pub(super) fn new(key: &rsa::PrivateKey, pkcs8: &[u8]) -> Option<Fast> {
        let k = key.size();
        let pkcs1 =
            Pkcs1PrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(pkcs8).ok()?).ok()?;
        let oaep =
            OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(pkcs8).ok()?).ok()?;
        if pkcs1.key_size_bytes() != k || oaep.key_size_bytes() != k {
            return None;
        }
        let d = Zeroizing::new(key.d().to_be_bytes());
        let d = i2osp(&d, k)?;
        let dh = Zeroizing::new(Sha256::digest(&*d).into());
        let modulus = i2osp(&key.n_bytes(), k)?.to_vec();
        Some(Fast {
            pkcs1,
            oaep,
            dh,
            modulus,
        })
    }

    /// Whether AWS-LC does `padding`.
    pub(super) fn supports(&self, padding: &RsaPadding) -> bool {
        match padding {
            RsaPadding::Pkcs1v15 => true,
            RsaPadding::Oaep { digest, mgf, .. } => oaep_algorithm(*digest, *mgf).is_some(),
        }
    }

    /// Decrypts with AWS-LC, or `None` when `padding` is one AWS-LC cannot do (the caller then
    /// uses `rsa`). The ciphertext length has been checked against the key size.
    pub(super) fn decrypt(
        &self,
        padding: &RsaPadding,
        ciphertext: &[u8],
    ) -> Option<Result<Zeroizing<Vec<u8>>>> {
        match padding {
            RsaPadding::Pkcs1v15 => Some(self.pkcs1v15(ciphertext)),
            RsaPadding::Oaep { digest, mgf, label } => {
                let algorithm = oaep_algorithm(*digest, *mgf)?;
                let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
                let n = self
                    .oaep
                    .decrypt(algorithm, ciphertext, &mut out, label.as_deref())
                    .map(|m| m.len());
                Some(match n {
                    Ok(n) => {
                        out.truncate(n);
                        Ok(out)
                    }
                    Err(_) => Err(Error::decrypt()),
                })
            }
        }
    }

    /// PKCS#1 v1.5 with implicit rejection (see the module docs).
    fn pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.modulus.len();
        // Public checks, the ones `rsa` makes before its private operation: a ciphertext of the
        // wrong length or not below the modulus is an error there too, not a synthetic message.
        if ciphertext.len() != k || ciphertext >= self.modulus.as_slice() {
            return Err(Error::decrypt());
        }
        let mut em = Zeroizing::new(vec![0u8; self.pkcs1.min_output_size().max(k)]);
        let real = self.pkcs1.decrypt(ciphertext, &mut em).map(|m| m.len());
        let (am, al) = self.alternative_message(ciphertext, k)?;

        let valid = Choice::from(u8::from(real.is_ok()));
        let real_len = u32::try_from(*real.as_ref().unwrap_or(&0)).unwrap_or(0);
        let length = u32::conditional_select(&u32::from(al), &real_len, valid);
        // The returned length is public (draft §7.2 step 5); both buffers are read at offsets
        // that depend on it alone.
        let n = usize::try_from(length).map_err(|_| Error::decrypt())?;
        let start = k.checked_sub(n).ok_or_else(Error::decrypt)?;
        let synthetic = am.get(start..).ok_or_else(Error::decrypt)?;
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        out.extend(
            em.iter()
                .zip(synthetic)
                .map(|(r, s)| u8::conditional_select(s, r, valid)),
        );
        if out.len() != n {
            return Err(Error::decrypt());
        }
        Ok(out)
    }

    /// Draft §7.2 step 3: the alternative message AM (`k` bytes) and its length AL.
    fn alternative_message(
        &self,
        ciphertext: &[u8],
        k: usize,
    ) -> Result<(Zeroizing<Vec<u8>>, u16)> {
        // Step 3.1.3: KDK = HMAC-SHA256(DH, C).
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.dh.as_ref())
            .map_err(|_| Error::decrypt())?;
        mac.update(ciphertext);
        let kdk: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
        let max_message_len = k
            .checked_sub(11)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or_else(Error::decrypt)?;
        // Steps 3.2.1-3.2.2: CL = IRPRF(KDK, "length", 256), AM = IRPRF(KDK, "message", k).
        let cl = irprf(&kdk, b"length", 256)?;
        let am = irprf(&kdk, b"message", k)?;
        // Step 3.3: AL is the last of the 128 candidate lengths (masked to the bit length of
        // k - 11) that is at most k - 11, or 0.
        let mut mask = max_message_len;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        let al = cl.chunks_exact(2).fold(0u16, |al, pair| {
            let candidate = match pair {
                [a, b] => u16::from_be_bytes([*a, *b]) & mask,
                _ => 0,
            };
            u16::conditional_select(&al, &candidate, !candidate.ct_gt(&max_message_len))
        });
        Ok((am, al))
    }
}

/// Draft §7.1: `IRPRF(KDK, label, length)`, HMAC-SHA256 in counter mode.
fn irprf(kdk: &[u8; 32], label: &[u8], length: usize) -> Result<Zeroizing<Vec<u8>>> {
    let bits = length
        .checked_mul(8)
        .and_then(|b| u16::try_from(b).ok())
        .ok_or_else(Error::decrypt)?
        .to_be_bytes();
    let mut out = Zeroizing::new(vec![0u8; length]);
    for (i, chunk) in (0u16..).zip(out.chunks_mut(32)) {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(kdk).map_err(|_| Error::decrypt())?;
        mac.update(&i.to_be_bytes());
        mac.update(label);
        mac.update(&bits);
        let block: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o = *b;
        }
    }
    Ok(out)
}

/// `bytes` (big-endian; longer than `k` only by leading zeros, as an integer of a wider
/// precision is) as exactly `k` bytes, without looking at the value.
fn i2osp(bytes: &[u8], k: usize) -> Option<Zeroizing<Vec<u8>>> {
    match bytes.len().checked_sub(k) {
        Some(extra) => Some(Zeroizing::new(bytes.get(extra..)?.to_vec())),
        None => {
            let mut out = Zeroizing::new(vec![0u8; k - bytes.len()]);
            out.extend_from_slice(bytes);
            Some(out)
        }
    }
}

/// The AWS-LC OAEP algorithm for a digest and MGF1 digest, if it has one.
fn oaep_algorithm(digest: Digest, mgf: Digest) -> Option<&'static OaepAlgorithm> {
    if digest != mgf {
        return None;
    }
    match digest {
        Digest::Sha1 => Some(&OAEP_SHA1_MGF1SHA1),
        Digest::Sha256 => Some(&OAEP_SHA256_MGF1SHA256),
        Digest::Sha384 => Some(&OAEP_SHA384_MGF1SHA384),
        Digest::Sha512 => Some(&OAEP_SHA512_MGF1SHA512),
        Digest::Sha224 => None,
    }
}
