//! Key Vault keys as [`KeyEncryptionKey`]s, on the official `azure_security_keyvault_keys` 1.x
//! client.
//!
//! - [`KeyVaultClient`]: one vault, one credential, one HTTPS transport, a [`RetryPolicy`].
//! - [`KeyVaultKek`]: one key of that vault. Unwrapping uses the version in the stored `kid` as
//!   written (a versionless `kid` means the latest version, as in .NET). Wrapping asks the vault
//!   (or, with [`KeyVaultKek::wrap_locally`], encrypts with the key's public half fetched once,
//!   which needs only the `get` permission) and stores the versioned `kid` the vault answers.
//! - [`KeyVaultResolver`]: maps stored kids to KEKs, refusing kids of vaults it was not
//!   configured for.
//! - [`KeyVaultSigner`]: a Key Vault key that signs keys (authenticated keys, RS256 through the
//!   vault's `sign` operation), so that a writer holding only `wrapKey` cannot plant keys that
//!   readers requiring authentication accept.
//!
//! Every answer is checked: the `kid` the service returns must name the key that was asked for,
//! and the result must have a plausible length. Failures say what to do: a 403 names the missing
//! permission and the kid, a 404 names the kid, a timeout says how long it waited.
//!
//! The content key goes to the vault in the `wrapKey` request body and comes back in the
//! `unwrapKey` response; dpwrap wipes its own copies, but the SDK's request and response buffers
//! are freed without wiping.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, StatusCode, Url};
use azure_security_keyvault_keys::models::{
    EncryptionAlgorithm, KeyClientGetKeyOptions, KeyClientSignOptions, KeyClientWrapKeyOptions,
    KeyOperationParameters, SignParameters, SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceId};
use tokio::sync::OnceCell;

use super::kek::{KeyEncryptionKey, KeyEncryptionKeyResolver, WrapAlgorithm, WrappedKey, truncate};
use super::retry::{self, Failure, RetryPolicy};
use super::transport::{TransportOptions, build_transport};
use crate::crypto::RsaPublicKey;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// Largest wrapped key or unwrapped result accepted from the service (an RSA-8192 block).
const MAX_RESULT_LEN: usize = 1024;

/// How to reach a vault.
#[derive(Clone)]
pub struct KeyVaultOptions {
    /// The HTTPS transport (custom roots for a private or local endpoint).
    pub transport: TransportOptions,
    /// Retries, backoff and the per-attempt timeout.
    pub retry: RetryPolicy,
    /// The REST API version (default: the SDK's, `2025-07-01` for 1.0).
    pub api_version: Option<String>,
    /// Whether the resource named in the vault's authentication challenge must be a parent
    /// domain of the vault's host (default true, as in the SDK). Only a vault reached by IP
    /// address (a local test vault) needs this off.
    pub verify_challenge_resource: bool,
}

impl Default for KeyVaultOptions {
    fn default() -> KeyVaultOptions {
        KeyVaultOptions {
            transport: TransportOptions::default(),
            retry: RetryPolicy::default(),
            api_version: None,
            verify_challenge_resource: true,
        }
    }
}

impl fmt::Debug for KeyVaultOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultOptions")
            .field("transport", &self.transport)
            .field("retry", &self.retry)
            .field("api_version", &self.api_version)
            .field("verify_challenge_resource", &self.verify_challenge_resource)
            .finish()
    }
}

/// A client for the keys of one vault.
pub struct KeyVaultClient {
    vault: String,
    client: KeyClient,
    retry: RetryPolicy,
}

impl fmt::Debug for KeyVaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultClient")
            .field("vault", &self.vault)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, default port dropped.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let url = Url::parse(url.trim()).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

impl KeyVaultClient {
    /// A client for the vault at `vault_url` (`https://{name}.vault.azure.net`), authenticating
    /// with `credential`.
    pub fn new(
        vault_url: &str,
        credential: Arc<dyn TokenCredential>,
        options: KeyVaultOptions,
    ) -> Result<KeyVaultClient> {
        let vault = origin_of(vault_url).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "'{}' is not a vault URL; expected https://NAME.vault.azure.net",
                    truncate(vault_url, 200)
                ),
            )
        })?;
        if !vault.starts_with("https://") {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the vault URL '{vault}' must use https: Key Vault and the Azure SDK refuse bearer tokens over plain http"
                ),
            ));
        }
        let transport = build_transport(&options.transport)?;
        let mut key_options = KeyClientOptions {
            client_options: ClientOptions {
                transport: Some(transport),
                // dpwrap retries itself (see `retry`): never both.
                retry: RetryOptions::none(),
                ..ClientOptions::default()
            },
            verify_challenge_resource: Some(options.verify_challenge_resource),
            ..KeyClientOptions::default()
        };
        if let Some(v) = options.api_version {
            key_options.api_version = v;
        }
        let client = KeyClient::new(&vault, credential, Some(key_options)).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the Key Vault client for '{vault}' could not be created: {e}"),
            )
        })?;
        Ok(KeyVaultClient {
            vault,
            client,
            retry: options.retry,
        })
    }

    /// The vault, as `https://host[:port]`.
    pub fn vault(&self) -> &str {
        &self.vault
    }

    /// The KEK for `kid`, which must name a key of this vault. The version in `kid` is kept as
    /// written; without one, every call uses the key's latest version.
    pub fn kek(self: &Arc<Self>, kid: &str) -> Result<KeyVaultKek> {
        let id: ResourceId = kid.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "'{}' is not a Key Vault key identifier; expected https://NAME.vault.azure.net/keys/KEY[/VERSION]",
                    truncate(kid, 300)
                ),
            )
        })?;
        let vault = origin_of(&id.vault_url).unwrap_or_default();
        if vault != self.vault {
            return Err(other_vault(kid, &[self.vault.as_str()]));
        }
        Ok(KeyVaultKek {
            client: Arc::clone(self),
            kid: kid.trim().to_owned(),
            name: id.name,
            version: id.version.filter(|v| !v.is_empty()),
            wrap_locally: false,
            public: OnceCell::new(),
        })
    }
}

fn other_vault(kid: &str, configured: &[&str]) -> Error {
    let wanted = origin_of(kid).unwrap_or_else(|| truncate(kid, 200));
    Error::new(
        ErrorKind::Config,
        format!(
            "the kid '{}' belongs to vault '{wanted}', but only {configured:?} is configured; refusing to send it elsewhere (configure that vault too if it is really yours)",
            truncate(kid, 300)
        ),
    )
}

/// A Key Vault key as a [`KeyEncryptionKey`].
pub struct KeyVaultKek {
    client: Arc<KeyVaultClient>,
    kid: String,
    name: String,
    version: Option<String>,
    wrap_locally: bool,
    public: OnceCell<(String, RsaPublicKey)>,
}

impl fmt::Debug for KeyVaultKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultKek")
            .field("kid", &self.kid)
            .field("wrap_locally", &self.wrap_locally)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Op {
    Wrap,
    Unwrap,
    Get,
    Sign,
}

impl Op {
    fn permission(self) -> &'static str {
        match self {
            Op::Wrap => "wrapKey",
            Op::Unwrap => "unwrapKey",
            Op::Get => "get",
            Op::Sign => "sign",
        }
    }

    /// What to grant for this operation.
    fn grant(self) -> &'static str {
        match self {
            Op::Sign => {
                "RBAC role 'Key Vault Crypto User' on the signing key, or an access policy with key permissions get and sign"
            }
            _ => {
                "RBAC role 'Key Vault Crypto Service Encryption User', or an access policy with key permissions get, wrapKey and unwrapKey"
            }
        }
    }
}

impl KeyVaultKek {
    /// Wrap with the key's public half, fetched once with `get`, instead of calling `wrapKey`:
    /// one round trip less per key, and only the `get` permission needed to write. The stored
    /// `kid` is the versioned one `get` returned.
    pub fn wrap_locally(mut self, local: bool) -> KeyVaultKek {
        self.wrap_locally = local;
        self
    }

    /// The key's versioned `kid` and RSA public key, as the vault reports them (`get`).
    pub async fn public_key(&self) -> Result<(String, RsaPublicKey)> {
        let (kid, key) = self.public.get_or_try_init(|| self.fetch_public()).await?;
        Ok((kid.clone(), key.clone()))
    }

    async fn fetch_public(&self) -> Result<(String, RsaPublicKey)> {
        let key = retry::run(&self.client.retry, || async {
            let options = KeyClientGetKeyOptions {
                key_version: self.version.clone(),
                ..Default::default()
            };
            self.client
                .client
                .get_key(&self.name, Some(options))
                .await?
                .into_model()
        })
        .await
        .map_err(|f| self.failure(Op::Get, f))?;
        if key.attributes.as_ref().and_then(|a| a.enabled) == Some(false) {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "the Key Vault key '{}' is disabled; enable it in the vault",
                    self.kid
                ),
            ));
        }
        let jwk = key
            .key
            .ok_or_else(|| self.bad_answer("no key in the get answer"))?;
        let kid = jwk
            .kid
            .clone()
            .ok_or_else(|| self.bad_answer("no kid in the get answer"))?;
        self.check_answer_kid(&kid)?;
        let (Some(n), Some(e)) = (jwk.n.as_deref(), jwk.e.as_deref()) else {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "the Key Vault key '{}' is not an RSA key (no modulus in its public half); ASP.NET wraps with RSA-OAEP",
                    self.kid
                ),
            ));
        };
        let public = RsaPublicKey::from_components(n, e)
            .map_err(|_| self.bad_answer("the key's public half is invalid"))?;
        Ok((kid, public))
    }

    fn bad_answer(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault gave an unexpected answer for kid '{}': {what}",
                self.kid
            ),
        )
    }

    /// The `kid` the service answered with must be this key: same vault, same name, and the same
    /// version when a version was asked for.
    fn check_answer_kid(&self, answered: &str) -> Result<()> {
        let Ok(id) = answered.parse::<ResourceId>() else {
            return Err(self.bad_answer("the returned kid is not a key identifier"));
        };
        let same_vault = origin_of(&id.vault_url).as_deref() == Some(self.client.vault.as_str());
        let same_name = id.name.eq_ignore_ascii_case(&self.name);
        let same_version = match (&self.version, &id.version) {
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
            (None, _) => true,
        };
        if same_vault && same_name && same_version {
            Ok(())
        } else {
            Err(self.bad_answer(&format!(
                "it answered for kid '{}'",
                truncate(answered, 300)
            )))
        }
    }

    fn failure(&self, op: Op, failure: Failure) -> Error {
        map_failure(&self.kid, op, &self.client.retry, failure)
    }

    fn parameters(algorithm: WrapAlgorithm, value: &[u8]) -> KeyOperationParameters {
        let algorithm = match algorithm {
            WrapAlgorithm::RsaOaep => EncryptionAlgorithm::RsaOaep,
            WrapAlgorithm::RsaOaep256 => EncryptionAlgorithm::RsaOaep256,
            WrapAlgorithm::Rsa1_5 => EncryptionAlgorithm::Rsa1_5,
        };
        KeyOperationParameters {
            algorithm: Some(algorithm),
            value: Some(value.to_vec()),
            ..Default::default()
        }
    }
}

#[async_trait]
impl KeyEncryptionKey for KeyVaultKek {
    fn key_id(&self) -> &str {
        &self.kid
    }

    async fn wrap_key(&self, algorithm: WrapAlgorithm, key: &[u8]) -> Result<WrappedKey> {
        if self.wrap_locally {
            let (kid, public) = self.public_key().await?;
            let wrapped = public.encrypt(&algorithm.rsa_padding(), key)?;
            return Ok(WrappedKey { kid, wrapped });
        }
        let mut result = retry::run(&self.client.retry, || async {
            let body = Self::parameters(algorithm, key).try_into();
            let options = KeyClientWrapKeyOptions {
                key_version: self.version.clone(),
                ..Default::default()
            };
            self.client
                .client
                .wrap_key(&self.name, body?, Some(options))
                .await?
                .into_model()
        })
        .await
        .map_err(|f| self.failure(Op::Wrap, f))?;
        let kid = result
            .kid
            .take()
            .ok_or_else(|| self.bad_answer("no kid in the wrapKey answer"))?;
        self.check_answer_kid(&kid)?;
        let wrapped = result
            .result
            .take()
            .filter(|w| (64..=MAX_RESULT_LEN).contains(&w.len()))
            .ok_or_else(|| {
                self.bad_answer("the wrapped key is missing or has an impossible length")
            })?;
        Ok(WrappedKey { kid, wrapped })
    }

    async fn unwrap_key(&self, algorithm: WrapAlgorithm, wrapped: &[u8]) -> Result<SecretBytes> {
        let version = self.version.as_deref().unwrap_or("");
        let mut result = retry::run(&self.client.retry, || async {
            let body = Self::parameters(algorithm, wrapped).try_into()?;
            self.client
                .client
                .unwrap_key(&self.name, version, body, None)
                .await?
                .into_model()
        })
        .await
        .map_err(|f| self.failure(Op::Unwrap, f))?;
        let key = SecretBytes::new(result.result.take().unwrap_or_default());
        let kid = result.kid.take();
        match kid {
            Some(kid) => self.check_answer_kid(&kid)?,
            None => return Err(self.bad_answer("no kid in the unwrapKey answer")),
        }
        if key.is_empty() || key.len() > MAX_RESULT_LEN {
            return Err(self.bad_answer("the unwrapped key is missing or has an impossible length"));
        }
        Ok(key)
    }
}

/// A Key Vault key that signs keys ([`KeySigner`](crate::authentication::KeySigner)): the
/// signature is made by the vault (`sign`, RS256 over the SHA-256 digest), so the private key
/// never leaves it, and a writer with only `wrapKey` cannot make one.
///
/// The signer is pinned to one version of the key, the one `get` reports when it is made, and
/// names it in every proof (`kid:https://…/keys/NAME/VERSION`): readers trust that exact version
/// ([`TrustedSigners::with_key`](crate::authentication::TrustedSigners::with_key) with
/// [`KeyVaultSigner::public_key`], or [`KeyVaultClient::trusted_key`]). Every signature the vault
/// returns is verified with the public key before it is used.
pub struct KeyVaultSigner {
    kek: KeyVaultKek,
    kid: String,
    public: RsaPublicKey,
}

impl fmt::Debug for KeyVaultSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyVaultClient {
    /// A signer with the key `kid` of this vault (its latest version when `kid` names none).
    /// Needs the `get` and `sign` permissions.
    pub async fn signer(self: &Arc<Self>, kid: &str) -> Result<KeyVaultSigner> {
        let (versioned, public) = self.kek(kid)?.public_key().await?;
        let kek = self.kek(&versioned)?;
        Ok(KeyVaultSigner {
            kek,
            kid: versioned,
            public,
        })
    }

    /// The versioned kid and public key of `kid` (latest version when `kid` names none), for a
    /// reader to trust keys signed with it. Needs only the `get` permission.
    pub async fn trusted_key(self: &Arc<Self>, kid: &str) -> Result<(String, RsaPublicKey)> {
        self.kek(kid)?.public_key().await
    }
}

impl KeyVaultSigner {
    /// The versioned kid named in the proofs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key that verifies the proofs.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }
}

#[async_trait]
impl crate::authentication::KeySigner for KeyVaultSigner {
    fn signer(&self) -> String {
        format!("kid:{}", self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(message).to_vec();
        let kek = &self.kek;
        let mut result = retry::run(&kek.client.retry, || async {
            let body = SignParameters {
                algorithm: Some(SignatureAlgorithm::Rs256),
                value: Some(digest.clone()),
            }
            .try_into()?;
            let options = KeyClientSignOptions {
                key_version: kek.version.clone(),
                ..Default::default()
            };
            kek.client
                .client
                .sign(&kek.name, body, Some(options))
                .await?
                .into_model()
        })
        .await
        .map_err(|f| kek.failure(Op::Sign, f))?;
        match result.kid.take() {
            Some(kid) => kek.check_answer_kid(&kid)?,
            None => return Err(kek.bad_answer("no kid in the sign answer")),
        }
        let signature = result
            .result
            .take()
            .filter(|s| s.len() <= MAX_RESULT_LEN)
            .ok_or_else(|| kek.bad_answer("the signature is missing or too long"))?;
        if !self.public.verify_sha256(message, &signature) {
            return Err(kek.bad_answer("the signature does not verify with the key's public half"));
        }
        Ok(signature)
    }
}

/// The body of a Key Vault error, `{"error":{"code","message","innererror":{"code"}}}`.
fn service_error(error: &azure_core::Error) -> (Option<String>, Option<String>) {
    let azure_core::error::ErrorKind::HttpResponse { raw_response, .. } = error.kind() else {
        return (None, None);
    };
    let Some(raw) = raw_response else {
        return (None, None);
    };
    let body: &[u8] = raw.body().as_ref();
    if body.len() > 64 * 1024 {
        return (None, None);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let message = v
        .pointer("/error/message")
        .and_then(serde_json::Value::as_str)
        .map(|m| truncate(m, 300));
    let inner = v
        .pointer("/error/innererror/code")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    (message, inner)
}

fn map_failure(kid: &str, op: Op, policy: &RetryPolicy, failure: Failure) -> Error {
    let perm = op.permission();
    let (error, attempts) = match failure {
        Failure::TimedOut { attempts } => {
            return Error::new(
                ErrorKind::Cancelled,
                format!(
                    "Key Vault did not answer {perm} for kid '{kid}' within {:?} ({attempts} attempts); check network access to the vault, or raise the timeout",
                    policy.attempt_timeout
                ),
            );
        }
        Failure::Service { error, attempts } => (error, attempts),
    };
    let (message, inner) = service_error(&error);
    let said = message
        .map(|m| format!("; the vault said: {m}"))
        .unwrap_or_default();
    let status = error.http_status();
    match status {
        Some(StatusCode::Forbidden) if inner.as_deref() == Some("KeyDisabled") => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault refused {perm} for kid '{kid}': the key is disabled; enable it in the vault{said}"
            ),
        ),
        Some(StatusCode::Forbidden) => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault refused {perm} for kid '{kid}' (403 Forbidden): the identity lacks the '{perm}' permission on this key; grant it ({}){said}",
                op.grant()
            ),
        ),
        Some(StatusCode::NotFound) => Error::new(
            ErrorKind::NoMatchingKey,
            format!(
                "Key Vault has no key for kid '{kid}' (404 Not Found): check the vault, key name and version; a deleted key must be recovered before its keys can be read{said}"
            ),
        ),
        Some(StatusCode::Unauthorized) => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault did not accept the credential's token for {perm} on kid '{kid}' (401 Unauthorized); check the tenant and the identity{said}"
            ),
        ),
        Some(StatusCode::BadRequest) if matches!(op, Op::Unwrap) => Error::decrypt(),
        Some(s) if s == StatusCode::TooManyRequests || u16::from(s) >= 500 => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault kept failing {perm} for kid '{kid}' ({} after {attempts} attempts); try again later{said}",
                u16::from(s)
            ),
        ),
        Some(s) => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault refused {perm} for kid '{kid}' (HTTP {}){said}",
                u16::from(s)
            ),
        ),
        None if matches!(error.kind(), azure_core::error::ErrorKind::Credential) => Error::new(
            ErrorKind::Backend,
            format!(
                "no token could be obtained for Key Vault ({perm} on kid '{kid}'): {}",
                truncate(&error.to_string(), 500)
            ),
        ),
        None => Error::new(
            ErrorKind::Backend,
            format!(
                "Key Vault {perm} for kid '{kid}' failed after {attempts} attempts: {}",
                truncate(&error.to_string(), 300)
            ),
        ),
    }
}

/// Resolves stored kids to [`KeyVaultKek`]s of the configured vaults, refusing kids of any other
/// vault: a key file must not be able to send our token, or our unwrap requests, elsewhere.
#[derive(Clone, Debug)]
pub struct KeyVaultResolver {
    clients: Vec<Arc<KeyVaultClient>>,
    wrap_locally: bool,
}

impl KeyVaultResolver {
    /// A resolver for the keys of `client`'s vault.
    pub fn new(client: Arc<KeyVaultClient>) -> KeyVaultResolver {
        KeyVaultResolver {
            clients: vec![client],
            wrap_locally: false,
        }
    }

    /// Also resolve kids of another vault.
    pub fn with_vault(mut self, client: Arc<KeyVaultClient>) -> KeyVaultResolver {
        self.clients.push(client);
        self
    }

    /// The KEK for `kid` (see [`KeyVaultClient::kek`]).
    pub fn kek(&self, kid: &str) -> Result<KeyVaultKek> {
        let vault = origin_of(kid);
        let client = self
            .clients
            .iter()
            .find(|c| vault.as_deref() == Some(c.vault()));
        match client {
            Some(c) => Ok(c.kek(kid)?.wrap_locally(self.wrap_locally)),
            None => {
                let configured: Vec<&str> = self.clients.iter().map(|c| c.vault()).collect();
                Err(other_vault(kid, &configured))
            }
        }
    }
}

#[async_trait]
impl KeyEncryptionKeyResolver for KeyVaultResolver {
    async fn resolve(&self, kid: &str) -> Result<Arc<dyn KeyEncryptionKey>> {
        Ok(Arc::new(self.kek(kid)?))
    }
}
