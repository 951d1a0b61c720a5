//! Key Vault access for the key material and the targets: one client per vault, all sharing one
//! credential, built when the first vault is named.

use std::path::Path;
use std::sync::Arc;

use dpwrap::RsaPublicKey;
use dpwrap::authentication::KeySigner;
use dpwrap::azure::KeyEncryptionKeyResolver;

use crate::fail::{Fail, Outcome};
use crate::key_material::io_reason;
use crate::stores::ConnectionArgs;

/// Largest CA file read (1 MiB).
const MAX_CA_FILE: u64 = 1024 * 1024;

/// Reads a CA file (`--key-vault-ca`).
pub fn read_ca(path: &Path) -> Outcome<Vec<u8>> {
    use std::io::Read as _;
    let unreadable = |why: String| {
        Fail::usage(format!(
            "the Key Vault CA file {} cannot be read: {why}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(io_reason(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(io_reason(&e)))?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(unreadable("it is larger than 1 MiB".into()));
    }
    Ok(bytes)
}

/// Whether the URL's host is a loopback address (a local test vault, reached by IP address).
#[cfg_attr(not(feature = "azure"), allow(dead_code))]
pub fn is_loopback(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

#[cfg(feature = "azure")]
mod imp {
    use super::*;
    use dpwrap::azure::credentials::{CredentialConfig, CredentialKind};
    use dpwrap::azure::key_vault::{
        KeyVaultClient, KeyVaultKek, KeyVaultOptions, KeyVaultResolver,
    };
    use dpwrap::azure::transport::TransportOptions;

    type Factory =
        Box<dyn Fn(&str, KeyVaultOptions) -> dpwrap::Result<KeyVaultClient> + Send + Sync>;

    /// The vaults named so far.
    pub struct Vaults {
        clients: Vec<Arc<KeyVaultClient>>,
        factory: Option<Factory>,
        credential: Option<String>,
        ca: Option<Vec<u8>>,
    }

    fn setup_error(e: dpwrap::Error) -> Fail {
        if e.kind() == dpwrap::ErrorKind::Config {
            Fail::usage(e.to_string())
        } else {
            Fail::from(e)
        }
    }

    impl Vaults {
        /// No vault yet; `args` gives the credential and CA options.
        pub fn new(args: &ConnectionArgs) -> Outcome<Vaults> {
            let ca = match &args.key_vault_ca {
                Some(p) => Some(read_ca(p)?),
                None => None,
            };
            Ok(Vaults {
                clients: Vec::new(),
                factory: None,
                credential: args.credential.clone(),
                ca,
            })
        }

        /// Whether no vault is configured.
        pub fn is_empty(&self) -> bool {
            self.clients.is_empty()
        }

        fn factory(&mut self) -> Outcome<&Factory> {
            if self.factory.is_none() {
                let config = credential_config(
                    self.credential.as_deref(),
                    &TransportOptions {
                        trusted_roots_pem: self.ca.clone(),
                        ..TransportOptions::default()
                    },
                )?;
                let credential = config.build().map_err(setup_error)?;
                self.factory = Some(Box::new(move |url, options| {
                    KeyVaultClient::new(url, Arc::clone(&credential), options)
                }));
            }
            self.factory
                .as_ref()
                .ok_or_else(|| Fail::run("the Azure credential could not be set up"))
        }

        /// The client for the vault of `kid` (created on first use).
        pub fn add_vault_of(&mut self, kid: &str) -> Outcome<Arc<KeyVaultClient>> {
            let origin = origin(kid).ok_or_else(|| {
                Fail::usage(format!(
                    "'{}' is not a Key Vault key identifier; expected https://NAME.vault.azure.net/keys/KEY[/VERSION]",
                    kid.chars().take(300).collect::<String>()
                ))
            })?;
            let options = KeyVaultOptions {
                transport: TransportOptions {
                    trusted_roots_pem: self.ca.clone(),
                    ..TransportOptions::default()
                },
                verify_challenge_resource: !is_loopback(&origin),
                ..KeyVaultOptions::default()
            };
            let client = Arc::new((self.factory()?)(&origin, options).map_err(setup_error)?);
            if let Some(existing) = self.clients.iter().find(|c| c.vault() == client.vault()) {
                let existing = Arc::clone(existing);
                existing.kek(kid).map_err(setup_error)?;
                return Ok(existing);
            }
            // Checks the kid's form against the client's vault.
            client.kek(kid).map_err(setup_error)?;
            self.clients.push(Arc::clone(&client));
            Ok(client)
        }

        /// The KEK for `kid` (its vault is added).
        pub fn kek(&mut self, kid: &str) -> Outcome<Arc<KeyVaultKek>> {
            let client = self.add_vault_of(kid)?;
            Ok(Arc::new(client.kek(kid).map_err(setup_error)?))
        }

        /// A signer with the Key Vault key `kid` (its vault is added), its versioned kid and
        /// public key (`--sign-with-kid`).
        pub async fn signer(
            &mut self,
            kid: &str,
        ) -> Outcome<(Arc<dyn KeySigner>, String, RsaPublicKey)> {
            let client = self.add_vault_of(kid)?;
            let signer = client
                .signer(kid)
                .await
                .map_err(|e| Fail::from(e).context("--sign-with-kid"))?;
            let versioned = signer.kid().to_owned();
            let public = signer.public_key().clone();
            Ok((Arc::new(signer), versioned, public))
        }

        /// The versioned kid and public key of the Key Vault key `kid` (`--trust-kid`).
        pub async fn trusted_key(&mut self, kid: &str) -> Outcome<(String, RsaPublicKey)> {
            let client = self.add_vault_of(kid)?;
            client
                .trusted_key(kid)
                .await
                .map_err(|e| Fail::from(e).context("--trust-kid"))
        }

        /// A resolver for kids of the configured vaults (none when no vault is configured).
        pub fn resolver(&self) -> Option<Arc<dyn KeyEncryptionKeyResolver>> {
            let mut clients = self.clients.iter();
            let first = clients.next()?;
            let mut resolver = KeyVaultResolver::new(Arc::clone(first));
            for c in clients {
                resolver = resolver.with_vault(Arc::clone(c));
            }
            Some(Arc::new(resolver))
        }
    }

    /// The credential configuration: the environment's, with the kind `--credential` names, the
    /// token endpoint reached through `transport`.
    pub fn credential_config(
        credential: Option<&str>,
        transport: &TransportOptions,
    ) -> Outcome<CredentialConfig> {
        let mut config = CredentialConfig::from_env().map_err(setup_error)?;
        if let Some(name) = credential {
            let name = if name == "chain" { "auto" } else { name };
            config.kind = CredentialKind::from_name(name);
        }
        config.transport = transport.clone();
        Ok(config)
    }

    /// `scheme://authority` of a kid.
    fn origin(kid: &str) -> Option<String> {
        let kid = kid.trim();
        let (scheme, rest) = kid.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        if scheme.is_empty() || authority.is_empty() {
            return None;
        }
        Some(format!("{scheme}://{authority}"))
    }
}

#[cfg(not(feature = "azure"))]
mod imp {
    use super::*;

    /// Key Vault is not built in: naming a vault is a usage error.
    pub struct Vaults;

    impl Vaults {
        /// Checks that no Azure option was given.
        pub fn new(args: &ConnectionArgs) -> Outcome<Vaults> {
            if let Some(p) = &args.key_vault_ca {
                read_ca(p)?;
            }
            if args.credential.is_some() {
                return Err(not_built("--credential"));
            }
            Ok(Vaults)
        }

        /// Always true.
        pub fn is_empty(&self) -> bool {
            true
        }

        /// Always a usage error.
        pub fn add_vault_of(&mut self, _kid: &str) -> Outcome<()> {
            Err(not_built("--key-vault-kid"))
        }

        /// Always a usage error.
        pub async fn signer(
            &mut self,
            _kid: &str,
        ) -> Outcome<(Arc<dyn KeySigner>, String, RsaPublicKey)> {
            Err(not_built("--sign-with-kid"))
        }

        /// Always a usage error.
        pub async fn trusted_key(&mut self, _kid: &str) -> Outcome<(String, RsaPublicKey)> {
            Err(not_built("--trust-kid"))
        }

        /// None.
        pub fn resolver(&self) -> Option<Arc<dyn KeyEncryptionKeyResolver>> {
            None
        }
    }

    /// The error for an Azure option in a build without Azure.
    pub fn not_built(option: &str) -> Fail {
        Fail::usage(format!(
            "{option} needs Key Vault, which is not built into this dpwrap (cargo feature `azure`)"
        ))
    }
}

pub use imp::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("https://127.0.0.1:8443"));
        assert!(is_loopback("https://localhost/keys/k"));
        assert!(is_loopback("https://[::1]:1/keys/k"));
        assert!(!is_loopback("https://v.vault.azure.net/keys/k"));
        assert!(!is_loopback("https://127.0.0.1.example.com/keys/k"));
    }
}
