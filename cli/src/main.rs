//! `dpwrap`: inspect, decrypt, protect, re-wrap and move ASP.NET Core Data Protection key rings.
//!
//! Exit codes: 0 when everything succeeded, 1 when any key or file failed (each failure is
//! reported, the rest still processed), 2 on usage errors.

#![forbid(unsafe_code)]

mod inspect;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect, decrypt, protect, re-wrap and move ASP.NET Core Data Protection key rings.
#[derive(Debug, Parser)]
#[command(name = "dpwrap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the keys of a ring without decrypting anything: ids, dates, algorithms, protection,
    /// revocation. Never prints a secret.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dpwrap: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let status = runtime.block_on(async {
        match cli.command {
            Command::Inspect(args) => inspect::run(args).await,
        }
    });
    ExitCode::from(status)
}
