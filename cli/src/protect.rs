//! `dpwrap protect`: protect the unprotected (`none`) and null-protected keys of stores in place.

use clap::ArgMatches;

use crate::authentication::{SignArgs, signer};
use crate::fail::{Fail, Outcome};
use crate::key_material::{KeyMaterial, KeyMaterialArgs};
use crate::reprotect::{Reprotector, in_place};
use crate::stores;
use crate::target::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// List what would be protected; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    sign: SignArgs,
    #[command(flatten)]
    write: stores::StoreWriteArgs,
    #[command(flatten)]
    material: KeyMaterialArgs,
    /// Stores (or single key files) whose unprotected keys are protected in place.
    #[arg(required = true, value_name = "STORE")]
    stores: Vec<String>,
}

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let mut material = KeyMaterial::load(&args.material, matches)?;
    let target = args.target.build(matches, &mut material, true)?;
    let signer = signer(&args.sign, &mut material).await?;
    let reprotector = Reprotector {
        read: material.decryptors(),
        target,
        only_unprotected: true,
        leave_windows_only: false,
        concurrency: material.concurrency,
        signer,
    };
    let settings = stores::Settings::new(&args.material.connection)?.writing(&args.write)?;
    let mut failed = false;
    for location in &args.stores {
        let result = match stores::open(location, true, &settings) {
            Ok(opened) => in_place(
                &opened,
                &reprotector,
                args.dry_run,
                ("protect", "protected"),
            )
            .await
            .map(|s| (s, opened.naming.store())),
            Err(e) => Err(e),
        };
        match result {
            Ok((s, name)) => {
                let verb = if args.dry_run {
                    "would protect"
                } else {
                    "protected"
                };
                eprintln!(
                    "dpwrap: {name}: {verb} {} key(s), {} element(s) left as they were",
                    s.reprotected, s.left
                );
            }
            Err(Fail::Usage(m)) => return Err(Fail::Usage(m)),
            Err(e) => {
                failed = true;
                e.note("nothing was written to this store").report();
            }
        }
    }
    Ok(u8::from(failed))
}
