//! The Key Vault options through the local Key Vault (HTTPS on 127.0.0.1, the real authentication
//! challenge, an Entra ID token endpoint for the client secret, Key Vault's 403 bodies), driven by
//! the real Azure SDK inside the `dpwrap` binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use dpwrap::testing::LocalKeyVault;
use dpwrap::testing::key_vault::TENANT;

const CLIENT_ID: &str = "0a1b2c3d-1111-2222-3333-444455556666";
const CLIENT_SECRET: &str = "local-vault-client-secret";

struct Vault {
    vault: LocalKeyVault,
    ca: std::path::PathBuf,
    // The server runs on this runtime's threads while the tests run the binary.
    _rt: tokio::runtime::Runtime,
}

fn start(dir: &Path) -> Vault {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let vault = rt.block_on(LocalKeyVault::start()).unwrap();
    vault.require_issued_tokens(true);
    vault.add_client_secret(CLIENT_ID, CLIENT_SECRET);
    let ca = dir.join("vault-ca.pem");
    std::fs::write(&ca, vault.ca_pem()).unwrap();
    Vault { vault, ca, _rt: rt }
}

impl Vault {
    /// `dpwrap ARGS` with the client-secret credential of the local vault.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = cmd(args);
        c.args(["--credential", "client-secret"])
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env("AZURE_AUTHORITY_HOST", self.vault.authority_host())
            .env("DPWRAP_KEY_VAULT_CA", &self.ca);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run_cmd(self.cmd(args))
    }
}

/// The master keys `decrypt --json --reveal` gives (key id → base64), and the rows.
fn decrypted(run: &Run) -> std::collections::BTreeMap<String, String> {
    run.json()
        .into_iter()
        .filter(|v| v["status"] == "ok")
        .map(|v| {
            (
                v["key_id"].as_str().unwrap().to_owned(),
                v["master_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn protect_rewrap_and_decrypt_through_key_vault() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) = peer_ring(
        &peer,
        tmp.path(),
        12,
        "cert,cert-oaep,null,none,akv,akv-legacy",
        2048,
    );
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let v = start(tmp.path());
    // The vault key is an openssl key the peer can use as the KEK too.
    let kek_dir = tmp.path().join("kek");
    peer.gen_cert(&kek_dir, 2048, PASSWORD, "k");
    let kek = kek_dir.join("k.key.pem");
    let kid = v
        .vault
        .import_pem("dataprotection", &std::fs::read_to_string(&kek).unwrap())
        .unwrap();
    let versionless = format!("{}/keys/dataprotection", v.vault.url());

    // protect: the unprotected keys to Key Vault (versionless kid: the versioned one is stored).
    let dir = tmp.path().join("protect");
    copy_ring(&ring, &dir);
    let run = v
        .run(&["protect", "--to-key-vault", &versionless, s(&dir)])
        .expect(0);
    let unprotected = manifest
        .values()
        .filter(|(f, _)| f == "none" || f == "null")
        .count();
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("protected"))
            .count(),
        unprotected
    );
    let stats = v.vault.stats();
    assert_eq!(stats.wraps, unprotected, "{stats:?}");
    assert!(
        stats.unwraps >= unprotected,
        "each new element verified through the vault"
    );
    let text: String = snapshot(&dir)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(
        text.matches(&format!("<kid>{kid}</kid>")).count(),
        unprotected
    );
    // Decrypt with the vault (and the peer's own material for the rest).
    let run = v
        .run(&[
            "decrypt",
            "--json",
            "--reveal",
            "--key-vault-kid",
            &versionless,
            "--cert",
            &c("c.cert.pem"),
            "--key",
            &c("c.key.pem"),
            "--local-kek",
            &format!(
                "https://example-vault.vault.azure.net/keys/dataprotection={}",
                c("c.key.pem")
            ),
            s(&dir),
        ])
        .expect(0);
    assert_eq!(decrypted(&run), expected(&manifest));
    // .NET reads the vault-wrapped keys with the same RSA key.
    assert_eq!(
        peer_decrypt(
            &peer,
            &dir,
            &[
                "--cert",
                &c("c.cert.pem"),
                "--key",
                &c("c.key.pem"),
                "--key",
                s(&kek)
            ]
        )
        .into_iter()
        .map(|(k, (m, _))| (k, m))
        .collect::<std::collections::BTreeMap<_, _>>(),
        expected(&manifest)
    );

    // rewrap everything in place to Key Vault, then back to a certificate with only the vault.
    let run = v
        .run(&[
            "rewrap",
            s(&dir),
            "--to-key-vault",
            &kid,
            "--key-vault-kid",
            &kid,
            "--cert",
            &c("c.cert.pem"),
            "--key",
            &c("c.key.pem"),
            "--local-kek",
            &c("c.key.pem"),
            "--concurrency",
            "4",
        ])
        .expect(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("rewrapped"))
            .count(),
        manifest.len() - unprotected
    );
    let run = v
        .run(&[
            "decrypt",
            "--json",
            "--reveal",
            "--key-vault-kid",
            &kid,
            s(&dir),
        ])
        .expect(0);
    assert_eq!(decrypted(&run), expected(&manifest));
    let peer_view = peer_decrypt(&peer, &dir, &["--key", s(&kek)]);
    assert_eq!(peer_view.len(), manifest.len());
    let back = tmp.path().join("back");
    let run = v
        .run(&[
            "rewrap",
            s(&dir),
            "--out",
            s(&back),
            "--to-cert",
            &c("c.cert.pem"),
            "--to-key",
            &c("c.key.pem"),
            "--key-vault-kid",
            &kid,
        ])
        .expect(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("rewrapped"))
            .count(),
        manifest.len()
    );
    let (run, rows) = decrypt_map(&[
        "--cert",
        &c("c.cert.pem"),
        "--key",
        &c("c.key.pem"),
        s(&back),
    ]);
    run.expect(0);
    assert_eq!(master_keys(&rows), expected(&manifest));
    assert!(
        v.vault.stats().max_in_flight <= 4 + 1,
        "{:?}",
        v.vault.stats()
    );
}

#[test]
fn a_403_names_the_permission_and_the_kid_and_nothing_is_written() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, _) = peer_ring(&peer, tmp.path(), 6, "none,cert", 2048);
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let v = start(tmp.path());
    let kid = v.vault.create_key("dataprotection").unwrap();

    v.vault.deny("wrapKey", Some("dataprotection"));
    let before = snapshot(&ring);
    let run = v
        .run(&["protect", "--to-key-vault", &kid, s(&ring)])
        .expect(1);
    assert!(
        run.stderr.contains("wrapKey") && run.stderr.contains(&kid),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("403"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert_eq!(snapshot(&ring), before);
    let run = v
        .run(&[
            "rewrap",
            s(&ring),
            "--to-key-vault",
            &kid,
            "--cert",
            &c("c.cert.pem"),
            "--key",
            &c("c.key.pem"),
        ])
        .expect(1);
    assert!(run.stderr.contains("wrapKey"), "{}", run.stderr);
    assert_eq!(snapshot(&ring), before);

    // Wrapping allowed, unwrapping refused: the verification fails, nothing is written.
    v.vault.allow_all();
    v.vault.deny("unwrapKey", None);
    let run = v
        .run(&["protect", "--to-key-vault", &kid, s(&ring)])
        .expect(1);
    assert!(
        run.stderr.contains("unwrapKey") && run.stderr.contains(&kid),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&ring), before);

    // Written while allowed, then decrypting is refused: exit 1, the error names the kid.
    v.vault.allow_all();
    v.run(&["protect", "--to-key-vault", &kid, s(&ring)])
        .expect(0);
    v.vault.deny("unwrapKey", None);
    let run = v
        .run(&["decrypt", "--json", "--key-vault-kid", &kid, s(&ring)])
        .expect(1);
    let errors: Vec<String> = run
        .json()
        .iter()
        .filter(|r| r["status"] == "error" && r["protection"] == "azure-key-vault")
        .map(|r| r["error"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(errors.len(), 3, "{}", run.stdout);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("unwrapKey") && e.contains(&kid)),
        "{errors:?}"
    );

    // A kid of another vault is refused before anything is sent.
    v.vault.reset_stats();
    let run = v
        .run(&[
            "decrypt",
            "--key-vault-kid",
            "https://elsewhere.vault.azure.net/keys/k",
            s(&ring),
        ])
        .expect(1);
    assert!(
        run.stderr.contains("elsewhere.vault.azure.net") && run.stderr.contains("refusing"),
        "{}",
        run.stderr
    );
    assert_eq!(v.vault.stats().total, 0, "nothing reached the ring's vault");
    // A wrong client secret: the token endpoint refuses; the secret is never printed.
    let mut c = v.cmd(&["decrypt", "--key-vault-kid", &kid, s(&ring)]);
    c.env("AZURE_CLIENT_SECRET", "not-the-secret-xyz");
    let run = run_cmd(c).expect(1);
    assert!(
        !run.stderr.contains("not-the-secret-xyz") && !run.stdout.contains("not-the-secret-xyz")
    );
}
