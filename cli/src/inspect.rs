//! `dpwrap inspect`: what a ring holds, read without any key material.

use dpwrap::Key;
use dpwrap::authentication::{AuthenticationStatus, KeyProof};
use serde_json::json;

use crate::authentication::{Trust, TrustArgs, carries_proof};
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
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    connection: stores::ConnectionArgs,
}

/// What `inspect` says about a key's proof: verified against the trusted certificates when some
/// were given, else only whether it carries one (a malformed proof is invalid either way).
enum Seen {
    Checked(AuthenticationStatus),
    Signed(String),
    Unsigned,
    Malformed,
}

impl Seen {
    fn of(key: &Key, trust: &Trust) -> Seen {
        if trust.verifies() {
            return Seen::Checked(trust.status(key));
        }
        match KeyProof::of(key.element()) {
            Ok(Some(p)) => Seen::Signed(p.signer),
            Ok(None) => Seen::Unsigned,
            Err(_) => Seen::Malformed,
        }
    }

    /// The JSON value.
    fn as_str(&self) -> &'static str {
        match self {
            Seen::Checked(s) => s.as_str(),
            Seen::Signed(_) => "signed",
            Seen::Unsigned => "unsigned",
            Seen::Malformed => "invalid",
        }
    }

    /// The table cell.
    fn cell(&self) -> String {
        match self {
            Seen::Checked(s) => s.as_str().to_owned(),
            Seen::Signed(_) => "signed (not verified)".to_owned(),
            other => other.as_str().to_owned(),
        }
    }

    /// Who signed, when the key says.
    fn signer(&self) -> Option<&str> {
        match self {
            Seen::Checked(AuthenticationStatus::Verified(s))
            | Seen::Checked(AuthenticationStatus::UntrustedSigner(s))
            | Seen::Signed(s) => Some(s),
            _ => None,
        }
    }

    /// The status the policy applies to.
    fn status(&self) -> AuthenticationStatus {
        match self {
            Seen::Checked(s) => s.clone(),
            Seen::Malformed => AuthenticationStatus::Invalid,
            // Without trusted signers nothing is required (Trust::new refuses that combination).
            Seen::Signed(s) => AuthenticationStatus::UntrustedSigner(s.clone()),
            Seen::Unsigned => AuthenticationStatus::Unsigned,
        }
    }
}

pub async fn run(args: Args) -> Outcome<u8> {
    let mut vaults = crate::vault::Vaults::new(&args.connection)?;
    let mut trust = Trust::new(&args.trust, &[], &mut vaults).await?;
    let settings = stores::Settings::new(&args.connection)?;
    let rings = stores::read_rings(&args.stores, &settings).await?;
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
        "AUTHENTICATION",
    ]);
    for ring in &rings {
        let revocations = ring.revocations();
        let ring_signed = ring.items.iter().any(|i| match &i.what {
            What::Key(k) => carries_proof(k),
            _ => false,
        });
        for item in &ring.items {
            match &item.what {
                What::Key(key) => {
                    let revocation = stores::revocation_for(key, &revocations);
                    let seen = Seen::of(key, &trust);
                    let verdict = trust.check(&seen.status(), key);
                    match &verdict {
                        Ok(()) if trust.verifies() => {
                            trust.warn(&seen.status(), key.id(), ring_signed, &item.file);
                        }
                        Ok(()) => {}
                        Err(e) => {
                            failed = true;
                            crate::output::report(&item.file, &e.to_string());
                        }
                    }
                    if args.json {
                        let mut value = json!({
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
                            "authentication": seen.as_str(),
                            "signer": seen.signer(),
                        });
                        if let (Err(e), Some(map)) = (&verdict, value.as_object_mut()) {
                            map.insert("error".into(), json!(e.to_string()));
                            map.insert("error_kind".into(), json!(e.kind().as_str()));
                        }
                        json_line(&value);
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
                            seen.cell(),
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
