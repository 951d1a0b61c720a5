//! Shared helpers of the CLI tests: running the built `dpwrap`, the Mono peer, redis-server,
//! snapshots of directories. Each test file says `mod common;`.
#![allow(dead_code)]

#[path = "../../../tests/common/interop.rs"]
pub mod interop;
#[path = "../../../tests/common/redis_server.rs"]
pub mod redis_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the library's crate; `tests/common/interop.rs` looks for the peer under
/// it).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path under the shared folder beside the repository (`../shared/...`).
pub fn shared(rel: &str) -> PathBuf {
    repo().join("..").join("shared").join(rel)
}

/// What a run of `dpwrap` gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout JSON lines.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Panics with the output unless the exit status is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A `dpwrap` command, to add arguments and environment to.
pub fn cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(env!("CARGO_BIN_EXE_dpwrap"));
    c.args(args);
    // Never pick up a real Azure identity from the environment of whoever runs the tests.
    for var in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AZURE_TOKEN_CREDENTIALS",
        "DPWRAP_KEY_VAULT_CA",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs a command.
pub fn run_cmd(mut c: Command) -> Run {
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `dpwrap ARGS`.
pub fn dpwrap<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_cmd(cmd(args))
}

/// A path as a `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` (recursively) with its bytes: to check that nothing was written.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Copies the `*.xml` files of `from` into a new directory `to`.
pub fn copy_ring(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The manifest of a peer ring: key id → (format, master key base64).
pub type Manifest = BTreeMap<String, (String, String)>;

/// Reads `manifest.jsonl` lines.
pub fn manifest(path: &Path) -> Manifest {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["key_id"].as_str().unwrap().to_owned(),
                (
                    v["format"].as_str().unwrap().to_owned(),
                    v["master_key_b64"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// Certificate material from the peer (openssl): `NAME.cert.pem`, `NAME.key.pem` (PKCS#8),
/// `NAME.rsa.pem` (PKCS#1), `NAME.pfx` (AES-256), `NAME.3des.pfx`, password `PASSWORD`.
pub const PASSWORD: &str = "pw-3des-and-aes";

/// A peer ring in `base/ring` with key material in `base/certs` (`c.*`: the certificate, whose
/// key also stands for the Key Vault key in the akv formats, as the peer does when given one
/// certificate), the manifest moved to `base/manifest.jsonl`.
pub fn peer_ring(
    peer: &interop::Peer,
    base: &Path,
    count: usize,
    formats: &str,
    bits: u32,
) -> (PathBuf, PathBuf, Manifest) {
    let certs = base.join("certs");
    let ring = base.join("ring");
    std::fs::create_dir_all(&certs).unwrap();
    peer.gen_cert(&certs, bits, PASSWORD, "c");
    peer.ok([
        "gen-ring",
        "--count",
        &count.to_string(),
        "--out",
        s(&ring),
        "--formats",
        formats,
        "--cert",
        s(&certs.join("c.cert.pem")),
        "--key",
        s(&certs.join("c.key.pem")),
    ]);
    let m = base.join("manifest.jsonl");
    std::fs::rename(ring.join("manifest.jsonl"), &m).unwrap();
    let manifest = manifest(&m);
    assert_eq!(manifest.len(), count);
    (ring, certs, manifest)
}

/// The peer's `decrypt-ring` over a directory with the given material arguments: key id →
/// (master key base64, revoked).
pub fn peer_decrypt(
    peer: &interop::Peer,
    dir: &Path,
    material: &[&str],
) -> BTreeMap<String, (String, bool)> {
    let mut args = vec!["decrypt-ring", "--dir", s(dir)];
    args.extend_from_slice(material);
    let out = peer.ok(&args);
    out.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "key")
        .map(|v| {
            (
                v["key_id"].as_str().unwrap().to_owned(),
                (
                    v["master_key_b64"].as_str().unwrap_or("").to_owned(),
                    v["revoked"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect()
}

/// `dpwrap decrypt --json --reveal ARGS`: key id → (status, master key, protection, revoked).
pub fn decrypt_map(args: &[&str]) -> (Run, BTreeMap<String, serde_json::Value>) {
    let mut all = vec!["decrypt", "--json", "--reveal"];
    all.extend_from_slice(args);
    let run = dpwrap(&all);
    let map = run
        .json()
        .into_iter()
        .map(|v| (v["key_id"].as_str().unwrap_or("").to_owned(), v))
        .collect();
    (run, map)
}

/// The expected map from a manifest: key id → master key.
pub fn expected(manifest: &Manifest) -> BTreeMap<String, String> {
    manifest
        .iter()
        .map(|(id, (_, mk))| (id.clone(), mk.clone()))
        .collect()
}

/// key id → master key of the rows that decrypted.
pub fn master_keys(rows: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    rows.iter()
        .filter(|(_, v)| v["status"] == "ok")
        .map(|(id, v)| (id.clone(), v["master_key"].as_str().unwrap().to_owned()))
        .collect()
}
