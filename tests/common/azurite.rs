//! A throwaway Azurite blob service (the official Azure Storage emulator, from npm) on a free
//! loopback port, killed on drop; account SAS tokens signed with the emulator's published
//! development key; unsigned JWTs for Azurite's `--oauth basic`.
//!
//! Azurite is found at `DPWRAP_AZURITE` (the `azurite-blob` program), in
//! `target/azurite/node_modules/.bin/` (where this helper installs it with
//! `npm install --prefix target/azurite azurite@3.35.0` when npm is present), or on `PATH`.
//! Without it and without npm the tests skip (fail under `DPWRAP_INTEROP=require`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use super::interop;
use super::redis_server::free_port;

/// The Azurite version the tests install.
pub const VERSION: &str = "3.35.0";
/// The emulator's development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its published key (public; documented by Microsoft for the emulator).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running azurite-blob.
pub struct Azurite {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it serves HTTPS (with `--oauth basic`).
    pub https: bool,
    dir: PathBuf,
}

fn install_dir() -> PathBuf {
    super::repo().join("target").join("azurite")
}

/// The `azurite-blob` program, installing it under `target/azurite` when npm is present.
/// `None` (after a skip) when neither it nor npm is there.
pub fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DPWRAP_AZURITE") {
        return Some(PathBuf::from(p));
    }
    let local = install_dir().join("node_modules/.bin/azurite-blob");
    if local.is_file() {
        return Some(local);
    }
    if Command::new("azurite-blob")
        .arg("--version")
        .output()
        .is_ok()
    {
        return Some(PathBuf::from("azurite-blob"));
    }
    if !interop::have("npm") || !interop::have("node") {
        interop::skip(&format!(
            "Azurite is not installed and npm is not there to install it (npm install --prefix target/azurite azurite@{VERSION})"
        ));
        return None;
    }
    // Tests run in parallel: one installs, the others wait on the lock.
    std::fs::create_dir_all(install_dir()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(install_dir().join(".install.lock"))
        .unwrap();
    lock.lock().unwrap();
    if !local.is_file() {
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(install_dir())
            .arg(format!("azurite@{VERSION}"))
            .output()
            .expect("npm runs");
        if !out.status.success() || !local.is_file() {
            interop::skip(&format!(
                "npm could not install azurite@{VERSION}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
    }
    Some(local)
}

impl Azurite {
    /// Starts azurite-blob over http, or skips.
    pub fn start() -> Option<Azurite> {
        Azurite::start_with(None)
    }

    /// Starts azurite-blob over https with `--oauth basic`, with the given certificate and key
    /// (PEM), or skips.
    pub fn start_https(cert: &Path, key: &Path) -> Option<Azurite> {
        Azurite::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Option<Azurite> {
        let program = program()?;
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("dpwrap-azurite-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut cmd = Command::new(&program);
            cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(&dir)
                .args([
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                    "--silent",
                ]);
            if let Some((cert, key)) = tls {
                cmd.arg("--cert")
                    .arg(cert)
                    .arg("--key")
                    .arg(key)
                    .args(["--oauth", "basic"]);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("azurite-blob starts");
            let mut server = Azurite {
                child,
                port,
                https: tls.is_some(),
                dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        panic!("azurite-blob did not start");
    }

    /// `blob+http(s)://127.0.0.1:PORT/devstoreaccount1/CONTAINER/BLOB`, without a SAS.
    pub fn blob_url(&self, container: &str, blob: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!(
            "blob+{scheme}://127.0.0.1:{}/{ACCOUNT}/{container}/{blob}",
            self.port
        )
    }

    /// The blob's URL with an account SAS granting `permissions` (for example `racwdl`).
    pub fn sas_url(&self, container: &str, blob: &str, permissions: &str) -> String {
        format!(
            "{}?{}",
            self.blob_url(container, blob),
            account_sas(permissions)
        )
    }

    /// The container's plain URL (`http(s)://…/devstoreaccount1/CONTAINER`).
    pub fn container_url(&self, container: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{ACCOUNT}/{container}", self.port)
    }

    /// Creates a container through a SAS (http) with the Blob SDK.
    pub async fn create_container(&self, container: &str) {
        dpwrap::azure::transport::ensure_crypto_provider();
        let url = format!(
            "{}?{}",
            self.container_url(container),
            account_sas("racwdl")
        );
        let client = azure_storage_blob::BlobContainerClient::new(
            azure_core::http::Url::parse(&url).unwrap(),
            None,
            None,
        )
        .unwrap();
        client.create(None).await.unwrap();
    }

    /// The blob's bytes and Content-Type, read with a SAS through the Blob SDK.
    pub async fn get(&self, container: &str, blob: &str) -> Option<(Vec<u8>, Option<String>)> {
        dpwrap::azure::transport::ensure_crypto_provider();
        let url = self.sas_url(container, blob, "rl");
        let url = url.strip_prefix("blob+").unwrap();
        let client = azure_storage_blob::BlobClient::new(
            azure_core::http::Url::parse(url).unwrap(),
            None,
            None,
        )
        .unwrap();
        match client.download(None).await {
            Ok(r) => {
                let ct = r.properties.content_type.clone();
                Some((r.body.collect().await.unwrap().to_vec(), ct))
            }
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => None,
            Err(e) => panic!("download failed: {e}"),
        }
    }

    /// Uploads `bytes` unconditionally (as another writer would), through a SAS.
    pub async fn put(&self, container: &str, blob: &str, bytes: &[u8]) {
        dpwrap::azure::transport::ensure_crypto_provider();
        let url = self.sas_url(container, blob, "racwdl");
        let url = url.strip_prefix("blob+").unwrap();
        let client = azure_storage_blob::BlobClient::new(
            azure_core::http::Url::parse(url).unwrap(),
            None,
            None,
        )
        .unwrap();
        client
            .upload(azure_core::Bytes::copy_from_slice(bytes).into(), None)
            .await
            .unwrap();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// HMAC-SHA256 (RFC 2104), computed here so that the SAS signature does not come from the code
/// under test.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = sha2::Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = sha2::Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// An account SAS for the development account: blob service, every resource type, the given
/// permissions, http and https, valid for two days.
pub fn account_sas(permissions: &str) -> String {
    account_sas_signed_with(permissions, ACCOUNT_KEY)
}

/// [`account_sas`] signed with another key (a wrong signature).
pub fn account_sas_signed_with(permissions: &str, key_b64: &str) -> String {
    let version = "2025-11-05";
    let expiry = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let string_to_sign =
        format!("{ACCOUNT}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{version}\n\n");
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
            .replace(':', "%3A")
    };
    format!(
        "sv={version}&ss=b&srt=sco&sp={permissions}&se={}&spr=https,http&sig={}",
        enc(&expiry),
        enc(&sig)
    )
}

/// An unsigned JWT that Azurite's `--oauth basic` accepts (it checks the claims, not the
/// signature): audience `https://storage.azure.com`, issuer `https://sts.windows.net/TENANT/`.
pub fn unsigned_storage_jwt() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let header = b64(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64(&format!(
        r#"{{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/","iat":{},"nbf":{},"exp":{},"oid":"00000000-0000-0000-0000-000000000001","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"}}"#,
        now - 60,
        now - 60,
        now + 3600
    ));
    format!("{header}.{claims}.{}", b64("not-a-signature"))
}

/// A token credential handing out a fixed token.
#[derive(Debug)]
pub struct StaticToken(pub String);

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Ok(azure_core::credentials::AccessToken::new(
            self.0.clone(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}
