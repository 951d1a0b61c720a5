//! `dpwrap revoke`: a revocation element as .NET's key manager writes it.

use dpwrap::key_file::{RevocationTarget, RingElement};
use dpwrap::store::Addition;
use dpwrap::{Revocation, Timestamp};

use crate::dates::parse_date;
use crate::fail::{Fail, Outcome};
use crate::stores;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store.
    #[arg(value_name = "STORE")]
    store: String,
    /// The key to revoke.
    #[arg(value_name = "KEY_ID")]
    key_id: Option<String>,
    /// Revoke every key created before DATE (a mass revocation dated DATE).
    #[arg(long, value_name = "DATE", conflicts_with = "key_id")]
    all_before: Option<String>,
    /// Why (stored in the revocation).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    write: stores::StoreWriteArgs,
    #[command(flatten)]
    connection: stores::ConnectionArgs,
}

pub async fn run(args: Args) -> Outcome<u8> {
    let revocation = match (&args.key_id, &args.all_before) {
        (Some(id), None) => {
            let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                Fail::usage(format!(
                    "'{}' is not a key id (a GUID such as 0f8a1c2e-1111-2222-3333-444455556666)",
                    id.chars().take(60).collect::<String>()
                ))
            })?;
            Revocation::for_key(id, Timestamp::now(), args.reason.clone())
        }
        (None, Some(date)) => {
            Revocation::all_created_before(parse_date("--all-before", date)?, args.reason.clone())
        }
        _ => return Err(Fail::usage("give either KEY_ID or --all-before DATE")),
    };
    let settings = stores::Settings::new(&args.connection)?.writing(&args.write)?;
    let opened = stores::open(&args.store, true, &settings)?;
    opened.require_whole(&args.store, "revoke")?;
    let store_name = opened.naming.store();
    if let RevocationTarget::Key(id) = revocation.target() {
        let loaded = opened
            .store
            .load()
            .await
            .map_err(|e| Fail::from(e).context(&store_name))?;
        let mut found = false;
        for s in &loaded {
            match s.parse() {
                Ok(RingElement::Key(k)) if k.id() == id => found = true,
                Ok(RingElement::Revocation(r)) if r.target() == RevocationTarget::Key(id) => {
                    eprintln!(
                        "dpwrap: {store_name}: key {id} is already revoked ({}); nothing was written",
                        r.reason().unwrap_or("no reason given")
                    );
                    return Ok(0);
                }
                _ => {}
            }
        }
        if !found {
            return Err(Fail::run(format!(
                "{store_name}: no key {id} in this ring; nothing was written"
            )));
        }
    }
    let addition = Addition::new(revocation.to_element(), revocation.friendly_name());
    opened
        .store
        .append(std::slice::from_ref(&addition))
        .await
        .map_err(|e| {
            Fail::from(e)
                .context(&store_name)
                .note("nothing was written")
        })?;
    println!("{}", addition.friendly_name);
    Ok(0)
}
