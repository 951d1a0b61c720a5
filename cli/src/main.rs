//! `dpwrap`: inspect, decrypt, protect, re-wrap and move ASP.NET Core Data Protection key rings.
//!
//! Exit codes: 0 when everything succeeded, 1 when any key, file or store failed (each failure is
//! reported on stderr; nothing is written by a command that failed), 2 on usage errors.

#![forbid(unsafe_code)]

mod cert_new;
mod copy;
mod dates;
mod decrypt;
mod fail;
mod inspect;
mod key_material;
mod key_new;
mod output;
mod protect;
mod reprotect;
mod revoke;
mod rewrap;
mod stores;
mod target;
mod vault;

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::fail::Outcome;

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
    /// Decrypt every key with the given key material; report each key (master keys only with
    /// --reveal).
    Decrypt(decrypt::Args),
    /// Protect the unprotected and null-protected keys of stores in place.
    Protect(protect::Args),
    /// Re-protect every key of a store with a new protection, in place or into another store.
    Rewrap(rewrap::Args),
    /// Append to DEST every element of SRC that DEST lacks, unchanged.
    Copy(copy::Args),
    /// Keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Revoke one key, or every key created before a date.
    Revoke(revoke::Args),
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a key as .NET's key manager does, protect it and add it to a store; prints its id.
    New(key_new::Args),
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Create a self-signed RSA certificate for protecting key rings; prints its thumbprint.
    New(cert_new::Args),
}

/// The matches of the innermost subcommand (where the options are).
fn leaf(matches: &ArgMatches) -> &ArgMatches {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m
}

async fn run(command: Command, matches: &ArgMatches) -> Outcome<u8> {
    match command {
        Command::Inspect(args) => inspect::run(args).await,
        Command::Decrypt(args) => decrypt::run(args, matches).await,
        Command::Protect(args) => protect::run(args, matches).await,
        Command::Rewrap(args) => rewrap::run(args, matches).await,
        Command::Copy(args) => copy::run(args).await,
        Command::Key(KeyCommand::New(args)) => key_new::run(args, matches).await,
        Command::Revoke(args) => revoke::run(args).await,
        Command::Cert(CertCommand::New(args)) => cert_new::run(args).await,
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
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
    let status = runtime.block_on(run(cli.command, leaf(&matches)));
    ExitCode::from(match status {
        Ok(code) => code,
        Err(fail) => {
            fail.report();
            fail.status()
        }
    })
}
