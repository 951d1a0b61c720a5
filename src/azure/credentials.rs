//! Choosing the Azure credential, by configuration or environment.
//!
//! The Rust SDK has no `DefaultAzureCredential`, so dpwrap builds the chain its users know from
//! .NET, in the same order, with the same environment variables:
//!
//! | order | credential | used when |
//! | --- | --- | --- |
//! | 1 | client secret (`EnvironmentCredential`) | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` are set |
//! | 1 | client certificate (`EnvironmentCredential`) | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_CERTIFICATE_PATH` are set (and no secret) |
//! | 2 | workload identity (AKS, federated credentials) | `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` are set |
//! | 3 | managed identity (App Service, VMs, Container Apps, Functions) | always tried; user-assigned when `AZURE_CLIENT_ID` is set; gives up after a 2 s probe when no endpoint answers |
//! | 4 | Azure CLI (`az login`) | always tried |
//! | 5 | Azure Developer CLI (`azd auth login`) | always tried |
//!
//! As in .NET, `AZURE_TOKEN_CREDENTIALS=prod` keeps 1–3, `=dev` keeps 4–5, and a credential name
//! (`EnvironmentCredential`, `WorkloadIdentityCredential`, `ManagedIdentityCredential`,
//! `AzureCliCredential`, `AzureDeveloperCliCredential`) keeps only that one. An explicit
//! [`CredentialKind`] in the configuration overrides the environment. The chain remembers the
//! first credential that gives a token and uses only it from then on; when all fail, the error
//! lists each one's reason. `AZURE_AUTHORITY_HOST` selects another cloud's login endpoint.
//!
//! Client certificates: azure_identity's own `ClientCertificateCredential` needs OpenSSL (a C
//! library and its headers at build time), so dpwrap signs the client assertion itself (RS256
//! JWT with the certificate's `x5t`, as Entra ID expects) with its RSA code and hands it to the
//! SDK's `ClientAssertionCredential`. The certificate file is PEM holding the certificate and its
//! unencrypted private key, as `AZURE_CLIENT_CERTIFICATE_PATH` takes in the other SDKs; a PFX is
//! refused with instructions to convert it.
//!
//! Nothing here prints a secret: the client secret is a [`Password`], and every `Debug` redacts.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientMethodOptions, ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use base64::Engine as _;

use super::kek::{pem_blocks, rsa_private_key_from_pem};
use super::transport::{TransportOptions, build_transport};
use crate::crypto::{Digest, RsaPrivateKey};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Password;

const PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";

/// Which credential to use.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The chain described in the module documentation.
    Auto,
    /// The chain's production part: environment, workload identity, managed identity.
    Production,
    /// The chain's developer part: Azure CLI, Azure Developer CLI.
    Developer,
    /// A service principal's client secret (`AZURE_CLIENT_SECRET`).
    ClientSecret,
    /// A service principal's certificate (`AZURE_CLIENT_CERTIFICATE_PATH`, PEM).
    ClientCertificate,
    /// Client secret or certificate, whichever the environment gives (`EnvironmentCredential`).
    Environment,
    /// Workload identity (`AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity,
    /// Managed identity (system-assigned, or user-assigned by client id or resource id).
    ManagedIdentity,
    /// `az login`.
    AzureCli,
    /// `azd auth login`.
    AzureDeveloperCli,
}

impl CredentialKind {
    /// The kind named `name`: dpwrap's names (`auto`, `prod`, `dev`, `client-secret`,
    /// `client-certificate`, `environment`, `workload-identity`, `managed-identity`, `azure-cli`,
    /// `azure-developer-cli`) or the .NET credential names `AZURE_TOKEN_CREDENTIALS` takes.
    pub fn from_name(name: &str) -> Option<CredentialKind> {
        let n = name.trim().to_ascii_lowercase();
        Some(match n.as_str() {
            "auto" | "default" => CredentialKind::Auto,
            "prod" | "production" => CredentialKind::Production,
            "dev" | "developer" => CredentialKind::Developer,
            "client-secret" | "clientsecretcredential" => CredentialKind::ClientSecret,
            "client-certificate" | "clientcertificatecredential" => {
                CredentialKind::ClientCertificate
            }
            "environment" | "environmentcredential" => CredentialKind::Environment,
            "workload-identity" | "workloadidentitycredential" => CredentialKind::WorkloadIdentity,
            "managed-identity" | "managedidentitycredential" => CredentialKind::ManagedIdentity,
            "azure-cli" | "azureclicredential" => CredentialKind::AzureCli,
            "azure-developer-cli" | "azuredeveloperclicredential" => {
                CredentialKind::AzureDeveloperCli
            }
            _ => return None,
        })
    }
}

/// One credential of a chain, as planned.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// Client secret.
    ClientSecret,
    /// Client certificate.
    ClientCertificate,
    /// Workload identity.
    WorkloadIdentity,
    /// Managed identity.
    ManagedIdentity,
    /// Azure CLI.
    AzureCli,
    /// Azure Developer CLI.
    AzureDeveloperCli,
}

impl CredentialSource {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::ClientSecret => "client secret",
            CredentialSource::ClientCertificate => "client certificate",
            CredentialSource::WorkloadIdentity => "workload identity",
            CredentialSource::ManagedIdentity => "managed identity",
            CredentialSource::AzureCli => "Azure CLI",
            CredentialSource::AzureDeveloperCli => "Azure Developer CLI",
        }
    }
}

/// What to authenticate with. Fields left `None` are taken from the environment by
/// [`CredentialConfig::from_env`].
#[derive(Clone, Default)]
pub struct CredentialConfig {
    /// Which credential (default [`CredentialKind::Auto`]).
    pub kind: Option<CredentialKind>,
    /// The Entra ID tenant (`AZURE_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// The application (client) id (`AZURE_CLIENT_ID`); for managed identity, the user-assigned
    /// identity's client id.
    pub client_id: Option<String>,
    /// The client secret (`AZURE_CLIENT_SECRET`).
    pub client_secret: Option<Arc<Password>>,
    /// A PEM file with the client certificate and its private key (`AZURE_CLIENT_CERTIFICATE_PATH`).
    pub client_certificate_path: Option<PathBuf>,
    /// Send the certificate chain (`x5c`) for subject-name/issuer authentication
    /// (`AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`).
    pub send_certificate_chain: bool,
    /// The workload identity token file (`AZURE_FEDERATED_TOKEN_FILE`).
    pub federated_token_file: Option<PathBuf>,
    /// A user-assigned managed identity's resource id (instead of its client id).
    pub managed_identity_resource_id: Option<String>,
    /// The login endpoint (`AZURE_AUTHORITY_HOST`; default the public cloud's).
    pub authority_host: Option<String>,
    /// How to reach the login endpoint.
    pub transport: TransportOptions,
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("kind", &self.kind)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "redacted"),
            )
            .field("client_certificate_path", &self.client_certificate_path)
            .field("send_certificate_chain", &self.send_certificate_chain)
            .field("federated_token_file", &self.federated_token_file)
            .field(
                "managed_identity_resource_id",
                &self.managed_identity_resource_id,
            )
            .field("authority_host", &self.authority_host)
            .finish()
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl CredentialConfig {
    /// The configuration the process environment describes (see the module documentation).
    pub fn from_env() -> Result<CredentialConfig> {
        CredentialConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration described by the variables `var` returns (for tests and for callers
    /// that keep settings elsewhere).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<CredentialConfig> {
        let get = |name: &str| non_empty(var(name));
        let kind = match get("AZURE_TOKEN_CREDENTIALS") {
            Some(name) => Some(CredentialKind::from_name(&name).ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "AZURE_TOKEN_CREDENTIALS='{}' names no credential; use prod, dev, EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, AzureCliCredential or AzureDeveloperCliCredential",
                        super::kek::truncate(&name, 100)
                    ),
                )
            })?),
            None => None,
        };
        Ok(CredentialConfig {
            kind,
            tenant_id: get("AZURE_TENANT_ID"),
            client_id: get("AZURE_CLIENT_ID"),
            client_secret: var("AZURE_CLIENT_SECRET")
                .filter(|s| !s.is_empty())
                .map(|s| Arc::new(Password::new(s))),
            client_certificate_path: get("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from),
            send_certificate_chain: matches!(
                get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").as_deref(),
                Some("1" | "true" | "True" | "TRUE")
            ),
            federated_token_file: get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
            managed_identity_resource_id: None,
            authority_host: get("AZURE_AUTHORITY_HOST"),
            transport: TransportOptions::default(),
        })
    }

    fn service_principal(&self) -> bool {
        self.tenant_id.is_some() && self.client_id.is_some()
    }

    fn environment_source(&self) -> Option<CredentialSource> {
        if !self.service_principal() {
            None
        } else if self.client_secret.is_some() {
            Some(CredentialSource::ClientSecret)
        } else if self.client_certificate_path.is_some() {
            Some(CredentialSource::ClientCertificate)
        } else {
            None
        }
    }

    fn workload_available(&self) -> bool {
        self.service_principal() && self.federated_token_file.is_some()
    }

    /// The credentials that [`build`](Self::build) will chain, in order.
    pub fn plan(&self) -> Result<Vec<CredentialSource>> {
        use CredentialSource as S;
        let need = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::new(ErrorKind::Config, what.to_owned()))
            }
        };
        let production = || {
            let mut v = Vec::new();
            v.extend(self.environment_source());
            if self.workload_available() {
                v.push(S::WorkloadIdentity);
            }
            v.push(S::ManagedIdentity);
            v
        };
        Ok(match self.kind.unwrap_or(CredentialKind::Auto) {
            CredentialKind::Auto => {
                let mut v = production();
                v.extend([S::AzureCli, S::AzureDeveloperCli]);
                v
            }
            CredentialKind::Production => production(),
            CredentialKind::Developer => vec![S::AzureCli, S::AzureDeveloperCli],
            CredentialKind::ClientSecret => {
                need(
                    self.service_principal() && self.client_secret.is_some(),
                    "the client-secret credential needs a tenant id, a client id and a secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)",
                )?;
                vec![S::ClientSecret]
            }
            CredentialKind::ClientCertificate => {
                need(
                    self.service_principal() && self.client_certificate_path.is_some(),
                    "the client-certificate credential needs a tenant id, a client id and a certificate file (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH)",
                )?;
                vec![S::ClientCertificate]
            }
            CredentialKind::Environment => {
                let source = self.environment_source();
                need(
                    source.is_some(),
                    "the environment credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
                )?;
                source.into_iter().collect()
            }
            CredentialKind::WorkloadIdentity => {
                need(
                    self.workload_available(),
                    "the workload identity credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (set by the AKS workload identity webhook)",
                )?;
                vec![S::WorkloadIdentity]
            }
            CredentialKind::ManagedIdentity => vec![S::ManagedIdentity],
            CredentialKind::AzureCli => vec![S::AzureCli],
            CredentialKind::AzureDeveloperCli => vec![S::AzureDeveloperCli],
        })
    }

    fn client_options(&self, transport: &Transport) -> Result<ClientOptions> {
        let mut options = ClientOptions {
            transport: Some(transport.clone()),
            ..ClientOptions::default()
        };
        if let Some(host) = &self.authority_host {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = host.trim_end_matches('/').to_owned();
            options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
        }
        Ok(options)
    }

    fn authority(&self) -> String {
        self.authority_host
            .as_deref()
            .unwrap_or(PUBLIC_CLOUD)
            .trim_end_matches('/')
            .to_owned()
    }

    fn build_one(
        &self,
        source: CredentialSource,
        transport: &Transport,
    ) -> Result<Arc<dyn TokenCredential>> {
        let tenant = self.tenant_id.clone().unwrap_or_default();
        let client_id = self.client_id.clone().unwrap_or_default();
        let built: azure_core::Result<Arc<dyn TokenCredential>> = match source {
            CredentialSource::ClientSecret => {
                let secret = self
                    .client_secret
                    .as_ref()
                    .map(|s| Secret::new(s.expose().to_owned()))
                    .unwrap_or_else(|| Secret::new(String::new()));
                ClientSecretCredential::new(
                    &tenant,
                    client_id,
                    secret,
                    Some(ClientSecretCredentialOptions {
                        client_options: self.client_options(transport)?,
                    }),
                )
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialSource::ClientCertificate => {
                let path = self.client_certificate_path.clone().unwrap_or_default();
                let assertion = CertificateAssertion::from_pem_file(
                    &path,
                    &client_id,
                    &format!("{}/{tenant}/oauth2/v2.0/token", self.authority()),
                    self.send_certificate_chain,
                )?;
                ClientAssertionCredential::new(
                    tenant,
                    client_id,
                    assertion,
                    Some(ClientAssertionCredentialOptions {
                        client_options: self.client_options(transport)?,
                    }),
                )
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialSource::WorkloadIdentity => {
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: self.client_options(transport)?,
                    },
                    client_id: self.client_id.clone(),
                    tenant_id: self.tenant_id.clone(),
                    token_file_path: self.federated_token_file.clone(),
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialSource::ManagedIdentity => {
                let user_assigned_id = match (&self.managed_identity_resource_id, &self.client_id) {
                    (Some(r), _) => Some(UserAssignedId::ResourceId(r.clone())),
                    (None, Some(c)) => Some(UserAssignedId::ClientId(c.clone())),
                    (None, None) => None,
                };
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id,
                    client_options: ClientOptions {
                        transport: Some(transport.clone()),
                        ..ClientOptions::default()
                    },
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialSource::AzureCli => {
                AzureCliCredential::new(Some(AzureCliCredentialOptions {
                    tenant_id: self.tenant_id.clone(),
                    ..Default::default()
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialSource::AzureDeveloperCli => {
                AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
                    tenant_id: self.tenant_id.clone(),
                    ..Default::default()
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
        };
        built.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "the {} credential could not be set up: {e}",
                    source.as_str()
                ),
            )
        })
    }

    /// Builds the credential: one credential, or the chain of [`plan`](Self::plan).
    pub fn build(&self) -> Result<Arc<dyn TokenCredential>> {
        let plan = self.plan()?;
        let transport = build_transport(&self.transport)?;
        let mut sources = Vec::with_capacity(plan.len());
        for source in &plan {
            let credential = self.build_one(*source, &transport)?;
            // In a chain, a managed identity endpoint that does not answer quickly is taken to be
            // absent, as .NET's DefaultAzureCredential probes it.
            let probe = (plan.len() > 1 && *source == CredentialSource::ManagedIdentity)
                .then_some(Duration::from_secs(2));
            sources.push((*source, credential, probe));
        }
        match sources.as_slice() {
            [(_, only, None)] => Ok(Arc::clone(only)),
            _ => Ok(Arc::new(ChainedCredential {
                sources,
                chosen: AtomicUsize::new(usize::MAX),
            })),
        }
    }
}

/// Tries credentials in order; the first to give a token is used from then on.
pub struct ChainedCredential {
    sources: Vec<(CredentialSource, Arc<dyn TokenCredential>, Option<Duration>)>,
    chosen: AtomicUsize,
}

impl fmt::Debug for ChainedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainedCredential")
            .field(
                "sources",
                &self
                    .sources
                    .iter()
                    .map(|(s, _, _)| s.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Acquire);
        if let Some((_, credential, _)) = self.sources.get(chosen) {
            return credential.get_token(scopes, options).await;
        }
        let mut reasons = Vec::new();
        for (i, (source, credential, probe)) in self.sources.iter().enumerate() {
            let attempt = credential.get_token(scopes, options.clone());
            let result = match probe {
                Some(limit) => match tokio::time::timeout(*limit, attempt).await {
                    Ok(r) => r,
                    Err(_) => {
                        reasons.push(format!(
                            "{}: no endpoint answered within {limit:?}",
                            source.as_str()
                        ));
                        continue;
                    }
                },
                None => attempt.await,
            };
            match result {
                Ok(token) => {
                    self.chosen.store(i, Ordering::Release);
                    return Ok(token);
                }
                Err(e) => reasons.push(format!(
                    "{}: {}",
                    source.as_str(),
                    super::kek::truncate(&e.to_string(), 300)
                )),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Azure credential gave a token (tried in order: {}); configure one (see AZURE_TOKEN_CREDENTIALS)",
                reasons.join("; ")
            ),
        ))
    }
}

/// Signs client assertions with a certificate's private key: the JWT Entra ID's certificate
/// credentials take (RS256, `x5t` = the certificate's SHA-1 thumbprint, base64url).
pub struct CertificateAssertion {
    client_id: String,
    audience: String,
    header: String,
    key: RsaPrivateKey,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl CertificateAssertion {
    /// Reads the certificate (first `CERTIFICATE` block; the others are its chain) and its
    /// private key from PEM text.
    pub fn from_pem(
        pem: &str,
        client_id: &str,
        audience: &str,
        send_chain: bool,
    ) -> Result<CertificateAssertion> {
        let blocks = pem_blocks(pem)?;
        let certs: Vec<&[u8]> = blocks
            .iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der.as_slice())
            .collect();
        let Some(leaf) = certs.first() else {
            return Err(Error::certificate(
                "the client certificate file holds no CERTIFICATE block; it must hold the certificate and its private key in PEM",
            ));
        };
        let key = rsa_private_key_from_pem(pem)?;
        let x5t = b64url(&Digest::Sha1.hash(leaf));
        let header = if send_chain {
            let chain: Vec<String> = certs
                .iter()
                .map(|c| {
                    format!(
                        "\"{}\"",
                        base64::engine::general_purpose::STANDARD.encode(c)
                    )
                })
                .collect();
            format!(
                r#"{{"alg":"RS256","typ":"JWT","x5t":"{x5t}","x5c":[{}]}}"#,
                chain.join(",")
            )
        } else {
            format!(r#"{{"alg":"RS256","typ":"JWT","x5t":"{x5t}"}}"#)
        };
        Ok(CertificateAssertion {
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            header,
            key,
        })
    }

    /// Reads [`from_pem`](Self::from_pem) from a file. A PFX is refused with a conversion hint.
    pub fn from_pem_file(
        path: &std::path::Path,
        client_id: &str,
        audience: &str,
        send_chain: bool,
    ) -> Result<CertificateAssertion> {
        let bytes = zeroize::Zeroizing::new(crate::key_file::read_bounded(path, 1024 * 1024)?);
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Err(Error::certificate(format!(
                "{}: the client certificate is not PEM (a PFX?); convert it with: openssl pkcs12 -in CERT.pfx -out CERT.pem -nodes",
                path.display()
            )));
        };
        CertificateAssertion::from_pem(text, client_id, audience, send_chain)
            .map_err(|e| e.context(path.display()))
    }

    /// A signed assertion valid from `now` (seconds since the epoch) for ten minutes.
    pub fn assertion_at(&self, now: u64) -> Result<String> {
        let claims = format!(
            r#"{{"aud":"{}","exp":{},"iss":"{}","jti":"{}","nbf":{now},"sub":"{}"}}"#,
            json_escape(&self.audience),
            now + 600,
            json_escape(&self.client_id),
            uuid::Uuid::new_v4(),
            json_escape(&self.client_id),
        );
        let signing_input = format!(
            "{}.{}",
            b64url(self.header.as_bytes()),
            b64url(claims.as_bytes())
        );
        let signature = self.key.sign_sha256(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url(&signature)))
    }
}

fn json_escape(s: &str) -> String {
    serde_json::Value::String(s.to_owned())
        .to_string()
        .trim_matches('"')
        .to_owned()
}

#[async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.assertion_at(now).map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<CredentialConfig> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        CredentialConfig::from_vars(|k| map.get(k).cloned())
    }

    use CredentialSource as S;

    #[test]
    fn auto_chain_follows_default_azure_credential_order() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.plan().unwrap(),
            vec![S::ManagedIdentity, S::AzureCli, S::AzureDeveloperCli]
        );

        let c = config(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ])
        .unwrap();
        assert_eq!(
            c.plan().unwrap(),
            vec![
                S::ClientSecret,
                S::ManagedIdentity,
                S::AzureCli,
                S::AzureDeveloperCli
            ]
        );

        let c = config(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/x.pem"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ])
        .unwrap();
        assert_eq!(
            c.plan().unwrap(),
            vec![
                S::ClientCertificate,
                S::WorkloadIdentity,
                S::ManagedIdentity,
                S::AzureCli,
                S::AzureDeveloperCli
            ]
        );
        // The secret wins over the certificate, as in EnvironmentCredential.
        let c = config(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/x.pem"),
        ])
        .unwrap();
        assert_eq!(c.plan().unwrap().first(), Some(&S::ClientSecret));
    }

    #[test]
    fn azure_token_credentials_narrows_the_chain() {
        let c = config(&[("AZURE_TOKEN_CREDENTIALS", "dev")]).unwrap();
        assert_eq!(c.plan().unwrap(), vec![S::AzureCli, S::AzureDeveloperCli]);
        let c = config(&[("AZURE_TOKEN_CREDENTIALS", "prod")]).unwrap();
        assert_eq!(c.plan().unwrap(), vec![S::ManagedIdentity]);
        let c = config(&[("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")]).unwrap();
        assert_eq!(c.plan().unwrap(), vec![S::ManagedIdentity]);
        let e = config(&[("AZURE_TOKEN_CREDENTIALS", "WorkloadIdentityCredential")])
            .unwrap()
            .plan()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"));
        let e = config(&[("AZURE_TOKEN_CREDENTIALS", "magic")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn explicit_kind_overrides_the_environment() {
        let mut c = config(&[("AZURE_TOKEN_CREDENTIALS", "dev")]).unwrap();
        c.kind = Some(CredentialKind::ManagedIdentity);
        assert_eq!(c.plan().unwrap(), vec![S::ManagedIdentity]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = config(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "hunter2-secret"),
        ])
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("redacted"));
    }
}
