//! `dpwrap cert new`: files openssl reads (certificate, PKCS#8 key, AES-256 PFX), the key private
//! to its owner, the thumbprint openssl computes, and material the other commands take.

mod common;

use common::*;

fn openssl(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("openssl");
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `pkcs12 -info` writes to stderr.
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cert_new_writes_what_openssl_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut c = cmd([
        "cert",
        "new",
        "--subject",
        "CN=DataProtection dpwrap,O=Test",
        "--bits",
        "3072",
        "--days",
        "10",
        "--out-dir",
        s(&out),
        "--pfx-password-env",
        "PFX_PW",
        "--json",
    ]);
    c.env("PFX_PW", "pfx-pass-4");
    let run = run_cmd(c).expect(0);
    assert!(!run.stdout.contains("pfx-pass-4") && !run.stderr.contains("pfx-pass-4"));
    let info = &run.json()[0];
    let (cert, key, pfx) = (
        out.join("DataProtection-dpwrap.cert.pem"),
        out.join("DataProtection-dpwrap.key.pem"),
        out.join("DataProtection-dpwrap.pfx"),
    );
    assert_eq!(info["cert"].as_str().unwrap(), s(&cert));
    assert_eq!(info["pfx"].as_str().unwrap(), s(&pfx));

    let text = openssl(
        &[
            "x509",
            "-in",
            s(&cert),
            "-noout",
            "-subject",
            "-fingerprint",
            "-sha1",
            "-text",
        ],
        &[],
    );
    assert!(
        text.contains("CN = DataProtection dpwrap") || text.contains("CN=DataProtection dpwrap"),
        "{text}"
    );
    assert!(text.contains("3072 bit"), "{text}");
    let fingerprint = text.lines().find(|l| l.contains("Fingerprint=")).unwrap();
    assert_eq!(
        fingerprint.rsplit('=').next().unwrap().replace(':', ""),
        info["thumbprint"].as_str().unwrap()
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8"
    );
    openssl(&["pkey", "-in", s(&key), "-check", "-noout"], &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&pfx).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The PFX: AES-256 (PBES2), readable by openssl with the password.
    let pfx_info = openssl(
        &[
            "pkcs12",
            "-in",
            s(&pfx),
            "-info",
            "-noout",
            "-passin",
            "env:PFX_PW",
        ],
        &[("PFX_PW", "pfx-pass-4")],
    );
    assert!(
        pfx_info.contains("Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC"),
        "{pfx_info}"
    );

    // The files as key material: a key made for the certificate (verified with the PFX), then
    // decrypted with the PEM pair.
    let ring = tmp.path().join("ring");
    let mut c = cmd([
        "key",
        "new",
        s(&ring),
        "--to-cert",
        s(&cert),
        "--pfx",
        s(&pfx),
        "--password-env",
        "PFX_PW",
    ]);
    c.env("PFX_PW", "pfx-pass-4");
    let run = run_cmd(c).expect(0);
    assert!(!run.stderr.contains("not verified"), "{}", run.stderr);
    let id = run.stdout.trim().to_owned();
    let (run, rows) = decrypt_map(&["--cert", s(&cert), "--key", s(&key), s(&ring)]);
    run.expect(0);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[&id]["status"], "ok");

    // Without a PFX password: no PFX at all.
    let run = dpwrap([
        "cert",
        "new",
        "--subject",
        "plain name",
        "--out-dir",
        s(&out),
    ])
    .expect(0);
    assert!(out.join("plain-name.cert.pem").is_file() && out.join("plain-name.key.pem").is_file());
    assert!(!out.join("plain-name.pfx").exists());
    assert!(run.stderr.contains("no PFX"), "{}", run.stderr);
}
