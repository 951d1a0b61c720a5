//! Key Vault secrets, on the official `azure_security_keyvault_secrets` 1.x client: most often a
//! certificate kept in Key Vault, whose secret is the base64 PFX (content type
//! `application/x-pkcs12`, empty password), used as the certificate protector's key material:
//!
//! ```ignore
//! let cert = secrets.certificate("dataprotection-cert", None, None).await?;
//! ```
//!
//! The value is returned in a buffer wiped on drop. The SDK's response buffer that carried it is
//! freed without wiping.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, StatusCode};
use azure_security_keyvault_secrets::models::{SecretClientGetSecretOptions, SetSecretParameters};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use zeroize::Zeroizing;

use super::kek::truncate;
use super::key_vault::{KeyVaultOptions, origin_of};
use super::retry::{self, Failure, RetryPolicy};
use super::transport::build_transport;
use crate::error::{Error, ErrorKind, Result};

/// Largest secret accepted (Key Vault's own limit is 25 KiB).
pub const MAX_SECRET_LEN: usize = 256 * 1024;

/// A secret's value, with its id and content type. Wiped on drop; never printed.
pub struct SecretValue {
    id: String,
    content_type: Option<String>,
    value: Zeroizing<String>,
}

impl SecretValue {
    /// The secret's versioned id (`https://{vault}/secrets/{name}/{version}`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The content type (`application/x-pkcs12` for a Key Vault certificate's PFX).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The value. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("id", &self.id)
            .field("content_type", &self.content_type)
            .field("value", &"redacted")
            .finish()
    }
}

/// A client for the secrets of one vault.
pub struct KeyVaultSecrets {
    vault: String,
    client: SecretClient,
    retry: RetryPolicy,
}

impl fmt::Debug for KeyVaultSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSecrets")
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl KeyVaultSecrets {
    /// A client for the secrets of the vault at `vault_url`.
    pub fn new(
        vault_url: &str,
        credential: Arc<dyn TokenCredential>,
        options: KeyVaultOptions,
    ) -> Result<KeyVaultSecrets> {
        let vault = origin_of(vault_url)
            .filter(|v| v.starts_with("https://"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "'{}' is not an https vault URL; expected https://NAME.vault.azure.net",
                        truncate(vault_url, 200)
                    ),
                )
            })?;
        let mut secret_options = SecretClientOptions {
            client_options: ClientOptions {
                transport: Some(build_transport(&options.transport)?),
                retry: RetryOptions::none(),
                ..ClientOptions::default()
            },
            verify_challenge_resource: Some(options.verify_challenge_resource),
            ..SecretClientOptions::default()
        };
        if let Some(v) = options.api_version {
            secret_options.api_version = v;
        }
        let client = SecretClient::new(&vault, credential, Some(secret_options)).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the Key Vault secret client for '{vault}' could not be created: {e}"),
            )
        })?;
        Ok(KeyVaultSecrets {
            vault,
            client,
            retry: options.retry,
        })
    }

    /// Loads a certificate with its private key from a secret: the base64 PFX that Key Vault keeps
    /// for a certificate (content type `application/x-pkcs12`, normally with an empty password),
    /// or a PEM bundle (content type `application/x-pem-file`). `password` defaults to empty.
    pub async fn certificate(
        &self,
        name: &str,
        version: Option<&str>,
        password: Option<&crate::secret::Password>,
    ) -> Result<crate::certificate::CertificateWithKey> {
        use crate::certificate::CertificateWithKey;
        let secret = self.get(name, version).await?;
        let empty = crate::secret::Password::from("");
        let password = password.unwrap_or(&empty);
        let loaded = if secret.content_type() == Some("application/x-pem-file") {
            CertificateWithKey::from_pem_bundle(secret.expose().as_bytes(), Some(password))
        } else {
            CertificateWithKey::from_pkcs12_base64(secret.expose(), password)
        };
        loaded.map_err(|e| e.context(format!("the Key Vault secret '{}'", secret.id())))
    }

    /// The vault, as `https://host[:port]`.
    pub fn vault(&self) -> &str {
        &self.vault
    }

    /// The secret `name`, at `version` (the latest when `None`).
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<SecretValue> {
        self.get_if_exists(name, version).await?.ok_or_else(|| {
            let what = match version {
                Some(v) => format!("{name}/{v}"),
                None => name.to_owned(),
            };
            Error::new(
                ErrorKind::Backend,
                format!(
                    "Key Vault has no secret '{what}' in {} (404 Not Found); check the name and version",
                    self.vault
                ),
            )
        })
    }

    /// The secret `name`, at `version` (the latest when `None`), or `None` when the vault has no
    /// such secret (404).
    pub async fn get_if_exists(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<SecretValue>> {
        let what = match version {
            Some(v) => format!("{name}/{v}"),
            None => name.to_owned(),
        };
        let result = retry::run(&self.retry, || async {
            let options = SecretClientGetSecretOptions {
                secret_version: version.map(str::to_owned),
                ..Default::default()
            };
            self.client
                .get_secret(name, Some(options))
                .await?
                .into_model()
        })
        .await;
        let mut secret = match result {
            Ok(s) => s,
            Err(Failure::Service { error, .. })
                if error.http_status() == Some(StatusCode::NotFound) =>
            {
                return Ok(None);
            }
            Err(f) => return Err(self.failure("get", &what, f)),
        };
        let value = Zeroizing::new(secret.value.take().unwrap_or_default());
        if value.len() > MAX_SECRET_LEN {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "limit secret length ({MAX_SECRET_LEN}) exceeded: the secret '{what}' is too large"
                ),
            ));
        }
        Ok(Some(SecretValue {
            id: secret.id.take().unwrap_or_default(),
            content_type: secret.content_type.take(),
            value,
        }))
    }

    /// Stores `value` as a new version of the secret `name`; returns the new version's id.
    pub async fn set(&self, name: &str, value: &str, content_type: Option<&str>) -> Result<String> {
        let mut secret = retry::run(&self.retry, || async {
            let parameters = SetSecretParameters {
                value: Some(value.to_owned()),
                content_type: content_type.map(str::to_owned),
                ..Default::default()
            };
            self.client
                .set_secret(name, parameters.try_into()?, None)
                .await?
                .into_model()
        })
        .await
        .map_err(|f| self.failure("set", name, f))?;
        if let Some(v) = secret.value.as_mut() {
            zeroize::Zeroize::zeroize(v);
        }
        Ok(secret.id.take().unwrap_or_default())
    }

    fn failure(&self, op: &str, what: &str, failure: Failure) -> Error {
        let (error, attempts) = match failure {
            Failure::TimedOut { attempts } => {
                return Error::new(
                    ErrorKind::Cancelled,
                    format!(
                        "Key Vault did not answer {op} for secret '{what}' in {} within {:?} ({attempts} attempts); check network access, or raise the timeout",
                        self.vault, self.retry.attempt_timeout
                    ),
                );
            }
            Failure::Service { error, attempts } => (error, attempts),
        };
        match error.http_status() {
            Some(StatusCode::Forbidden) => Error::new(
                ErrorKind::Backend,
                format!(
                    "Key Vault refused {op} for secret '{what}' in {} (403 Forbidden): the identity lacks the '{op}' secret permission; grant it (RBAC role 'Key Vault Secrets User' to read, 'Key Vault Secrets Officer' to write)",
                    self.vault
                ),
            ),
            Some(StatusCode::NotFound) => Error::new(
                ErrorKind::Backend,
                format!(
                    "Key Vault has no secret '{what}' in {} (404 Not Found); check the name and version",
                    self.vault
                ),
            ),
            Some(s) => Error::new(
                ErrorKind::Backend,
                format!(
                    "Key Vault failed {op} for secret '{what}' in {} (HTTP {} after {attempts} attempts)",
                    self.vault,
                    u16::from(s)
                ),
            ),
            None => Error::new(
                ErrorKind::Backend,
                format!(
                    "Key Vault {op} for secret '{what}' in {} failed after {attempts} attempts: {}",
                    self.vault,
                    truncate(&error.to_string(), 300)
                ),
            ),
        }
    }
}
