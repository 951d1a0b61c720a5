//! `dpwrap inspect`: what a ring holds, read without any key material.

use serde_json::json;

use crate::fail::Outcome;
use crate::output::{Table, json_line};
use crate::stores::{self, What};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per key per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Stores: directories, ring documents (.xml), single element files, redis://… URLs, or
    /// env:NAME naming any of these.
    #[arg(required = true, value_name = "STORE")]
    stores: Vec<String>,
}

pub async fn run(args: Args) -> Outcome<u8> {
    let rings = stores::read_rings(&args.stores).await?;
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
    for ring in &rings {
        let revocations = ring.revocations();
        for item in &ring.items {
            match &item.what {
                What::Key(key) => {
                    let revocation = stores::revocation_for(key, &revocations);
                    if args.json {
                        json_line(&json!({
                            "file": item.file,
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
                            item.file.clone(),
                            key.id().to_string(),
                            key.creation_date().to_string(),
                            key.activation_date().to_string(),
                            key.expiration_date().to_string(),
                            key.encryption_algorithm().unwrap_or("-").to_owned(),
                            key.validation_algorithm().unwrap_or("-").to_owned(),
                            key.protection().to_string(),
                            match revocation {
                                Some(r) => {
                                    format!("yes ({})", r.reason().unwrap_or("no reason given"))
                                }
                                None => "no".to_owned(),
                            },
                        ]);
                    }
                }
                What::Revocation(_) => {}
                What::Fragment(f) => {
                    if args.json {
                        json_line(&json!({
                            "file": item.file,
                            "kind": "fragment",
                            "root": f.root,
                            "protection": f.protection.as_str(),
                            "decryptor_type": f.decryptor_type.as_ref().map(|t| t.as_str()),
                        }));
                    } else {
                        table.row(vec![
                            item.file.clone(),
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
                What::Failed(e) => {
                    failed = true;
                    if args.json {
                        json_line(&json!({
                            "file": item.file,
                            "error": e.to_string(),
                            "error_kind": e.kind().as_str(),
                        }));
                    } else {
                        crate::output::report(&item.file, &e.to_string());
                    }
                }
            }
        }
    }
    if !args.json {
        table.print();
    }
    Ok(u8::from(failed))
}
