//! `dpwrap decrypt`: decrypt every key of the given stores with the given key material and say,
//! per key, whether it decrypted. Master keys are printed only with `--reveal`.

use base64::Engine as _;
use clap::ArgMatches;
use std::path::Path;

use dpwrap::key_file::{self, RevocationTarget};
use dpwrap::{Decryptors, Key, MasterKey, Revocation};
use serde_json::json;

use crate::fail::Outcome;
use crate::key_material::{KeyMaterial, KeyMaterialArgs};
use crate::output::{Table, json_line};
use crate::stores::{self, Naming, What};

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

/// Decrypts the master keys of `keys`, at most `concurrency` at once, the private-key work
/// spread over the cores (`dpwrap::ring`); results in key order.
async fn decrypt_keys(
    keys: &[&Key],
    decryptors: &Decryptors,
    concurrency: usize,
) -> Vec<dpwrap::Result<MasterKey>> {
    use dpwrap::ring::{self, Source};
    let sources = keys
        .iter()
        .map(|k| Source::element(String::new(), k.element().clone()));
    let options = ring_options(concurrency);
    let mut stream = ring::decrypt(sources, decryptors, &options);
    let mut results = Vec::with_capacity(keys.len());
    while let Some(d) = stream.next_async().await {
        results.push(d.into_master_key());
    }
    results
}

/// `--concurrency` bounds the keys in flight (what matters for Key Vault); it is raised to the
/// number of cores so that certificate decryption uses them all.
fn ring_options(concurrency: usize) -> dpwrap::ring::RingOptions {
    let options = dpwrap::ring::RingOptions::default();
    let parallelism = options.parallelism;
    options.concurrency(concurrency.max(parallelism).max(1))
}

/// What a row says about its key.
struct KeyFacts {
    id: uuid::Uuid,
    creation: dpwrap::Timestamp,
    protection: &'static str,
}

impl KeyFacts {
    fn of(key: &Key) -> KeyFacts {
        KeyFacts {
            id: key.id(),
            creation: key.creation_date().clone(),
            protection: key.protection().as_str(),
        }
    }

    /// Whether `revocations` revoke the key (a single-key revocation, or a mass revocation dated
    /// after the key's creation), as `Revocation::revokes` decides for a whole key.
    fn revoked_by(&self, revocations: &[&Revocation]) -> bool {
        revocations.iter().any(|r| match r.target() {
            RevocationTarget::Key(id) => id == self.id,
            RevocationTarget::AllCreatedBefore => self.creation < *r.date(),
        })
    }
}

/// One element of a streamed directory, reduced to what its row needs.
enum Streamed {
    Key {
        facts: KeyFacts,
        /// The master key (kept only for `--reveal`), or the error message.
        result: Result<Option<MasterKey>, String>,
    },
    Fragment(dpwrap::key_file::Fragment),
    Failed(String),
}

/// A directory decrypted as a stream: rows in file-name order, and its revocations.
struct StreamedRing {
    rows: Vec<(String, Streamed)>,
    revocations: Vec<Revocation>,
}

/// Decrypts every file of `dir` through `dpwrap::ring`: read, parsed and decrypted on the worker
/// threads, at most `concurrency` files in memory at once. Only the rows are kept (the
/// revocations must all be known before a key's row can say whether it is revoked).
async fn stream_directory(
    dir: &Path,
    decryptors: &Decryptors,
    concurrency: usize,
    reveal: bool,
) -> StreamedRing {
    use dpwrap::ring::{self, Outcome as RingOutcome};
    let mut out = StreamedRing {
        rows: Vec::new(),
        revocations: Vec::new(),
    };
    let naming = Naming::Directory(dir.to_path_buf());
    let sources = match ring::directory(dir) {
        Ok(s) => s,
        Err(e) => {
            out.rows
                .push((naming.store(), Streamed::Failed(e.to_string())));
            return out;
        }
    };
    let options = ring_options(concurrency);
    let mut stream = ring::decrypt(sources, decryptors, &options);
    while let Some(d) = stream.next_async().await {
        let file = naming.of(&d.name);
        let row = match d.outcome {
            RingOutcome::Key { key, master_key } => Streamed::Key {
                facts: KeyFacts::of(&key),
                result: match master_key {
                    Ok(m) => Ok(reveal.then_some(m)),
                    Err(e) => Err(e.to_string()),
                },
            },
            RingOutcome::Revocation(r) => {
                out.revocations.push(r);
                continue;
            }
            // Not a ring element: say so if it is a protected fragment, as for other stores.
            RingOutcome::Unreadable(e) => match key_file::read_element(&dir.join(&d.name))
                .ok()
                .as_ref()
                .and_then(dpwrap::key_file::Fragment::recognise)
            {
                Some(f) if e.kind() == dpwrap::ErrorKind::Format => Streamed::Fragment(f),
                _ => Streamed::Failed(e.to_string()),
            },
        };
        out.rows.push((file, row));
    }
    out
}

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let material = KeyMaterial::load(&args.material, matches)?;
    let decryptors = material.decryptors();
    // Directories are streamed (memory stays flat on large rings); other stores are read whole,
    // one at a time in argument order, and single element files together at the end.
    let mut directories = Vec::new();
    let mut others = Vec::new();
    for location in &args.stores {
        match stores::open(location, true) {
            Ok(opened) if opened.only.is_none() => match opened.naming {
                Naming::Directory(dir) => directories.push(dir),
                Naming::Location(_) => others.push(location.clone()),
            },
            // Single element files, and locations that fail to open (read_rings reports them).
            _ => others.push(location.clone()),
        }
    }
    let mut streamed = Vec::new();
    for dir in &directories {
        streamed.push(stream_directory(dir, &decryptors, material.concurrency, args.reveal).await);
    }
    let rings = stores::read_rings(&others).await?;
    let mut failed = false;
    let mut header = vec!["FILE", "KEY ID", "PROTECTION", "REVOKED", "STATUS"];
    if args.reveal {
        header.push("MASTER KEY");
    }
    header.push("ERROR");
    let mut table = Table::new(header);
    let mut row = |file: &str,
                   key: Option<KeyFacts>,
                   revoked: bool,
                   result: Result<Option<&MasterKey>, String>| {
        let protection = key.as_ref().map(|k| k.protection);
        let key_id = key.as_ref().map(|k| k.id.to_string());
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
                    Ok(Some(master)) if args.reveal => {
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
                    Ok(Some(m)) => m.to_base64().to_string(),
                    Ok(None) => "-".into(),
                    Err(_) => "-".into(),
                });
            }
            cells.push(result.err().unwrap_or_default());
            table.row(cells);
        }
    };
    for ring in streamed {
        let revocations: Vec<&Revocation> = ring.revocations.iter().collect();
        for (file, outcome) in ring.rows {
            match outcome {
                Streamed::Key { facts, result } => {
                    let revoked = facts.revoked_by(&revocations);
                    match result {
                        // Without --reveal the master key was not kept; the row needs none.
                        Ok(master) => row(&file, Some(facts), revoked, Ok(master.as_ref())),
                        Err(e) => {
                            failed = true;
                            crate::output::report(&file, &e);
                            row(&file, Some(facts), revoked, Err(e));
                        }
                    }
                }
                Streamed::Fragment(f) => eprintln!(
                    "dpwrap: {file}: skipped: a <{}> fragment ({}), not a key",
                    f.root, f.protection
                ),
                Streamed::Failed(e) => {
                    failed = true;
                    crate::output::report(&file, &e);
                    row(&file, None, false, Err(e));
                }
            }
        }
    }
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
                        Ok(m) => row(&item.file, Some(KeyFacts::of(key)), revoked, Ok(Some(m))),
                        Err(e) => {
                            failed = true;
                            crate::output::report(&item.file, &e.to_string());
                            row(
                                &item.file,
                                Some(KeyFacts::of(key)),
                                revoked,
                                Err(e.to_string()),
                            );
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
