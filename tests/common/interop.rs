//! Finding the independent peers (the Mono program running .NET's EncryptedXml, xmlsec1, servers)
//! and the skip-or-fail rule: absent tools skip locally with a printed `SKIPPED:` line, but fail
//! when `DPWRAP_INTEROP=require` (as CI sets it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether interop tests must run (CI).
pub fn required() -> bool {
    std::env::var("DPWRAP_INTEROP").is_ok_and(|v| v == "require")
}

/// Skips (printing why) or, under `DPWRAP_INTEROP=require`, fails the test.
pub fn skip(why: &str) {
    if required() {
        panic!("DPWRAP_INTEROP=require, but {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether `program` runs (`program --version` or similar succeeds to start).
pub fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

/// The Mono peer (`dpkeys.exe`), found through `DPWRAP_PEER`, or `target/peer/dpkeys.exe` (where
/// `.ci/run` builds it). `None` (after [`skip`]) when it or mono is missing.
pub fn peer() -> Option<Peer> {
    let exe = std::env::var_os("DPWRAP_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo().join("target/peer/dpkeys.exe"));
    if !exe.is_file() {
        skip(&format!(
            "the Mono peer is not built at {} (run ../shared/peers/dotnet-peer/build.sh target/peer, or set DPWRAP_PEER)",
            exe.display()
        ));
        return None;
    }
    if !have("mono") {
        skip("mono is not installed (../shared/peers/dotnet-peer/build.sh installs it)");
        return None;
    }
    Some(Peer { exe })
}

/// xmlsec1, when installed.
pub fn xmlsec1() -> Option<PathBuf> {
    if have("xmlsec1") {
        Some(PathBuf::from("xmlsec1"))
    } else {
        skip("xmlsec1 is not installed (apt-get install xmlsec1)");
        None
    }
}

/// The Mono peer.
pub struct Peer {
    exe: PathBuf,
}

impl Peer {
    /// Runs `mono dpkeys.exe ARGS`, returning its output (whatever the exit status).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new("mono")
            .arg(&self.exe)
            .args(args)
            .output()
            .expect("mono runs")
    }

    /// Runs the peer and panics with its stderr unless it succeeds; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "peer failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// `gen-cert --out DIR --bits BITS --password PW --name NAME`: certificate material via openssl.
    pub fn gen_cert(&self, dir: &Path, bits: u32, password: &str, name: &str) {
        self.ok([
            "gen-cert",
            "--out",
            dir.to_str().unwrap(),
            "--bits",
            &bits.to_string(),
            "--password",
            password,
            "--name",
            name,
        ]);
    }
}

/// The .NET repositories' read and write logic on Mono (`tests/peers/repositories.cs`), compiled
/// with mcs into `target/peers/`. `None` (after [`skip`]) without mcs or mono.
pub fn repositories() -> Option<Repositories> {
    if !have("mono") || Command::new("mcs").arg("--version").output().is_err() {
        skip("mono and mcs are not installed (apt-get install mono-devel)");
        return None;
    }
    let source = super::repo().join("tests/peers/repositories.cs");
    let dir = super::repo().join("target/peers");
    std::fs::create_dir_all(&dir).unwrap();
    // One build per source version; tests running at once wait on the lock.
    let exe = dir.join(format!(
        "repositories-{}.exe",
        std::fs::metadata(&source).unwrap().len()
    ));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".repositories.lock"))
        .unwrap();
    lock.lock().unwrap();
    if !exe.is_file() {
        let out = Command::new("mcs")
            .args(["-r:System.Xml.Linq", "-r:System.Xml"])
            .arg(format!("-out:{}", exe.display()))
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mcs failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(Repositories { exe })
}

/// The compiled repositories program.
pub struct Repositories {
    exe: PathBuf,
}

impl Repositories {
    /// Runs `mono repositories.exe ARGS`; panics unless it succeeds; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = Command::new("mono")
            .arg(&self.exe)
            .args(args)
            .output()
            .expect("mono runs");
        assert!(
            out.status.success(),
            "repositories.exe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}
