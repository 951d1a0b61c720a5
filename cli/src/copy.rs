//! `dpwrap copy`: append to DEST every element of SRC that DEST lacks, unchanged.

use crate::fail::{Fail, Outcome};
use crate::stores;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to copy from.
    #[arg(value_name = "SRC")]
    src: String,
    /// The store to copy into (created when absent).
    #[arg(value_name = "DEST")]
    dest: String,
    /// List what would be added; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: Args) -> Outcome<u8> {
    let src = stores::open(&args.src, true)?;
    let dest = stores::open(&args.dest, false)?;
    if src.only.is_some() || dest.only.is_some() {
        return Err(Fail::usage(
            "copy works on whole stores: give directories, ring documents or store URLs",
        ));
    }
    let report = dpwrap::store::copy::copy(src.store.as_ref(), dest.store.as_ref(), args.dry_run)
        .await
        .map_err(|e| Fail::from(e).note("nothing was written"))?;
    let verb = if args.dry_run { "would add" } else { "added" };
    let dest_name = dest.naming.store();
    for name in &report.added {
        println!("{verb} {name} to {dest_name}");
    }
    eprintln!(
        "dpwrap: {dest_name}: {verb} {} element(s); {} already there",
        report.added.len(),
        report.already_present
    );
    Ok(0)
}
