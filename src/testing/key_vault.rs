//! A faithful local Azure Key Vault for tests: HTTPS on `127.0.0.1`, the real authentication
//! challenge, keys (get, wrapkey, unwrapkey, sign) and secrets (get, set), Key Vault's error bodies,
//! injectable faults, and counters. The Azure SDK talks to it exactly as to the service.
//!
//! What it reproduces, as observed from the real service and the SDK (CRATES.md §2.3):
//! - A request without `Authorization` gets 401 with
//!   `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"`
//!   and `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`.
//!   The SDK sends that first request with an empty body; [`Stats::challenged_with_body`] counts
//!   the ones that were not.
//! - `POST /keys/{name}/{version}/wrapkey|unwrapkey` with `{"alg","value"}` (base64url) answers
//!   `{"kid","value"}`; an empty version (`/keys/{name}//wrapkey`) means the latest version.
//!   `RSA-OAEP`, `RSA-OAEP-256` and `RSA1_5`. `POST /keys/{name}/{version}/sign` with
//!   `{"alg":"RS256","value":digest}` answers the signature the same way. `GET /keys/{name}[/{version}]` answers the JSON
//!   Web Key (`n`, `e`) and attributes.
//! - Errors are `{"error":{"code","message","innererror"?}}`: 404 `KeyNotFound`/`SecretNotFound`,
//!   403 `Forbidden` (`innererror.code` `ForbiddenByPolicy`, or `KeyDisabled` for a disabled key),
//!   400 `BadParameter`.
//! - `GET /secrets/{name}[/{version}]` and `PUT /secrets/{name}` (a new version each time; a value
//!   over 25 KB is refused with 400 `BadParameter`, as the service refuses it).
//! - `POST /{tenant}/oauth2/v2.0/token`: an Entra ID token endpoint for client secrets and
//!   certificate assertions (RS256 JWT checked against the registered key and `x5t`), so that
//!   credentials can be tested end to end with `AZURE_AUTHORITY_HOST` pointing here.
//!
//! The resource in the challenge is `https://vault.azure.net`, as in Azure. The SDK checks that
//! the vault's host ends with `.vault.azure.net` unless `verify_challenge_resource` is off, which
//! a vault reached at `127.0.0.1` therefore needs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::tls::TestCa;
use crate::crypto::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use crate::error::{Error, Result};

/// The tenant named in the challenge.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The resource named in the challenge (as Azure's public cloud names it).
pub const RESOURCE: &str = "https://vault.azure.net";
const MAX_BODY: usize = 64 * 1024;
/// The largest secret value Key Vault stores (25 KB); a larger one is refused with 400.
pub const MAX_SECRET_VALUE: usize = 25 * 1024;

/// A fault to inject into the next authenticated requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `Throttled` with `Retry-After: {seconds}` (and `x-ms-retry-after-ms` when given).
    TooManyRequests {
        /// `Retry-After` in seconds.
        retry_after_secs: u64,
        /// `x-ms-retry-after-ms`, if any.
        retry_after_ms: Option<u64>,
    },
    /// Any status (500, 503, ...) with Key Vault's error body.
    Status(u16),
    /// Wait this long before answering normally (a slow or hung vault).
    Delay(Duration),
}

/// Request counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received (every kind).
    pub total: usize,
    /// Requests being handled now.
    pub in_flight: usize,
    /// The most requests ever handled at once.
    pub max_in_flight: usize,
    /// 401 challenges sent.
    pub challenges: usize,
    /// Challenged requests that carried a body (the SDK strips it: should stay 0).
    pub challenged_with_body: usize,
    /// wrapkey requests answered (successfully or not) after authentication.
    pub wraps: usize,
    /// unwrapkey requests answered after authentication.
    pub unwraps: usize,
    /// get-key requests answered after authentication.
    pub gets: usize,
    /// sign requests answered after authentication.
    pub signs: usize,
    /// Faults injected.
    pub faults: usize,
    /// Tokens issued by the token endpoint.
    pub tokens_issued: usize,
    /// get-secret requests answered after authentication.
    pub secret_gets: usize,
    /// set-secret requests answered after authentication (refused ones included).
    pub secret_sets: usize,
}

struct KeyVersion {
    version: String,
    key: Arc<RsaPrivateKey>,
    enabled: bool,
}

struct SecretVersion {
    version: String,
    value: String,
    content_type: Option<String>,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, (String, Vec<KeyVersion>)>,
    secrets: HashMap<String, (String, Vec<SecretVersion>)>,
    denied: HashSet<(String, Option<String>)>,
    faults: VecDeque<Fault>,
    latency: Duration,
    stats: Stats,
    client_secrets: HashMap<String, String>,
    client_certs: HashMap<String, (RsaPublicKey, Vec<u8>)>,
    issued: HashSet<String>,
    require_issued: bool,
    overwrites: HashMap<String, VecDeque<String>>,
}

struct State {
    url: String,
    inner: Mutex<Inner>,
    in_flight: AtomicUsize,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The local Key Vault. Stops when dropped.
pub struct LocalKeyVault {
    url: String,
    ca_pem: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyVault")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for LocalKeyVault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('=').as_bytes())
        .ok()
}

impl LocalKeyVault {
    /// Starts a vault on a free port of 127.0.0.1, with a fresh CA. Must run inside a tokio
    /// runtime (the server is a task of it).
    pub async fn start() -> Result<LocalKeyVault> {
        let ca = TestCa::generate()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config()?);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| Error::io("binding 127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("the local vault's address", e))?;
        let url = format!("https://127.0.0.1:{}", addr.port());
        let state = Arc::new(State {
            url: url.clone(),
            inner: Mutex::new(Inner::default()),
            in_flight: AtomicUsize::new(0),
        });
        let served = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(LocalKeyVault {
            url,
            ca_pem: ca.ca_pem().to_owned(),
            state,
            task,
        })
    }

    /// The vault URL, `https://127.0.0.1:{port}`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Creates the key `name` (RSA-2048) or a new version of it; returns the new version's kid.
    pub fn create_key(&self, name: &str) -> Result<String> {
        self.import_key(name, RsaPrivateKey::generate(2048)?)
    }

    /// Imports `key` as the key `name` (or a new version of it); returns the new version's kid.
    pub fn import_key(&self, name: &str, key: RsaPrivateKey) -> Result<String> {
        let version = new_version();
        let mut inner = self.state.lock();
        let entry = inner
            .keys
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| (name.to_owned(), Vec::new()));
        entry.1.push(KeyVersion {
            version: version.clone(),
            key: Arc::new(key),
            enabled: true,
        });
        Ok(format!("{}/keys/{}/{version}", self.url, entry.0))
    }

    /// Imports an unencrypted RSA private key from PEM (PKCS#8 or PKCS#1) as the key `name`;
    /// returns the new version's kid.
    pub fn import_pem(&self, name: &str, pem: &str) -> Result<String> {
        self.import_key(name, crate::azure::kek::rsa_private_key_from_pem(pem)?)
    }

    /// The kid of the latest version of `name`.
    pub fn kid(&self, name: &str) -> Option<String> {
        let inner = self.state.lock();
        let (stored, versions) = inner.keys.get(&name.to_ascii_lowercase())?;
        let v = versions.last()?;
        Some(format!("{}/keys/{stored}/{}", self.url, v.version))
    }

    /// Enables or disables a key version (`None`: every version).
    pub fn set_enabled(&self, name: &str, version: Option<&str>, enabled: bool) {
        let mut inner = self.state.lock();
        if let Some((_, versions)) = inner.keys.get_mut(&name.to_ascii_lowercase()) {
            for v in versions
                .iter_mut()
                .filter(|v| version.is_none_or(|want| want.eq_ignore_ascii_case(&v.version)))
            {
                v.enabled = enabled;
            }
        }
    }

    /// Refuses `operation` (`get`, `wrapKey`, `unwrapKey`, `getSecret`, `setSecret`) with 403,
    /// on the key or secret `name`, or on every one when `None`.
    pub fn deny(&self, operation: &str, name: Option<&str>) {
        self.state
            .lock()
            .denied
            .insert((operation.to_owned(), name.map(str::to_ascii_lowercase)));
    }

    /// Lifts every [`deny`](Self::deny).
    pub fn allow_all(&self) {
        self.state.lock().denied.clear();
    }

    /// Injects `fault` into each of the next `count` authenticated requests.
    pub fn inject(&self, fault: Fault, count: usize) {
        let mut inner = self.state.lock();
        for _ in 0..count {
            inner.faults.push_back(fault.clone());
        }
    }

    /// Drops the faults not yet injected.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Delays every authenticated answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.state.lock().stats.clone();
        s.in_flight = self.state.in_flight.load(Ordering::SeqCst);
        s
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.state.lock().stats = Stats::default();
    }

    /// Stores `value` as a new version of the secret `name`; returns its id.
    pub fn set_secret(&self, name: &str, value: &str, content_type: Option<&str>) -> String {
        let mut inner = self.state.lock();
        set_secret(&mut inner, &self.url, name, value, content_type)
    }

    /// After the next set of the secret `name` is stored, stores `value` as a newer version
    /// (content type `text/plain`): another writer that read the secret earlier and sets its own
    /// version just after (last writer wins).
    pub fn overwrite_after_next_set(&self, name: &str, value: &str) {
        self.state
            .lock()
            .overwrites
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push_back(value.to_owned());
    }

    /// How many versions the secret `name` has.
    pub fn secret_versions(&self, name: &str) -> usize {
        let inner = self.state.lock();
        inner
            .secrets
            .get(&name.to_ascii_lowercase())
            .map_or(0, |(_, v)| v.len())
    }

    /// The content type of the latest version of the secret `name`.
    pub fn secret_content_type(&self, name: &str) -> Option<String> {
        let inner = self.state.lock();
        let (_, versions) = inner.secrets.get(&name.to_ascii_lowercase())?;
        versions.last().and_then(|v| v.content_type.clone())
    }

    /// The latest value of the secret `name`.
    pub fn secret(&self, name: &str) -> Option<String> {
        let inner = self.state.lock();
        let (_, versions) = inner.secrets.get(&name.to_ascii_lowercase())?;
        versions.last().map(|v| v.value.clone())
    }

    /// Registers an application that authenticates with a client secret at the token endpoint.
    pub fn add_client_secret(&self, client_id: &str, secret: &str) {
        self.state
            .lock()
            .client_secrets
            .insert(client_id.to_owned(), secret.to_owned());
    }

    /// Registers an application that authenticates with a certificate: its public key and its
    /// SHA-1 thumbprint (the `x5t` its assertions must carry).
    pub fn add_client_certificate(
        &self,
        client_id: &str,
        public_key: RsaPublicKey,
        sha1_thumbprint: &[u8],
    ) {
        self.state
            .lock()
            .client_certs
            .insert(client_id.to_owned(), (public_key, sha1_thumbprint.to_vec()));
    }

    /// Accept only bearer tokens this vault's token endpoint issued (default: any bearer token).
    pub fn require_issued_tokens(&self, require: bool) {
        self.state.lock().require_issued = require;
    }

    /// The token endpoint's authority host (for `AZURE_AUTHORITY_HOST`).
    pub fn authority_host(&self) -> &str {
        &self.url
    }
}

fn set_secret(
    inner: &mut Inner,
    url: &str,
    name: &str,
    value: &str,
    content_type: Option<&str>,
) -> String {
    let version = new_version();
    let entry = inner
        .secrets
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| (name.to_owned(), Vec::new()));
    entry.1.push(SecretVersion {
        version: version.clone(),
        value: value.to_owned(),
        content_type: content_type.map(str::to_owned),
    });
    format!("{url}/secrets/{}/{version}", entry.0)
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: &Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Answer {
    let e = match inner {
        Some(i) => json!({"code": code, "message": message, "innererror": {"code": i}}),
        None => json!({"code": code, "message": message}),
    };
    answer(status, &json!({"error": e}))
}

fn challenge(message: &str) -> Answer {
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
    let value = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"{RESOURCE}\""
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    r
}

struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&state);
    {
        let mut inner = state.lock();
        inner.stats.total += 1;
        inner.stats.max_in_flight = inner.stats.max_in_flight.max(now);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadParameter",
                "The request body is too large.",
                None,
            );
        }
    };
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();

    // The token endpoint needs no bearer token.
    if parts.method == hyper::Method::POST
        && matches!(segments.as_slice(), [_, "oauth2", "v2.0", "token"])
    {
        return token(&state, &body);
    }

    let bearer = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(bearer) = bearer else {
        let mut inner = state.lock();
        inner.stats.challenges += 1;
        if !body.is_empty() {
            inner.stats.challenged_with_body += 1;
        }
        return challenge("AKV10000: Request is missing a Bearer or PoP token.");
    };
    let (fault, latency) = {
        let mut inner = state.lock();
        if inner.require_issued && !inner.issued.contains(bearer) {
            inner.stats.challenges += 1;
            return challenge("AKV10022: Invalid audience or token.");
        }
        let fault = inner.faults.pop_front();
        if fault.is_some() {
            inner.stats.faults += 1;
        }
        (fault, inner.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::TooManyRequests {
            retry_after_secs,
            retry_after_ms,
        }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttled",
                "Operations per second is over the limit; the request was throttled.",
                None,
            );
            r.headers_mut()
                .insert(hyper::header::RETRY_AFTER, retry_after_secs.into());
            if let Some(ms) = retry_after_ms {
                r.headers_mut().insert("x-ms-retry-after-ms", ms.into());
            }
            return r;
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(
                status,
                "ServiceUnavailable",
                "The service is unavailable; try again later.",
                None,
            );
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    let method = parts.method.clone();
    match (method, segments.as_slice()) {
        (hyper::Method::GET, ["keys", name]) | (hyper::Method::GET, ["keys", name, ""]) => {
            get_key(&state, name, "")
        }
        (hyper::Method::GET, ["keys", name, version]) => get_key(&state, name, version),
        (hyper::Method::POST, ["keys", name, version, "wrapkey"]) => {
            key_operation(&state, name, version, true, &body)
        }
        (hyper::Method::POST, ["keys", name, version, "unwrapkey"]) => {
            key_operation(&state, name, version, false, &body)
        }
        (hyper::Method::POST, ["keys", name, version, "sign"]) => {
            sign_operation(&state, name, version, &body)
        }
        (hyper::Method::GET, ["secrets", name]) | (hyper::Method::GET, ["secrets", name, ""]) => {
            get_secret(&state, name, "")
        }
        (hyper::Method::GET, ["secrets", name, version]) => get_secret(&state, name, version),
        (hyper::Method::PUT, ["secrets", name]) => put_secret(&state, name, &body),
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource was not found.",
            None,
        ),
    }
}

fn denied(inner: &Inner, operation: &str, name: &str) -> bool {
    inner.denied.contains(&(operation.to_owned(), None))
        || inner
            .denied
            .contains(&(operation.to_owned(), Some(name.to_ascii_lowercase())))
}

fn forbidden(operation: &str, what: &str, name: &str) -> Answer {
    error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "The user, group or application 'appid=00000000-0000-0000-0000-000000000000' does not have {what} {operation} permission on key vault 'local;location=local'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287 (name: {name})"
        ),
        Some("ForbiddenByPolicy"),
    )
}

fn key_not_found(name: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        &format!(
            "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn find_version<'a>(versions: &'a [KeyVersion], version: &str) -> Option<&'a KeyVersion> {
    if version.is_empty() {
        versions.last()
    } else {
        versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(version))
    }
}

fn get_key(state: &State, name: &str, version: &str) -> Answer {
    let mut inner = state.lock();
    inner.stats.gets += 1;
    if denied(&inner, "get", name) {
        return forbidden("get", "keys", name);
    }
    let Some((stored, versions)) = inner.keys.get(&name.to_ascii_lowercase()) else {
        return key_not_found(name);
    };
    let Some(v) = find_version(versions, version) else {
        return key_not_found(&format!("{name}/{version}"));
    };
    let public = v.key.public_key();
    let kid = format!("{}/keys/{stored}/{}", state.url, v.version);
    answer(
        StatusCode::OK,
        &json!({
            "key": {
                "kid": kid,
                "kty": "RSA",
                "key_ops": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
                "n": b64url(&public.modulus()),
                "e": b64url(&public.exponent()),
            },
            "attributes": {
                "enabled": v.enabled,
                "created": 1_767_225_600,
                "updated": 1_767_225_600,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            }
        }),
    )
}

fn padding(alg: &str) -> Option<RsaPadding> {
    match alg {
        "RSA-OAEP" => Some(RsaPadding::oaep_sha1()),
        "RSA-OAEP-256" => Some(RsaPadding::oaep_sha256()),
        "RSA1_5" => Some(RsaPadding::Pkcs1v15),
        _ => None,
    }
}

/// The key `name` at `version` (latest when empty) for `operation`, enabled and permitted, with
/// its versioned kid; or the error answer Key Vault gives.
fn usable_key(
    state: &State,
    name: &str,
    version: &str,
    operation: &str,
) -> std::result::Result<(Arc<RsaPrivateKey>, String), Box<Answer>> {
    let mut inner = state.lock();
    match operation {
        "wrapKey" => inner.stats.wraps += 1,
        "unwrapKey" => inner.stats.unwraps += 1,
        _ => inner.stats.signs += 1,
    }
    if denied(&inner, operation, name) {
        return Err(Box::new(forbidden(operation, "keys", name)));
    }
    let Some((stored, versions)) = inner.keys.get(&name.to_ascii_lowercase()) else {
        return Err(Box::new(key_not_found(name)));
    };
    let Some(v) = find_version(versions, version) else {
        return Err(Box::new(key_not_found(&format!("{name}/{version}"))));
    };
    if !v.enabled {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("Operation {operation} is not allowed on a disabled key."),
            Some("KeyDisabled"),
        )));
    }
    Ok((
        Arc::clone(&v.key),
        format!("{}/keys/{stored}/{}", state.url, v.version),
    ))
}

/// `sign`: `{"alg":"RS256","value":base64url(SHA-256 digest)}` answers `{"kid","value"}` with the
/// RSASSA-PKCS1-v1_5 signature; another algorithm or digest length is 400 `BadParameter`.
fn sign_operation(state: &State, name: &str, version: &str, body: &[u8]) -> Answer {
    // The RSA work runs outside the lock, so that concurrent requests are served concurrently.
    let (key, kid) = match usable_key(state, name, version, "sign") {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if request.get("alg").and_then(Value::as_str) != Some("RS256") {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid algorithm for this key type.",
            None,
        );
    }
    let Some(digest) = request
        .get("value")
        .and_then(Value::as_str)
        .and_then(b64url_decode)
        .filter(|d| d.len() == 32)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid length of the digest: RS256 signs a 32-byte SHA-256 digest.",
            None,
        );
    };
    match key.sign_sha256_prehash(&digest) {
        Ok(signature) => answer(
            StatusCode::OK,
            &json!({"kid": kid, "value": b64url(&signature)}),
        ),
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The signature could not be made.",
            None,
        ),
    }
}

fn key_operation(state: &State, name: &str, version: &str, wrap: bool, body: &[u8]) -> Answer {
    let operation = if wrap { "wrapKey" } else { "unwrapKey" };
    // The RSA work runs outside the lock, so that concurrent requests are served concurrently.
    let (key, kid) = match usable_key(state, name, version, operation) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The request body is not valid JSON.",
                None,
            );
        }
    };
    let Some(pad) = request.get("alg").and_then(Value::as_str).and_then(padding) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid algorithm for this key type.",
            None,
        );
    };
    let Some(value) = request
        .get("value")
        .and_then(Value::as_str)
        .and_then(b64url_decode)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property value is required and must be base64url.",
            None,
        );
    };
    let result = if wrap {
        key.public_key().encrypt(&pad, &value).map(|c| c.to_vec())
    } else {
        key.decrypt(&pad, &value).map(|p| p.to_vec())
    };
    match result {
        Ok(out) => answer(StatusCode::OK, &json!({"kid": kid, "value": b64url(&out)})),
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid ciphertext or key for this operation.",
            None,
        ),
    }
}

fn get_secret(state: &State, name: &str, version: &str) -> Answer {
    let mut inner = state.lock();
    inner.stats.secret_gets += 1;
    if denied(&inner, "getSecret", name) {
        return forbidden("get", "secrets", name);
    }
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!("A secret with (name/id) {name} was not found in this key vault."),
            None,
        )
    };
    let Some((stored, versions)) = inner.secrets.get(&name.to_ascii_lowercase()) else {
        return not_found();
    };
    let found = if version.is_empty() {
        versions.last()
    } else {
        versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(version))
    };
    let Some(v) = found else {
        return not_found();
    };
    let mut body = json!({
        "value": v.value,
        "id": format!("{}/secrets/{stored}/{}", state.url, v.version),
        "attributes": {"enabled": true, "created": 1_767_225_600, "updated": 1_767_225_600, "recoveryLevel": "Recoverable+Purgeable"},
    });
    if let (Some(ct), Some(map)) = (&v.content_type, body.as_object_mut()) {
        map.insert("contentType".into(), json!(ct));
    }
    answer(StatusCode::OK, &body)
}

fn put_secret(state: &State, name: &str, body: &[u8]) -> Answer {
    let mut inner = state.lock();
    inner.stats.secret_sets += 1;
    if denied(&inner, "setSecret", name) {
        return forbidden("set", "secrets", name);
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(value) = request.get("value").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property value is required.",
            None,
        );
    };
    if value.len() > MAX_SECRET_VALUE {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "The secret value is {} bytes; the maximum allowed is {MAX_SECRET_VALUE}.",
                value.len()
            ),
            None,
        );
    }
    let content_type = request.get("contentType").and_then(Value::as_str);
    let id = set_secret(&mut inner, &state.url, name, value, content_type);
    let queued = inner
        .overwrites
        .get_mut(&name.to_ascii_lowercase())
        .and_then(VecDeque::pop_front);
    if let Some(other) = queued {
        set_secret(&mut inner, &state.url, name, &other, Some("text/plain"));
    }
    let mut out = json!({"value": value, "id": id, "attributes": {"enabled": true}});
    if let (Some(ct), Some(map)) = (content_type, out.as_object_mut()) {
        map.insert("contentType".into(), json!(ct));
    }
    answer(StatusCode::OK, &out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn token_error(code: &str, description: &str, number: u32) -> Answer {
    answer(
        StatusCode::UNAUTHORIZED,
        &json!({"error": code, "error_description": format!("AADSTS{number}: {description}"), "error_codes": [number]}),
    )
}

fn token(state: &State, body: &[u8]) -> Answer {
    let form: HashMap<String, String> = std::str::from_utf8(body)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return token_error(
            "unsupported_grant_type",
            "only client_credentials is supported here.",
            70003,
        );
    }
    if field("scope") != format!("{RESOURCE}/.default") {
        return token_error("invalid_scope", "the scope is not the vault's.", 70011);
    }
    let client_id = field("client_id");
    let mut inner = state.lock();
    let ok = if let Some(secret) = form.get("client_secret") {
        inner.client_secrets.get(client_id) == Some(secret)
    } else if field("client_assertion_type")
        == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    {
        match inner.client_certs.get(client_id) {
            Some((key, thumbprint)) => {
                let audience = format!("{}/{TENANT}/oauth2/v2.0/token", state.url);
                check_assertion(
                    field("client_assertion"),
                    key,
                    thumbprint,
                    client_id,
                    &audience,
                )
            }
            None => false,
        }
    } else {
        false
    };
    if !ok {
        return token_error(
            "invalid_client",
            "Invalid client secret or assertion provided.",
            7000215,
        );
    }
    let token = format!("local-token-{}", new_version());
    inner.issued.insert(token.clone());
    inner.stats.tokens_issued += 1;
    answer(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

fn check_assertion(
    jwt: &str,
    key: &RsaPublicKey,
    thumbprint: &[u8],
    client_id: &str,
    audience: &str,
) -> bool {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(header), Some(payload), Some(signature)) =
        (b64url_decode(h), b64url_decode(p), b64url_decode(s))
    else {
        return false;
    };
    if !key.verify_sha256(format!("{h}.{p}").as_bytes(), &signature) {
        return false;
    }
    let (Ok(header), Ok(claims)) = (
        serde_json::from_slice::<Value>(&header),
        serde_json::from_slice::<Value>(&payload),
    ) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    header.get("alg").and_then(Value::as_str) == Some("RS256")
        && header.get("x5t").and_then(Value::as_str) == Some(b64url(thumbprint).as_str())
        && claims.get("aud").and_then(Value::as_str) == Some(audience)
        && claims.get("iss").and_then(Value::as_str) == Some(client_id)
        && claims.get("sub").and_then(Value::as_str) == Some(client_id)
        && claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|exp| exp > now)
        && claims
            .get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|nbf| nbf <= now + 60)
        && claims
            .get("jti")
            .and_then(Value::as_str)
            .is_some_and(|j| !j.is_empty())
}
