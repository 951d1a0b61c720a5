//! `dpwrap decrypt`: decrypt every key of the given stores with the given key material and say,
//! per key, whether it decrypted. Master keys are printed only with `--reveal`.

use base64::Engine as _;
use clap::ArgMatches;
use dpwrap::{Decryptors, Key, MasterKey};
use serde_json::json;

use crate::fail::Outcome;
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

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let material = KeyMaterial::load(&args.material, matches)?;
    let decryptors = material.decryptors();
    let rings = stores::read_rings(&args.stores).await?;
    let mut failed = false;
    let mut header = vec!["FILE", "KEY ID", "PROTECTION", "REVOKED", "STATUS"];
    if args.reveal {
        header.push("MASTER KEY");
    }
    header.push("ERROR");
    let mut table = Table::new(header);
    let mut row =
        |file: &str, key: Option<&Key>, revoked: bool, result: Result<&MasterKey, String>| {
            let protection = key.map(|k| k.protection().as_str());
            let key_id = key.map(|k| k.id().to_string());
            if args.json {
                let mut value = json!({
                    "file": file,
                    "key_id": key_id,
                    "status": if result.is_ok() { "ok" } else { "error" },
                    "revoked": revoked,
                    "protection": protection,
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
                            map.insert("error".into(), json!(e));
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
                    if result.is_ok() { "ok" } else { "error" }.to_owned(),
                ];
                if args.reveal {
                    cells.push(match &result {
                        Ok(m) => m.to_base64().to_string(),
                        Err(_) => "-".into(),
                    });
                }
                cells.push(result.err().unwrap_or_default());
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
        let mut results = decrypt_keys(&keys, &decryptors, material.concurrency)
            .await
            .into_iter();
        for item in &ring.items {
            match &item.what {
                What::Key(key) => {
                    let revoked = stores::revocation_for(key, &revocations).is_some();
                    let result = results.next().unwrap_or_else(|| {
                        Err(dpwrap::Error::new(
                            dpwrap::ErrorKind::Cancelled,
                            "the key was not decrypted",
                        ))
                    });
                    match &result {
                        Ok(m) => row(&item.file, Some(key), revoked, Ok(m)),
                        Err(e) => {
                            failed = true;
                            crate::output::report(&item.file, &e.to_string());
                            row(&item.file, Some(key), revoked, Err(e.to_string()));
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
                    row(&item.file, None, false, Err(e.to_string()));
                }
            }
        }
    }
    if !args.json {
        table.print();
    }
    Ok(u8::from(failed))
}
