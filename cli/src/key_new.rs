//! `dpwrap key new`: a new key exactly as .NET's key manager writes it, protected with the target
//! and appended to a store.

use clap::ArgMatches;
use dpwrap::MasterKey;
use dpwrap::new_key::{MASTER_KEY_LEN, NewKey};
use dpwrap::store::Addition;
use serde_json::json;

use crate::authentication::{SignArgs, signer};
use crate::dates::{parse_date, parse_lifetime};
use crate::fail::{Fail, Outcome};
use crate::key_material::{KeyMaterial, KeyMaterialArgs};
use crate::output::json_line;
use crate::stores;
use crate::target::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to add the key to (created when absent).
    #[arg(value_name = "STORE")]
    store: String,
    #[command(flatten)]
    target: TargetArgs,
    /// When the key becomes the default key (default: now).
    #[arg(long, value_name = "DATE")]
    activation: Option<String>,
    /// How long after its activation the key expires: 90d, 12h, 2w.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    lifetime: String,
    /// Print {"key_id": …, "file": …} instead of the id alone.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sign: SignArgs,
    #[command(flatten)]
    write: stores::StoreWriteArgs,
    #[command(flatten)]
    material: KeyMaterialArgs,
}

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let activation = match &args.activation {
        Some(d) => Some(parse_date("--activation", d)?),
        None => None,
    };
    let lifetime = parse_lifetime(&args.lifetime)?;
    let mut material = KeyMaterial::load(&args.material, matches)?;
    let target = args.target.build(matches, &mut material, false)?;
    let signer = signer(&args.sign, &mut material).await?;
    let settings = stores::Settings::new(&args.material.connection)?.writing(&args.write)?;
    let opened = stores::open(&args.store, false, &settings)?;
    opened.require_whole(&args.store, "key new")?;
    let key = NewKey::new(activation, lifetime)?;
    let master = MasterKey::generate(MASTER_KEY_LEN)?;
    let mut element = key.protect(&master, target.encryptor()).await?;
    if let Some(signer) = &signer {
        signer.sign(&mut element).await?;
    }
    // Verified with whatever private material the target has: all of it for Key Vault and local
    // KEKs, the certificates whose private keys were given.
    target.verify(&element, &master).await?;
    if !target.verifiable() {
        eprintln!(
            "dpwrap: note: the new key was not verified to decrypt: no private key was given for the {}",
            target.description
        );
    }
    let addition = Addition::named_as_dotnet(element)?;
    let name = format!("{}.xml", addition.friendly_name);
    opened
        .store
        .append(std::slice::from_ref(&addition))
        .await
        .map_err(|e| {
            Fail::from(e)
                .context(opened.naming.store())
                .note("nothing was written")
        })?;
    let file = match &opened.naming {
        stores::Naming::Directory(_) => opened.naming.of(&name),
        stores::Naming::Location(_) => opened.naming.of(&addition.friendly_name),
    };
    if args.json {
        json_line(&json!({ "key_id": key.id.to_string(), "file": file }));
    } else {
        println!("{}", key.id);
    }
    Ok(0)
}
