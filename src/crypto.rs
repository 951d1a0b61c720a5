//! The one place that touches cryptographic primitives: content encryption (AES-CBC, 3DES-CBC,
//! AES-GCM), key wrapping (RFC 3394 AES-KW, RFC 3217 3DES-KW) and RSA key transport (PKCS#1 v1.5,
//! OAEP with any SHA-1/SHA-2 digest and MGF).
//!
//! Every decryption failure here is the uniform [`Error::decrypt`]: callers cannot tell a wrong
//! key from bad padding or tampering, and neither can anyone watching their errors. Every buffer
//! that holds key material or plaintext is a `Zeroizing` value.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

pub mod pbe;
pub mod rsa_key;

pub use rsa_key::{RsaPadding, RsaPrivateKey, RsaPublicKey};

/// Fills a fresh buffer of `len` bytes from the operating system's generator.
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut v = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut v).map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            format!("the system random generator failed: {e}"),
        )
    })?;
    Ok(v)
}

/// A digest, for OAEP and for thumbprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Digest {
    /// Hashes `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Digest::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Digest::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Digest::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Digest::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Digest::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// A content (bulk) encryption algorithm of XML Encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentAlgorithm {
    /// `xenc#aes128-cbc`.
    Aes128Cbc,
    /// `xenc#aes192-cbc`.
    Aes192Cbc,
    /// `xenc#aes256-cbc`.
    Aes256Cbc,
    /// `xenc#tripledes-cbc`.
    TripleDesCbc,
    /// `xenc11#aes128-gcm`.
    Aes128Gcm,
    /// `xenc11#aes192-gcm`.
    Aes192Gcm,
    /// `xenc11#aes256-gcm`.
    Aes256Gcm,
}

const GCM_IV: usize = 12;
const GCM_TAG: usize = 16;

impl ContentAlgorithm {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ContentAlgorithm::Aes128Cbc | ContentAlgorithm::Aes128Gcm => 16,
            ContentAlgorithm::Aes192Cbc
            | ContentAlgorithm::Aes192Gcm
            | ContentAlgorithm::TripleDesCbc => 24,
            ContentAlgorithm::Aes256Cbc | ContentAlgorithm::Aes256Gcm => 32,
        }
    }

    /// The IV length in bytes (prefixed to the ciphertext in XML Encryption).
    pub fn iv_len(self) -> usize {
        match self {
            ContentAlgorithm::TripleDesCbc => 8,
            ContentAlgorithm::Aes128Gcm
            | ContentAlgorithm::Aes192Gcm
            | ContentAlgorithm::Aes256Gcm => GCM_IV,
            _ => 16,
        }
    }

    /// The AES-CBC algorithm for a key of `len` bytes (the Azure format sizes AES from the key).
    pub fn aes_cbc_for_key_len(len: usize) -> Option<ContentAlgorithm> {
        match len {
            16 => Some(ContentAlgorithm::Aes128Cbc),
            24 => Some(ContentAlgorithm::Aes192Cbc),
            32 => Some(ContentAlgorithm::Aes256Cbc),
            _ => None,
        }
    }

    /// Decrypts XML Encryption cipher data: `IV ‖ ciphertext` for CBC (xmlenc / ISO 10126
    /// padding: only the last byte is checked, as .NET checks it), `IV ‖ ciphertext ‖ tag` for GCM.
    pub fn decrypt(self, key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if key.len() != self.key_len() {
            return Err(Error::decrypt());
        }
        let iv_len = self.iv_len();
        let (iv, rest) = data.split_at_checked(iv_len).ok_or_else(Error::decrypt)?;
        match self {
            ContentAlgorithm::Aes128Gcm
            | ContentAlgorithm::Aes192Gcm
            | ContentAlgorithm::Aes256Gcm => gcm_decrypt(self, key, iv, rest),
            _ => self.cbc_decrypt(key, iv, rest),
        }
    }

    /// Decrypts CBC ciphertext with a separate IV (the Azure Key Vault format).
    pub fn cbc_decrypt(
        self,
        key: &[u8],
        iv: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let block = if self == ContentAlgorithm::TripleDesCbc {
            8
        } else {
            16
        };
        if ciphertext.is_empty()
            || !ciphertext.len().is_multiple_of(block)
            || iv.len() != block
            || key.len() != self.key_len()
        {
            return Err(Error::decrypt());
        }
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let ok = match self {
            ContentAlgorithm::Aes128Cbc => cbc_dec::<aes::Aes128>(key, iv, &mut buf),
            ContentAlgorithm::Aes192Cbc => cbc_dec::<aes::Aes192>(key, iv, &mut buf),
            ContentAlgorithm::Aes256Cbc => cbc_dec::<aes::Aes256>(key, iv, &mut buf),
            ContentAlgorithm::TripleDesCbc => cbc_dec::<des::TdesEde3>(key, iv, &mut buf),
            _ => false,
        };
        if !ok {
            return Err(Error::decrypt());
        }
        let pad = usize::from(buf.last().copied().unwrap_or(0));
        if pad == 0 || pad > block || pad > buf.len() {
            return Err(Error::decrypt());
        }
        let len = buf.len() - pad;
        buf.truncate(len);
        Ok(buf)
    }

    /// Encrypts with a fresh random IV, returning `IV ‖ ciphertext` (‖ tag for GCM). CBC uses
    /// PKCS#7 padding, which is one valid instance of ISO 10126 (what .NET expects).
    pub fn encrypt(self, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let iv = random_bytes(self.iv_len())?;
        match self {
            ContentAlgorithm::Aes128Gcm
            | ContentAlgorithm::Aes192Gcm
            | ContentAlgorithm::Aes256Gcm => {
                let ct = gcm_encrypt(self, key, &iv, plaintext)?;
                let mut out = Vec::with_capacity(iv.len() + ct.len());
                out.extend_from_slice(&iv);
                out.extend_from_slice(&ct);
                Ok(out)
            }
            _ => {
                let ct = self.cbc_encrypt(key, &iv, plaintext)?;
                let mut out = Vec::with_capacity(iv.len() + ct.len());
                out.extend_from_slice(&iv);
                out.extend_from_slice(&ct);
                Ok(out)
            }
        }
    }

    /// CBC-encrypts with PKCS#7 padding under a given IV (the Azure format keeps the IV apart).
    pub fn cbc_encrypt(self, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let block = if self == ContentAlgorithm::TripleDesCbc {
            8
        } else {
            16
        };
        if key.len() != self.key_len() || iv.len() != block {
            return Err(Error::new(
                ErrorKind::Config,
                "wrong key or IV length for the content algorithm",
            ));
        }
        let pad = block - plaintext.len() % block;
        let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
        buf.extend_from_slice(plaintext);
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let ok = match self {
            ContentAlgorithm::Aes128Cbc => cbc_enc::<aes::Aes128>(key, iv, &mut buf),
            ContentAlgorithm::Aes192Cbc => cbc_enc::<aes::Aes192>(key, iv, &mut buf),
            ContentAlgorithm::Aes256Cbc => cbc_enc::<aes::Aes256>(key, iv, &mut buf),
            ContentAlgorithm::TripleDesCbc => cbc_enc::<des::TdesEde3>(key, iv, &mut buf),
            _ => false,
        };
        if !ok {
            return Err(Error::new(
                ErrorKind::Config,
                "the content algorithm is not a CBC algorithm",
            ));
        }
        Ok(buf.to_vec())
    }
}

fn cbc_dec<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> bool
where
    C: aes::cipher::BlockCipherDecrypt + KeyInit,
    cbc::Decryptor<C>: KeyIvInit + BlockModeDecrypt,
{
    match cbc::Decryptor::<C>::new_from_slices(key, iv) {
        Ok(d) => d.decrypt_padded::<NoPadding>(buf).is_ok(),
        Err(_) => false,
    }
}

fn cbc_enc<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> bool
where
    C: aes::cipher::BlockCipherEncrypt + KeyInit,
    cbc::Encryptor<C>: KeyIvInit + BlockModeEncrypt,
{
    let len = buf.len();
    match cbc::Encryptor::<C>::new_from_slices(key, iv) {
        Ok(e) => e.encrypt_padded::<NoPadding>(buf, len).is_ok(),
        Err(_) => false,
    }
}

fn gcm_decrypt(
    alg: ContentAlgorithm,
    key: &[u8],
    iv: &[u8],
    ct_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    use aes_gcm::aead::{Aead, Nonce};
    if ct_and_tag.len() < GCM_TAG || iv.len() != GCM_IV {
        return Err(Error::decrypt());
    }
    fn run<C: Aead + aes_gcm::aead::KeyInit>(key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
        let cipher = C::new_from_slice(key).ok()?;
        let nonce = Nonce::<C>::try_from(iv).ok()?;
        cipher.decrypt(&nonce, ct).ok()
    }
    type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;
    let out = match alg {
        ContentAlgorithm::Aes128Gcm => run::<aes_gcm::Aes128Gcm>(key, iv, ct_and_tag),
        ContentAlgorithm::Aes192Gcm => run::<Aes192Gcm>(key, iv, ct_and_tag),
        ContentAlgorithm::Aes256Gcm => run::<aes_gcm::Aes256Gcm>(key, iv, ct_and_tag),
        _ => None,
    };
    out.map(Zeroizing::new).ok_or_else(Error::decrypt)
}

fn gcm_encrypt(alg: ContentAlgorithm, key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    use aes_gcm::aead::{Aead, Nonce};
    fn run<C: Aead + aes_gcm::aead::KeyInit>(key: &[u8], iv: &[u8], pt: &[u8]) -> Option<Vec<u8>> {
        let cipher = C::new_from_slice(key).ok()?;
        let nonce = Nonce::<C>::try_from(iv).ok()?;
        cipher.encrypt(&nonce, pt).ok()
    }
    type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;
    let out = match alg {
        ContentAlgorithm::Aes128Gcm => run::<aes_gcm::Aes128Gcm>(key, iv, pt),
        ContentAlgorithm::Aes192Gcm => run::<Aes192Gcm>(key, iv, pt),
        ContentAlgorithm::Aes256Gcm => run::<aes_gcm::Aes256Gcm>(key, iv, pt),
        _ => None,
    };
    out.ok_or_else(|| Error::new(ErrorKind::Config, "wrong key length for AES-GCM"))
}

/// A symmetric key-wrap algorithm of XML Encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyWrapAlgorithm {
    /// `xenc#kw-aes128` (RFC 3394).
    Aes128,
    /// `xenc#kw-aes192` (RFC 3394).
    Aes192,
    /// `xenc#kw-aes256` (RFC 3394).
    Aes256,
    /// `xenc#kw-tripledes` (RFC 3217).
    TripleDes,
}

/// Largest key accepted for wrapping or unwrapping (an RSA-size key is far beyond any content key).
const MAX_WRAPPED: usize = 1024;

impl KeyWrapAlgorithm {
    /// The key-encryption key length in bytes.
    pub fn kek_len(self) -> usize {
        match self {
            KeyWrapAlgorithm::Aes128 => 16,
            KeyWrapAlgorithm::Aes192 | KeyWrapAlgorithm::TripleDes => 24,
            KeyWrapAlgorithm::Aes256 => 32,
        }
    }

    /// Unwraps `wrapped` under `kek`, checking the integrity value.
    pub fn unwrap(self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if kek.len() != self.kek_len() || wrapped.len() > MAX_WRAPPED {
            return Err(Error::decrypt());
        }
        match self {
            KeyWrapAlgorithm::Aes128 => aes_unwrap::<aes::Aes128>(kek, wrapped),
            KeyWrapAlgorithm::Aes192 => aes_unwrap::<aes::Aes192>(kek, wrapped),
            KeyWrapAlgorithm::Aes256 => aes_unwrap::<aes::Aes256>(kek, wrapped),
            KeyWrapAlgorithm::TripleDes => tdes_unwrap(kek, wrapped),
        }
    }

    /// Wraps `key` under `kek`.
    pub fn wrap(self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        if kek.len() != self.kek_len() || key.len() > MAX_WRAPPED {
            return Err(Error::new(
                ErrorKind::Config,
                "wrong key length for key wrapping",
            ));
        }
        match self {
            KeyWrapAlgorithm::Aes128 => aes_wrap::<aes::Aes128>(kek, key),
            KeyWrapAlgorithm::Aes192 => aes_wrap::<aes::Aes192>(kek, key),
            KeyWrapAlgorithm::Aes256 => aes_wrap::<aes::Aes256>(kek, key),
            KeyWrapAlgorithm::TripleDes => tdes_wrap(kek, key),
        }
    }
}

fn aes_unwrap<C>(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>>
where
    C: aes::cipher::BlockCipherEncrypt
        + aes::cipher::BlockCipherDecrypt
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>
        + KeyInit,
{
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::decrypt());
    }
    let kw = aes_kw::AesKw::<C>::new_from_slice(kek).map_err(|_| Error::decrypt())?;
    let mut buf = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    let len = kw
        .unwrap_key(wrapped, &mut buf)
        .map_err(|_| Error::decrypt())?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn aes_wrap<C>(kek: &[u8], key: &[u8]) -> Result<Vec<u8>>
where
    C: aes::cipher::BlockCipherEncrypt
        + aes::cipher::BlockCipherDecrypt
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>
        + KeyInit,
{
    if key.len() < 16 || !key.len().is_multiple_of(8) {
        return Err(Error::new(
            ErrorKind::Config,
            "AES key wrap needs a key of a multiple of 8 bytes, at least 16",
        ));
    }
    let kw = aes_kw::AesKw::<C>::new_from_slice(kek)
        .map_err(|_| Error::new(ErrorKind::Config, "wrong key-encryption key length"))?;
    let mut buf = vec![0u8; key.len() + 8];
    let len = kw
        .wrap_key(key, &mut buf)
        .map_err(|_| Error::new(ErrorKind::Config, "AES key wrap failed"))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// RFC 3217 §3.1 fixed IV for the outer 3DES-CBC pass.
const TDES_KW_IV: [u8; 8] = [0x4a, 0xdd, 0xa2, 0x2c, 0x79, 0xe8, 0x21, 0x05];

fn cms_key_checksum(key: &[u8]) -> [u8; 8] {
    let h = Digest::Sha1.hash(key);
    let mut icv = [0u8; 8];
    for (d, s) in icv.iter_mut().zip(h.iter()) {
        *d = *s;
    }
    icv
}

fn tdes_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    // RFC 3217 §3.2: at least IV + one block of key + ICV.
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::decrypt());
    }
    let mut temp = Zeroizing::new(wrapped.to_vec());
    if !cbc_dec::<des::TdesEde3>(kek, &TDES_KW_IV, &mut temp) {
        return Err(Error::decrypt());
    }
    temp.reverse();
    let (iv, rest) = temp.split_at(8);
    let mut wkcks = Zeroizing::new(rest.to_vec());
    if !cbc_dec::<des::TdesEde3>(kek, iv, &mut wkcks) {
        return Err(Error::decrypt());
    }
    let (cek, icv) = wkcks.split_at(wkcks.len() - 8);
    let expected = cms_key_checksum(cek);
    let mut diff = 0u8;
    for (a, b) in icv.iter().zip(expected.iter()) {
        diff |= a ^ b;
    }
    if diff != 0 {
        return Err(Error::decrypt());
    }
    Ok(Zeroizing::new(cek.to_vec()))
}

fn tdes_wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    if key.is_empty() || !key.len().is_multiple_of(8) {
        return Err(Error::new(
            ErrorKind::Config,
            "3DES key wrap needs a key of a multiple of 8 bytes",
        ));
    }
    let iv = random_bytes(8)?;
    let mut temp1 = Zeroizing::new(Vec::with_capacity(key.len() + 8));
    temp1.extend_from_slice(key);
    temp1.extend_from_slice(&cms_key_checksum(key));
    if !cbc_enc::<des::TdesEde3>(kek, &iv, &mut temp1) {
        return Err(Error::new(ErrorKind::Config, "3DES key wrap failed"));
    }
    let mut temp3 = Vec::with_capacity(temp1.len() + 8);
    temp3.extend_from_slice(&iv);
    temp3.extend_from_slice(&temp1);
    temp3.reverse();
    if !cbc_enc::<des::TdesEde3>(kek, &TDES_KW_IV, &mut temp3) {
        return Err(Error::new(ErrorKind::Config, "3DES key wrap failed"));
    }
    Ok(temp3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc3394_vector() {
        // RFC 3394 §4.1: 128-bit KEK, 128-bit key.
        let kek = hex("000102030405060708090A0B0C0D0E0F");
        let key = hex("00112233445566778899AABBCCDDEEFF");
        let wrapped = hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
        assert_eq!(KeyWrapAlgorithm::Aes128.wrap(&kek, &key).unwrap(), wrapped);
        assert_eq!(
            &*KeyWrapAlgorithm::Aes128.unwrap(&kek, &wrapped).unwrap(),
            &key[..]
        );
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert_eq!(
            KeyWrapAlgorithm::Aes128
                .unwrap(&kek, &bad)
                .unwrap_err()
                .kind(),
            ErrorKind::Decrypt
        );
    }

    #[test]
    fn tdes_wrap_round_trip_and_integrity() {
        let kek = hex("255e0d1c07b646dfb3134cc843ba8aa71f025b7c0838251f");
        let key = hex("2923bf85e06dd6ae529149f1f1bae9eab3a7da3d860d3e98");
        let w = KeyWrapAlgorithm::TripleDes.wrap(&kek, &key).unwrap();
        assert_eq!(w.len(), 40);
        assert_eq!(
            &*KeyWrapAlgorithm::TripleDes.unwrap(&kek, &w).unwrap(),
            &key[..]
        );
        let mut bad = w.clone();
        bad[10] ^= 1;
        assert!(KeyWrapAlgorithm::TripleDes.unwrap(&kek, &bad).is_err());
    }

    #[test]
    fn cbc_accepts_iso10126_filler_and_rejects_bad_length() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        // ISO 10126: random filler, last byte the count.
        let mut pt = b"hello".to_vec();
        pt.extend_from_slice(&[0xAB; 10]);
        pt.push(11);
        let mut ct = pt.clone();
        assert!(cbc_enc::<aes::Aes256>(&key, &iv, &mut ct));
        let out = ContentAlgorithm::Aes256Cbc
            .cbc_decrypt(&key, &iv, &ct)
            .unwrap();
        assert_eq!(&*out, b"hello");
        for alg in [
            ContentAlgorithm::Aes128Cbc,
            ContentAlgorithm::TripleDesCbc,
            ContentAlgorithm::Aes256Gcm,
        ] {
            let key = random_bytes(alg.key_len()).unwrap();
            let data = alg.encrypt(&key, b"round trip").unwrap();
            assert_eq!(&*alg.decrypt(&key, &data).unwrap(), b"round trip");
            let mut t = data.clone();
            let last = t.len() - 1;
            t[last] ^= 0x55;
            // Tampering the last block: CBC may or may not unpad, GCM must fail.
            if matches!(alg, ContentAlgorithm::Aes256Gcm) {
                assert_eq!(
                    alg.decrypt(&key, &t).unwrap_err().kind(),
                    ErrorKind::Decrypt
                );
            }
            assert_eq!(
                alg.decrypt(&key, &data[..data.len() - 1])
                    .unwrap_err()
                    .kind(),
                ErrorKind::Decrypt
            );
            assert_eq!(
                alg.decrypt(&key[1..], &data).unwrap_err().kind(),
                ErrorKind::Decrypt
            );
        }
    }
}
