//! `protect`, `rewrap`, `copy`, `key new` and `revoke`: what dpwrap writes, read back by the Mono
//! peer (.NET's own EncryptedXml and the ASP.NET decryptors), in directories, ring documents and
//! Redis.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::redis_server::RedisServer;
use common::*;

const KID: &str = "https://dpwrap-test.vault.azure.net/keys/dataprotection";

/// peer decrypt-ring → key id → master key.
fn peer_keys(peer: &interop::Peer, dir: &Path, material: &[&str]) -> BTreeMap<String, String> {
    peer_decrypt(peer, dir, material)
        .into_iter()
        .map(|(id, (mk, _))| (id, mk))
        .collect()
}

fn inspect(store: &str) -> Vec<serde_json::Value> {
    dpwrap(["inspect", "--json", store]).expect(0).json()
}

fn xml_text(dir: &Path) -> String {
    let mut all = String::new();
    for (_, bytes) in snapshot(dir) {
        all.push_str(&String::from_utf8_lossy(&bytes));
    }
    all
}

#[test]
fn protect_unprotected_keys_and_the_peer_reads_them() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) = peer_ring(&peer, tmp.path(), 9, "none,null,cert", 2048);
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let new = tmp.path().join("new");
    peer.gen_cert(&new, 2048, PASSWORD, "n");
    let n = |f: &str| s(&new.join(f)).to_owned();
    let cert_material = ["--cert", &c("c.cert.pem"), "--key", &c("c.key.pem")];

    for (case, target) in [
        (
            "oaep",
            vec![
                "--to-cert".to_owned(),
                c("c.cert.pem"),
                "--to-key".into(),
                c("c.key.pem"),
            ],
        ),
        (
            "rsa-1_5",
            vec![
                "--to-cert".to_owned(),
                c("c.cert.pem"),
                "--rsa-1_5".into(),
                "--pfx".into(),
                c("c.3des.pfx"),
                "--password-env".into(),
                "PFXPW".into(),
            ],
        ),
        // The target's private key found among the key material by thumbprint.
        (
            "new-cert",
            vec![
                "--to-cert".to_owned(),
                n("n.cert.pem"),
                "--cert".into(),
                n("n.cert.pem"),
                "--key".into(),
                n("n.key.pem"),
            ],
        ),
        (
            "local-kek",
            vec![
                "--to-local-kek".to_owned(),
                format!("{KID}/v1={}", n("n.key.pem")),
            ],
        ),
    ] {
        let dir = tmp.path().join(case);
        copy_ring(&ring, &dir);
        let before = snapshot(&dir);
        let mut args = vec!["protect".to_owned()];
        args.extend(target);
        args.push(s(&dir).into());
        let mut cmd = cmd(&args);
        cmd.env("PFXPW", PASSWORD);
        let run = run_cmd(cmd).expect(0);
        let unprotected = manifest
            .values()
            .filter(|(f, _)| f == "none" || f == "null")
            .count();
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("protected "))
                .count(),
            unprotected,
            "{}",
            run.stdout
        );
        let after = snapshot(&dir);
        for (path, bytes) in &before {
            let id = path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_start_matches("key-")
                .trim_end_matches(".xml");
            let changed = after[path] != *bytes;
            assert_eq!(
                changed,
                manifest[id].0 != "cert",
                "{case}: {id} changed: {changed}"
            );
        }
        let rows = inspect(s(&dir));
        let expected_protection = if case == "local-kek" {
            "azure-key-vault"
        } else {
            "certificate"
        };
        for row in &rows {
            let format = &manifest[row["key_id"].as_str().unwrap()].0;
            if format != "cert" {
                assert_eq!(row["protection"], expected_protection, "{case}: {row}");
            }
        }
        let text = xml_text(&dir);
        let peer_cert_keys = manifest.len() - unprotected;
        match case {
            "oaep" | "new-cert" => {
                assert_eq!(
                    text.matches("xmlenc#rsa-oaep-mgf1p").count(),
                    unprotected,
                    "{case}"
                );
                assert_eq!(
                    text.matches("xmlenc#rsa-1_5").count(),
                    peer_cert_keys,
                    "{case}"
                );
            }
            "rsa-1_5" => assert_eq!(text.matches("xmlenc#rsa-1_5").count(), manifest.len()),
            _ => assert_eq!(
                text.matches(&format!("<kid>{KID}/v1</kid>")).count(),
                unprotected
            ),
        }
        // .NET reads every key, with the material of each protection.
        let nk = n("n.key.pem");
        let nc = n("n.cert.pem");
        let mut material: Vec<&str> = cert_material.to_vec();
        match case {
            "new-cert" => material.extend(["--cert", &nc, "--key", &nk]),
            "local-kek" => material.extend(["--key", &nk]),
            _ => {}
        }
        assert_eq!(
            peer_keys(&peer, &dir, &material),
            expected(&manifest),
            "{case}"
        );
        // dpwrap agrees, and a second run changes nothing.
        let (run, rows) = decrypt_map(
            &[
                &cert_material[..],
                &["--cert", &nc, "--key", &nk, "--local-kek", &nk, s(&dir)],
            ]
            .concat(),
        );
        run.expect(0);
        assert_eq!(master_keys(&rows), expected(&manifest), "{case}");
        let again = snapshot(&dir);
        let (cc, ck) = (c("c.cert.pem"), c("c.key.pem"));
        dpwrap(["protect", "--to-cert", &cc, "--to-key", &ck, s(&dir)]).expect(0);
        assert_eq!(snapshot(&dir), again, "{case}: nothing left to protect");
    }
}

/// A peer ring with a revocation, every protection the peer writes.
fn full_ring(
    peer: &interop::Peer,
    base: &Path,
) -> (std::path::PathBuf, std::path::PathBuf, Manifest, String) {
    let (ring, certs, manifest) = peer_ring(
        peer,
        base,
        12,
        "cert,cert-oaep,null,none,akv,akv-legacy",
        2048,
    );
    let revoked = manifest.keys().nth(3).unwrap().clone();
    peer.ok([
        "revoke",
        "--out",
        s(&ring),
        "--key-id",
        &revoked,
        "--reason",
        "leaked",
    ]);
    (ring, certs, manifest, revoked)
}

#[test]
fn rewrap_in_place_cert_to_cert_then_to_key_vault_format() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest, revoked) = full_ring(&peer, tmp.path());
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let new = tmp.path().join("new");
    // The new certificate and its key in one PEM file, made by dpwrap cert new.
    let thumbprint = dpwrap([
        "cert",
        "new",
        "--subject",
        "CN=dpwrap rewrap test",
        "--bits",
        "2048",
        "--days",
        "30",
        "--out-dir",
        s(&new),
        "--name",
        "n",
    ])
    .expect(0)
    .stdout
    .trim()
    .to_owned();
    let bundle = new.join("bundle.pem");
    std::fs::write(
        &bundle,
        [
            std::fs::read(new.join("n.cert.pem")).unwrap(),
            std::fs::read(new.join("n.key.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let revocation_file = std::fs::read_dir(&ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("revocation-")
        })
        .unwrap();
    let revocation_bytes = std::fs::read(&revocation_file).unwrap();
    let old = [
        "--cert",
        &c("c.cert.pem"),
        "--key",
        &c("c.key.pem"),
        "--local-kek",
        &c("c.key.pem"),
    ];

    // Dry run: lists all 12, writes nothing.
    let before = snapshot(&ring);
    let mut args = vec!["rewrap", s(&ring), "--dry-run", "--to-cert", s(&bundle)];
    args.extend(old);
    let run = dpwrap(&args).expect(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("would rewrap"))
            .count(),
        12,
        "{}",
        run.stdout
    );
    assert_eq!(snapshot(&ring), before);

    // cert (and everything else) -> the new certificate.
    let mut args = vec!["rewrap", s(&ring), "--to-cert", s(&bundle)];
    args.extend(old);
    dpwrap(&args).expect(0);
    assert_eq!(
        std::fs::read(&revocation_file).unwrap(),
        revocation_bytes,
        "revocations untouched"
    );
    for row in inspect(s(&ring)) {
        assert_eq!(row["protection"], "certificate", "{row}");
        assert_eq!(row["revoked"], row["key_id"] == revoked.as_str());
    }
    let text = xml_text(&ring);
    let old_b64 = {
        let pem = std::fs::read_to_string(certs.join("c.cert.pem")).unwrap();
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert!(
        !text.contains(&old_b64[..60]),
        "no key names the old certificate any more"
    );
    let (ncert, nkey) = (new.join("n.cert.pem"), new.join("n.key.pem"));
    let n_material = ["--cert", s(&ncert), "--key", s(&nkey)];
    let peer_view = peer_decrypt(&peer, &ring, &n_material);
    assert_eq!(
        peer_view
            .iter()
            .map(|(k, (m, _))| (k.clone(), m.clone()))
            .collect::<BTreeMap<_, _>>(),
        expected(&manifest)
    );
    assert!(peer_view[&revoked].1, "the peer sees the revocation");
    // The old material no longer opens anything: dpwrap with the new bundle only.
    let (run, rows) = decrypt_map(&["--cert", s(&bundle), s(&ring)]);
    run.expect(0);
    assert_eq!(master_keys(&rows), expected(&manifest));
    assert!(
        rows.values()
            .all(|r| r["file"].as_str().unwrap().starts_with(s(&ring)))
    );
    // The thumbprint `cert new` printed is the one openssl computes.
    let openssl = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha1",
            "-in",
            s(&new.join("n.cert.pem")),
        ])
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(openssl.stdout).unwrap();
    assert_eq!(
        fingerprint
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', ""),
        thumbprint
    );

    // The new certificate -> Key Vault's format with a local KEK (legacy type name too).
    let kek_dir = tmp.path().join("kek");
    peer.gen_cert(&kek_dir, 2048, PASSWORD, "k");
    let kek = kek_dir.join("k.key.pem");
    for legacy in [false, true] {
        let target = format!("{KID}/{}={}", if legacy { "v2" } else { "v1" }, s(&kek));
        let mut args = vec![
            "rewrap",
            s(&ring),
            "--to-local-kek",
            &target,
            "--cert",
            s(&bundle),
            "--local-kek",
            s(&kek),
        ];
        if legacy {
            args.push("--legacy-azure-type");
        }
        let run = dpwrap(&args).expect(0);
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("rewrapped"))
                .count(),
            12
        );
        for row in inspect(s(&ring)) {
            assert_eq!(row["protection"], "azure-key-vault");
            let t = row["decryptor_type"].as_str().unwrap();
            assert_eq!(
                t.starts_with("Microsoft.AspNetCore.DataProtection.AzureKeyVault"),
                legacy,
                "{t}"
            );
        }
        assert_eq!(
            peer_keys(&peer, &ring, &["--key", s(&kek)]),
            expected(&manifest),
            "legacy: {legacy}"
        );
    }
}

#[test]
fn rewrap_out_into_a_directory_a_document_and_redis() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest, revoked) = full_ring(&peer, tmp.path());
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let old = [
        "--cert",
        &c("c.cert.pem"),
        "--key",
        &c("c.key.pem"),
        "--local-kek",
        &c("c.key.pem"),
    ];
    let new = tmp.path().join("new");
    peer.gen_cert(&new, 2048, PASSWORD, "n");
    let nc = s(&new.join("n.cert.pem")).to_owned();
    let nk = s(&new.join("n.key.pem")).to_owned();
    let src_before = snapshot(&ring);
    let server = if cfg!(feature = "redis") {
        RedisServer::start(&[])
    } else {
        None
    };
    let redis_url = server.as_ref().map(|s| s.url("?key=rewrapped"));

    let mut dests: Vec<(String, String)> = vec![
        ("directory".into(), s(&tmp.path().join("out-dir")).into()),
        ("document".into(), s(&tmp.path().join("out.xml")).into()),
    ];
    if redis_url.is_some() {
        dests.push(("redis".into(), "env:DPWRAP_TEST_REDIS".into()));
    }
    for (kind, dest) in &dests {
        let mut args = vec![
            "rewrap",
            s(&ring),
            "--out",
            dest,
            "--to-cert",
            &nc,
            "--to-key",
            &nk,
        ];
        args.extend(old);
        let mut c = cmd(&args);
        if let Some(url) = &redis_url {
            c.env("DPWRAP_TEST_REDIS", url);
        }
        let run = run_cmd(c).expect(0);
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("rewrapped"))
                .count(),
            12,
            "{kind}: {}",
            run.stdout
        );
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("copied"))
                .count(),
            1,
            "{kind}: the revocation"
        );
        assert_eq!(
            snapshot(&ring),
            src_before,
            "{kind}: the source is untouched"
        );

        // Read back: dpwrap with the new certificate only.
        let mut c = cmd([
            "decrypt", "--json", "--reveal", "--cert", &nc, "--key", &nk, dest,
        ]);
        if let Some(url) = &redis_url {
            c.env("DPWRAP_TEST_REDIS", url);
        }
        let run = run_cmd(c).expect(0);
        let rows: BTreeMap<String, serde_json::Value> = run
            .json()
            .into_iter()
            .map(|v| (v["key_id"].as_str().unwrap().to_owned(), v))
            .collect();
        assert_eq!(master_keys(&rows), expected(&manifest), "{kind}");
        assert!(rows[&revoked]["revoked"].as_bool().unwrap(), "{kind}");
        for row in rows.values() {
            assert_eq!(row["protection"], "certificate");
        }

        // Again: everything is already there, nothing is added.
        let mut args = vec![
            "rewrap",
            s(&ring),
            "--out",
            dest,
            "--to-cert",
            &nc,
            "--to-key",
            &nk,
        ];
        args.extend(old);
        let mut c = cmd(&args);
        if let Some(url) = &redis_url {
            c.env("DPWRAP_TEST_REDIS", url);
        }
        let run = run_cmd(c).expect(0);
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.starts_with("skipped"))
                .count(),
            13,
            "{kind}: {}",
            run.stdout
        );

        // .NET reads it: copied into a directory for the peer.
        let view = tmp.path().join(format!("view-{kind}"));
        let mut c = cmd(["copy", dest, s(&view)]);
        if let Some(url) = &redis_url {
            c.env("DPWRAP_TEST_REDIS", url);
        }
        run_cmd(c).expect(0);
        let peer_view = peer_decrypt(&peer, &view, &["--cert", &nc, "--key", &nk]);
        assert_eq!(
            peer_view
                .iter()
                .map(|(k, (m, _))| (k.clone(), m.clone()))
                .collect::<BTreeMap<_, _>>(),
            expected(&manifest),
            "{kind}"
        );
        assert!(peer_view[&revoked].1, "{kind}");
    }
    if redis_url.is_none() {
        eprintln!("(the Redis destination was skipped)");
    }
}

#[test]
fn copy_twice_adds_nothing_and_dry_runs_write_nothing() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest, _) = full_ring(&peer, tmp.path());
    let doc = tmp.path().join("ring.xml");
    let run = dpwrap(["copy", s(&ring), s(&doc), "--dry-run"]).expect(0);
    assert_eq!(run.stdout.lines().count(), 13);
    assert!(!doc.exists(), "a dry run writes nothing");
    let run = dpwrap(["copy", s(&ring), s(&doc)]).expect(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("added"))
            .count(),
        13
    );
    let once = std::fs::read(&doc).unwrap();
    let run = dpwrap(["copy", s(&ring), s(&doc)]).expect(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("added 0 element(s); 13 already there"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&doc).unwrap(), once);
    // The document decrypts like the directory.
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let (run, rows) = decrypt_map(&[
        "--cert",
        &c("c.cert.pem"),
        "--key",
        &c("c.key.pem"),
        "--local-kek",
        &c("c.key.pem"),
        s(&doc),
    ]);
    run.expect(0);
    assert_eq!(master_keys(&rows), expected(&manifest));
    assert!(rows.values().all(|r| {
        r["file"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}#element ", s(&doc)))
    }));
    // In place in the document: protect the unprotected keys, then re-wrap all to a local KEK.
    let kek = format!("{KID}/3={}", c("c.key.pem"));
    let run = dpwrap(["protect", "--to-local-kek", &kek, s(&doc)]).expect(0);
    let unprotected = manifest
        .values()
        .filter(|(f, _)| f == "none" || f == "null")
        .count();
    assert_eq!(run.stdout.lines().count(), unprotected, "{}", run.stdout);
    let (cc, ck) = (c("c.cert.pem"), c("c.key.pem"));
    let old = [
        "--cert",
        cc.as_str(),
        "--key",
        ck.as_str(),
        "--local-kek",
        ck.as_str(),
    ];
    let mut args = vec!["rewrap", s(&doc), "--to-local-kek", &kek];
    args.extend(old);
    let run = dpwrap(&args).expect(0);
    assert_eq!(
        run.stdout.lines().count(),
        manifest.len() - unprotected,
        "{}",
        run.stdout
    );
    let (run, rows) = decrypt_map(&["--local-kek", &kek, s(&doc)]);
    run.expect(0);
    assert_eq!(master_keys(&rows), expected(&manifest));
    let view = tmp.path().join("doc-view");
    dpwrap(["copy", s(&doc), s(&view)]).expect(0);
    assert_eq!(
        peer_keys(&peer, &view, &["--key", &ck]),
        expected(&manifest),
        "the peer reads the re-wrapped document"
    );
}

#[test]
fn key_new_and_revoke_as_dotnet_writes_them() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    peer.gen_cert(&certs, 2048, PASSWORD, "c");
    let cc = s(&certs.join("c.cert.pem")).to_owned();
    let ck = s(&certs.join("c.key.pem")).to_owned();
    let dir = tmp.path().join("ring");

    // A public certificate only: written, with a note that it was not verified.
    let run = dpwrap([
        "key",
        "new",
        s(&dir),
        "--to-cert",
        &cc,
        "--activation",
        "2030-01-01",
        "--lifetime",
        "30d",
        "--json",
    ])
    .expect(0);
    assert!(run.stderr.contains("not verified"), "{}", run.stderr);
    let out = &run.json()[0];
    let first = out["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        out["file"].as_str().unwrap(),
        s(&dir.join(format!("key-{first}.xml")))
    );
    assert!(dir.join(format!("key-{first}.xml")).is_file());
    // With the private key: verified, the id alone printed.
    let run = dpwrap(["key", "new", s(&dir), "--to-cert", &cc, "--to-key", &ck]).expect(0);
    let second = run.stdout.trim().to_owned();
    assert!(uuid::Uuid::parse_str(&second).is_ok(), "{}", run.stdout);
    assert!(!run.stderr.contains("not verified"));

    let rows = inspect(s(&dir));
    let row = rows.iter().find(|r| r["key_id"] == first.as_str()).unwrap();
    assert_eq!(row["activates"], "2030-01-01T00:00:00Z");
    assert_eq!(row["expires"], "2030-01-31T00:00:00Z");
    assert_eq!(row["encryption_algorithm"], "AES_256_CBC");
    assert_eq!(row["validation_algorithm"], "HMACSHA256");
    assert_eq!(row["protection"], "certificate");

    // The peer reads both keys; dpwrap gets the same master keys.
    let peer_view = peer_decrypt(&peer, &dir, &["--cert", &cc, "--key", &ck]);
    assert_eq!(peer_view.len(), 2);
    let (run, rows) = decrypt_map(&["--cert", &cc, "--key", &ck, s(&dir)]);
    run.expect(0);
    for (id, (mk, revoked)) in &peer_view {
        assert_eq!(rows[id]["master_key"].as_str().unwrap(), mk);
        assert!(!revoked);
        assert_eq!(base64_len(mk), 64);
    }

    // Revoke one, with a reason.
    let run = dpwrap(["revoke", s(&dir), &first, "--reason", "compromised laptop"]).expect(0);
    assert_eq!(run.stdout.trim(), format!("revocation-{first}"));
    let rows = inspect(s(&dir));
    let row = rows.iter().find(|r| r["key_id"] == first.as_str()).unwrap();
    assert_eq!(row["revoked"], true);
    assert_eq!(row["revocation_reason"], "compromised laptop");
    let other = rows
        .iter()
        .find(|r| r["key_id"] == second.as_str())
        .unwrap();
    assert_eq!(other["revoked"], false);
    let peer_view = peer_decrypt(&peer, &dir, &["--cert", &cc, "--key", &ck]);
    assert!(peer_view[&first].1 && !peer_view[&second].1);
    // Twice: nothing more written.
    let before = snapshot(&dir);
    dpwrap(["revoke", s(&dir), &first]).expect(0);
    assert_eq!(snapshot(&dir), before);
    // A key that is not there.
    let run = dpwrap(["revoke", s(&dir), "0f8a1c2e-1111-2222-3333-444455556666"]).expect(1);
    assert!(
        run.stderr
            .contains("no key 0f8a1c2e-1111-2222-3333-444455556666"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&dir), before);

    // Revoke everything created before a date in the future: both revoked, as .NET sees it.
    let run = dpwrap([
        "revoke",
        s(&dir),
        "--all-before",
        "2999-01-01T00:00:00Z",
        "--reason",
        "rotate all",
    ])
    .expect(0);
    assert_eq!(run.stdout.trim(), "revocation-29990101T000000Z");
    let peer_view = peer_decrypt(&peer, &dir, &["--cert", &cc, "--key", &ck]);
    assert!(peer_view.values().all(|(_, r)| *r), "{peer_view:?}");
    assert!(inspect(s(&dir)).iter().all(|r| r["revoked"] == true));

    // key new into a ring document and Redis; the peer reads them after a copy.
    let doc = tmp.path().join("ring.xml");
    let id = dpwrap(["key", "new", s(&doc), "--to-cert", &cc, "--to-key", &ck])
        .expect(0)
        .stdout;
    let view = tmp.path().join("doc-view");
    dpwrap(["copy", s(&doc), s(&view)]).expect(0);
    assert!(peer_decrypt(&peer, &view, &["--cert", &cc, "--key", &ck]).contains_key(id.trim()));
    if let Some(server) = cfg!(feature = "redis")
        .then(|| RedisServer::start(&[]))
        .flatten()
    {
        let url = server.url("?key=newkeys");
        let run = dpwrap([
            "key",
            "new",
            &url,
            "--to-cert",
            &cc,
            "--to-key",
            &ck,
            "--json",
        ])
        .expect(0);
        let out = &run.json()[0];
        assert!(
            out["file"].as_str().unwrap().starts_with("redis://"),
            "{out}"
        );
        let view = tmp.path().join("redis-view");
        dpwrap(["copy", &url, s(&view)]).expect(0);
        let peer_view = peer_decrypt(&peer, &view, &["--cert", &cc, "--key", &ck]);
        assert!(peer_view.contains_key(out["key_id"].as_str().unwrap()));
        let run = dpwrap([
            "revoke",
            &url,
            out["key_id"].as_str().unwrap(),
            "--reason",
            "r",
        ])
        .expect(0);
        assert!(run.stdout.starts_with("revocation-"));
        let rows = inspect(&url);
        assert_eq!(rows[0]["revoked"], true);
    }
}

fn base64_len(b64: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .len()
}

/// A Redis password given through `env:NAME` never appears in output; rows name the store with
/// `***` in its place.
#[test]
fn redis_passwords_are_redacted_everywhere() {
    if !cfg!(feature = "redis") {
        return;
    }
    let Some(server) = RedisServer::start(&["--requirepass", "s3cret-redis-pw"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let kek = tmp.path().join("kek.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            s(&kek),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let url = format!(
        "redis://:s3cret-redis-pw@127.0.0.1:{}?key=ring",
        server.port
    );
    let local = format!("{KID}/1={}", s(&kek));
    let with_env = |args: &[&str]| {
        let mut c = cmd(args);
        c.env("DPWRAP_TEST_RING", &url);
        run_cmd(c)
    };
    let runs = [
        with_env(&[
            "key",
            "new",
            "env:DPWRAP_TEST_RING",
            "--to-local-kek",
            &local,
            "--json",
        ])
        .expect(0),
        with_env(&["inspect", "--json", "env:DPWRAP_TEST_RING"]).expect(0),
        with_env(&[
            "decrypt",
            "--json",
            "--local-kek",
            s(&kek),
            "env:DPWRAP_TEST_RING",
        ])
        .expect(0),
        with_env(&[
            "rewrap",
            "env:DPWRAP_TEST_RING",
            "--to-local-kek",
            &local,
            "--legacy-azure-type",
            "--local-kek",
            s(&kek),
        ])
        .expect(0),
        // No material: the key fails, and the message names the store, redacted.
        with_env(&["decrypt", "env:DPWRAP_TEST_RING"]).expect(1),
    ];
    for run in &runs {
        assert!(
            !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
            "{run:?}"
        );
    }
    let file = runs[0].json()[0]["file"].as_str().unwrap().to_owned();
    assert!(file.starts_with("redis://:***@127.0.0.1:"), "{file}");
    let row = &runs[2].json()[0];
    assert_eq!(row["status"], "ok");
    assert!(row["file"].as_str().unwrap().contains("***"), "{row}");
    assert_eq!(runs[1].json()[0]["protection"], "azure-key-vault");
    assert!(
        runs[3].stdout.contains("rewrapped redis://:***@"),
        "{}",
        runs[3].stdout
    );
}

/// A ring that moved to certificates from Windows keeps its DPAPI keys: `rewrap` refuses it as a
/// whole (nothing written) unless `--leave-windows-only` leaves those keys byte for byte.
#[test]
fn rewrap_leaves_dpapi_keys_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let recognition = shared("vectors/aspnet/recognition");
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let dpapi_id = "7b636973-76e8-49e3-961a-3c4b763a009d";
    let plain_ids = [
        "d17a439d-8228-4216-9ea5-16a5424a0788",
        "de1dd770-8b81-4ff8-b8ff-d559b1c9eeef",
    ];
    std::fs::copy(
        recognition.join(format!("dpapi-key-{dpapi_id}.xml")),
        ring.join(format!("key-{dpapi_id}.xml")),
    )
    .unwrap();
    for id in plain_ids {
        std::fs::copy(
            recognition.join(format!("plain-key-{id}.xml")),
            ring.join(format!("key-{id}.xml")),
        )
        .unwrap();
    }
    let certs = tmp.path().join("certs");
    dpwrap([
        "cert",
        "new",
        "--subject",
        "CN=dpwrap dpapi test",
        "--bits",
        "2048",
        "--days",
        "30",
        "--out-dir",
        s(&certs),
        "--name",
        "n",
    ])
    .expect(0);
    let cert = certs.join("n.cert.pem");
    let key = certs.join("n.key.pem");
    let target = ["--to-cert", s(&cert), "--to-key", s(&key)];

    let before = snapshot(&ring);
    let mut args = vec!["rewrap", s(&ring)];
    args.extend(target);
    let run = dpwrap(&args);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("only Windows can decrypt it"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(dpapi_id), "{}", run.stderr);
    assert!(
        run.stderr.contains("--leave-windows-only"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&ring), before, "nothing is written");

    let mut args = vec!["rewrap", s(&ring), "--leave-windows-only"];
    args.extend(target);
    let run = dpwrap(&args).expect(0);
    assert!(
        run.stderr
            .contains(&format!("key {dpapi_id} is protected with Windows DPAPI")),
        "{}",
        run.stderr
    );
    let after = snapshot(&ring);
    let dpapi_file = ring.join(format!("key-{dpapi_id}.xml"));
    assert_eq!(
        after[&dpapi_file], before[&dpapi_file],
        "the DPAPI key is left byte for byte"
    );
    let rows: BTreeMap<String, String> = inspect(s(&ring))
        .into_iter()
        .map(|r| {
            (
                r["key_id"].as_str().unwrap().to_owned(),
                r["protection"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows[dpapi_id], "dpapi");
    let (run, decrypted) = decrypt_map(&[s(&ring), "--cert", s(&cert), "--key", s(&key)]);
    run.expect(1);
    for id in plain_ids {
        assert_eq!(rows[id], "certificate");
        let text =
            std::fs::read_to_string(recognition.join(format!("plain-key-{id}.xml"))).unwrap();
        let value = text
            .split("<value>")
            .nth(1)
            .unwrap()
            .split("</value>")
            .next()
            .unwrap();
        assert_eq!(decrypted[id]["master_key"].as_str().unwrap(), value.trim());
    }
    // A second run changes nothing.
    let mut args = vec!["rewrap", s(&ring), "--leave-windows-only"];
    args.extend(target);
    dpwrap(&args).expect(0);
    assert_eq!(snapshot(&ring), after);
}
