//! `dpwrap cert new`: a self-signed RSA certificate for protecting key rings, as PEM files and,
//! when a password is given, an AES-256 PFX.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use dpwrap::CertificateWithKey;
use serde_json::json;

use crate::fail::{Fail, Outcome};
use crate::key_material::{PasswordSource, io_reason};
use crate::output::json_line;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subject: CN=My App,O=Contoso, or a bare common name.
    #[arg(long, value_name = "CN=...")]
    subject: String,
    /// The RSA key size.
    #[arg(long, default_value = "2048", value_parser = ["2048", "3072", "4096"])]
    bits: String,
    /// Validity from now, in days.
    #[arg(long, value_name = "N", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Where to write NAME.cert.pem, NAME.key.pem (PKCS#8, mode 0600) and NAME.pfx.
    #[arg(long = "out-dir", value_name = "D")]
    out_dir: PathBuf,
    /// The file name stem (default: the common name, with characters other than letters,
    /// digits, '-', '_' and '.' replaced by '-').
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Write NAME.pfx (AES-256, PBES2), encrypted with the password in environment variable VAR.
    /// Without a PFX password option no PFX is written.
    #[arg(long = "pfx-password-env", value_name = "VAR")]
    pfx_password_env: Option<String>,
    /// As --pfx-password-env, with the password read from file F.
    #[arg(
        long = "pfx-password-file",
        value_name = "F",
        conflicts_with = "pfx_password_env"
    )]
    pfx_password_file: Option<PathBuf>,
    /// Print a JSON object (thumbprint, subject, files) instead of the thumbprint alone.
    #[arg(long)]
    json: bool,
}

fn stem_of(subject: &str) -> String {
    let cn = subject
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("CN=").or_else(|| p.strip_prefix("cn=")))
        .unwrap_or(subject);
    let stem: String = cn
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches(['-', '.']).to_owned();
    if stem.is_empty() {
        "certificate".to_owned()
    } else {
        stem
    }
}

/// Creates `path` (never overwriting), with `mode` on Unix, and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Outcome<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let fail = |e: std::io::Error| Fail::run(format!("{}: {}", path.display(), io_reason(&e)));
    let mut f = options.open(path).map_err(fail)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| {
        // The file is ours (create_new): a half-written private key must not stay behind.
        drop(f);
        let _ = std::fs::remove_file(path);
        fail(e)
    })
}

pub async fn run(args: Args) -> Outcome<u8> {
    let password = match (&args.pfx_password_env, &args.pfx_password_file) {
        (Some(var), _) => Some(
            PasswordSource::Env(var.clone())
                .read()
                .map_err(|e| fix_option(e, "--pfx-password-env"))?,
        ),
        (None, Some(file)) => Some(
            PasswordSource::File(file.clone())
                .read()
                .map_err(|e| fix_option(e, "--pfx-password-file"))?,
        ),
        (None, None) => None,
    };
    let stem = args.name.clone().unwrap_or_else(|| stem_of(&args.subject));
    if stem.contains(['/', '\\']) || stem.starts_with('.') || stem.is_empty() {
        return Err(Fail::usage(format!(
            "--name '{stem}' must be a plain file name stem"
        )));
    }
    let bits: usize = args
        .bits
        .parse()
        .map_err(|_| Fail::usage("--bits must be 2048, 3072 or 4096"))?;
    let cert_path = args.out_dir.join(format!("{stem}.cert.pem"));
    let key_path = args.out_dir.join(format!("{stem}.key.pem"));
    let pfx_path = args.out_dir.join(format!("{stem}.pfx"));
    let mut paths = vec![cert_path.clone(), key_path.clone()];
    if password.is_some() {
        paths.push(pfx_path.clone());
    }
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(Fail::run(format!(
            "{} already exists; nothing was written (choose another --name or --out-dir)",
            existing.display()
        )));
    }

    let generated = CertificateWithKey::generate_self_signed(&args.subject, bits, args.days)
        .map_err(|e| {
            if e.kind() == dpwrap::ErrorKind::Config {
                Fail::usage(e.to_string())
            } else {
                Fail::from(e)
            }
        })?;
    let cert_pem = generated.to_pem_certificate();
    let key_pem = generated.to_pem_private_key()?;
    let pfx = match &password {
        Some(p) => Some(zeroize::Zeroizing::new(generated.to_pkcs12(p)?)),
        None => None,
    };

    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| Fail::run(format!("{}: {}", args.out_dir.display(), io_reason(&e))))?;
    let mut files: Vec<(&Path, &[u8], u32)> = vec![
        (&cert_path, cert_pem.as_bytes(), 0o644),
        (&key_path, key_pem.as_bytes(), 0o600),
    ];
    if let Some(pfx) = &pfx {
        files.push((&pfx_path, pfx.as_slice(), 0o600));
    }
    let mut written: Vec<&Path> = Vec::new();
    for (path, bytes, mode) in files {
        if let Err(e) = write_new(path, bytes, mode) {
            for p in written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.note("nothing was written"));
        }
        written.push(path);
    }

    let thumbprint = generated.thumbprint();
    if args.json {
        json_line(&json!({
            "thumbprint": thumbprint,
            "subject": generated.certificate().subject(),
            "cert": cert_path.display().to_string(),
            "key": key_path.display().to_string(),
            "pfx": password.as_ref().map(|_| pfx_path.display().to_string()),
        }));
    } else {
        println!("{thumbprint}");
    }
    eprintln!("dpwrap: wrote {}", cert_path.display());
    eprintln!("dpwrap: wrote {} (keep it secret)", key_path.display());
    if password.is_some() {
        eprintln!("dpwrap: wrote {}", pfx_path.display());
    } else {
        eprintln!(
            "dpwrap: no PFX written (give --pfx-password-env VAR or --pfx-password-file F for one)"
        );
    }
    Ok(0)
}

/// Names the option the user actually gave in a password error.
fn fix_option(e: Fail, option: &str) -> Fail {
    match e {
        Fail::Usage(m) => Fail::Usage(
            m.replace("--password-env", option)
                .replace("--password-file", option),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem_of("CN=My App,O=Contoso"), "My-App");
        assert_eq!(stem_of("dataprotection"), "dataprotection");
        assert_eq!(stem_of("CN=../x"), "x");
        assert_eq!(stem_of("CN=***"), "certificate");
    }
}
