//! `dpwrap decrypt`: decrypt every key of the given stores with the given key material and say,
//! per key, whether it decrypted. Master keys are printed only with `--reveal`.

use base64::Engine as _;
use clap::ArgMatches;
use std::path::Path;

use dpwrap::key_file::{self, RevocationTarget};
use dpwrap::{Decryptors, Key, MasterKey, Revocation};
use serde_json::json;

use dpwrap::authentication::AuthenticationStatus;

use crate::authentication::{Trust, TrustArgs, carries_proof};
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
    trust: TrustArgs,
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
    trust: &Trust,
) -> Vec<dpwrap::Result<MasterKey>> {
    use dpwrap::ring::{self, Source};
    let sources = keys
        .iter()
        .map(|k| Source::element(String::new(), k.element().clone()));
    let options = ring_options(concurrency, trust);
    let mut stream = ring::decrypt(sources, decryptors, &options);
    let mut results = Vec::with_capacity(keys.len());
    while let Some(d) = stream.next_async().await {
        results.push(d.into_master_key());
    }
    results
}

/// `--concurrency` bounds the keys in flight (what matters for Key Vault); it is raised to the
/// number of cores so that certificate decryption uses them all. Every key's proof is checked on
/// the workers before it is decrypted: a refused key never reaches a private key or the vault.
fn ring_options(concurrency: usize, trust: &Trust) -> dpwrap::ring::RingOptions {
    let options = dpwrap::ring::RingOptions::default();
    let parallelism = options.parallelism;
    options
        .concurrency(concurrency.max(parallelism).max(1))
        .gate(trust.gate())
}

/// What a row says about its key.
struct KeyFacts {
    id: uuid::Uuid,
    creation: dpwrap::Timestamp,
    protection: &'static str,
    authentication: AuthenticationStatus,
    signed: bool,
}

impl KeyFacts {
    fn of(key: &Key, trust: &Trust) -> KeyFacts {
        KeyFacts {
            id: key.id(),
            creation: key.creation_date().clone(),
            protection: key.protection().as_str(),
            authentication: trust.status(key),
            signed: carries_proof(key),
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
        /// The master key (kept only for `--reveal`), or the error.
        result: Result<Option<MasterKey>, dpwrap::Error>,
    },
    Fragment(dpwrap::key_file::Fragment),
    Failed(dpwrap::Error),
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
    trust: &Trust,
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
            out.rows.push((naming.store(), Streamed::Failed(e)));
            return out;
        }
    };
    let options = ring_options(concurrency, trust);
    let mut stream = ring::decrypt(sources, decryptors, &options);
    while let Some(d) = stream.next_async().await {
        let file = naming.of(&d.name);
        let row = match d.outcome {
            RingOutcome::Key { key, master_key } => Streamed::Key {
                facts: KeyFacts::of(&key, trust),
                result: master_key.map(|m| reveal.then_some(m)),
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
                _ => Streamed::Failed(e),
            },
        };
        out.rows.push((file, row));
    }
    out
}

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let mut material = KeyMaterial::load(&args.material, matches)?;
    let mut trust = Trust::new(&args.trust, &material.certificates, &mut material.vaults).await?;
    let decryptors = material.decryptors();
    let settings = stores::Settings::new(&args.material.connection)?;
    // Directories are streamed (memory stays flat on large rings); other stores are read whole,
    // one at a time in argument order, and single element files together at the end.
    let mut directories = Vec::new();
    let mut others = Vec::new();
    for location in &args.stores {
        match stores::open(location, true, &settings) {
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
        streamed.push(
            stream_directory(dir, &decryptors, material.concurrency, args.reveal, &trust).await,
        );
    }
    let rings = stores::read_rings(&others, &settings).await?;
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
                   key: Option<&KeyFacts>,
                   revoked: bool,
                   result: Result<Option<&MasterKey>, &dpwrap::Error>| {
        let protection = key.map(|k| k.protection);
        let key_id = key.map(|k| k.id.to_string());
        let authentication = key.map(|k| k.authentication.as_str());
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
                    Ok(Some(master)) if args.reveal => {
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
                    Ok(Some(m)) => m.to_base64().to_string(),
                    Ok(None) | Err(_) => "-".into(),
                });
            }
            cells.push(result.err().map(|e| e.to_string()).unwrap_or_default());
            table.row(cells);
        }
    };
    // Warnings about keys accepted without being verified come after the rows: whether a
    // directory holds signed keys is known only once it has been read through.
    let mut unverified: Vec<(AuthenticationStatus, uuid::Uuid, bool, String)> = Vec::new();
    for ring in streamed {
        let revocations: Vec<&Revocation> = ring.revocations.iter().collect();
        let ring_signed = ring
            .rows
            .iter()
            .any(|(_, r)| matches!(r, Streamed::Key { facts, .. } if facts.signed));
        for (file, outcome) in ring.rows {
            match outcome {
                Streamed::Key { facts, result } => {
                    let revoked = facts.revoked_by(&revocations);
                    match result {
                        // Without --reveal the master key was not kept; the row needs none.
                        Ok(master) => {
                            unverified.push((
                                facts.authentication.clone(),
                                facts.id,
                                ring_signed,
                                file.clone(),
                            ));
                            row(&file, Some(&facts), revoked, Ok(master.as_ref()));
                        }
                        Err(e) => {
                            failed = true;
                            crate::output::report(&file, &e.to_string());
                            row(&file, Some(&facts), revoked, Err(&e));
                        }
                    }
                }
                Streamed::Fragment(f) => eprintln!(
                    "dpwrap: {file}: skipped: a <{}> fragment ({}), not a key",
                    f.root, f.protection
                ),
                Streamed::Failed(e) => {
                    failed = true;
                    crate::output::report(&file, &e.to_string());
                    row(&file, None, false, Err(&e));
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
        let ring_signed = keys.iter().any(|k| carries_proof(k));
        let mut results = decrypt_keys(&keys, &decryptors, material.concurrency, &trust)
            .await
            .into_iter();
        for item in &ring.items {
            match &item.what {
                What::Key(key) => {
                    let revoked = stores::revocation_for(key, &revocations).is_some();
                    let facts = KeyFacts::of(key, &trust);
                    let result = results.next().unwrap_or_else(|| {
                        Err(dpwrap::Error::new(
                            dpwrap::ErrorKind::Cancelled,
                            "the key was not decrypted",
                        ))
                    });
                    match &result {
                        Ok(m) => {
                            unverified.push((
                                facts.authentication.clone(),
                                facts.id,
                                ring_signed,
                                item.file.clone(),
                            ));
                            row(&item.file, Some(&facts), revoked, Ok(Some(m)));
                        }
                        Err(e) => {
                            failed = true;
                            crate::output::report(&item.file, &e.to_string());
                            row(&item.file, Some(&facts), revoked, Err(e));
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
                    row(&item.file, None, false, Err(e));
                }
            }
        }
    }
    if !args.json {
        table.print();
    }
    for (status, id, ring_signed, file) in unverified {
        trust.warn(&status, id, ring_signed, &file);
    }
    Ok(u8::from(failed))
}
