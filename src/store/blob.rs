//! The Azure Blob store: one block blob holding the whole ring, as
//! `PersistKeysToAzureBlobStorage` keeps it (feature `azure`).
//!
//! Location: `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB[?SAS]` is recognised by its
//! host; any other endpoint (Azurite, sovereign clouds, private endpoints) is written
//! `blob+https://HOST/…` or `blob+http://HOST/…`. On a host given by IP address or as `localhost`
//! the first path segment is the account (Azurite's path-style URLs,
//! `blob+http://127.0.0.1:10000/devstoreaccount1/CONTAINER/BLOB`).
//!
//! Credentials: a SAS in the URL (a `sig=` parameter) is used alone; otherwise an Entra ID token
//! from the credential given in [`BlobOptions`], or from the chain of
//! [`CredentialConfig::from_env`](crate::azure::credentials::CredentialConfig::from_env) (managed
//! identity, workload identity, Azure CLI, client secret). Tokens need `https`.
//!
//! Bytes: the one-document layout exactly as .NET's repository uploads it (UTF-8 BOM, declaration,
//! `<repository>`, elements unindented), Content-Type `application/xml; charset=utf-8`. A write
//! keeps every byte already there and adds or replaces only its own elements.
//!
//! Concurrency: every write is conditional, `If-Match` the ETag that was read, or
//! `If-None-Match: *` when there was no blob. On 412 (precondition failed) or 409 (conflict) the
//! write starts again from a fresh download, after a jittered backoff, until a deadline (default
//! 30 s, [`BlobOptions::conflict_deadline`]); then it fails naming the deadline and the attempts.
//! Nothing is ever uploaded without a precondition, so concurrent writers never lose each other's
//! elements: .NET's repository gives up after five tries, which twenty instances starting at once
//! can exhaust; dpwrap keeps trying until its deadline. When an upload's outcome is unknown (a
//! timeout, a dropped connection, a 5xx), the next round looks for its own elements before adding
//! them again, so an element is never written twice.
//!
//! Reads: a 404 or an empty blob is an empty ring; a missing container is an error naming it. The
//! last bytes read are kept with their ETag and downloads send `If-None-Match`, so an unchanged
//! blob costs a 304. Every request has a timeout and transient failures (408, 429, 5xx, lost
//! connections) are retried with backoff ([`BlobOptions::retry`]); a connection is opened per
//! request, so a store may be used from several tokio runtimes.
//!
//! The bytes of the ring go through the SDK's request and response buffers, which are freed
//! without wiping (they hold master keys in the clear only for unprotected keys).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::headers::HeaderName;
use azure_core::http::{ClientOptions, Etag, NoFormat, RequestContent, RetryOptions, StatusCode};
use azure_storage_blob::models::{BlobClientDownloadOptions, BlobClientUploadOptions};
use azure_storage_blob::{BlobClient, BlobClientOptions};
use futures_util::StreamExt as _;
use zeroize::Zeroizing;

use super::copy::contains;
use super::location::{redact, scrub};
use super::{Addition, Change, Entry, KeyStore, has_scheme, ring_document};
use crate::azure::credentials::CredentialConfig;
use crate::azure::retry::{self, Failure, RetryPolicy, classify};
use crate::azure::transport::{TransportOptions, build_transport};
use crate::error::{Error, ErrorKind, Result};
use crate::xml::{self, Limits};

/// The Content-Type .NET's repository sets on the blob.
pub const CONTENT_TYPE: &str = "application/xml; charset=utf-8";

/// How a [`BlobStore`] reaches its blob.
#[derive(Clone)]
pub struct BlobOptions {
    /// The token credential, used when the URL carries no SAS. `None`: the credential chain the
    /// environment describes ([`CredentialConfig::from_env`]).
    pub credential: Option<Arc<dyn TokenCredential>>,
    /// The HTTPS transport (custom roots for a private endpoint or a local emulator).
    pub transport: TransportOptions,
    /// Retries of transient failures and the timeout of each request (default: 3 retries, 60 s
    /// per request).
    pub retry: RetryPolicy,
    /// How long a write keeps starting again while other writers change the blob (default 30 s).
    pub conflict_deadline: Duration,
}

impl Default for BlobOptions {
    fn default() -> BlobOptions {
        BlobOptions {
            credential: None,
            transport: TransportOptions::default(),
            retry: RetryPolicy {
                max_retries: 3,
                attempt_timeout: Duration::from_secs(60),
                ..RetryPolicy::default()
            },
            conflict_deadline: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for BlobOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobOptions")
            .field("credential", &self.credential.as_ref().map(|_| "…"))
            .field("transport", &self.transport)
            .field("retry", &self.retry)
            .field("conflict_deadline", &self.conflict_deadline)
            .finish()
    }
}

/// Whether a location is an Azure Blob URL (see the module documentation).
pub(crate) fn recognises(location: &str) -> bool {
    has_scheme(location, &["blob+https", "blob+http"])
        || (has_scheme(location, &["https"])
            && super::host_of(location).is_some_and(|h| h.ends_with(".blob.core.windows.net")))
}

/// A blob location, taken apart.
struct Location {
    url: azure_core::http::Url,
    container: String,
    /// `scheme://host[:port][/account]`, for messages.
    account: String,
    sas: bool,
}

fn parse_location(location: &str, described: &str) -> Result<Location> {
    let bad = |why: &str| Error::config(format!("{described}: {why}"));
    let stripped = if has_scheme(location, &["blob+https", "blob+http"]) {
        location.get(5..).unwrap_or_default()
    } else {
        location
    };
    let url = azure_core::http::Url::parse(stripped).map_err(|_| {
        bad("not a valid URL; write https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB[?SAS] or blob+https://HOST/…")
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad(
            "a blob URL is https (or blob+http:// for a local emulator)",
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad("the URL names no host"))?
        .to_ascii_lowercase();
    let path_style = host.starts_with('[')
        || host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost");
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    let skip = usize::from(path_style);
    let (Some(container), true) = (segments.get(skip), segments.len() >= skip + 2) else {
        return Err(bad(if path_style {
            "the path must be /ACCOUNT/CONTAINER/BLOB on an emulator or IP address"
        } else {
            "the path must be /CONTAINER/BLOB"
        }));
    };
    let mut account = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        account.push_str(&format!(":{port}"));
    }
    if path_style && let Some(a) = segments.first() {
        account.push('/');
        account.push_str(a);
    }
    let sas = url
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("sig"));
    Ok(Location {
        container: (*container).to_owned(),
        account,
        sas,
        url,
    })
}

/// The bytes last read or written, with their ETag.
struct Snapshot {
    etag: Etag,
    bytes: Zeroizing<Vec<u8>>,
}

/// A ring kept in one Azure blob.
pub struct BlobStore {
    client: BlobClient,
    location: Zeroizing<String>,
    described: String,
    container: String,
    account: String,
    retry: RetryPolicy,
    conflict_deadline: Duration,
    cache: Mutex<Option<Arc<Snapshot>>>,
    conflicts: AtomicU64,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("location", &self.described)
            .finish_non_exhaustive()
    }
}

/// Why an upload did not succeed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Another writer changed the blob first (412, 409): it surely did not land.
    Conflict,
    /// No answer, or a transient failure: it may have landed.
    Unknown,
    /// A refusal that will not change (403, 404, 400): stop.
    Fatal,
}

impl BlobStore {
    /// The store at a blob URL (see the module documentation). Nothing is sent until it is used.
    pub fn open(location: &str, options: BlobOptions) -> Result<BlobStore> {
        let described = redact(location);
        let parsed = parse_location(location, &described)?;
        let credential = if parsed.sas {
            None
        } else if parsed.url.scheme() != "https" {
            return Err(Error::config(format!(
                "{described}: without a SAS in the URL dpwrap authenticates with an Entra ID token, which Azure Storage accepts only over https; add a SAS (…?sv=…&sig=…) or use https"
            )));
        } else {
            match &options.credential {
                Some(c) => Some(Arc::clone(c)),
                None => Some(CredentialConfig::from_env()?.build()?),
            }
        };
        let mut transport = options.transport.clone();
        transport.fresh_connections = true;
        let client_options = BlobClientOptions {
            client_options: ClientOptions {
                transport: Some(build_transport(&transport)?),
                // dpwrap retries itself (see `retry`): never both.
                retry: RetryOptions::none(),
                ..ClientOptions::default()
            },
            ..BlobClientOptions::default()
        };
        let client =
            BlobClient::new(parsed.url, credential, Some(client_options)).map_err(|e| {
                Error::config(format!(
                    "{described}: the blob client could not be created: {}",
                    scrub(&e.to_string(), location)
                ))
            })?;
        Ok(BlobStore {
            client,
            location: Zeroizing::new(location.to_owned()),
            described,
            container: parsed.container,
            account: parsed.account,
            retry: options.retry,
            conflict_deadline: options.conflict_deadline,
            cache: Mutex::new(None),
            conflicts: AtomicU64::new(0),
        })
    }

    /// How many uploads of this store failed their precondition (412 or 409) and were started
    /// again: a measure of contention.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        match self.cache.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn remember(&self, snapshot: Option<Arc<Snapshot>>) {
        match self.cache.lock() {
            Ok(mut g) => *g = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
    }

    /// The blob as it is now (`None`: no blob), through the cache when it is unchanged.
    async fn fetch(&self) -> Result<Option<Arc<Snapshot>>> {
        let cached = self.cached();
        let if_none_match = cached.as_ref().map(|c| c.etag.clone());
        let result = retry::run(&self.retry, || self.download_once(if_none_match.clone())).await;
        match result {
            Ok(Ok(snapshot)) => {
                let snapshot = Arc::new(snapshot);
                self.remember(Some(Arc::clone(&snapshot)));
                Ok(Some(snapshot))
            }
            Ok(Err(e)) => Err(e),
            Err(Failure::Service { error, .. })
                if error.http_status() == Some(StatusCode::NotModified) && cached.is_some() =>
            {
                Ok(cached)
            }
            Err(Failure::Service { error, .. })
                if error.http_status() == Some(StatusCode::NotFound)
                    && error_code(&error) != Some("ContainerNotFound") =>
            {
                self.remember(None);
                Ok(None)
            }
            Err(f) => Err(self.failure("download", f)),
        }
    }

    /// One download: the outer error is the service's (retried when transient), the inner one
    /// dpwrap's verdict on what came back.
    async fn download_once(
        &self,
        if_none_match: Option<Etag>,
    ) -> azure_core::Result<Result<Snapshot>> {
        let options = BlobClientDownloadOptions {
            if_none_match,
            ..BlobClientDownloadOptions::default()
        };
        let response = self.client.download(Some(options)).await?;
        let max = Limits::ring_document().max_input_bytes;
        let Some(etag) = response.properties.etag.clone() else {
            return Ok(Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "{}: the service sent the blob without an ETag; dpwrap never writes without a precondition, so it stops here",
                    self.described
                ),
            )));
        };
        let total = total_length(&response.headers).or(response.properties.content_length);
        let too_large = |n: u64| {
            Error::new(
                ErrorKind::Limit,
                format!(
                    "{}: limit max_input_bytes ({max}) exceeded: the blob has {n} bytes; this is not a key ring",
                    self.described
                ),
            )
        };
        if let Some(n) = total
            && n > max as u64
        {
            return Ok(Err(too_large(n)));
        }
        let capacity = total.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        let mut body = response.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if bytes.len() + chunk.len() > max {
                return Ok(Err(too_large((bytes.len() + chunk.len()) as u64)));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Ok(Snapshot { etag, bytes }))
    }

    /// One conditional upload; `Err` says whether it surely did not land (a conflict) or may have.
    async fn upload_once(
        &self,
        bytes: &[u8],
        base: Option<&Snapshot>,
    ) -> std::result::Result<Etag, (Outcome, Error)> {
        let mut options = BlobClientUploadOptions {
            blob_content_type: Some(CONTENT_TYPE.to_owned()),
            ..BlobClientUploadOptions::default()
        };
        match base {
            Some(s) => options.if_match = Some(s.etag.clone()),
            None => options = options.if_not_exists(),
        }
        let content: RequestContent<azure_core::Bytes, NoFormat> =
            azure_core::Bytes::copy_from_slice(bytes).into();
        let upload = self.client.upload(content, Some(options));
        let error = match tokio::time::timeout(self.retry.attempt_timeout, upload).await {
            Ok(Ok(r)) => {
                return r.etag.ok_or_else(|| {
                    (
                        Outcome::Unknown,
                        Error::new(
                            ErrorKind::Backend,
                            format!(
                                "{}: the upload was answered without an ETag",
                                self.described
                            ),
                        ),
                    )
                });
            }
            Ok(Err(e)) => e,
            Err(_) => {
                return Err((
                    Outcome::Unknown,
                    self.failure("upload", Failure::TimedOut { attempts: 1 }),
                ));
            }
        };
        let outcome = match error.http_status() {
            Some(StatusCode::PreconditionFailed | StatusCode::Conflict) => Outcome::Conflict,
            _ if classify(&error).0 => Outcome::Unknown,
            _ => Outcome::Fatal,
        };
        Err((
            outcome,
            self.failure("upload", Failure::Service { error, attempts: 1 }),
        ))
    }

    /// Read, edit, conditional upload; again from a fresh download on conflict, until the
    /// deadline. `edit` returns the new bytes, or `None` when the blob already holds them (an
    /// earlier upload whose answer was lost did land).
    async fn modify(
        &self,
        mut edit: impl FnMut(Option<&[u8]>, bool) -> Result<Option<Zeroizing<Vec<u8>>>>,
    ) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.conflict_deadline;
        let mut attempts = 0u32;
        let mut conflicts = 0u32;
        let mut unknown = 0u32;
        let mut maybe_written = false;
        loop {
            attempts += 1;
            let base = self.fetch().await?;
            let current = base.as_ref().map(|s| s.bytes.as_slice());
            let Some(new_bytes) = edit(current, maybe_written)? else {
                return Ok(());
            };
            let last_error = match self.upload_once(&new_bytes, base.as_deref()).await {
                Ok(etag) => {
                    self.remember(Some(Arc::new(Snapshot {
                        etag,
                        bytes: new_bytes,
                    })));
                    return Ok(());
                }
                Err((Outcome::Fatal, e)) => return Err(e),
                Err((Outcome::Conflict, e)) => {
                    conflicts += 1;
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    e
                }
                Err((Outcome::Unknown, e)) => {
                    maybe_written = true;
                    unknown += 1;
                    if unknown > self.retry.max_retries {
                        return Err(e);
                    }
                    e
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::Store,
                    format!(
                        "{}: gave up after {attempts} attempts in {:.1} s (deadline {} s): other writers changed the blob every time ({conflicts} precondition failures); nothing of this write was stored. Retry, or raise the deadline. Last answer: {last_error}",
                        self.described,
                        now.duration_since(started).as_secs_f64(),
                        self.conflict_deadline.as_secs_f64(),
                    ),
                ));
            }
            let wait = conflict_backoff(attempts).min(deadline - now);
            tokio::time::sleep(wait).await;
        }
    }

    fn failure(&self, op: &str, failure: Failure) -> Error {
        let (error, attempts) = match failure {
            Failure::TimedOut { attempts } => {
                return Error::new(
                    ErrorKind::Cancelled,
                    format!(
                        "{}: no answer to the {op} within {} s ({attempts} attempts); check the host, network access and firewall",
                        self.described,
                        self.retry.attempt_timeout.as_secs()
                    ),
                );
            }
            Failure::Service { error, attempts } => (error, attempts),
        };
        let code = error_code(&error).unwrap_or("");
        let d = &self.described;
        match error.http_status() {
            Some(StatusCode::Forbidden) if code == "AuthenticationFailed" => Error::new(
                ErrorKind::Backend,
                format!(
                    "{d}: Azure Storage did not accept the credential for the {op} (403 AuthenticationFailed): a SAS must be complete, signed with this account's key and valid now, and grant read and write (sp=rw, plus c to create the blob); a token must be for https://storage.azure.com in the account's tenant, for an identity with the role 'Storage Blob Data Contributor'"
                ),
            ),
            Some(StatusCode::Forbidden) => Error::new(
                ErrorKind::Backend,
                format!(
                    "{d}: Azure Storage refused the {op} (403 {code}): a SAS must grant read and write on the blob (sp=rw, plus c to create it); an Entra ID identity needs the role 'Storage Blob Data Contributor' on the account or container '{}' ('Storage Blob Data Reader' only reads)",
                    self.container
                ),
            ),
            Some(StatusCode::Unauthorized) => Error::new(
                ErrorKind::Unauthenticated,
                format!(
                    "{d}: Azure Storage did not accept the credential for the {op} (401 {code}); check the token's tenant and audience (https://storage.azure.com)"
                ),
            ),
            Some(StatusCode::NotFound) if code == "ContainerNotFound" => Error::new(
                ErrorKind::Store,
                format!(
                    "{d}: the container '{}' does not exist in {}; create it (az storage container create --name {}) or correct the URL: dpwrap does not create containers",
                    self.container, self.account, self.container
                ),
            ),
            Some(StatusCode::PreconditionFailed | StatusCode::Conflict) => Error::new(
                ErrorKind::Store,
                format!("{d}: the blob changed during the {op} ({code})"),
            ),
            Some(s) => Error::new(
                ErrorKind::Backend,
                format!(
                    "{d}: the {op} failed with HTTP {} {code} after {attempts} attempts",
                    u16::from(s)
                ),
            ),
            None => Error::new(
                ErrorKind::Backend,
                format!(
                    "{d}: the {op} failed after {attempts} attempts: {}; check the host, port and network access",
                    crate::azure::kek::truncate(&scrub(&error.to_string(), &self.location), 300)
                ),
            ),
        }
    }
}

/// The error code Azure Storage sent (`x-ms-error-code`), if any.
fn error_code(error: &azure_core::Error) -> Option<&str> {
    match error.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// The blob's full length from a ranged answer (`Content-Range: bytes 0-N/TOTAL`).
fn total_length(headers: &azure_core::http::headers::Headers) -> Option<u64> {
    let range = headers.get_optional_str(&HeaderName::from_static("content-range"))?;
    range.rsplit_once('/')?.1.trim().parse().ok()
}

/// The wait after conflict number `n`: 25 ms doubling up to 1 s, each drawn at random between
/// half and all of it, so that writers that collided spread out.
fn conflict_backoff(n: u32) -> Duration {
    let full = Duration::from_millis(25)
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)))
        .min(Duration::from_secs(1));
    let half = u64::try_from(full.as_micros() / 2).unwrap_or(0);
    Duration::from_micros(half + rand::random_range(0..=half))
}

#[async_trait]
impl KeyStore for BlobStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        match self.fetch().await? {
            Some(s) => ring_document::entries(&s.bytes, &self.described),
            None => Ok(Vec::new()),
        }
    }

    async fn append(&self, elements: &[Addition]) -> Result<()> {
        if elements.is_empty() {
            return Ok(());
        }
        let described = self.described.clone();
        self.modify(|current, maybe_written| {
            if maybe_written && let Some(bytes) = current {
                let entries = ring_document::entries(bytes, &described)?;
                let present: Vec<&xml::Element> = entries
                    .iter()
                    .filter_map(|e| e.element.as_ref().ok().map(|s| s.element()))
                    .collect();
                if elements.iter().all(|a| contains(&present, &a.element)) {
                    return Ok(None);
                }
            }
            ring_document::appended(current, elements, &described).map(Some)
        })
        .await
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let described = self.described.clone();
        let news: Vec<Zeroizing<String>> = changes
            .iter()
            .map(|c| Zeroizing::new(xml::to_compact_string(&c.new)))
            .collect();
        self.modify(|current, maybe_written| {
            if maybe_written && let Some(bytes) = current {
                let entries = ring_document::entries(bytes, &described)?;
                let landed = changes.iter().zip(&news).all(|(c, n)| {
                    entries
                        .get(c.old.position())
                        .and_then(|e| e.element.as_ref().ok())
                        .is_some_and(|e| e.raw() == n.as_bytes())
                });
                if landed {
                    return Ok(None);
                }
            }
            ring_document::replaced(current, changes, &described).map(Some)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_taken_apart() {
        let l = parse_location(
            "https://acct.blob.core.windows.net/keys/dp/ring.xml?sv=1&sig=abc",
            "x",
        )
        .unwrap();
        assert_eq!(l.container, "keys");
        assert_eq!(l.account, "https://acct.blob.core.windows.net");
        assert!(l.sas);
        let l =
            parse_location("blob+http://127.0.0.1:10000/devstoreaccount1/c/b.xml", "x").unwrap();
        assert_eq!(l.container, "c");
        assert_eq!(l.account, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(
            l.url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c/b.xml"
        );
        assert!(!l.sas);
        assert!(parse_location("https://acct.blob.core.windows.net/onlycontainer", "x").is_err());
        assert!(parse_location("blob+http://127.0.0.1:1/acct/c", "x").is_err());
        assert!(recognises("BLOB+HTTPS://h/c/b"));
        assert!(recognises("https://a.blob.core.windows.net/c/b"));
        assert!(!recognises("https://a.vault.azure.net/secrets/x"));
    }

    #[test]
    fn a_token_needs_https() {
        let e = BlobStore::open("blob+http://127.0.0.1:1/acct/c/b", BlobOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("SAS"), "{e}");
    }

    #[test]
    fn conflict_backoff_is_jittered_and_capped() {
        for n in 1..40 {
            let b = conflict_backoff(n);
            assert!(b <= Duration::from_secs(1));
        }
        let b = conflict_backoff(1);
        assert!(b >= Duration::from_micros(12_500) && b <= Duration::from_millis(25));
    }
}
