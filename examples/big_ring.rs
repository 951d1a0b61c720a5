//! Large certificate-protected rings, for measuring: writes one, and decrypts one with
//! `dpwrap::ring` (streaming, in parallel), reporting time and counts but never a secret.
//!
//! ```text
//! cargo run --release --example big_ring -- gen --out DIR --count N --cert C.pem [--transport rsa-1_5|oaep|mixed] [--manifest FILE]
//! cargo run --release --example big_ring -- decrypt --cert C.pem --key K.pem [--parallelism N] [--concurrency N] [--unordered] [--manifest FILE] DIR
//! cargo run --release --example big_ring -- speed --cert C.pem --key K.pem [--seconds S] [--transport rsa-1_5|oaep]
//! ```
//!
//! `speed` is `openssl speed` for one key: it decrypts one certificate-protected master key
//! (`EncryptedData` to `masterKey`, everything but file I/O) in a loop on one thread and prints
//! the rate, to set beside OpenSSL's RSA private-operation rate.
//!
//! `gen` writes `key-{id}.xml` files as ASP.NET lays them out (AES-256-CBC content, the
//! certificate in the `EncryptedKey`) and, with `--manifest`, one JSON line per key with its
//! master key, in the Mono peer's manifest format, so a sample can be checked with the peer's
//! `decrypt-key`. `decrypt` checks the master keys against such a manifest (the peer's own
//! `gen-ring` manifest too) when given one. It reads the directory lazily: memory stays flat whatever the count
//! (`/usr/bin/time -v` shows the peak).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::ring::{self, Outcome, RingOptions};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{
    Certificate, CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors,
    KeyTransport, MasterKey, NullXmlDecryptor,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen") => generate(&args[1..]),
        Some("decrypt") => decrypt(&args[1..]),
        Some("speed") => speed(&args[1..]),
        _ => Err("usage: big_ring gen|decrypt ... (see the source's header)".to_owned()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("big_ring: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` options and positional arguments.
struct Args {
    options: Vec<(String, String)>,
    flags: Vec<String>,
    positional: Vec<String>,
}

fn parse(args: &[String], flags: &[&str]) -> Args {
    let mut out = Args {
        options: Vec::new(),
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if flags.contains(&a.as_str()) {
            out.flags.push(a.clone());
        } else if let Some(name) = a.strip_prefix("--") {
            out.options
                .push((name.to_owned(), it.next().cloned().unwrap_or_default()));
        } else {
            out.positional.push(a.clone());
        }
    }
    out
}

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn number(&self, name: &str) -> Result<Option<usize>, String> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| format!("--{name}: not a number")))
            .transpose()
    }
}

fn generate(args: &[String]) -> Result<ExitCode, String> {
    let args = parse(args, &[]);
    let out = PathBuf::from(args.require("out")?);
    let count = args.number("count")?.unwrap_or(1000);
    let cert = Certificate::from_file(args.require("cert")?).map_err(|e| e.to_string())?;
    let transport = args.get("transport").unwrap_or("rsa-1_5");
    let encryptor = |t: KeyTransport| {
        CertificateXmlEncryptor::new(cert.clone())
            .map(|e| e.key_transport(t))
            .map_err(|e| e.to_string())
    };
    let rsa15 = encryptor(KeyTransport::Rsa15)?;
    let oaep = encryptor(KeyTransport::RsaOaep)?;
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut manifest = match args.get("manifest") {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..count {
        let use_oaep = match transport {
            "oaep" => true,
            "mixed" => i % 2 == 1,
            _ => false,
        };
        let key = NewKey::new(None, DEFAULT_LIFETIME).map_err(|e| e.to_string())?;
        let master = MasterKey::generate(64).map_err(|e| e.to_string())?;
        let element = rt
            .block_on(key.protect(&master, if use_oaep { &oaep } else { &rsa15 }))
            .map_err(|e| e.to_string())?;
        let file = format!("key-{}.xml", key.id);
        std::fs::write(
            out.join(&file),
            xml::to_bytes(&element, WriteOptions::KEY_FILE),
        )
        .map_err(|e| e.to_string())?;
        if let Some(m) = manifest.as_mut() {
            writeln!(
                m,
                r#"{{"file": "{file}", "kind": "key", "key_id": "{}", "master_key_b64": "{}", "key_transport": "{}"}}"#,
                key.id,
                master.to_base64().as_str(),
                if use_oaep { "rsa-oaep-mgf1p" } else { "rsa-1_5" }
            )
            .map_err(|e| e.to_string())?;
        }
    }
    if let Some(mut m) = manifest {
        m.flush().map_err(|e| e.to_string())?;
    }
    eprintln!(
        "wrote {count} keys to {} in {:.2?}",
        out.display(),
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

fn speed(args: &[String]) -> Result<ExitCode, String> {
    let args = parse(args, &[]);
    let cert = Arc::new(
        CertificateWithKey::from_pem_files(args.require("cert")?, args.require("key")?, None)
            .map_err(|e| e.to_string())?,
    );
    let seconds: f64 = args
        .get("seconds")
        .unwrap_or("3")
        .parse()
        .map_err(|_| "--seconds: not a number".to_owned())?;
    let (name, transport) = match args.get("transport").unwrap_or("rsa-1_5") {
        "oaep" => ("rsa-oaep-mgf1p", KeyTransport::RsaOaep),
        _ => ("rsa-1_5", KeyTransport::Rsa15),
    };
    let encryptor = CertificateXmlEncryptor::new(cert.certificate().clone())
        .map_err(|e| e.to_string())?
        .key_transport(transport);
    let master = MasterKey::generate(64).map_err(|e| e.to_string())?;
    let secret = xml::parse(
        format!(
            r#"<masterKey xmlns:p4="http://schemas.asp.net/2015/03/dataProtection" p4:requiresEncryption="true"><value>{}</value></masterKey>"#,
            master.to_base64().as_str()
        )
        .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let encrypted = rt
        .block_on(dpwrap::XmlEncryptor::encrypt(&encryptor, &secret))
        .map_err(|e| e.to_string())?
        .encrypted_element;
    let decryptor = CertificateXmlDecryptor::new([Arc::clone(&cert)]);
    let run = |duration: f64| -> Result<(u64, f64), String> {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed().as_secs_f64() < duration {
            decryptor
                .decrypt_encrypted_data(&encrypted)
                .map_err(|e| e.to_string())?;
            n += 1;
        }
        Ok((n, started.elapsed().as_secs_f64()))
    };
    run(0.3)?; // warm-up: first-use key import, caches
    let (n, elapsed) = run(seconds)?;
    println!(
        "certificate decrypt, {} bits, {name}: {n} in {elapsed:.2} s: {:.1} /s",
        cert.certificate()
            .public_key()
            .map(|k| k.size_bits())
            .unwrap_or(0),
        n as f64 / elapsed
    );
    Ok(ExitCode::SUCCESS)
}

/// Key id → master key (base64) from a manifest (JSON lines with `key_id` and `master_key_b64`).
fn read_manifest(path: &str) -> Result<std::collections::HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let field = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("\"{name}\": \""))? + name.len() + 5;
        let len = line.get(start..)?.find('"')?;
        line.get(start..start + len).map(str::to_owned)
    };
    Ok(text
        .lines()
        .filter_map(|l| Some((field(l, "key_id")?, field(l, "master_key_b64")?)))
        .collect())
}

fn decrypt(args: &[String]) -> Result<ExitCode, String> {
    let args = parse(args, &["--unordered"]);
    let cert =
        CertificateWithKey::from_pem_files(args.require("cert")?, args.require("key")?, None)
            .map_err(|e| e.to_string())?;
    let decryptors = Decryptors::new()
        .with(Arc::new(CertificateXmlDecryptor::new([Arc::new(cert)])))
        .with(Arc::new(NullXmlDecryptor));
    let mut options = match args.number("parallelism")? {
        Some(p) => RingOptions::with_parallelism(p),
        None => RingOptions::default(),
    };
    if let Some(c) = args.number("concurrency")? {
        options = options.concurrency(c);
    }
    if args.flags.iter().any(|f| f == "--unordered") {
        options = options.unordered();
    }
    let [dir] = args.positional.as_slice() else {
        return Err("one ring directory expected".to_owned());
    };
    let expected = match args.get("manifest") {
        Some(path) => Some(read_manifest(path)?),
        None => None,
    };
    let started = Instant::now();
    let (mut keys, mut revocations, mut failed) = (0usize, 0usize, 0usize);
    let sources = ring::directory(std::path::Path::new(dir)).map_err(|e| e.to_string())?;
    for d in ring::decrypt(sources, &decryptors, &options) {
        match &d.outcome {
            Outcome::Key {
                key,
                master_key: Ok(m),
            } => {
                keys += 1;
                if let Some(expected) = &expected {
                    let id = key.id().to_string();
                    if expected.get(&id).map(String::as_str) != Some(m.to_base64().as_str()) {
                        failed += 1;
                        eprintln!("{}: the master key is not the manifest's", d.name);
                    }
                }
            }
            Outcome::Revocation(_) => revocations += 1,
            Outcome::Key {
                master_key: Err(e), ..
            }
            | Outcome::Unreadable(e) => {
                failed += 1;
                eprintln!("{}: {e}", d.name);
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{keys} keys decrypted, {revocations} revocations, {failed} failed in {:.1} ms ({:.0} keys/s; parallelism {}, concurrency {})",
        elapsed.as_secs_f64() * 1000.0,
        keys as f64 / elapsed.as_secs_f64(),
        options.parallelism,
        options.concurrency
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
