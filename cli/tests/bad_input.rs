//! Bad input and faults: each a clear message naming what failed, exit 1 (2 for usage errors),
//! nothing written, no panic.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn no_panic(run: &Run) {
    for out in [&run.stdout, &run.stderr] {
        assert!(
            !out.contains("panicked") && !out.contains("RUST_BACKTRACE"),
            "{out}"
        );
    }
}

/// A peer ring of one `cert` key, one `cert-oaep` key and one unprotected key.
fn ring(peer: &interop::Peer, base: &Path) -> (PathBuf, PathBuf, Manifest) {
    peer_ring(peer, base, 3, "cert,cert-oaep,none", 2048)
}

fn key_file(ring: &Path, manifest: &Manifest, format: &str) -> PathBuf {
    let id = manifest.iter().find(|(_, (f, _))| f == format).unwrap().0;
    ring.join(format!("key-{id}.xml"))
}

/// Runs `args` against `ring` and checks: exit `code`, stderr contains every `needle`, the ring
/// is byte for byte as it was.
fn fails(args: &[&str], ring: &Path, code: i32, needles: &[&str]) -> Run {
    let before = snapshot(ring);
    let run = dpwrap(args);
    no_panic(&run);
    let run = run.expect(code);
    for n in needles {
        assert!(run.stderr.contains(n), "{n:?} not in:\n{}", run.stderr);
    }
    assert_eq!(snapshot(ring), before, "nothing was written: {args:?}");
    run
}

#[test]
fn wrong_certificate_tampering_truncation_and_unknown_algorithms() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) = ring(&peer, tmp.path());
    let other = tmp.path().join("other");
    peer.gen_cert(&other, 2048, PASSWORD, "o");
    let (oc, ok) = (
        s(&other.join("o.cert.pem")).to_owned(),
        s(&other.join("o.key.pem")).to_owned(),
    );
    let (cc, ck) = (
        s(&certs.join("c.cert.pem")).to_owned(),
        s(&certs.join("c.key.pem")).to_owned(),
    );
    let r = s(&ring).to_owned();

    // The wrong certificate: both certificate keys fail (named), the unprotected one decrypts.
    let run = fails(
        &["decrypt", "--json", "--cert", &oc, "--key", &ok, &r],
        &ring,
        1,
        &[],
    );
    let rows = run.json();
    assert_eq!(rows.iter().filter(|r| r["status"] == "error").count(), 2);
    for id in manifest.keys() {
        if manifest[id].0 != "none" {
            assert!(
                run.stderr.contains(&format!("key-{id}.xml")),
                "{}",
                run.stderr
            );
        }
    }
    // rewrap and protect with the wrong old material: nothing written.
    fails(
        &[
            "rewrap",
            &r,
            "--to-cert",
            &oc,
            "--to-key",
            &ok,
            "--cert",
            &oc,
            "--key",
            &ok,
        ],
        &ring,
        1,
        &["nothing was written"],
    );

    // Re-wrapping the ring to its own certificate, reading it with the same one.
    let rewrap = [
        "rewrap",
        &r,
        "--to-cert",
        &cc,
        "--to-key",
        &ck,
        "--cert",
        &cc,
        "--key",
        &ck,
    ];

    // A tampered CipherValue (the content, last in the file).
    let file = key_file(&ring, &manifest, "cert-oaep");
    let original = std::fs::read_to_string(&file).unwrap();
    // In the middle of the ciphertext: a whole block of the plaintext is garbled. (A change in
    // the first block, the IV, may flip one harmless bit of the XML: CBC has no integrity.)
    let start = original.rfind("<CipherValue>").unwrap() + "<CipherValue>".len();
    let end = original[start..].find("</CipherValue>").unwrap() + start;
    let at = (start + end) / 2;
    let mut tampered = original.clone();
    let c = if &original[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, c);
    std::fs::write(&file, &tampered).unwrap();
    let run = fails(
        &["decrypt", "--cert", &cc, "--key", &ck, &r],
        &ring,
        1,
        &["decryption failed"],
    );
    assert!(
        run.stderr
            .contains(file.file_name().unwrap().to_str().unwrap())
    );
    fails(
        &[&rewrap[..], &["--rsa-1_5"]].concat(),
        &ring,
        1,
        &["decryption failed", "nothing was written"],
    );

    // An algorithm URI dpwrap does not know.
    std::fs::write(
        &file,
        original.replace("xmlenc#aes256-cbc", "xmlenc#aes512-cbc"),
    )
    .unwrap();
    fails(
        &["decrypt", "--cert", &cc, "--key", &ck, &r],
        &ring,
        1,
        &["aes512-cbc"],
    );
    fails(
        &[&rewrap[..], &["--rsa-1_5"]].concat(),
        &ring,
        1,
        &["aes512-cbc", "nothing was written"],
    );

    // A truncated key file: the file is named; the ring is refused as a whole for writing.
    std::fs::write(&file, &original[..original.len() / 2]).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    fails(
        &["decrypt", "--cert", &cc, "--key", &ck, &r],
        &ring,
        1,
        &[&name],
    );
    fails(&["inspect", &r], &ring, 1, &[&name]);
    fails(
        &["protect", "--to-cert", &cc, "--to-key", &ck, &r],
        &ring,
        1,
        &[&name, "nothing was written"],
    );
    fails(&rewrap, &ring, 1, &[&name, "nothing was written"]);
    let out = tmp.path().join("out");
    fails(
        &[
            "rewrap",
            &r,
            "--out",
            s(&out),
            "--to-cert",
            &cc,
            "--to-key",
            &ck,
            "--cert",
            &cc,
            "--key",
            &ck,
        ],
        &ring,
        1,
        &[&name],
    );
    assert!(!out.exists(), "nothing was written to the destination");
    fails(&["copy", &r, s(&out)], &ring, 1, &[&name]);
    assert!(!out.exists());
    std::fs::write(&file, &original).unwrap();
    fails(&["decrypt", "--cert", &cc, "--key", &ck, &r], &ring, 0, &[]);
}

#[test]
fn passwords_wrong_missing_or_unreadable() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, _) = ring(&peer, tmp.path());
    let r = s(&ring).to_owned();
    let pfx = s(&certs.join("c.pfx")).to_owned();
    let des = s(&certs.join("c.3des.pfx")).to_owned();
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not-the-password-7f3a").unwrap();
    for p in [&pfx, &des] {
        let run = fails(
            &["decrypt", "--pfx", p, "--password-file", s(&wrong), &r],
            &ring,
            1,
            &["password"],
        );
        assert!(
            run.stderr.contains(p.as_str()),
            "the file is named: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("not-the-password-7f3a"));
    }
    // No password given: the empty password is tried, and fails clearly.
    fails(&["decrypt", "--pfx", &pfx, &r], &ring, 1, &["password"]);
    // An unset variable and an unreadable file are usage errors naming them.
    let run = fails(
        &[
            "decrypt",
            "--pfx",
            &pfx,
            "--password-env",
            "DPWRAP_TEST_UNSET_VAR",
            &r,
        ],
        &ring,
        2,
        &["DPWRAP_TEST_UNSET_VAR", "not set"],
    );
    assert!(run.stdout.is_empty());
    let missing = tmp.path().join("no-such-password-file");
    fails(
        &["decrypt", "--pfx", &pfx, "--password-file", s(&missing), &r],
        &ring,
        2,
        &["no-such-password-file"],
    );
    fails(
        &[
            "protect",
            "--to-cert",
            &pfx,
            "--pfx",
            &pfx,
            "--password-env",
            "DPWRAP_TEST_UNSET_VAR",
            &r,
        ],
        &ring,
        2,
        &["DPWRAP_TEST_UNSET_VAR"],
    );
    // Passwords pair with the PFX before them; one too many is a usage error.
    let good = tmp.path().join("good");
    std::fs::write(&good, format!("{PASSWORD}\n")).unwrap();
    fails(
        &[
            "decrypt",
            "--pfx",
            &pfx,
            "--password-file",
            s(&good),
            "--pfx",
            &des,
            "--password-file",
            s(&wrong),
            &r,
        ],
        &ring,
        1,
        &[&des],
    );
    fails(
        &[
            "decrypt",
            "--pfx",
            &pfx,
            "--password-file",
            s(&wrong),
            "--pfx",
            &des,
            "--password-file",
            s(&good),
            &r,
        ],
        &ring,
        1,
        &[&pfx],
    );
    fails(
        &[
            "decrypt",
            "--pfx",
            &pfx,
            "--password-file",
            s(&good),
            "--pfx",
            &des,
            "--password-file",
            s(&good),
            &r,
        ],
        &ring,
        0,
        &[],
    );
    fails(
        &[
            "decrypt",
            "--password-file",
            s(&good),
            "--pfx",
            &pfx,
            "--password-file",
            s(&good),
            &r,
        ],
        &ring,
        2,
        &["comes before"],
    );
    fails(
        &[
            "decrypt",
            "--pfx",
            &pfx,
            "--password-file",
            s(&good),
            "--password-file",
            s(&good),
            &r,
        ],
        &ring,
        2,
        &["two passwords"],
    );
    // One password option alone applies to every PFX, wherever it is.
    fails(
        &[
            "decrypt",
            "--password-file",
            s(&good),
            "--pfx",
            &pfx,
            "--pfx",
            &des,
            &r,
        ],
        &ring,
        0,
        &[],
    );
}

#[test]
fn usage_errors_exit_2() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, _) = ring(&peer, tmp.path());
    let r = s(&ring).to_owned();
    let (cc, ck) = (
        s(&certs.join("c.cert.pem")).to_owned(),
        s(&certs.join("c.key.pem")).to_owned(),
    );
    let kek = format!("https://v.vault.azure.net/keys/k={ck}");
    for (args, needle) in [
        (vec!["protect", &r], "no target protection"),
        (
            vec![
                "protect",
                "--to-cert",
                &cc,
                "--to-key",
                &ck,
                "--to-local-kek",
                &kek,
                &r,
            ],
            "one kind",
        ),
        (
            vec!["protect", "--to-local-kek", &kek, "--rsa-1_5", &r],
            "--rsa-1_5",
        ),
        (
            vec![
                "protect",
                "--to-cert",
                &cc,
                "--to-key",
                &ck,
                "--legacy-azure-type",
                &r,
            ],
            "--legacy-azure-type",
        ),
        (vec!["protect", "--to-local-kek", &ck, &r], "KID=PEM"),
        (vec!["rewrap", &r, "--to-cert", &cc], "private key"),
        (vec!["protect", "--to-cert", &cc, &r], "private key"),
        (vec!["decrypt", "--key", &ck, "--cert", &cc, &r], "--key"),
        (
            vec!["rewrap", &r, "--to-key", &ck, "--to-cert", &cc],
            "--to-key",
        ),
        (
            vec![
                "decrypt",
                "--cert",
                &cc,
                "--key",
                &ck,
                "env:DPWRAP_TEST_UNSET_STORE",
            ],
            "DPWRAP_TEST_UNSET_STORE",
        ),
        (vec!["inspect", "ftp://example.com/ring"], "ftp"),
        (
            vec!["key", "new", &r, "--to-cert", &cc, "--lifetime", "forever"],
            "--lifetime",
        ),
        (
            vec![
                "key",
                "new",
                &r,
                "--to-cert",
                &cc,
                "--activation",
                "tomorrow",
            ],
            "--activation",
        ),
        (vec!["revoke", &r, "not-a-guid"], "not a key id"),
        (vec!["revoke", &r], "KEY_ID"),
        (
            vec![
                "decrypt",
                "--credential",
                "password",
                "--cert",
                &cc,
                "--key",
                &ck,
                &r,
            ],
            "password",
        ),
        (
            vec!["decrypt", "--key-vault-kid", "not-a-kid", &r],
            if cfg!(feature = "azure") {
                "not-a-kid"
            } else {
                "cargo feature `azure`"
            },
        ),
        (vec!["decrypt", "--concurrency", "0", &r], "concurrency"),
        (
            vec![
                "cert",
                "new",
                "--subject",
                "CN=x",
                "--bits",
                "1024",
                "--out-dir",
                &r,
            ],
            "1024",
        ),
    ] {
        fails(&args, &ring, 2, &[needle]);
    }
    // The private key of the target given as key material by thumbprint instead: accepted.
    fails(
        &[
            "protect",
            "--to-cert",
            &cc,
            "--cert",
            &cc,
            "--key",
            &ck,
            "--dry-run",
            &r,
        ],
        &ring,
        0,
        &[],
    );
}

#[test]
fn unreachable_and_malformed_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    // A closed port: a clear failure, quickly; the password of the URL never printed.
    let port = common::redis_server::free_port();
    let url = format!("redis://:hunter2-sekrit@127.0.0.1:{port}?key=ring");
    let started = std::time::Instant::now();
    if !cfg!(feature = "redis") {
        fails(&["inspect", &url], &dir, 2, &["cargo feature `redis`"]);
        return;
    }
    for args in [
        vec!["inspect", url.as_str()],
        vec!["decrypt", url.as_str()],
        vec!["copy", url.as_str(), s(&dir)],
        vec!["copy", s(&dir), url.as_str()],
        vec!["revoke", url.as_str(), "--all-before", "2020-01-01"],
    ] {
        let run = fails(&args, &dir, 1, &["127.0.0.1"]);
        assert!(
            !run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"),
            "{}",
            run.stderr
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // Through env:NAME as well.
    let mut c = cmd(["inspect", "env:DPWRAP_TEST_STORE"]);
    c.env("DPWRAP_TEST_STORE", &url);
    let run = run_cmd(c).expect(1);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    // A missing directory is not an empty ring when reading.
    let missing = tmp.path().join("missing");
    fails(&["decrypt", s(&missing)], &dir, 1, &["no such file"]);
    assert!(!missing.exists());
    // A ring document that is not XML.
    let doc = tmp.path().join("ring.xml");
    std::fs::write(&doc, "this is not xml").unwrap();
    fails(&["inspect", s(&doc)], &dir, 1, &["ring.xml"]);
    fails(
        &[
            "key",
            "new",
            s(&doc),
            "--to-local-kek",
            "k=/nonexistent.pem",
        ],
        &dir,
        1,
        &["nonexistent.pem"],
    );
    assert_eq!(std::fs::read(&doc).unwrap(), b"this is not xml");
    // cert new never overwrites.
    let out = tmp.path().join("certs");
    dpwrap(["cert", "new", "--subject", "CN=a", "--out-dir", s(&out)]).expect(0);
    fails(
        &["cert", "new", "--subject", "CN=a", "--out-dir", s(&out)],
        &out,
        1,
        &["already exists"],
    );
}

/// Commands that add to a store refuse a single element file as their destination (it would
/// silently write into the file's directory).
#[test]
fn a_single_key_file_is_not_a_destination_store() {
    let tmp = tempfile::tempdir().unwrap();
    let recognition = shared("vectors/aspnet/recognition");
    let (src, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    for (dir, id) in [
        (&src, "d17a439d-8228-4216-9ea5-16a5424a0788"),
        (&dest, "de1dd770-8b81-4ff8-b8ff-d559b1c9eeef"),
    ] {
        std::fs::create_dir(dir).unwrap();
        std::fs::copy(
            recognition.join(format!("plain-key-{id}.xml")),
            dir.join(format!("key-{id}.xml")),
        )
        .unwrap();
    }
    let certs = tmp.path().join("certs");
    dpwrap([
        "cert",
        "new",
        "--subject",
        "CN=dpwrap out test",
        "--bits",
        "2048",
        "--days",
        "2",
        "--out-dir",
        s(&certs),
        "--name",
        "n",
    ])
    .expect(0);
    let file = dest.join("key-de1dd770-8b81-4ff8-b8ff-d559b1c9eeef.xml");
    let before = snapshot(&dest);
    let (cert, key) = (certs.join("n.cert.pem"), certs.join("n.key.pem"));
    let run = dpwrap([
        "rewrap",
        s(&src),
        "--out",
        s(&file),
        "--to-cert",
        s(&cert),
        "--to-key",
        s(&key),
    ])
    .expect(2);
    assert!(
        run.stderr.contains("rewrap --out adds to a store"),
        "{}",
        run.stderr
    );
    let run = dpwrap(["key", "new", s(&file), "--to-cert", s(&cert)]).expect(2);
    assert!(
        run.stderr.contains("key new adds to a store"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&dest), before);
}

/// One password option for several PFX files is read once: a pipe (`--password-file <(…)`,
/// `/dev/stdin`) cannot be read a second time.
#[test]
fn a_piped_password_opens_every_pfx() {
    use std::io::Write as _;
    let certs = repo().join("fixtures/certs");
    let mut c = cmd([
        "decrypt",
        "--pfx",
        s(&certs.join("rsa2048.modern.pfx")),
        "--pfx",
        s(&certs.join("rsa2048.3des.pfx")),
        "--password-file",
        "/dev/stdin",
        s(&shared(
            "vectors/aspnet/recognition/plain-key-d17a439d-8228-4216-9ea5-16a5424a0788.xml",
        )),
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"test-password\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
