//! Shared test helpers. Each integration test file that needs them says `mod common;`.
#![allow(dead_code)]

#[cfg(feature = "azure")]
pub mod azurite;
pub mod interop;
pub mod redis_server;
pub mod tls;

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under the shared folder beside the repository (`../shared/...`).
pub fn shared(rel: &str) -> PathBuf {
    repo().join("..").join("shared").join(rel)
}

/// A path under the repository's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// Runs a future to completion on a fresh single-threaded tokio runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates one.
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("dpwrap-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A ring written by the Mono peer: `gen-cert` then `gen-ring --count COUNT --formats
/// cert,cert-oaep,null,none --cert C.pem`, plus a single-key revocation of the first key and a
/// mass revocation (`revoke`). Returns the ring directory, the certificate directory and the
/// manifest lines (one per key). `None` (after a skip) without the peer.
pub fn peer_ring(
    base: &std::path::Path,
    count: usize,
) -> Option<(PathBuf, PathBuf, Vec<serde_json::Value>)> {
    peer_ring_with(base, count, false)
}

/// [`peer_ring`] with every protection the peer writes: `cert,cert-oaep,null,none,akv,akv-legacy`,
/// the Key Vault formats wrapped with a local RSA key (`certs/kek.pem`, made by openssl), which
/// [`peer_decrypt_ring`] then hands to the peer too.
pub fn peer_ring_every_format(
    base: &std::path::Path,
    count: usize,
) -> Option<(PathBuf, PathBuf, Vec<serde_json::Value>)> {
    peer_ring_with(base, count, true)
}

fn peer_ring_with(
    base: &std::path::Path,
    count: usize,
    key_vault: bool,
) -> Option<(PathBuf, PathBuf, Vec<serde_json::Value>)> {
    let peer = interop::peer()?;
    let certs = base.join("certs");
    let ring = base.join("ring");
    std::fs::create_dir_all(&certs).unwrap();
    peer.gen_cert(&certs, 2048, "pw", "c");
    let cert = certs.join("c.cert.pem");
    let mut args: Vec<String> = vec![
        "gen-ring".into(),
        "--count".into(),
        count.to_string(),
        "--out".into(),
        ring.to_str().unwrap().into(),
        "--formats".into(),
        "cert,cert-oaep,null,none".into(),
        "--cert".into(),
        cert.to_str().unwrap().into(),
    ];
    if key_vault {
        let kek = certs.join("kek.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&kek)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        args[6] = "cert,cert-oaep,null,none,akv,akv-legacy".into();
        args.extend(["--key".into(), kek.to_str().unwrap().into()]);
    }
    peer.ok(&args);
    let manifest_path = ring.join("manifest.jsonl");
    let manifest: Vec<serde_json::Value> = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The manifest is not part of the ring.
    std::fs::rename(&manifest_path, base.join("manifest.jsonl")).unwrap();
    let first = manifest[0]["key_id"].as_str().unwrap().to_owned();
    peer.ok([
        "revoke",
        "--out",
        ring.to_str().unwrap(),
        "--key-id",
        &first,
        "--date",
        "2025-07-01T10:00:00.1234567Z",
        "--reason",
        "rotated after an incident",
    ]);
    peer.ok([
        "revoke",
        "--out",
        ring.to_str().unwrap(),
        "--all",
        "--date",
        "2020-01-02T03:04:05.5Z",
    ]);
    Some((ring, certs, manifest))
}

/// Every `*.xml` file of a directory: (file name, bytes), sorted by name.
pub fn xml_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Switches a key between unprotected and null-protected (the same master key either way): a
/// protector-agnostic stand-in for a re-wrap. Revocations come back unchanged.
pub async fn toggle_protection(element: &dpwrap::xml::Element) -> dpwrap::xml::Element {
    use dpwrap::envelope;
    if !element.is(None, "key") {
        return element.clone();
    }
    if element
        .find(Some(dpwrap::xml::NS_DP), "encryptedSecret")
        .is_some()
    {
        let decryptors =
            dpwrap::Decryptors::new().with(std::sync::Arc::new(dpwrap::NullXmlDecryptor));
        let clear = envelope::decrypt_element(element, &decryptors)
            .await
            .unwrap();
        clear.expose().clone()
    } else {
        envelope::encrypt_if_necessary(&dpwrap::NullXmlEncryptor, element)
            .await
            .unwrap()
            .expect("an unprotected key has a masterKey to protect")
    }
}

/// The master key (base64) of an unprotected or null-protected key element.
pub async fn null_master_key(element: &dpwrap::xml::Element) -> String {
    let key = dpwrap::Key::from_element(element.clone()).unwrap();
    let decryptors = dpwrap::Decryptors::new().with(std::sync::Arc::new(dpwrap::NullXmlDecryptor));
    key.master_key(&decryptors)
        .await
        .unwrap()
        .to_base64()
        .to_string()
}

/// The peer's `decrypt-ring` over a directory: (key id, master key base64, revoked) per key,
/// sorted by id. `certs` holds `c.cert.pem`/`c.key.pem` (and `kek.pem`) from [`peer_ring`] or
/// [`peer_ring_every_format`] (or `None`).
pub fn peer_decrypt_ring(
    peer: &interop::Peer,
    dir: &std::path::Path,
    certs: Option<&std::path::Path>,
) -> Vec<(String, String, bool)> {
    let mut args: Vec<String> = vec![
        "decrypt-ring".into(),
        "--dir".into(),
        dir.to_str().unwrap().into(),
    ];
    if let Some(c) = certs {
        args.extend([
            "--cert".into(),
            c.join("c.cert.pem").to_str().unwrap().into(),
            "--key".into(),
            c.join("c.key.pem").to_str().unwrap().into(),
        ]);
        if c.join("kek.pem").is_file() {
            args.extend(["--key".into(), c.join("kek.pem").to_str().unwrap().into()]);
        }
    }
    let out = peer.ok(&args);
    let mut rows: Vec<(String, String, bool)> = out
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "key")
        .map(|v| {
            (
                v["key_id"].as_str().unwrap().to_owned(),
                v["master_key_b64"].as_str().unwrap().to_owned(),
                v["revoked"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// [`toggle_protection`] of every loaded element.
pub async fn toggled(loaded: &[dpwrap::store::StoredElement]) -> Vec<dpwrap::xml::Element> {
    let mut news = Vec::with_capacity(loaded.len());
    for e in loaded {
        news.push(toggle_protection(e.element()).await);
    }
    news
}

/// The changes that replace each loaded element by its new version (same order).
pub fn changes<'a>(
    loaded: &'a [dpwrap::store::StoredElement],
    news: &[dpwrap::xml::Element],
) -> Vec<dpwrap::store::Change<'a>> {
    loaded
        .iter()
        .zip(news)
        .map(|(old, new)| dpwrap::store::Change {
            old,
            new: new.clone(),
        })
        .collect()
}

/// Loads `store` and replaces every element by its [`toggle_protection`]: a whole-ring re-wrap.
pub async fn toggle_all(store: &dyn dpwrap::store::KeyStore) -> dpwrap::Result<()> {
    let loaded = store.load().await?;
    let news = toggled(&loaded).await;
    store.replace(&changes(&loaded, &news)).await
}
