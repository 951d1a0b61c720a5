//! The local Key Vault (`dpwrap::testing::LocalKeyVault`: HTTPS on 127.0.0.1, the real
//! authentication challenge, an Entra ID token endpoint for a client secret) on a runtime of its
//! own, and `dpwrap` commands set up to reach it.

use std::path::{Path, PathBuf};
use std::process::Command;

use dpwrap::testing::LocalKeyVault;
use dpwrap::testing::key_vault::TENANT;

use super::{Run, cmd, run_cmd};

pub const CLIENT_ID: &str = "0a1b2c3d-1111-2222-3333-444455556666";
pub const CLIENT_SECRET: &str = "local-vault-client-secret";

/// A running local vault.
pub struct Vault {
    pub vault: LocalKeyVault,
    /// Its CA certificate (PEM file).
    pub ca: PathBuf,
    // The server runs on this runtime's threads while the tests run the binary.
    _rt: tokio::runtime::Runtime,
}

/// Starts a vault that requires the tokens its own token endpoint issued, with one client secret.
pub fn start(dir: &Path) -> Vault {
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
    /// `dpwrap ARGS` with the client-secret credential of the local vault (`--credential
    /// client-secret` appended: every command that reaches Azure takes it).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = cmd(args);
        c.args(["--credential", "client-secret"]);
        self.env(&mut c);
        c
    }

    /// The environment that names the vault's credential and CA, without `--credential` (the
    /// default credential chain finds the client secret).
    pub fn env(&self, c: &mut Command) {
        c.env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env("AZURE_AUTHORITY_HOST", self.vault.authority_host())
            .env("DPWRAP_KEY_VAULT_CA", &self.ca);
    }

    /// Runs [`Vault::cmd`].
    pub fn run(&self, args: &[&str]) -> Run {
        run_cmd(self.cmd(args))
    }

    /// `kvsecret+https://127.0.0.1:PORT/secrets/NAME`.
    pub fn secret_url(&self, name: &str) -> String {
        format!("kvsecret+{}/secrets/{name}", self.vault.url())
    }
}
