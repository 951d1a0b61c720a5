//! `dpwrap decrypt`: decrypt every key of the given stores with the given key material and say,
//! per key, whether it decrypted. Master keys are printed only with `--reveal`.

use base64::Engine as _;
use clap::ArgMatches;
use dpwrap::{Decryptors, Key, MasterKey};
use serde_json::json;

use dpwrap::authentication::AuthenticationStatus;

use crate::authentication::{Trust, TrustArgs, carries_proof};
use crate::fail::{Fail, Outcome};
use crate::key_material::{KeyMaterial, KeyMaterialArgs};
use crate::output::{Table, json_line};
use crate::stores::{self, What};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per key per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Print each master key (base64). Without it, no secret is ever printed.
    #[arg(long)]
    reveal: bool,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    material: KeyMaterialArgs,
    /// Stores: directories, ring documents (.xml), single element files, redis://… URLs, or
    /// env:NAME naming any of these.
    #[arg(required = true, value_name = "STORE")]
    stores: Vec<String>,
}

/// Decrypts the master keys of `keys`, at most `concurrency` at once; results in key order.
/// The one place where the ring is unwrapped: swap in a faster core API here.
async fn decrypt_keys(
    keys: &[&Key],
    decryptors: &Decryptors,
    concurrency: usize,
) -> Vec<dpwrap::Result<MasterKey>> {
    #[cfg(feature = "azure")]
    {
        use dpwrap::azure::ring::{RingUnwrapOptions, unwrap_each};
        unwrap_each(
            keys.iter().copied(),
            decryptors,
            &RingUnwrapOptions::with_concurrency(concurrency),
        )
        .await
    }
    #[cfg(not(feature = "azure"))]
    {
        use futures_util::{StreamExt as _, stream};
        stream::iter(keys.iter().map(|k| k.master_key(decryptors)))
            .buffered(concurrency.max(1))
            .collect()
            .await
    }
}

/// The outcome of one key: its master key, or why not.
type KeyResult = Result<MasterKey, dpwrap::Error>;

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let material = KeyMaterial::load(&args.material, matches)?;
    let mut trust = Trust::new(&args.trust, &material.certificates)?;
    let decryptors = material.decryptors();
    let settings = stores::Settings::new(&args.material.connection)?;
    let rings = stores::read_rings(&args.stores, &settings).await?;
    let mut failed = false;
    let mut header = vec![
        "FILE",
        "KEY ID",
        "PROTECTION",
        "REVOKED",
        "AUTHENTICATION",
        "STATUS",
    ];
    if args.reveal {
        header.push("MASTER KEY");
    }
    header.push("ERROR");
    let mut table = Table::new(header);
    let mut row = |file: &str,
                   key: Option<&Key>,
                   revoked: bool,
                   authentication: Option<&AuthenticationStatus>,
                   result: Result<&MasterKey, &dpwrap::Error>| {
        let protection = key.map(|k| k.protection().as_str());
        let key_id = key.map(|k| k.id().to_string());
        let authentication = authentication.map(AuthenticationStatus::as_str);
        if args.json {
            let mut value = json!({
                "file": file,
                "key_id": key_id,
                "status": if result.is_ok() { "ok" } else { "error" },
                "revoked": revoked,
                "protection": protection,
                "authentication": authentication,
            });
            if let Some(map) = value.as_object_mut() {
                match &result {
                    Ok(master) if args.reveal => {
                        let b64 = zeroize::Zeroizing::new(
                            base64::engine::general_purpose::STANDARD.encode(master.expose()),
                        );
                        map.insert("master_key".into(), json!(b64.as_str()));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        map.insert("error".into(), json!(e.to_string()));
                        map.insert("error_kind".into(), json!(e.kind().as_str()));
                    }
                }
            }
            json_line(&value);
        } else {
            let mut cells = vec![
                file.to_owned(),
                key_id.unwrap_or_else(|| "-".into()),
                protection.unwrap_or("-").to_owned(),
                if revoked { "yes" } else { "no" }.to_owned(),
                authentication.unwrap_or("-").to_owned(),
                if result.is_ok() { "ok" } else { "error" }.to_owned(),
            ];
            if args.reveal {
                cells.push(match &result {
                    Ok(m) => m.to_base64().to_string(),
                    Err(_) => "-".into(),
                });
            }
            cells.push(result.err().map(|e| e.to_string()).unwrap_or_default());
            table.row(cells);
        }
    };
    for ring in &rings {
        let revocations = ring.revocations();
        let keys: Vec<&Key> = ring
            .items
            .iter()
            .filter_map(|i| match &i.what {
                What::Key(k) => Some(k.as_ref()),
                _ => None,
            })
            .collect();
        let ring_signed = keys.iter().any(|k| carries_proof(k));
        // Every proof is checked before anything is decrypted: a refused key never reaches a
        // private key or the vault.
        let statuses: Vec<AuthenticationStatus> = keys.iter().map(|k| trust.status(k)).collect();
        let verdicts: Vec<dpwrap::Result<()>> = keys
            .iter()
            .zip(&statuses)
            .map(|(k, s)| trust.check(s, k))
            .collect();
        let accepted: Vec<&Key> = keys
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_ok())
            .map(|(k, _)| *k)
            .collect();
        let mut decrypted = decrypt_keys(&accepted, &decryptors, material.concurrency)
            .await
            .into_iter();
        let mut checked = statuses.iter().zip(verdicts);
        for item in &ring.items {
            match &item.what {
                What::Key(key) => {
                    let revoked = stores::revocation_for(key, &revocations).is_some();
                    let Some((status, verdict)) = checked.next() else {
                        return Err(Fail::run("internal error: a key went missing"));
                    };
                    let result: KeyResult = match verdict {
                        Err(e) => Err(e),
                        Ok(()) => {
                            trust.warn(status, key, ring_signed, &item.file);
                            decrypted.next().unwrap_or_else(|| {
                                Err(dpwrap::Error::new(
                                    dpwrap::ErrorKind::Cancelled,
                                    "the key was not decrypted",
                                ))
                            })
                        }
                    };
                    match &result {
                        Ok(m) => row(&item.file, Some(key), revoked, Some(status), Ok(m)),
                        Err(e) => {
                            failed = true;
                            crate::output::report(&item.file, &e.to_string());
                            row(&item.file, Some(key), revoked, Some(status), Err(e));
                        }
                    }
                }
                What::Revocation(_) => {}
                What::Fragment(f) => {
                    eprintln!(
                        "dpwrap: {}: skipped: a <{}> fragment ({}), not a key",
                        item.file, f.root, f.protection
                    );
                }
                What::Failed(e) => {
                    failed = true;
                    crate::output::report(&item.file, &e.to_string());
                    row(&item.file, None, false, None, Err(e));
                }
            }
        }
    }
    if !args.json {
        table.print();
    }
    Ok(u8::from(failed))
}
