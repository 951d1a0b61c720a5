//! `dpwrap decrypt` against data made elsewhere: the real ASP.NET key (its PFX and the master key
//! its upstream test asserts) and rings written by the Mono peer (.NET's EncryptedXml), with every
//! form of key material.

mod common;

use base64::Engine as _;
use common::*;

/// The expected master key of the ASP.NET trimming-test key, from the vectors manifest.
fn aspnet_expected() -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared("vectors/manifest.json")).unwrap()).unwrap();
    manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["id"] == "aspnet/dotnet-aspnetcore-trimming/key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3"
        })
        .unwrap()["expected_value"]
        .as_str()
        .unwrap()
        .to_owned()
}

const ASPNET_KEY: &str = "9c15d488-4417-49ab-ae39-ed2f36a9ebe3";

#[test]
fn the_real_aspnet_key_decrypts_to_its_known_master_key() {
    let expected = aspnet_expected();
    let dir = shared("vectors/aspnet/dotnet-aspnetcore-trimming");
    let pfx = dir.join("TestCert-user-example-com.pfx");
    let tmp = tempfile::tempdir().unwrap();
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, "password\n").unwrap();

    // The PFX (3DES key bag, RC2-40 certificate bag) with the password from a file, over the
    // directory (the other files there are fragments, skipped with a note).
    let (run, rows) = decrypt_map(&["--pfx", s(&pfx), "--password-file", s(&pw_file), s(&dir)]);
    let run = run.expect(0);
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    let row = &rows[ASPNET_KEY];
    assert_eq!(row["status"], "ok");
    assert_eq!(row["master_key"].as_str().unwrap(), expected);
    assert_eq!(row["protection"], "certificate");
    assert_eq!(row["revoked"], false);
    assert!(
        row["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("key-{ASPNET_KEY}.xml"))
    );
    assert!(run.stderr.contains("fragment"), "{}", run.stderr);
    // Exactly the documented fields.
    let mut fields: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "file",
            "key_id",
            "master_key",
            "protection",
            "revoked",
            "status"
        ]
    );

    // The same key file alone, the password from the environment.
    let key_file = dir.join(format!("key-{ASPNET_KEY}.xml"));
    let mut c = cmd([
        "decrypt",
        "--json",
        "--reveal",
        "--pfx",
        s(&pfx),
        "--password-env",
        "DPWRAP_TEST_PFX_PASSWORD",
        s(&key_file),
    ]);
    c.env("DPWRAP_TEST_PFX_PASSWORD", "password");
    let run = run_cmd(c).expect(0);
    assert_eq!(run.json()[0]["master_key"].as_str().unwrap(), expected);

    // PEM certificate and key.
    let (run, rows) = decrypt_map(&[
        "--cert",
        s(&dir.join("TestCert-user-example-com.cert.pem")),
        "--key",
        s(&dir.join("TestCert-user-example-com.key.pem")),
        s(&key_file),
    ]);
    run.expect(0);
    assert_eq!(rows[ASPNET_KEY]["master_key"].as_str().unwrap(), expected);
}

#[test]
fn without_reveal_no_secret_is_printed() {
    let expected = aspnet_expected();
    let hex: String = base64::engine::general_purpose::STANDARD
        .decode(&expected)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = shared("vectors/aspnet/dotnet-aspnetcore-trimming");
    let pfx = dir.join("TestCert-user-example-com.pfx");
    let key_file = dir.join(format!("key-{ASPNET_KEY}.xml"));
    for json in [true, false] {
        let mut args = vec!["decrypt"];
        if json {
            args.push("--json");
        }
        args.extend([
            "--pfx",
            s(&pfx),
            "--password-env",
            "DPWRAP_TEST_PFX_PASSWORD",
            s(&key_file),
        ]);
        let mut c = cmd(&args);
        c.env("DPWRAP_TEST_PFX_PASSWORD", "password");
        let run = run_cmd(c).expect(0);
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains(&expected), "{out}");
            assert!(!out.contains(&expected[..20]), "{out}");
            assert!(!out.to_lowercase().contains(&hex[..32]), "{out}");
            assert!(
                !out.contains("password"),
                "the password is never printed: {out}"
            );
        }
        assert!(run.stdout.contains(ASPNET_KEY));
        if json {
            assert!(run.json()[0].get("master_key").is_none());
        }
    }
    // With --reveal, the table shows it (so the test above can fail).
    let mut c = cmd([
        "decrypt",
        "--reveal",
        "--pfx",
        s(&pfx),
        "--password-env",
        "DPWRAP_TEST_PFX_PASSWORD",
        s(&key_file),
    ]);
    c.env("DPWRAP_TEST_PFX_PASSWORD", "password");
    assert!(run_cmd(c).expect(0).stdout.contains(&expected));
}

/// Peer rings of every format, for each certificate size, decrypt 100 % with PEM (PKCS#8 and
/// PKCS#1), AES PFX, 3DES PFX and base64 PFX material and a local KEK, revocations applied.
#[test]
fn peer_rings_decrypt_with_every_form_of_key_material() {
    let Some(peer) = interop::peer() else { return };
    let formats = "cert,cert-oaep,null,none,akv,akv-legacy";
    let mut total = 0;
    for bits in [2048, 3072, 4096] {
        let tmp = tempfile::tempdir().unwrap();
        let (ring, certs, manifest) = peer_ring(&peer, tmp.path(), 12, formats, bits);
        let seen: std::collections::BTreeSet<&str> =
            manifest.values().map(|(f, _)| f.as_str()).collect();
        assert_eq!(seen.len(), 6, "every format is in the ring");
        // A single-key revocation of one key, written by the peer.
        let revoked = manifest.keys().next().unwrap().clone();
        peer.ok([
            "revoke",
            "--out",
            s(&ring),
            "--key-id",
            &revoked,
            "--reason",
            "test",
        ]);

        let c = |n: &str| certs.join(n).to_str().unwrap().to_owned();
        let b64 = tmp.path().join("c.pfx.b64");
        std::fs::write(
            &b64,
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(c("c.pfx")).unwrap()),
        )
        .unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, PASSWORD).unwrap();
        let kek = c("c.key.pem");
        let kid_kek = format!(
            "https://example-vault.vault.azure.net/keys/dataprotection={}",
            c("c.rsa.pem")
        );
        let materials: Vec<Vec<String>> = vec![
            vec![
                "--cert".into(),
                c("c.cert.pem"),
                "--key".into(),
                c("c.key.pem"),
                "--local-kek".into(),
                kek.clone(),
            ],
            vec![
                "--cert".into(),
                c("c.cert.pem"),
                "--key".into(),
                c("c.rsa.pem"),
                "--local-kek".into(),
                kid_kek.clone(),
            ],
            vec![
                "--pfx".into(),
                c("c.pfx"),
                "--password-file".into(),
                s(&pw).into(),
                "--local-kek".into(),
                kek.clone(),
            ],
            vec![
                "--pfx".into(),
                c("c.3des.pfx"),
                "--password-file".into(),
                s(&pw).into(),
                "--local-kek".into(),
                kek.clone(),
            ],
            vec![
                "--pfx-base64-file".into(),
                s(&b64).into(),
                "--password-file".into(),
                s(&pw).into(),
                "--local-kek".into(),
                kek.clone(),
            ],
        ];
        for material in &materials {
            let mut args: Vec<&str> = material.iter().map(String::as_str).collect();
            args.push(s(&ring));
            let (run, rows) = decrypt_map(&args);
            let run = run.expect(0);
            assert_eq!(
                master_keys(&rows),
                expected(&manifest),
                "{material:?}\n{}",
                run.stderr
            );
            for (id, row) in &rows {
                assert_eq!(row["revoked"], *id == revoked, "{id}");
                assert_eq!(
                    row["protection"].as_str().unwrap(),
                    match manifest[id].0.as_str() {
                        "cert" | "cert-oaep" => "certificate",
                        "akv" | "akv-legacy" => "azure-key-vault",
                        other => other,
                    }
                );
            }
            total += rows.len();
        }

        // Without the Key Vault material, the akv keys fail (exit 1) and say what to supply;
        // the others still decrypt.
        let (run, rows) = decrypt_map(&[
            "--cert",
            &c("c.cert.pem"),
            "--key",
            &c("c.key.pem"),
            s(&ring),
        ]);
        let run = run.expect(1);
        for (id, row) in &rows {
            let akv = manifest[id].0.starts_with("akv");
            assert_eq!(row["status"], if akv { "error" } else { "ok" }, "{id}");
            if akv {
                assert!(
                    row["error"].as_str().unwrap().contains("Key Vault"),
                    "{row}"
                );
                assert!(row.get("master_key").is_none());
            }
        }
        assert!(run.stderr.contains("Key Vault"), "{}", run.stderr);
    }
    eprintln!(
        "peer rings: {total} key decryptions through the CLI, all equal to the peer's manifest"
    );
}

/// A ring whose Key Vault key is separate from any certificate: the kid chooses the KEK.
#[test]
fn local_keks_are_chosen_by_kid() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let kid = "https://example-vault.vault.azure.net/keys/dataprotection/0123456789abcdef0123456789abcdef";
    let kek = tmp.path().join("kek");
    let other = tmp.path().join("other");
    peer.gen_cert(&kek, 2048, PASSWORD, "k");
    peer.gen_cert(&other, 2048, PASSWORD, "o");
    let ring = tmp.path().join("ring");
    peer.ok([
        "gen-ring",
        "--count",
        "6",
        "--out",
        s(&ring),
        "--formats",
        "akv,akv-legacy",
        "--key",
        s(&kek.join("k.key.pem")),
        "--kid",
        kid,
    ]);
    let manifest = manifest(&ring.join("manifest.jsonl"));
    std::fs::remove_file(ring.join("manifest.jsonl")).unwrap();
    let k = kek.join("k.key.pem");
    let o = other.join("o.key.pem");
    let versionless = "https://example-vault.vault.azure.net/keys/dataprotection";
    for local in [
        format!("{kid}={}", s(&k)),
        format!("{versionless}={}", s(&k)),
        s(&k).to_owned(),
    ] {
        // A wrong KEK for another kid beside it changes nothing.
        let (run, rows) = decrypt_map(&[
            "--local-kek",
            &format!("https://example-vault.vault.azure.net/keys/other={}", s(&o)),
            "--local-kek",
            &local,
            s(&ring),
        ]);
        run.expect(0);
        assert_eq!(master_keys(&rows), expected(&manifest), "{local}");
    }
    // The wrong key for this kid: every key fails, nothing revealed.
    let (run, rows) = decrypt_map(&["--local-kek", &format!("{kid}={}", s(&o)), s(&ring)]);
    let run = run.expect(1);
    assert!(master_keys(&rows).is_empty());
    assert!(run.stderr.contains("decryption failed"), "{}", run.stderr);
    // Another version of the key named: no KEK answers for this kid.
    let (run, _) = decrypt_map(&[
        "--local-kek",
        &format!("{versionless}/ffff={}", s(&k)),
        s(&ring),
    ]);
    let run = run.expect(1);
    assert!(run.stderr.contains(kid), "{}", run.stderr);
}

/// DPAPI keys fail with the Windows-only message; unprotected keys decrypt to the value their
/// file holds; exit 1 because one key failed.
#[test]
fn dpapi_keys_fail_with_the_windows_only_message() {
    let dir = shared("vectors/aspnet/recognition");
    let (run, rows) = decrypt_map(&[s(&dir)]);
    let run = run.expect(1);
    let dpapi = &rows["7b636973-76e8-49e3-961a-3c4b763a009d"];
    assert_eq!(dpapi["status"], "error");
    assert_eq!(dpapi["protection"], "dpapi");
    assert!(
        dpapi["error"]
            .as_str()
            .unwrap()
            .contains("only Windows can decrypt it")
    );
    assert!(dpapi.get("master_key").is_none());
    for id in [
        "d17a439d-8228-4216-9ea5-16a5424a0788",
        "de1dd770-8b81-4ff8-b8ff-d559b1c9eeef",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("plain-key-{id}.xml"))).unwrap();
        let value = text
            .split("<value>")
            .nth(1)
            .unwrap()
            .split("</value>")
            .next()
            .unwrap();
        assert_eq!(rows[id]["status"], "ok");
        assert_eq!(rows[id]["protection"], "none");
        assert_eq!(rows[id]["master_key"].as_str().unwrap(), value.trim());
    }
    assert!(
        run.stderr.contains("dpapi-ng"),
        "the DPAPI-NG fragment is named: {}",
        run.stderr
    );
}

/// An encrypted PKCS#8 key (made by openssl) takes the password option after its `--key`.
#[test]
fn encrypted_pem_keys_take_the_password_after_them() {
    let expected = aspnet_expected();
    let dir = shared("vectors/aspnet/dotnet-aspnetcore-trimming");
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:pem-pass-9",
            "-in",
        ])
        .arg(dir.join("TestCert-user-example-com.key.pem"))
        .arg("-out")
        .arg(&enc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pfx_pw = tmp.path().join("pfx-pw");
    std::fs::write(&pfx_pw, "password").unwrap();
    let cert = dir.join("TestCert-user-example-com.cert.pem");
    let key_file = dir.join(format!("key-{ASPNET_KEY}.xml"));
    let run = |args: &[&str]| {
        let mut c = cmd(["decrypt", "--json", "--reveal"]);
        c.args(args).arg(&key_file).env("PEM_PW", "pem-pass-9");
        run_cmd(c)
    };
    // Alone, and paired beside a PFX with its own password.
    for args in [
        vec![
            "--cert",
            s(&cert),
            "--key",
            s(&enc),
            "--password-env",
            "PEM_PW",
        ],
        vec![
            "--pfx",
            s(&dir.join("TestCert-user-example-com.pfx")),
            "--password-file",
            s(&pfx_pw),
            "--cert",
            s(&cert),
            "--key",
            s(&enc),
            "--password-env",
            "PEM_PW",
        ],
    ] {
        let r = run(&args).expect(0);
        assert_eq!(r.json()[0]["master_key"].as_str().unwrap(), expected);
    }
    // Without its password, or with the PFX's: a clear failure naming the key file.
    let r = run(&["--cert", s(&cert), "--key", s(&enc)]).expect(1);
    assert!(
        r.stderr.contains("encrypted") && r.stderr.contains("enc.pem"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "--cert",
        s(&cert),
        "--key",
        s(&enc),
        "--password-file",
        s(&pfx_pw),
    ])
    .expect(1);
    assert!(
        r.stderr.contains("enc.pem") && !r.stderr.contains("pem-pass-9"),
        "{}",
        r.stderr
    );
}
