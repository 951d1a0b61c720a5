//! `dpwrap rewrap`: decrypt every key of a store with the old material and protect it with the
//! new, in place or into another store.

use clap::ArgMatches;

use crate::authentication::{SignArgs, signer};
use crate::fail::Outcome;
use crate::key_material::{KeyMaterial, KeyMaterialArgs};
use crate::reprotect::{Reprotector, in_place, to_store};
use crate::stores;
use crate::target::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to re-wrap.
    #[arg(value_name = "SRC")]
    src: String,
    /// Append the re-protected ring to this store instead (SRC stays untouched; keys already
    /// there are skipped; revocations are copied as they are).
    #[arg(long, value_name = "DEST")]
    out: Option<String>,
    /// List what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Leave keys protected with Windows DPAPI or DPAPI-NG as they are, with a warning each (only
    /// Windows can decrypt them). Without it such a key stops the run before anything is written.
    #[arg(long)]
    leave_windows_only: bool,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sign: SignArgs,
    #[command(flatten)]
    write: stores::StoreWriteArgs,
    #[command(flatten)]
    material: KeyMaterialArgs,
}

pub async fn run(args: Args, matches: &ArgMatches) -> Outcome<u8> {
    let mut material = KeyMaterial::load(&args.material, matches)?;
    let target = args.target.build(matches, &mut material, true)?;
    let signer = signer(&args.sign, &mut material).await?;
    let reprotector = Reprotector {
        read: material.decryptors(),
        target,
        only_unprotected: false,
        leave_windows_only: args.leave_windows_only,
        concurrency: material.concurrency,
        signer,
    };
    let settings = stores::Settings::new(&args.material.connection)?.writing(&args.write)?;
    let src_settings = if args.out.is_some() {
        settings.reading()
    } else {
        settings.clone()
    };
    let src = stores::open(&args.src, true, &src_settings)?;
    let verb = if args.dry_run {
        "would rewrap"
    } else {
        "rewrapped"
    };
    match &args.out {
        None => {
            let s = in_place(&src, &reprotector, args.dry_run, ("rewrap", "rewrapped"))
                .await
                .map_err(|e| e.note("nothing was written"))?;
            eprintln!(
                "dpwrap: {}: {verb} {} key(s), {} element(s) left as they were",
                src.naming.store(),
                s.reprotected,
                s.left
            );
        }
        Some(out) => {
            let dest = stores::open(out, false, &settings)?;
            dest.require_whole(out, "rewrap --out")?;
            let s = to_store(&src, &dest, &reprotector, args.dry_run)
                .await
                .map_err(|e| e.note("nothing was written"))?;
            let copy = if args.dry_run { "would copy" } else { "copied" };
            eprintln!(
                "dpwrap: {}: {verb} {} key(s), {copy} {} element(s) as they were, skipped {} already there",
                dest.naming.store(),
                s.reprotected,
                s.copied,
                s.skipped
            );
        }
    }
    Ok(0)
}
