//! The protection to write (`protect`, `rewrap`, `key new`): certificates, a Key Vault key or a
//! local KEK in Key Vault's format. Exactly one kind per run; certificate recipients may repeat.
//!
//! Every element written is first verified to decrypt to the same master key with the target's
//! own material, so the target's private side must be at hand: the vault itself for Key Vault
//! (the identity needs `unwrapKey` as well as `wrapKey`), the KEK file for a local KEK, and for
//! certificates the private key of every recipient, from a `--to-cert` PEM that holds it, a
//! `--to-key` after the `--to-cert`, or key material (`--cert`/`--pfx`) with the same thumbprint.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use clap::ArgMatches;
use dpwrap::azure::{AzureKeyVaultXmlDecryptor, AzureKeyVaultXmlEncryptor, EncryptedKey};
use dpwrap::azure::{KeyEncryptionKey, LocalKekResolver};
use dpwrap::envelope::open_encrypted_secret;
use dpwrap::xml::{Element, NS_DP, NS_XENC};
use dpwrap::{
    Certificate, CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor,
    DecryptorType, Decryptors, Key, KeyTransport, MasterKey, XmlEncryptor,
};

use crate::fail::{Fail, Outcome};
use crate::key_material::{KeyMaterial, indexed, kid_version, load_local_kek};

/// The target options.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Target protection (exactly one kind)")]
pub struct TargetArgs {
    /// Protect with this certificate (PEM; repeatable: the first is the primary, the only one
    /// .NET tries). The file may also hold the private key.
    #[arg(long = "to-cert", value_name = "C.pem")]
    pub to_cert: Vec<PathBuf>,
    /// The private key (PEM) of the `--to-cert` before it, used to verify what is written.
    #[arg(long = "to-key", value_name = "K.pem")]
    pub to_key: Vec<PathBuf>,
    /// Certificate key transport RSA PKCS#1 v1.5 (what ASP.NET writes) instead of RSA-OAEP.
    #[arg(long = "rsa-1_5")]
    pub rsa_1_5: bool,
    /// Protect with this Key Vault key (wrapKey there; the versioned kid is stored).
    #[arg(long = "to-key-vault", value_name = "KID")]
    pub to_key_vault: Vec<String>,
    /// Protect in Key Vault's format with a local RSA key standing for the Key Vault key KID.
    #[arg(long = "to-local-kek", value_name = "KID=PEM")]
    pub to_local_kek: Vec<String>,
    /// Write the old `Microsoft.AspNetCore.DataProtection.AzureKeyVault` decryptor type.
    #[arg(long = "legacy-azure-type")]
    pub legacy_azure_type: bool,
}

/// What a target writes, for telling whether a key is already protected that way.
#[derive(Debug)]
enum Kind {
    Certificates {
        /// Each recipient's (key transport URI, base64 DER), primary first.
        recipients: Vec<(String, String)>,
    },
    #[cfg_attr(not(feature = "azure"), allow(dead_code))]
    KeyVault {
        kid: String,
        legacy: bool,
    },
    LocalKek {
        kid: String,
        legacy: bool,
    },
}

/// The protection to write.
pub struct Target {
    kind: Kind,
    encryptor: Arc<dyn XmlEncryptor>,
    /// Each must decrypt every new element to its master key.
    verifiers: Vec<Decryptors>,
    /// Whether every recipient can be verified.
    complete: bool,
    /// What the target is, for messages.
    pub description: String,
}

const OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA15: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";

impl TargetArgs {
    fn kinds(&self) -> usize {
        usize::from(!self.to_cert.is_empty())
            + usize::from(!self.to_key_vault.is_empty())
            + usize::from(!self.to_local_kek.is_empty())
    }

    /// Builds the target. Its private material is added to `material` (so that keys already
    /// protected with it read too). With `require_verification`, a certificate recipient whose
    /// private key is not at hand is a usage error.
    pub fn build(
        &self,
        matches: &ArgMatches,
        material: &mut KeyMaterial,
        require_verification: bool,
    ) -> Outcome<Target> {
        match self.kinds() {
            0 => {
                return Err(Fail::usage(
                    "no target protection: give --to-cert C.pem, --to-key-vault KID or --to-local-kek KID=PEM",
                ));
            }
            1 => {}
            _ => {
                return Err(Fail::usage(
                    "give one kind of target protection: --to-cert (repeatable), --to-key-vault or --to-local-kek, not several",
                ));
            }
        }
        if self.to_key_vault.len() > 1 || self.to_local_kek.len() > 1 {
            return Err(Fail::usage(
                "give one --to-key-vault or --to-local-kek (a Key Vault key protects each element once)",
            ));
        }
        if !self.to_cert.is_empty() {
            if self.legacy_azure_type {
                return Err(Fail::usage(
                    "--legacy-azure-type applies to --to-key-vault and --to-local-kek, not to --to-cert",
                ));
            }
            return self.certificates(matches, material, require_verification);
        }
        if self.rsa_1_5 {
            return Err(Fail::usage("--rsa-1_5 applies to --to-cert only"));
        }
        if !self.to_key.is_empty() {
            return Err(Fail::usage("--to-key applies to --to-cert only"));
        }
        if let Some(kid) = self.to_key_vault.first() {
            return self.key_vault(kid, material);
        }
        match self.to_local_kek.first() {
            Some(value) => self.local_kek(value, material),
            None => Err(Fail::usage("no target protection")),
        }
    }

    fn certificates(
        &self,
        matches: &ArgMatches,
        material: &mut KeyMaterial,
        require_verification: bool,
    ) -> Outcome<Target> {
        // Pair each --to-key with the --to-cert just before it.
        let mut pairs: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
        let mut events: Vec<(usize, bool, PathBuf)> = indexed::<PathBuf>(matches, "to_cert")
            .into_iter()
            .map(|(i, p)| (i, true, p))
            .collect();
        events.extend(
            indexed::<PathBuf>(matches, "to_key")
                .into_iter()
                .map(|(i, p)| (i, false, p)),
        );
        events.sort_by_key(|(i, _, _)| *i);
        for (_, is_cert, path) in events {
            if is_cert {
                pairs.push((path, None));
            } else {
                match pairs.last_mut() {
                    Some((_, key @ None)) => *key = Some(path),
                    _ => {
                        return Err(Fail::usage(format!(
                            "--to-key {} must come right after the --to-cert it belongs to",
                            path.display()
                        )));
                    }
                }
            }
        }
        let password = material.single_password.as_ref();
        let transport = if self.rsa_1_5 {
            KeyTransport::Rsa15
        } else {
            KeyTransport::RsaOaep
        };
        let uri = if self.rsa_1_5 { RSA15 } else { OAEP };
        let mut encryptor: Option<CertificateXmlEncryptor> = None;
        let mut recipients = Vec::new();
        let mut verifiers = Vec::new();
        let mut missing = Vec::new();
        let mut names = Vec::new();
        for (cert_path, key_path) in pairs {
            let certificate = Certificate::from_file(&cert_path)?;
            let with_key: Option<CertificateWithKey> = match key_path {
                Some(k) => Some(CertificateWithKey::from_pem_files(
                    &cert_path, &k, password,
                )?),
                None if holds_private_key(&cert_path) => Some(
                    CertificateWithKey::from_pem_bundle_file(&cert_path, password)?,
                ),
                None => None,
            };
            let with_key = match with_key {
                Some(k) => Some(Arc::new(k)),
                None => material.certificate(&certificate.thumbprint()),
            };
            match &with_key {
                Some(k) => {
                    verifiers.push(
                        Decryptors::new()
                            .with(Arc::new(CertificateXmlDecryptor::new([Arc::clone(k)]))),
                    );
                    if material.certificate(&k.thumbprint()).is_none() {
                        material.certificates.push(Arc::clone(k));
                    }
                }
                None => missing.push(format!(
                    "{} ({})",
                    cert_path.display(),
                    certificate.thumbprint()
                )),
            }
            names.push(certificate.thumbprint());
            recipients.push((
                uri.to_owned(),
                base64::engine::general_purpose::STANDARD.encode(certificate.der()),
            ));
            encryptor = Some(match encryptor {
                None => CertificateXmlEncryptor::new(certificate)?.key_transport(transport),
                Some(e) => e.with_recipient(certificate)?,
            });
        }
        let Some(encryptor) = encryptor else {
            return Err(Fail::usage("no --to-cert given"));
        };
        if require_verification && !missing.is_empty() {
            return Err(Fail::usage(format!(
                "every element written is first verified to decrypt to the same master key, which needs the private key of each --to-cert; none was found for {}: put the key in the --to-cert PEM, give --to-key K.pem after it, or add it as key material (--cert/--key, --pfx)",
                missing.join(", ")
            )));
        }
        Ok(Target {
            kind: Kind::Certificates { recipients },
            encryptor: Arc::new(encryptor),
            complete: missing.is_empty(),
            verifiers,
            description: format!("certificate {}", names.join(" + ")),
        })
    }

    #[cfg(feature = "azure")]
    fn key_vault(&self, kid: &str, material: &mut KeyMaterial) -> Outcome<Target> {
        let kek = material.vaults.kek(kid)?;
        let client_resolver = material
            .vaults
            .resolver()
            .ok_or_else(|| Fail::run("the Key Vault client could not be set up"))?;
        let encryptor = AzureKeyVaultXmlEncryptor::new(kek as Arc<dyn KeyEncryptionKey>)
            .legacy(self.legacy_azure_type);
        Ok(Target {
            kind: Kind::KeyVault {
                kid: kid.trim().to_owned(),
                legacy: self.legacy_azure_type,
            },
            encryptor: Arc::new(encryptor),
            verifiers: vec![
                Decryptors::new().with(Arc::new(AzureKeyVaultXmlDecryptor::new(client_resolver))),
            ],
            complete: true,
            description: format!("Key Vault key {}", kid.trim()),
        })
    }

    #[cfg(not(feature = "azure"))]
    fn key_vault(&self, _kid: &str, _material: &mut KeyMaterial) -> Outcome<Target> {
        Err(crate::vault::not_built("--to-key-vault"))
    }

    fn local_kek(&self, value: &str, material: &mut KeyMaterial) -> Outcome<Target> {
        let Some((kid, path)) = value
            .split_once('=')
            .filter(|(k, p)| !k.trim().is_empty() && !p.trim().is_empty())
        else {
            return Err(Fail::usage(format!(
                "--to-local-kek '{value}' needs the kid to store: write --to-local-kek KID=PEM"
            )));
        };
        let local = load_local_kek(Some(kid.trim()), std::path::Path::new(path))?;
        let kek = Arc::clone(&local.kek) as Arc<dyn KeyEncryptionKey>;
        material.local_keks.push(local);
        let resolver = LocalKekResolver::new().with(Arc::clone(&kek));
        Ok(Target {
            kind: Kind::LocalKek {
                kid: kid.trim().to_owned(),
                legacy: self.legacy_azure_type,
            },
            encryptor: Arc::new(AzureKeyVaultXmlEncryptor::new(kek).legacy(self.legacy_azure_type)),
            verifiers: vec![
                Decryptors::new()
                    .with(Arc::new(AzureKeyVaultXmlDecryptor::new(Arc::new(resolver)))),
            ],
            complete: true,
            description: format!("local key-encryption key {}", kid.trim()),
        })
    }
}

/// Whether a PEM file has a private key block (then a `--to-cert` is a bundle).
fn holds_private_key(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    if file
        .take(dpwrap::certificate::MAX_FILE as u64)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return false;
    }
    bytes.windows(16).any(|w| w == b"PRIVATE KEY-----")
}

impl Target {
    /// The encryptor.
    pub fn encryptor(&self) -> &dyn XmlEncryptor {
        self.encryptor.as_ref()
    }

    /// Whether every recipient's private material is at hand (so verification is complete).
    pub fn verifiable(&self) -> bool {
        self.complete
    }

    /// The protection it writes.
    pub fn protection(&self) -> &'static str {
        match self.kind {
            Kind::Certificates { .. } => "certificate",
            Kind::KeyVault { .. } | Kind::LocalKek { .. } => "azure-key-vault",
        }
    }

    /// Checks that `element` decrypts to `master` with the target's material (every recipient
    /// whose private key is at hand).
    pub async fn verify(&self, element: &Element, master: &MasterKey) -> dpwrap::Result<()> {
        let key = Key::from_element(element.clone())?;
        for verifier in &self.verifiers {
            let got = key.master_key(verifier).await.map_err(|e| {
                e.context(format!(
                    "the re-protected key {} does not decrypt with the {}",
                    key.id(),
                    self.description
                ))
            })?;
            if !got.ct_eq(master) {
                return Err(dpwrap::Error::new(
                    dpwrap::ErrorKind::Decrypt,
                    format!(
                        "the re-protected key {} decrypts to another master key with the {}; nothing was written",
                        key.id(),
                        self.description
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `key` is already protected exactly as this target would protect it (so re-running
    /// a command changes nothing).
    pub fn already_protects(&self, key: &Key) -> bool {
        let Some(secret) = key.element().find(Some(NS_DP), "encryptedSecret") else {
            return false;
        };
        let Ok((decryptor_type, child)) = open_encrypted_secret(secret) else {
            return false;
        };
        match &self.kind {
            Kind::Certificates { recipients } => {
                decryptor_type.matches(&DecryptorType::encrypted_xml())
                    && recipients_of(child) == *recipients
            }
            Kind::KeyVault { kid, legacy } => {
                azure_type_matches(&decryptor_type, *legacy)
                    && EncryptedKey::from_element(child)
                        .is_ok_and(|e| same_key_vault_key(&e.kid, kid))
            }
            Kind::LocalKek { kid, legacy } => {
                azure_type_matches(&decryptor_type, *legacy)
                    && EncryptedKey::from_element(child).is_ok_and(|e| e.kid.trim() == kid)
            }
        }
    }
}

fn azure_type_matches(t: &DecryptorType, legacy: bool) -> bool {
    let wanted = if legacy {
        DecryptorType::azure_key_vault_legacy()
    } else {
        DecryptorType::azure_key_vault()
    };
    t.matches(&wanted)
}

/// (key transport URI, certificate base64) of every `EncryptedKey` of an `EncryptedData`.
fn recipients_of(encrypted_data: &Element) -> Vec<(String, String)> {
    encrypted_data
        .descendants()
        .filter(|e| e.is(Some(NS_XENC), "EncryptedKey"))
        .map(|k| {
            let method = k
                .element(Some(NS_XENC), "EncryptionMethod")
                .and_then(|m| m.attribute(None, "Algorithm"))
                .unwrap_or("")
                .trim()
                .to_owned();
            let cert: String = k
                .descendants()
                .find(|e| e.is(Some(dpwrap::xml::NS_DS), "X509Certificate"))
                .map(|c| c.text().chars().filter(|c| !c.is_whitespace()).collect())
                .unwrap_or_default();
            (method, cert)
        })
        .collect()
}

/// Whether the stored kid names the target's Key Vault key: same vault and name, and the same
/// version when the target gives one.
fn same_key_vault_key(stored: &str, target: &str) -> bool {
    fn parts(kid: &str) -> Option<(String, String)> {
        let (scheme, rest) = kid.trim().split_once("://")?;
        let mut segments = rest.split(['?', '#']).next()?.split('/');
        let authority = segments.next()?.to_ascii_lowercase();
        let authority = authority
            .strip_suffix(":443")
            .unwrap_or(&authority)
            .to_owned();
        let mut rest = segments.filter(|s| !s.is_empty());
        if rest.next()? != "keys" {
            return None;
        }
        Some((
            format!("{}://{authority}", scheme.to_ascii_lowercase()),
            rest.next()?.to_ascii_lowercase(),
        ))
    }
    let (Some(a), Some(b)) = (parts(stored), parts(target)) else {
        return false;
    };
    a == b
        && match kid_version(target) {
            Some(v) => kid_version(stored).is_some_and(|s| s.eq_ignore_ascii_case(v)),
            None => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vault_kids_compare_by_vault_name_and_version() {
        let t = "https://V.vault.azure.net/keys/DP";
        assert!(same_key_vault_key(
            "https://v.vault.azure.net:443/keys/dp/abc",
            t
        ));
        assert!(!same_key_vault_key(
            "https://w.vault.azure.net/keys/dp/abc",
            t
        ));
        assert!(!same_key_vault_key(
            "https://v.vault.azure.net/keys/other/abc",
            t
        ));
        let tv = "https://v.vault.azure.net/keys/dp/abc";
        assert!(same_key_vault_key(
            "https://v.vault.azure.net/keys/dp/ABC",
            tv
        ));
        assert!(!same_key_vault_key(
            "https://v.vault.azure.net/keys/dp/def",
            tv
        ));
        assert!(!same_key_vault_key("https://v.vault.azure.net/keys/dp", tv));
    }
}
