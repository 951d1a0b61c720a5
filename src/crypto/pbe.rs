//! Password-based decryption of private keys: the schemes found in encrypted PKCS#8
//! (`ENCRYPTED PRIVATE KEY`) and in OpenSSL's traditional encrypted PEM.
//!
//! - PBES2 (PKCS#5 v2): PBKDF2 with HMAC-SHA-1/SHA-2 or scrypt, then AES-CBC/GCM, 3DES-CBC or
//!   DES-CBC (through the `pkcs5` crate).
//! - PBES1 (PKCS#5 v1.5): PBKDF1 with MD5 or SHA-1, then DES-CBC (the 2002 W3C vectors use it).
//! - PKCS#12 PBE (RFC 7292 appendix C) inside PKCS#8: SHA-1 with 3-key or 2-key 3DES-CBC, or
//!   RC2-CBC with a 40- or 128-bit key (what `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES` writes).
//! - OpenSSL traditional PEM (`Proc-Type: 4,ENCRYPTED`): EVP_BytesToKey with MD5 and one round.
//!
//! Every derived key, IV and plaintext is wiped on drop. A wrong password shows up as a padding
//! failure (or, later, as a structure that does not parse); both get the same message, which never
//! contains the password. Work factors read from the file are bounded before any derivation runs.

use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Reader};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Most PBKDF1/PBKDF2/PKCS#12-KDF iterations accepted (OpenSSL writes 2048, Windows 2000 to
/// 600 000); a hostile file must not make us spin for minutes.
pub(crate) const MAX_ITERATIONS: u64 = 1_000_000;

/// Most scrypt memory accepted (128 · N · r bytes). OpenSSL's default uses 16 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;

/// Most scrypt parallelism accepted.
const MAX_SCRYPT_P: u16 = 16;

/// Largest encrypted key accepted (an RSA-16384 PKCS#8 key is about 9.4 KiB).
const MAX_CIPHERTEXT: usize = 64 * 1024;

const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBE_MD5_DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.3");
const PBE_SHA1_DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.10");
const PKCS12_PBE_SHA_RC4_128: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.1");
const PKCS12_PBE_SHA_RC4_40: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.2");
const PKCS12_PBE_SHA_3DES3: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const PKCS12_PBE_SHA_3DES2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4");
const PKCS12_PBE_SHA_RC2_128: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5");
const PKCS12_PBE_SHA_RC2_40: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");

const WRONG_PASSWORD: &str = "wrong password, or the encrypted private key is damaged";

/// The error for a failed decryption: the password is the usual culprit.
pub(crate) fn wrong_password() -> Error {
    Error::certificate(WRONG_PASSWORD)
}

fn malformed() -> Error {
    Error::certificate("the encrypted private key's algorithm parameters are malformed")
}

fn too_costly(what: &str) -> Error {
    Error::certificate(format!(
        "the encrypted private key asks for more key-derivation work than dpwrap allows ({what}); \
         re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc"
    ))
}

/// Decrypts the `encryptedData` of a PKCS#8 `EncryptedPrivateKeyInfo` whose
/// `encryptionAlgorithm` is `oid` with DER-encoded `params`.
pub(crate) fn decrypt_pkcs8(
    oid: ObjectIdentifier,
    params: Option<&[u8]>,
    ciphertext: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() > MAX_CIPHERTEXT {
        return Err(Error::certificate(
            "the encrypted private key is larger than any RSA key dpwrap accepts",
        ));
    }
    let params = params.ok_or_else(malformed)?;
    match oid {
        PBES2 => pbes2(params, ciphertext, password),
        PBE_MD5_DES => pbes1(Pbkdf1::Md5, params, ciphertext, password),
        PBE_SHA1_DES => pbes1(Pbkdf1::Sha1, params, ciphertext, password),
        PKCS12_PBE_SHA_3DES3 => pkcs12_pbe(Pkcs12Cipher::TripleDes3, params, ciphertext, password),
        PKCS12_PBE_SHA_3DES2 => pkcs12_pbe(Pkcs12Cipher::TripleDes2, params, ciphertext, password),
        PKCS12_PBE_SHA_RC2_128 => pkcs12_pbe(Pkcs12Cipher::Rc2_128, params, ciphertext, password),
        PKCS12_PBE_SHA_RC2_40 => pkcs12_pbe(Pkcs12Cipher::Rc2_40, params, ciphertext, password),
        PKCS12_PBE_SHA_RC4_128 | PKCS12_PBE_SHA_RC4_40 => Err(unsupported(oid, "RC4")),
        other => Err(unsupported(other, "an unknown scheme")),
    }
}

fn unsupported(oid: ObjectIdentifier, name: &str) -> Error {
    Error::certificate(format!(
        "the private key is encrypted with {name} ({oid}), which dpwrap does not support; \
         re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc"
    ))
}

fn pbes2(params: &[u8], ciphertext: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>> {
    let params = pkcs5::pbes2::Parameters::from_der(params).map_err(|_| {
        Error::certificate(
            "the private key uses a PBES2 key derivation or cipher that dpwrap does not support; \
             re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc",
        )
    })?;
    match &params.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(p) => {
            if u64::from(p.iteration_count) > MAX_ITERATIONS {
                return Err(too_costly(&format!(
                    "PBKDF2 iterations over {MAX_ITERATIONS}"
                )));
            }
        }
        pkcs5::pbes2::Kdf::Scrypt(p) => {
            let memory = 128u64
                .checked_mul(p.cost_parameter)
                .and_then(|m| m.checked_mul(u64::from(p.block_size)));
            if p.parallelization > MAX_SCRYPT_P || memory.is_none_or(|m| m > MAX_SCRYPT_MEMORY) {
                return Err(too_costly(&format!(
                    "scrypt memory over {} MiB or parallelism over {MAX_SCRYPT_P}",
                    MAX_SCRYPT_MEMORY >> 20
                )));
            }
        }
        _ => {
            return Err(Error::certificate(
                "the private key uses a PBES2 key derivation dpwrap does not support; re-encrypt \
                 it with openssl pkcs8 -topk8 -v2 aes-256-cbc",
            ));
        }
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = params
        .decrypt_in_place(password.as_bytes(), &mut buf)
        .map_err(|e| match e {
            pkcs5::Error::UnsupportedAlgorithm { .. } => Error::certificate(
                "the private key uses a PBES2 cipher that dpwrap does not support; re-encrypt it \
                 with openssl pkcs8 -topk8 -v2 aes-256-cbc",
            ),
            _ => wrong_password(),
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Reads the `SEQUENCE { salt OCTET STRING, iterationCount INTEGER }` shared by PBES1 and the
/// PKCS#12 PBE schemes.
fn salt_and_iterations(params: &[u8]) -> Result<(Vec<u8>, u64)> {
    let mut reader = der::SliceReader::new(params).map_err(|_| malformed())?;
    let (salt, iterations) = reader
        .sequence(|r| {
            let salt = der::asn1::OctetString::decode(r)?;
            let iterations = u64::decode(r)?;
            Ok::<_, der::Error>((salt.into_bytes().into_vec(), iterations))
        })
        .map_err(|_| malformed())?;
    reader.finish().map_err(|_| malformed())?;
    if iterations == 0 || salt.len() > 64 {
        return Err(malformed());
    }
    if iterations > MAX_ITERATIONS {
        return Err(too_costly(&format!("iterations over {MAX_ITERATIONS}")));
    }
    Ok((salt, iterations))
}

#[derive(Clone, Copy)]
enum Pbkdf1 {
    Md5,
    Sha1,
}

/// PBES1 (RFC 8018 §6.1): DK = H^c(P ‖ S); key = DK[0..8], IV = DK[8..16]; DES-CBC.
fn pbes1(
    hash: Pbkdf1,
    params: &[u8],
    ciphertext: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let (salt, iterations) = salt_and_iterations(params)?;
    if salt.len() != 8 {
        return Err(malformed());
    }
    let mut dk = Zeroizing::new(Vec::with_capacity(20));
    // Room for the digests too: growing the buffer would free a copy of the password unwiped.
    let mut input = Zeroizing::new(Vec::with_capacity((password.len() + salt.len()).max(20)));
    input.extend_from_slice(password.as_bytes());
    input.extend_from_slice(&salt);
    for _ in 0..iterations {
        let out = match hash {
            Pbkdf1::Md5 => {
                use md5::Digest as _;
                Zeroizing::new(md5::Md5::digest(&*input).to_vec())
            }
            Pbkdf1::Sha1 => {
                use sha1::Digest as _;
                Zeroizing::new(sha1::Sha1::digest(&*input).to_vec())
            }
        };
        input.clear();
        input.extend_from_slice(&out);
        dk.clear();
        dk.extend_from_slice(&out);
        let mut out = out;
        zeroize::Zeroize::zeroize(&mut out);
    }
    let (key, rest) = dk.split_at_checked(8).ok_or_else(malformed)?;
    let iv = rest.get(..8).ok_or_else(malformed)?;
    cbc_pkcs7::<des::Des>(key, iv, ciphertext)
}

#[derive(Clone, Copy)]
enum Pkcs12Cipher {
    TripleDes3,
    TripleDes2,
    Rc2_128,
    Rc2_40,
}

/// PKCS#12 PBE (RFC 7292 appendix B and C): key and IV from the PKCS#12 KDF with SHA-1 over the
/// password as a NUL-terminated big-endian UTF-16 string.
fn pkcs12_pbe(
    cipher: Pkcs12Cipher,
    params: &[u8],
    ciphertext: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    use pkcs12::kdf::{Pkcs12KeyType, derive_key};
    let (salt, iterations) = salt_and_iterations(params)?;
    let rounds = i32::try_from(iterations).map_err(|_| malformed())?;
    let key_len = match cipher {
        Pkcs12Cipher::TripleDes3 => 24,
        Pkcs12Cipher::TripleDes2 | Pkcs12Cipher::Rc2_128 => 16,
        Pkcs12Cipher::Rc2_40 => 5,
    };
    let pass = bmp_password(password);
    let key = Zeroizing::new(derive_key::<sha1::Sha1>(
        &pass,
        &salt,
        Pkcs12KeyType::EncryptionKey,
        rounds,
        key_len,
    ));
    let iv = Zeroizing::new(derive_key::<sha1::Sha1>(
        &pass,
        &salt,
        Pkcs12KeyType::Iv,
        rounds,
        8,
    ));
    match cipher {
        Pkcs12Cipher::TripleDes3 => cbc_pkcs7::<des::TdesEde3>(&key, &iv, ciphertext),
        Pkcs12Cipher::TripleDes2 => cbc_pkcs7::<des::TdesEde2>(&key, &iv, ciphertext),
        // RC2's effective key length is the key length here (40 or 128 bits), which is what
        // `KeyInit::new_from_slice` sets.
        Pkcs12Cipher::Rc2_128 | Pkcs12Cipher::Rc2_40 => {
            cbc_pkcs7::<rc2::Rc2>(&key, &iv, ciphertext)
        }
    }
}

/// The password as PKCS#12 wants it: big-endian UTF-16 with a two-byte NUL terminator.
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The ciphers of OpenSSL's traditional encrypted PEM (`DEK-Info: NAME,IVHEX`).
pub(crate) fn decrypt_legacy_pem(
    dek_info: &str,
    ciphertext: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = || Error::certificate("the PEM block's DEK-Info header is malformed");
    let (name, iv_hex) = dek_info.split_once(',').ok_or_else(bad)?;
    let iv = hex_decode(iv_hex.trim()).ok_or_else(bad)?;
    let name = name.trim().to_ascii_uppercase();
    let (key_len, iv_len) = match name.as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        "DES-CBC" => (8, 8),
        _ => {
            return Err(Error::certificate(format!(
                "the PEM private key is encrypted with {}, which dpwrap does not support; convert \
                 it with openssl pkcs8 -topk8 -v2 aes-256-cbc",
                name.chars().take(40).collect::<String>()
            )));
        }
    };
    if iv.len() != iv_len || ciphertext.len() > MAX_CIPHERTEXT {
        return Err(bad());
    }
    let salt = iv.get(..8).ok_or_else(bad)?;
    let key = evp_bytes_to_key_md5(password.as_bytes(), salt, key_len);
    match name.as_str() {
        "AES-128-CBC" => cbc_pkcs7::<aes::Aes128>(&key, &iv, ciphertext),
        "AES-192-CBC" => cbc_pkcs7::<aes::Aes192>(&key, &iv, ciphertext),
        "AES-256-CBC" => cbc_pkcs7::<aes::Aes256>(&key, &iv, ciphertext),
        "DES-EDE3-CBC" => cbc_pkcs7::<des::TdesEde3>(&key, &iv, ciphertext),
        _ => cbc_pkcs7::<des::Des>(&key, &iv, ciphertext),
    }
}

/// OpenSSL's `EVP_BytesToKey(cipher, md5, salt, pass, count = 1)`: D_i = MD5(D_{i-1} ‖ P ‖ S).
fn evp_bytes_to_key_md5(password: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    use md5::Digest as _;
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut prev = Zeroizing::new(Vec::new());
    while out.len() < len {
        let mut h = md5::Md5::new();
        h.update(&*prev);
        h.update(password);
        h.update(salt);
        let block = h.finalize();
        prev.clear();
        prev.extend_from_slice(&block);
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// CBC decryption with strict PKCS#7 unpadding (the padding every password-based scheme uses).
fn cbc_pkcs7<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>>
where
    C: aes::cipher::BlockCipherDecrypt + aes::cipher::KeyInit,
    cbc::Decryptor<C>: aes::cipher::KeyIvInit + aes::cipher::BlockModeDecrypt,
{
    let block = iv.len();
    if ciphertext.is_empty() || block == 0 || !ciphertext.len().is_multiple_of(block) {
        return Err(wrong_password());
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    if !super::cbc_dec::<C>(key, iv, &mut buf) {
        return Err(wrong_password());
    }
    let pad = usize::from(buf.last().copied().unwrap_or(0));
    if pad == 0 || pad > block || pad > buf.len() {
        return Err(wrong_password());
    }
    let body = buf.len() - pad;
    if buf
        .get(body..)
        .is_none_or(|p| p.iter().any(|&b| usize::from(b) != pad))
    {
        return Err(wrong_password());
    }
    buf.truncate(body);
    Ok(buf)
}

/// Encrypts a PKCS#8 `PrivateKeyInfo` with PBES2 (PBKDF2-HMAC-SHA256, `iterations`, AES-256-CBC)
/// and returns the DER of the `EncryptedPrivateKeyInfo`.
pub(crate) fn encrypt_pkcs8_pbes2(
    private_key_info: &[u8],
    password: &str,
    iterations: u32,
) -> Result<Vec<u8>> {
    let salt = super::random_bytes(16)?;
    let iv_bytes = super::random_bytes(16)?;
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&iv_bytes);
    let failed = || Error::certificate("the private key could not be encrypted");
    let params = pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &salt, iv)
        .map_err(|_| failed())?;
    let ciphertext = params
        .encrypt(password.as_bytes(), private_key_info)
        .map_err(|_| failed())?;
    let alg = spki::AlgorithmIdentifierOwned {
        oid: PBES2,
        parameters: Some(der::Any::encode_from(&params).map_err(|_| failed())?),
    };
    let ct = der::asn1::OctetString::new(ciphertext).map_err(|_| failed())?;
    let mut body = alg.to_der().map_err(|_| failed())?;
    body.extend_from_slice(&ct.to_der().map_err(|_| failed())?);
    let header = der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(body.len()).map_err(|_| failed())?,
    );
    let mut out = header.to_der().map_err(|_| failed())?;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmp_password_is_nul_terminated_utf16be() {
        assert_eq!(&*bmp_password(""), &[0, 0]);
        assert_eq!(&*bmp_password("aé"), &[0, b'a', 0, 0xe9, 0, 0]);
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // From `openssl enc -aes-256-cbc -P -md md5 -pass pass:secret -S 0102030405060708`:
        // key=C9E5A1BD…2879AB, iv=E24B32BB…3AD893 (OpenSSL derives key ‖ iv in one stream).
        let k = evp_bytes_to_key_md5(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 48);
        assert_eq!(
            hex_decode("C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB").unwrap(),
            &k[..32]
        );
        assert_eq!(
            hex_decode("E24B32BBBC4EF02ECBCB6576523AD893").unwrap(),
            &k[32..]
        );
    }

    #[test]
    fn bad_parameters_and_costs_are_refused() {
        // SEQUENCE { OCTET STRING (8 bytes), INTEGER 2_000_000 }
        let mut p = vec![0x30, 0x0f, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x03];
        p.extend_from_slice(&[0x1e, 0x84, 0x80]);
        let e = decrypt_pkcs8(PBE_MD5_DES, Some(&p), &[0; 16], "x").unwrap_err();
        assert!(e.message().contains("more"), "{e}");
        let e = decrypt_pkcs8(PBE_MD5_DES, Some(&[0x30, 0x00]), &[0; 16], "x").unwrap_err();
        assert!(e.message().contains("malformed"), "{e}");
        let e = decrypt_pkcs8(PBE_MD5_DES, None, &[0; 16], "x").unwrap_err();
        assert!(e.message().contains("malformed"), "{e}");
        let e = decrypt_pkcs8(PKCS12_PBE_SHA_RC4_40, Some(&p), &[0; 16], "x").unwrap_err();
        assert!(e.message().contains("RC4"), "{e}");
    }

    /// scrypt parameters whose memory (128 · N · r) or parallelism is over the bound are refused
    /// before scrypt runs (OpenSSL refuses to write such files, so they are made here).
    #[test]
    fn costly_scrypt_is_refused_before_it_runs() {
        use pkcs5::der::Encode as _;
        let costly = |log_n: u8, r: u32, p: u32| {
            let params = pkcs5::scrypt::Params::new(log_n, r, p).unwrap();
            pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(params, &[7; 16], [9; 16])
                .unwrap()
                .to_der()
                .unwrap()
        };
        // 128 · 2^20 · 8 = 1 GiB; 128 · 2^18 · 16 = 512 MiB; parallelism 17.
        for params in [costly(20, 8, 1), costly(18, 16, 1), costly(10, 8, 17)] {
            let e = pbes2(&params, &[0; 32], "x").unwrap_err();
            assert!(
                e.message()
                    .contains("scrypt memory over 256 MiB or parallelism over 16"),
                "{e}"
            );
        }
        // Within the bound (16 MiB, OpenSSL's default) scrypt runs and the password is wrong.
        let e = pbes2(&costly(14, 8, 1), &[0; 32], "x").unwrap_err();
        assert_eq!(e.message(), WRONG_PASSWORD);
    }

    #[test]
    fn pkcs7_unpadding_is_strict() {
        // Encrypt a block whose padding is inconsistent and check that decryption refuses it.
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let mut block = [5u8; 16];
        block[15] = 2; // claims 2 bytes of padding, but byte 14 is 5
        assert!(super::super::cbc_enc::<aes::Aes128>(&key, &iv, &mut block));
        let e = cbc_pkcs7::<aes::Aes128>(&key, &iv, &block).unwrap_err();
        assert_eq!(e.message(), WRONG_PASSWORD);
        let mut good = [4u8; 16];
        assert!(super::super::cbc_enc::<aes::Aes128>(&key, &iv, &mut good));
        assert_eq!(
            cbc_pkcs7::<aes::Aes128>(&key, &iv, &good).unwrap().len(),
            12
        );
    }
}
