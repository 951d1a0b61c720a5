//! Key material, the same for every command: certificates with their private keys (PEM pairs, PEM
//! bundles, PFX files, base64 PFX files), local key-encryption keys, and Key Vault keys reached
//! through the Azure credential chain. Turned into one [`Decryptors`] registry.
//!
//! Order matters on the command line, so it is read from clap's value indices:
//!
//! - `--key K.pem` belongs to the `--cert C.pem` just before it; a `--cert` without a `--key`
//!   after it is a PEM file holding both (a bundle).
//! - `--password-env VAR` / `--password-file F` belong to the nearest `--pfx`,
//!   `--pfx-base64-file` or `--key` before them (an encrypted PEM key takes a password too). A
//!   single password option applies to every PFX file and encrypted key. A PFX without a password
//!   is opened with the empty password.
//! - Passwords are never taken as plain arguments: only from an environment variable or a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ArgMatches;
use dpwrap::azure::{
    AzureKeyVaultXmlDecryptor, KeyEncryptionKey, KeyEncryptionKeyResolver, LocalKekResolver,
    LocalRsaKek, WrapAlgorithm,
};
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, Decryptors, NullXmlDecryptor, Password,
    SecretBytes,
};

use crate::fail::{Fail, Outcome};

/// Largest password file read (64 KiB).
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// The key-material options.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Key material (repeatable, in order)")]
pub struct KeyMaterialArgs {
    /// A certificate (PEM). Its private key is the `--key` that follows it; without one, the
    /// file holds the certificate and its key.
    #[arg(long = "cert", value_name = "C.pem")]
    pub cert: Vec<PathBuf>,
    /// The private key (PEM: PKCS#8, encrypted PKCS#8 or PKCS#1) of the `--cert` before it.
    #[arg(long = "key", value_name = "K.pem")]
    pub key: Vec<PathBuf>,
    /// A PFX (PKCS#12) file with a certificate and its private key.
    #[arg(long = "pfx", value_name = "F.pfx")]
    pub pfx: Vec<PathBuf>,
    /// A file holding a PFX in base64, as a Key Vault certificate secret holds it.
    #[arg(long = "pfx-base64-file", value_name = "F")]
    pub pfx_base64_file: Vec<PathBuf>,
    /// Read the password of the PFX or key before it from environment variable VAR (one
    /// password option alone applies to every PFX and encrypted key).
    #[arg(long = "password-env", value_name = "VAR")]
    pub password_env: Vec<String>,
    /// Read the password of the PFX or key before it from file F (one trailing newline is
    /// dropped).
    #[arg(long = "password-file", value_name = "F")]
    pub password_file: Vec<PathBuf>,
    /// A local copy of a key-encryption key (unencrypted RSA PEM). With `KID=`, it answers for
    /// that kid (any version when KID has none); without, for any kid. Write `=PEM` for a path
    /// that contains `=`.
    #[arg(long = "local-kek", value_name = "[KID=]PEM")]
    pub local_kek: Vec<String>,
    /// Unwrap with Key Vault: keys of this kid's vault are unwrapped there, with the kid each key
    /// file names (version as written).
    #[arg(long = "key-vault-kid", value_name = "KID")]
    pub key_vault_kid: Vec<String>,
    /// Decrypt (and re-protect) at most N keys at once (Key Vault requests in flight; decrypt
    /// raises it to the number of cores, over which certificate decryption is spread).
    #[arg(long = "concurrency", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// How to reach Key Vault and the Azure stores.
    #[command(flatten)]
    pub connection: crate::stores::ConnectionArgs,
}

/// Where a password comes from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the password. A missing variable or unreadable file is a usage error naming it (and
    /// nothing of its content).
    pub fn read(&self) -> Outcome<Password> {
        match self {
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) => Ok(Password::new(v)),
                Err(std::env::VarError::NotPresent) => Err(Fail::usage(format!(
                    "environment variable {var} (named by --password-env) is not set"
                ))),
                Err(std::env::VarError::NotUnicode(_)) => Err(Fail::usage(format!(
                    "environment variable {var} (named by --password-env) is not valid unicode"
                ))),
            },
            PasswordSource::File(path) => read_password_file(path),
        }
    }

    fn describe(&self) -> String {
        match self {
            PasswordSource::Env(v) => format!("--password-env {v}"),
            PasswordSource::File(f) => format!("--password-file {}", f.display()),
        }
    }
}

fn read_password_file(path: &Path) -> Outcome<Password> {
    use std::io::Read as _;
    let unreadable = |why: &str| {
        Fail::usage(format!(
            "the password file {} (named by --password-file) cannot be read: {why}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(&io_reason(&e)))?;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_PASSWORD_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(&io_reason(&e)))?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE {
        return Err(unreadable("it is larger than 64 KiB"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| unreadable("it is not UTF-8 text"))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Ok(Password::new(text.to_owned()))
}

/// An I/O error's reason without the path (which the caller names).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string().to_lowercase(),
    }
}

/// The values of `id` with their positions on the command line (none when the command has no
/// such option).
pub fn indexed<T: Clone + Send + Sync + 'static>(
    matches: &ArgMatches,
    id: &str,
) -> Vec<(usize, T)> {
    if matches.try_contains_id(id).is_err() {
        return Vec::new();
    }
    let values: Vec<T> = matches
        .get_many::<T>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let indices: Vec<usize> = matches
        .indices_of(id)
        .map(|i| i.collect())
        .unwrap_or_default();
    indices.into_iter().zip(values).collect()
}

/// One certificate source, with its password once paired. `signer`: given with `--sign-with`
/// (`--sign-key`) or `--sign-with-pfx`, to sign what is written rather than to decrypt.
#[derive(Debug)]
enum CertSource {
    Pem {
        cert: PathBuf,
        key: Option<PathBuf>,
        password: Option<PasswordSource>,
        signer: bool,
    },
    Pfx {
        path: PathBuf,
        base64: bool,
        password: Option<PasswordSource>,
        signer: bool,
    },
}

impl CertSource {
    fn name(&self) -> String {
        match self {
            CertSource::Pem {
                cert,
                key: None,
                signer: false,
                ..
            } => format!("--cert {}", cert.display()),
            CertSource::Pem {
                cert,
                key: None,
                signer: true,
                ..
            } => format!("--sign-with {}", cert.display()),
            CertSource::Pem {
                key: Some(key),
                signer: false,
                ..
            } => format!("--key {}", key.display()),
            CertSource::Pem {
                key: Some(key),
                signer: true,
                ..
            } => format!("--sign-key {}", key.display()),
            CertSource::Pfx {
                path, base64: true, ..
            } => format!("--pfx-base64-file {}", path.display()),
            CertSource::Pfx {
                path, signer: true, ..
            } => format!("--sign-with-pfx {}", path.display()),
            CertSource::Pfx { path, .. } => format!("--pfx {}", path.display()),
        }
    }

    fn is_signer(&self) -> bool {
        match self {
            CertSource::Pem { signer, .. } | CertSource::Pfx { signer, .. } => *signer,
        }
    }

    fn password_slot(&mut self) -> &mut Option<PasswordSource> {
        match self {
            // A bundle's key may be encrypted as well.
            CertSource::Pem { password, .. } | CertSource::Pfx { password, .. } => password,
        }
    }
}

/// Pairs certificates with keys and passwords in command-line order.
fn pair_sources(matches: &ArgMatches) -> Outcome<(Vec<CertSource>, Option<PasswordSource>)> {
    enum Ev {
        Cert(PathBuf, bool),
        Key(PathBuf, bool),
        Pfx(PathBuf, bool, bool),
        Password(PasswordSource),
    }
    let mut events: Vec<(usize, Ev)> = Vec::new();
    events.extend(
        indexed::<PathBuf>(matches, "cert")
            .into_iter()
            .map(|(i, p)| (i, Ev::Cert(p, false))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "key")
            .into_iter()
            .map(|(i, p)| (i, Ev::Key(p, false))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "pfx")
            .into_iter()
            .map(|(i, p)| (i, Ev::Pfx(p, false, false))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "pfx_base64_file")
            .into_iter()
            .map(|(i, p)| (i, Ev::Pfx(p, true, false))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "sign_with")
            .into_iter()
            .map(|(i, p)| (i, Ev::Cert(p, true))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "sign_key")
            .into_iter()
            .map(|(i, p)| (i, Ev::Key(p, true))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "sign_with_pfx")
            .into_iter()
            .map(|(i, p)| (i, Ev::Pfx(p, false, true))),
    );
    events.extend(
        indexed::<String>(matches, "password_env")
            .into_iter()
            .map(|(i, v)| (i, Ev::Password(PasswordSource::Env(v)))),
    );
    events.extend(
        indexed::<PathBuf>(matches, "password_file")
            .into_iter()
            .map(|(i, v)| (i, Ev::Password(PasswordSource::File(v)))),
    );
    events.sort_by_key(|(i, _)| *i);
    let password_count = events
        .iter()
        .filter(|(_, e)| matches!(e, Ev::Password(_)))
        .count();

    let mut sources: Vec<CertSource> = Vec::new();
    let mut single = None;
    for (_, ev) in events {
        match ev {
            Ev::Cert(cert, signer) => sources.push(CertSource::Pem {
                cert,
                key: None,
                password: None,
                signer,
            }),
            Ev::Key(path, for_signer) => match sources.last_mut() {
                Some(CertSource::Pem {
                    key: key @ None,
                    signer,
                    ..
                }) if *signer == for_signer => *key = Some(path),
                _ if for_signer => {
                    return Err(Fail::usage(format!(
                        "--sign-key {} must come right after the --sign-with it belongs to",
                        path.display()
                    )));
                }
                _ => {
                    return Err(Fail::usage(format!(
                        "--key {} must come right after the --cert it belongs to",
                        path.display()
                    )));
                }
            },
            Ev::Pfx(path, base64, signer) => sources.push(CertSource::Pfx {
                path,
                base64,
                password: None,
                signer,
            }),
            Ev::Password(p) if password_count == 1 => single = Some(p),
            Ev::Password(p) => {
                let Some(last) = sources.last_mut() else {
                    return Err(Fail::usage(format!(
                        "{} comes before any --pfx, --pfx-base64-file, --key, --sign-with-pfx or --sign-key it could be the password of",
                        p.describe()
                    )));
                };
                let name = last.name();
                let slot = last.password_slot();
                if slot.is_some() {
                    return Err(Fail::usage(format!("two passwords are given for {name}")));
                }
                *slot = Some(p);
            }
        }
    }
    Ok((sources, single))
}

/// A local KEK and the kid it answers for (`None`: any kid).
#[derive(Debug, Clone)]
pub struct LocalKek {
    /// The kid, as given.
    pub kid: Option<String>,
    /// The key.
    pub kek: Arc<LocalRsaKek>,
}

/// Splits `[KID=]PEM`.
fn split_local_kek(value: &str) -> (Option<&str>, &str) {
    match value.split_once('=') {
        Some((kid, path)) if kid.trim().is_empty() => (None, path),
        Some((kid, path)) => (Some(kid.trim()), path),
        None => (None, value),
    }
}

/// Reads a local KEK; `kid` is `None` for one that answers any kid.
pub fn load_local_kek(kid: Option<&str>, path: &Path) -> Outcome<LocalKek> {
    let kek = LocalRsaKek::from_pem_file(kid.unwrap_or("*"), path)
        .map_err(|e| Fail::from(e).context("--local-kek"))?;
    Ok(LocalKek {
        kid: kid.map(str::to_owned),
        kek: Arc::new(kek),
    })
}

/// Everything that decrypts: certificates, local KEKs, Key Vault.
pub struct KeyMaterial {
    /// Certificates with their private keys.
    pub certificates: Vec<Arc<CertificateWithKey>>,
    /// The certificate that signs what is written (`--sign-with`, `--sign-with-pfx`), kept apart
    /// from the certificates that decrypt.
    pub signer: Option<Arc<CertificateWithKey>>,
    /// Local key-encryption keys.
    pub local_keks: Vec<LocalKek>,
    /// Key Vault access.
    pub vaults: crate::vault::Vaults,
    /// Keys decrypted at once.
    pub concurrency: usize,
    /// The single password option's password, read once, if exactly one was given (it also
    /// opens target keys).
    pub single_password: Option<Password>,
}

impl KeyMaterial {
    /// Loads the key material named by `args` (`matches` gives the order of the options).
    pub fn load(args: &KeyMaterialArgs, matches: &ArgMatches) -> Outcome<KeyMaterial> {
        let (sources, single) = pair_sources(matches)?;
        let single_password = match &single {
            Some(p) => Some(p.read()?),
            None => None,
        };
        let mut certificates = Vec::new();
        let mut signer = None;
        for source in sources {
            let is_signer = source.is_signer();
            let cert = match source {
                CertSource::Pem {
                    cert,
                    key,
                    password,
                    ..
                } => {
                    let password = match password {
                        Some(p) => Some(p.read()?),
                        None => None,
                    };
                    let password = password.as_ref().or(single_password.as_ref());
                    match key {
                        Some(key) => CertificateWithKey::from_pem_files(&cert, &key, password),
                        None => CertificateWithKey::from_pem_bundle_file(&cert, password).map_err(
                            |e| {
                                if e.message().contains("no private key found") {
                                    let hint = if is_signer {
                                        "signing needs the certificate's private key: give it with --sign-key K.pem after --sign-with"
                                    } else {
                                        "give the certificate's private key with --key K.pem after --cert"
                                    };
                                    dpwrap::Error::new(e.kind(), format!("{e}; {hint}"))
                                } else {
                                    e
                                }
                            },
                        ),
                    }
                }
                CertSource::Pfx {
                    path,
                    base64,
                    password,
                    ..
                } => {
                    // The single password was read once above: a source such as a pipe
                    // (`--password-file <(…)`) can be read only once.
                    let own;
                    let password: &Password = match (password, &single_password) {
                        (Some(p), _) => {
                            own = p.read()?;
                            &own
                        }
                        (None, Some(p)) => p,
                        (None, None) => {
                            own = Password::new(String::new());
                            &own
                        }
                    };
                    if base64 {
                        CertificateWithKey::from_pkcs12_base64_file(&path, password)
                    } else {
                        CertificateWithKey::from_pkcs12_file(&path, password)
                    }
                }
            }?;
            if is_signer {
                signer = Some(Arc::new(cert));
            } else {
                certificates.push(Arc::new(cert));
            }
        }

        let mut local_keks = Vec::new();
        for value in &args.local_kek {
            let (kid, path) = split_local_kek(value);
            if path.trim().is_empty() {
                return Err(Fail::usage(format!(
                    "--local-kek '{value}' names no PEM file; write --local-kek [KID=]PEM"
                )));
            }
            local_keks.push(load_local_kek(kid, Path::new(path))?);
        }

        let mut vaults = crate::vault::Vaults::new(&args.connection)?;
        for kid in &args.key_vault_kid {
            vaults.add_vault_of(kid)?;
        }
        Ok(KeyMaterial {
            certificates,
            signer,
            local_keks,
            vaults,
            concurrency: usize::from(args.concurrency),
            single_password,
        })
    }

    /// The certificate with `thumbprint`, if its private key was given.
    pub fn certificate(&self, thumbprint: &str) -> Option<Arc<CertificateWithKey>> {
        self.certificates
            .iter()
            .find(|c| c.thumbprint().eq_ignore_ascii_case(thumbprint))
            .cloned()
    }

    /// The decryptors: the certificates, the local KEKs and Key Vault, and always the null
    /// decryptor. A protection with no material registers nothing, so that its error says what to
    /// supply.
    pub fn decryptors(&self) -> Decryptors {
        let mut d = Decryptors::new().with(Arc::new(NullXmlDecryptor));
        if !self.certificates.is_empty() {
            d.register(Arc::new(CertificateXmlDecryptor::new(
                self.certificates.iter().cloned(),
            )));
        }
        if !self.local_keks.is_empty() || !self.vaults.is_empty() {
            d.register(Arc::new(AzureKeyVaultXmlDecryptor::new(Arc::new(
                self.resolver(),
            ))));
        }
        d
    }

    fn resolver(&self) -> MaterialResolver {
        let mut exact = LocalKekResolver::new();
        let mut any_version = LocalKekResolver::new().allow_any_version(true);
        let mut any = Vec::new();
        for k in &self.local_keks {
            match &k.kid {
                Some(kid) => {
                    exact.add(Arc::clone(&k.kek) as Arc<dyn KeyEncryptionKey>);
                    if kid_version(kid).is_none() {
                        any_version.add(Arc::clone(&k.kek) as Arc<dyn KeyEncryptionKey>);
                    }
                }
                None => any.push(Arc::clone(&k.kek)),
            }
        }
        MaterialResolver {
            exact,
            any_version,
            any,
            vaults: self.vaults.resolver(),
        }
    }
}

/// The version segment of a Key Vault kid (`https://v/keys/name/VERSION`), if it has one.
pub fn kid_version(kid: &str) -> Option<&str> {
    let (_, rest) = kid.trim().split_once("://")?;
    let path = rest.split(['?', '#']).next()?;
    let mut segments = path.split('/').skip(1).filter(|s| !s.is_empty());
    if segments.next()? != "keys" {
        return None;
    }
    segments.next()?;
    segments.next()
}

/// Local KEKs first (exact kid, then any version of a versionless kid), then Key Vault, then the
/// KEKs given without a kid.
#[derive(Debug)]
struct MaterialResolver {
    exact: LocalKekResolver,
    any_version: LocalKekResolver,
    any: Vec<Arc<LocalRsaKek>>,
    vaults: Option<Arc<dyn KeyEncryptionKeyResolver>>,
}

#[async_trait::async_trait]
impl KeyEncryptionKeyResolver for MaterialResolver {
    async fn resolve(&self, kid: &str) -> dpwrap::Result<Arc<dyn KeyEncryptionKey>> {
        if let Ok(k) = self.exact.resolve(kid).await {
            return Ok(k);
        }
        if let Ok(k) = self.any_version.resolve(kid).await {
            return Ok(k);
        }
        let vault_error = match &self.vaults {
            Some(v) => match v.resolve(kid).await {
                Ok(k) => return Ok(k),
                Err(e) => Some(e),
            },
            None => None,
        };
        if !self.any.is_empty() {
            return Ok(Arc::new(AnyOf {
                kid: kid.to_owned(),
                keks: self.any.clone(),
            }));
        }
        Err(vault_error.unwrap_or_else(|| {
            dpwrap::Error::new(
                dpwrap::ErrorKind::NoMatchingKey,
                format!(
                    "no key-encryption key is configured for kid '{}'; give --local-kek [KID=]PEM or --key-vault-kid KID",
                    kid.chars().take(300).collect::<String>()
                ),
            )
        }))
    }
}

/// Several local KEKs given without a kid: unwrapping tries each.
#[derive(Debug)]
struct AnyOf {
    kid: String,
    keks: Vec<Arc<LocalRsaKek>>,
}

#[async_trait::async_trait]
impl KeyEncryptionKey for AnyOf {
    fn key_id(&self) -> &str {
        &self.kid
    }

    async fn wrap_key(
        &self,
        algorithm: WrapAlgorithm,
        key: &[u8],
    ) -> dpwrap::Result<dpwrap::azure::kek::WrappedKey> {
        match self.keks.first() {
            Some(k) => k.wrap_key(algorithm, key).await,
            None => Err(dpwrap::Error::decrypt()),
        }
    }

    async fn unwrap_key(
        &self,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> dpwrap::Result<SecretBytes> {
        for k in &self.keks {
            if let Ok(key) = k.unwrap_key(algorithm, wrapped).await {
                return Ok(key);
            }
        }
        Err(dpwrap::Error::decrypt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_kek_values_split_at_the_first_equals_sign() {
        assert_eq!(split_local_kek("k.pem"), (None, "k.pem"));
        assert_eq!(
            split_local_kek("https://v.vault.azure.net/keys/k=k.pem"),
            (Some("https://v.vault.azure.net/keys/k"), "k.pem")
        );
        assert_eq!(split_local_kek("=a=b.pem"), (None, "a=b.pem"));
    }

    #[test]
    fn kid_versions() {
        assert_eq!(
            kid_version("https://v.vault.azure.net/keys/k/abc"),
            Some("abc")
        );
        assert_eq!(kid_version("https://v.vault.azure.net/keys/k"), None);
        assert_eq!(kid_version("https://v.vault.azure.net/keys/k/"), None);
        assert_eq!(kid_version("free text"), None);
    }
}
