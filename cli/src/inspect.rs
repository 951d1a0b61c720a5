//! `dpwrap inspect`: what a ring holds, read without any key material.

use std::path::PathBuf;

use dpwrap::key_file::{self, Loaded, RingElement};
use dpwrap::{Key, Revocation};
use serde_json::json;

use crate::output::{Table, json_line};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per key per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Key files or directories of key files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Everything found under the given paths, each with the path it came from.
pub fn load_paths(paths: &[PathBuf]) -> Vec<Loaded> {
    let mut loaded = Vec::new();
    for path in paths {
        if path.is_dir() {
            match key_file::read_directory(path) {
                Ok(entries) => loaded.extend(entries.into_iter().map(|mut l| {
                    l.source = path.join(&l.source).display().to_string();
                    l
                })),
                Err(e) => loaded.push(Loaded {
                    source: path.display().to_string(),
                    element: Err(e),
                }),
            }
        } else {
            loaded.push(Loaded {
                source: path.display().to_string(),
                element: key_file::read_file(path),
            });
        }
    }
    loaded
}

/// The revocation that revokes `key` among `revocations` (a single-key one first, else the latest
/// mass revocation).
pub fn revocation_for<'a>(key: &Key, revocations: &[&'a Revocation]) -> Option<&'a Revocation> {
    let single = revocations
        .iter()
        .copied()
        .find(|r| matches!(r.target(), key_file::RevocationTarget::Key(_)) && r.revokes(key));
    single.or_else(|| {
        revocations
            .iter()
            .copied()
            .filter(|r| {
                r.target() == key_file::RevocationTarget::AllCreatedBefore && r.revokes(key)
            })
            .max_by(|a, b| a.date().cmp(b.date()))
    })
}

/// The file at `source` recognised as a protected fragment, if it is one.
fn fragment(source: &str) -> Option<key_file::Fragment> {
    let element = key_file::read_element(std::path::Path::new(source)).ok()?;
    key_file::Fragment::recognise(&element)
}

pub async fn run(args: Args) -> u8 {
    let loaded = load_paths(&args.paths);
    let revocations: Vec<&Revocation> = loaded
        .iter()
        .filter_map(|l| match &l.element {
            Ok(RingElement::Revocation(r)) => Some(r),
            _ => None,
        })
        .collect();
    let mut failed = false;
    let mut table = Table::new(vec![
        "FILE",
        "KEY ID",
        "CREATED",
        "ACTIVATES",
        "EXPIRES",
        "ENCRYPTION",
        "VALIDATION",
        "PROTECTION",
        "REVOKED",
    ]);
    for l in &loaded {
        // A file that is not a ring element may still be a protected secret on its own.
        let fragment = if l.element.is_err() {
            fragment(&l.source)
        } else {
            None
        };
        match (&l.element, fragment) {
            (Ok(RingElement::Key(key)), _) => {
                let revocation = revocation_for(key, &revocations);
                if args.json {
                    json_line(&json!({
                        "file": l.source,
                        "kind": "key",
                        "key_id": key.id().to_string(),
                        "created": key.creation_date().as_str(),
                        "activates": key.activation_date().as_str(),
                        "expires": key.expiration_date().as_str(),
                        "encryption_algorithm": key.encryption_algorithm(),
                        "validation_algorithm": key.validation_algorithm(),
                        "protection": key.protection().as_str(),
                        "decryptor_type": key.decryptor_type().map(|t| t.as_str()),
                        "revoked": revocation.is_some(),
                        "revocation_reason": revocation.and_then(|r| r.reason()),
                    }));
                } else {
                    table.row(vec![
                        l.source.clone(),
                        key.id().to_string(),
                        key.creation_date().to_string(),
                        key.activation_date().to_string(),
                        key.expiration_date().to_string(),
                        key.encryption_algorithm().unwrap_or("-").to_owned(),
                        key.validation_algorithm().unwrap_or("-").to_owned(),
                        key.protection().to_string(),
                        match revocation {
                            Some(r) => format!("yes ({})", r.reason().unwrap_or("no reason given")),
                            None => "no".to_owned(),
                        },
                    ]);
                }
            }
            (Ok(RingElement::Revocation(_)), _) => {}
            (Err(_), Some(f)) => {
                if args.json {
                    json_line(&json!({
                        "file": l.source,
                        "kind": "fragment",
                        "root": f.root,
                        "protection": f.protection.as_str(),
                        "decryptor_type": f.decryptor_type.as_ref().map(|t| t.as_str()),
                    }));
                } else {
                    table.row(vec![
                        l.source.clone(),
                        format!("(<{}> fragment)", f.root),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        f.protection.to_string(),
                        "-".into(),
                    ]);
                }
            }
            (Err(e), None) => {
                failed = true;
                if args.json {
                    json_line(
                        &json!({ "file": l.source, "error": e.to_string(), "error_kind": e.kind().as_str() }),
                    );
                } else {
                    eprintln!("dpwrap: {}: {e}", l.source);
                }
            }
        }
    }
    if !args.json {
        table.print();
    }
    u8::from(failed)
}
