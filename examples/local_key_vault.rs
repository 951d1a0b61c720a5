//! Starts the local Key Vault for manual use: prints its URL, a key's kid, the path of the CA
//! certificate to trust, and a secret's id; runs until Enter is pressed.
//!
//! ```text
//! cargo run --example local_key_vault --features test-util
//! ```
//!
//! Clients must trust the printed CA (only for this vault) and, because it is reached by IP
//! address, turn off the SDK's challenge-resource check (`verify_challenge_resource`). Any bearer
//! token is accepted.

use std::io::BufRead as _;

use dpwrap::testing::LocalKeyVault;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vault = LocalKeyVault::start().await?;
    let kid = vault.create_key("dataprotection")?;
    let secret = vault.set_secret("dataprotection-keys", "<root />", Some("application/xml"));
    let ca_path =
        std::env::temp_dir().join(format!("dpwrap-local-kv-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, vault.ca_pem())?;
    println!("url:    {}", vault.url());
    println!("kid:    {kid}");
    println!("secret: {secret}");
    println!("ca:     {}", ca_path.display());
    println!("press Enter to stop");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let stats = vault.stats();
    println!(
        "served {} requests (max {} at once)",
        stats.total, stats.max_in_flight
    );
    let _ = std::fs::remove_file(&ca_path);
    Ok(())
}
