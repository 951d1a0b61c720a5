//! Authenticated keys through the command line (issue 7, key planting): a ring whose keys are
//! signed by the farm's certificate, and a key planted by someone holding only the public
//! certificate. The planted key is refused under `--require-authenticated` (never decrypted) and
//! accepted with a visible warning by default; `inspect` shows which keys are authenticated; .NET
//! (the Mono peer) still decrypts the signed keys; a signed key that was altered is refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// Rows of `--json` output by key id.
fn by_id(run: &Run) -> BTreeMap<String, serde_json::Value> {
    run.json()
        .into_iter()
        .map(|v| (v["key_id"].as_str().unwrap_or("").to_owned(), v))
        .collect()
}

/// The `authentication` field of each row.
fn auth(rows: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    rows.iter()
        .map(|(id, v)| (id.clone(), v["authentication"].as_str().unwrap().to_owned()))
        .collect()
}

/// How many stderr lines warn about `id`.
fn warnings_about(run: &Run, id: &str) -> usize {
    run.stderr
        .lines()
        .filter(|l| l.contains("warning:") && l.contains(id))
        .count()
}

/// A ring written by the peer (`cert,cert-oaep,none`), re-protected in place and signed by the
/// farm's certificate `c`, plus one key made by `key new` and signed from the PFX. Returns the
/// ring, the certificates and the master keys the peer's manifest says (key id → base64).
fn signed_ring(
    peer: &interop::Peer,
    base: &Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    BTreeMap<String, String>,
) {
    let (ring, certs, manifest) = peer_ring(peer, base, 4, "cert,cert-oaep,none", 2048);
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let run = dpwrap([
        "rewrap",
        s(&ring),
        "--to-cert",
        &c("c.cert.pem"),
        "--to-key",
        &c("c.key.pem"),
        "--sign-with",
        &c("c.cert.pem"),
        "--sign-key",
        &c("c.key.pem"),
        "--cert",
        &c("c.cert.pem"),
        "--key",
        &c("c.key.pem"),
    ])
    .expect(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("rewrapped"))
            .count(),
        4,
        "{}",
        run.stdout
    );
    // The signer from a PFX (AES), its password from the environment after it.
    let mut cmd = cmd([
        "key",
        "new",
        s(&ring),
        "--to-cert",
        &c("c.cert.pem"),
        "--to-key",
        &c("c.key.pem"),
        "--sign-with-pfx",
        &c("c.pfx"),
        "--password-env",
        "DPWRAP_TEST_SIGNER_PASSWORD",
    ]);
    cmd.env("DPWRAP_TEST_SIGNER_PASSWORD", PASSWORD);
    let out = run_cmd(cmd).expect(0);
    let new_id = out.stdout.trim().to_owned();
    assert_eq!(new_id.len(), 36, "{}", out.stdout);
    let mut expected = expected(&manifest);
    expected.insert(new_id, String::new());
    (ring, certs, expected)
}

#[test]
fn a_planted_key_is_refused_when_required_and_warned_about_by_default() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, expected) = signed_ring(&peer, tmp.path());
    let c = |n: &str| s(&certs.join(n)).to_owned();

    // The planter holds the public certificate only: key new writes the key as .NET would,
    // unverified and unsigned, and says so.
    let public_only = tmp.path().join("public.cert.pem");
    std::fs::copy(certs.join("c.cert.pem"), &public_only).unwrap();
    let planted_run = dpwrap(["key", "new", s(&ring), "--to-cert", s(&public_only)]).expect(0);
    assert!(
        planted_run.stderr.contains("not verified"),
        "{}",
        planted_run.stderr
    );
    let planted = planted_run.stdout.trim().to_owned();
    assert!(!expected.contains_key(&planted));

    // inspect without trusted certificates: which keys carry a proof.
    let rows = by_id(&dpwrap(["inspect", "--json", s(&ring)]).expect(0));
    assert_eq!(rows.len(), 6);
    let thumbprint = dpwrap::Certificate::from_file(certs.join("c.cert.pem"))
        .unwrap()
        .thumbprint();
    for (id, row) in &rows {
        if *id == planted {
            assert_eq!(row["authentication"], "unsigned", "{row}");
            assert!(row["signer"].is_null());
        } else {
            assert_eq!(row["authentication"], "signed", "{row}");
            assert_eq!(
                row["signer"].as_str().unwrap().to_ascii_uppercase(),
                format!("THUMBPRINT:{}", thumbprint.to_ascii_uppercase())
            );
        }
    }
    let table = dpwrap(["inspect", s(&ring)]).expect(0);
    assert!(
        table
            .stdout
            .lines()
            .next()
            .unwrap()
            .contains("AUTHENTICATION")
    );
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.contains("signed (not verified)"))
            .count(),
        5,
        "{}",
        table.stdout
    );
    assert!(!table.stderr.contains("warning"), "{}", table.stderr);

    // inspect with the farm's public certificate: verified, and the planted key named.
    let run = dpwrap([
        "inspect",
        "--json",
        "--trust-cert",
        s(&public_only),
        s(&ring),
    ])
    .expect(0);
    let statuses = auth(&by_id(&run));
    assert_eq!(statuses[&planted], "unsigned");
    assert_eq!(
        statuses.values().filter(|s| *s == "verified").count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(warnings_about(&run, &planted), 1, "{}", run.stderr);
    assert_eq!(run.stderr.matches("warning:").count(), 1, "{}", run.stderr);
    let run = dpwrap([
        "inspect",
        "--json",
        "--require-authenticated",
        "--trust-cert",
        s(&public_only),
        s(&ring),
    ])
    .expect(1);
    let rows = by_id(&run);
    assert_eq!(rows[&planted]["error_kind"], "unauthenticated");
    assert!(run.stderr.contains(&planted), "{}", run.stderr);
    assert_eq!(
        rows.values().filter(|r| r.get("error").is_some()).count(),
        1
    );

    // Default policy: everything decrypts; one warning, for the planted key only.
    let material = ["--cert", &c("c.cert.pem"), "--key", &c("c.key.pem")];
    let mut args = vec!["decrypt", "--json", "--reveal"];
    args.extend(material);
    args.push(s(&ring));
    let accepted = dpwrap(&args).expect(0);
    let rows = by_id(&accepted);
    assert_eq!(rows.len(), 6);
    assert!(rows.values().all(|r| r["status"] == "ok"), "{rows:?}");
    let statuses = auth(&rows);
    assert_eq!(statuses[&planted], "unsigned");
    assert_eq!(statuses.values().filter(|s| *s == "verified").count(), 5);
    let warning = format!(
        "warning: key {planted} is not authenticated; anyone who can write to this store could have planted it"
    );
    assert_eq!(
        accepted.stderr.matches(&warning).count(),
        1,
        "{}",
        accepted.stderr
    );
    assert_eq!(
        accepted.stderr.matches("warning:").count(),
        1,
        "{}",
        accepted.stderr
    );
    // The peer-made keys keep their master keys through re-protection and signing.
    for (id, mk) in &expected {
        if !mk.is_empty() {
            assert_eq!(rows[id]["master_key"].as_str().unwrap(), mk, "{id}");
        }
    }
    let planted_master = rows[&planted]["master_key"].as_str().unwrap().to_owned();

    // Required: the planted key is refused, named, and never decrypted; the others decrypt.
    let mut args = vec!["decrypt", "--json", "--reveal", "--require-authenticated"];
    args.extend(material);
    args.push(s(&ring));
    let refused = dpwrap(&args).expect(1);
    let rows = by_id(&refused);
    let row = &rows[&planted];
    assert_eq!(row["status"], "error", "{row}");
    assert_eq!(row["error_kind"], "unauthenticated", "{row}");
    assert_eq!(row["authentication"], "unsigned", "{row}");
    assert!(row.get("master_key").is_none(), "{row}");
    let message = row["error"].as_str().unwrap();
    assert!(
        message.contains(&planted) && message.contains("not authenticated"),
        "{message}"
    );
    assert!(refused.stderr.contains(&planted), "{}", refused.stderr);
    for out in [&refused.stdout, &refused.stderr] {
        assert!(!out.contains(&planted_master), "{out}");
    }
    assert_eq!(
        rows.values().filter(|r| r["status"] == "ok").count(),
        5,
        "{rows:?}"
    );
    // The table says the same.
    let mut args = vec!["decrypt", "--require-authenticated"];
    args.extend(material);
    args.push(s(&ring));
    let table = dpwrap(&args).expect(1);
    let line = table.stdout.lines().find(|l| l.contains(&planted)).unwrap();
    assert!(
        line.contains("unsigned") && line.contains("error"),
        "{line}"
    );

    // .NET ignores the proofs: the peer decrypts every key, to the same master keys.
    let peer_rows = peer_decrypt(&peer, &ring, &material);
    assert_eq!(peer_rows.len(), 6);
    let ours = master_keys(&by_id(&accepted));
    for (id, (mk, _)) in &peer_rows {
        assert_eq!(*mk, ours[id], "{id}");
    }
    assert_eq!(peer_rows[&planted].0, planted_master);

    // A certificate that did not sign: its keys are untrusted, not verified.
    let other = tmp.path().join("other");
    peer.gen_cert(&other, 2048, PASSWORD, "o");
    let run = dpwrap([
        "inspect",
        "--json",
        "--trust-cert",
        s(&other.join("o.cert.pem")),
        s(&ring),
    ])
    .expect(0);
    let statuses = auth(&by_id(&run));
    assert_eq!(
        statuses
            .values()
            .filter(|s| *s == "untrusted-signer")
            .count(),
        5,
        "{statuses:?}"
    );
    // Six warnings: five untrusted signers and the planted key.
    assert_eq!(run.stderr.matches("warning:").count(), 6, "{}", run.stderr);
}

#[test]
fn a_signed_key_that_was_altered_is_refused_under_both_policies() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, expected) = signed_ring(&peer, tmp.path());
    let c = |n: &str| s(&certs.join(n)).to_owned();
    // Extend one signed key's life by a year, keeping everything else (as someone who wants an
    // old key used again would).
    let material = ["--cert", &c("c.cert.pem"), "--key", &c("c.key.pem")];
    let victim = expected.keys().next().unwrap().clone();
    let file = ring.join(format!("key-{victim}.xml"));
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text.find("<expirationDate>").unwrap() + "<expirationDate>".len();
    let year: u32 = text[start..start + 4].parse().unwrap();
    let tampered = format!("{}{}{}", &text[..start], year + 1, &text[start + 4..]);
    assert_ne!(tampered, text);
    std::fs::write(&file, tampered).unwrap();

    for policy in [None, Some("--require-authenticated")] {
        let mut args = vec!["decrypt", "--json", "--reveal"];
        args.extend(policy);
        args.extend(material);
        args.push(s(&ring));
        let run = dpwrap(&args).expect(1);
        let rows = by_id(&run);
        let row = &rows[&victim];
        assert_eq!(row["status"], "error", "{row}");
        assert_eq!(row["authentication"], "invalid", "{row}");
        assert_eq!(row["error_kind"], "unauthenticated", "{row}");
        assert!(row.get("master_key").is_none());
        assert!(row["error"].as_str().unwrap().contains("altered"), "{row}");
        assert_eq!(
            rows.values().filter(|r| r["status"] == "ok").count(),
            expected.len() - 1
        );
    }
    let run = dpwrap([
        "inspect",
        "--json",
        "--trust-cert",
        &c("c.cert.pem"),
        s(&ring),
    ])
    .expect(1);
    assert_eq!(by_id(&run)[&victim]["authentication"], "invalid");

    // Re-wrapping with the same signer must not sign the alteration: refused, nothing written.
    let before = snapshot(&ring);
    let (cert, key) = (c("c.cert.pem"), c("c.key.pem"));
    let mut args = vec![
        "rewrap",
        s(&ring),
        "--to-cert",
        &cert,
        "--to-key",
        &key,
        "--sign-with",
        &cert,
        "--sign-key",
        &key,
    ];
    args.extend(material);
    for dry_run in [true, false] {
        let mut args = args.clone();
        if dry_run {
            args.push("--dry-run");
        }
        let run = dpwrap(&args).expect(1);
        assert!(
            run.stderr.contains(&victim) && run.stderr.contains("altered"),
            "{}",
            run.stderr
        );
        assert_eq!(snapshot(&ring), before);
    }
}

#[test]
fn plain_dotnet_rings_read_quietly_and_rewrapping_keeps_or_drops_proofs_visibly() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) = peer_ring(&peer, tmp.path(), 4, "cert,none", 2048);
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let material = ["--cert", &c("c.cert.pem"), "--key", &c("c.key.pem")];

    // No key is signed and no certificate was named as trusted: no warning at all.
    let mut args = vec!["decrypt", "--json", "--reveal"];
    args.extend(material);
    args.push(s(&ring));
    let run = dpwrap(&args).expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(auth(&by_id(&run)).values().all(|s| s == "unsigned"));
    assert_eq!(master_keys(&by_id(&run)), expected(&manifest));
    // Naming a trusted certificate asks for the warnings.
    let trusted = c("c.cert.pem");
    let mut args = vec!["decrypt", "--json", "--trust-cert", &trusted];
    args.extend(material);
    args.push(s(&ring));
    let run = dpwrap(&args).expect(0);
    assert_eq!(run.stderr.matches("warning:").count(), 4, "{}", run.stderr);
    // Requiring authentication with nothing trusted is a usage error.
    let run = dpwrap([
        "decrypt",
        "--require-authenticated",
        "--local-kek",
        &c("c.key.pem"),
        s(&ring),
    ])
    .expect(2);
    assert!(run.stderr.contains("--trust-cert"), "{}", run.stderr);

    // Signing the ring; a second run changes nothing.
    let sign = [
        "--sign-with",
        &c("c.cert.pem"),
        "--sign-key",
        &c("c.key.pem"),
    ];
    let target = ["--to-cert", &c("c.cert.pem"), "--to-key", &c("c.key.pem")];
    for (round, rewrapped) in [(0, 4), (1, 0)] {
        let mut args = vec!["rewrap", s(&ring)];
        args.extend(target);
        args.extend(sign);
        args.extend(material);
        let run = dpwrap(&args).expect(0);
        assert!(
            run.stderr
                .contains(&format!("rewrapped {rewrapped} key(s)")),
            "round {round}: {}",
            run.stderr
        );
    }
    let run = dpwrap([
        "inspect",
        "--json",
        "--require-authenticated",
        "--trust-cert",
        &c("c.cert.pem"),
        s(&ring),
    ])
    .expect(0);
    assert!(auth(&by_id(&run)).values().all(|s| s == "verified"));

    // Re-protecting without a signer drops the proofs (they would no longer verify), saying so;
    // the keys are then unsigned, not invalid.
    let other = tmp.path().join("other");
    peer.gen_cert(&other, 2048, PASSWORD, "o");
    let o = |n: &str| s(&other.join(n)).to_owned();
    let (o_cert, o_key) = (o("o.cert.pem"), o("o.key.pem"));
    let mut args = vec!["rewrap", s(&ring), "--to-cert", &o_cert, "--to-key", &o_key];
    args.extend(material);
    let run = dpwrap(&args).expect(0);
    assert_eq!(
        run.stderr.matches("no longer is").count(),
        4,
        "{}",
        run.stderr
    );
    let run = dpwrap([
        "decrypt",
        "--json",
        "--reveal",
        "--cert",
        &o("o.cert.pem"),
        "--key",
        &o("o.key.pem"),
        s(&ring),
    ])
    .expect(0);
    assert!(auth(&by_id(&run)).values().all(|s| s == "unsigned"));
    assert_eq!(master_keys(&by_id(&run)), expected(&manifest));
}

/// A ring protected with a Key Vault key and signed with a certificate only writers hold: readers
/// trust the public certificate; a key planted with the vault key's public half is refused and
/// never reaches the vault.
#[cfg(feature = "azure")]
#[test]
fn a_key_vault_ring_signed_with_a_writers_certificate() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, _certs, manifest) = peer_ring(&peer, tmp.path(), 4, "none", 2048);
    let v = common::local_vault::start(tmp.path());
    let keys = tmp.path().join("keys");
    peer.gen_cert(&keys, 2048, PASSWORD, "kek");
    peer.gen_cert(&keys, 2048, PASSWORD, "writers");
    let k = |n: &str| s(&keys.join(n)).to_owned();
    let kid = v
        .vault
        .import_pem(
            "dataprotection",
            &std::fs::read_to_string(keys.join("kek.key.pem")).unwrap(),
        )
        .unwrap();

    v.run(&[
        "protect",
        "--to-key-vault",
        &kid,
        "--sign-with",
        &k("writers.cert.pem"),
        "--sign-key",
        &k("writers.key.pem"),
        s(&ring),
    ])
    .expect(0);
    // Planted in Key Vault's format under the same kid (what `wrapKey` permission allows).
    let planted = dpwrap([
        "key",
        "new",
        s(&ring),
        "--to-local-kek",
        &format!("{kid}={}", k("kek.key.pem")),
    ])
    .expect(0)
    .stdout
    .trim()
    .to_owned();

    let writers = k("writers.cert.pem");
    let reader = |extra: &[&str]| {
        v.vault.reset_stats();
        let mut args = vec![
            "decrypt",
            "--json",
            "--reveal",
            "--key-vault-kid",
            &kid,
            "--trust-cert",
            &writers,
        ];
        args.extend(extra);
        args.push(s(&ring));
        let run = v.run(&args);
        (run, v.vault.stats().unwraps)
    };
    let (run, unwraps) = reader(&["--require-authenticated"]);
    let run = run.expect(1);
    let rows = by_id(&run);
    assert_eq!(rows[&planted]["error_kind"], "unauthenticated");
    assert_eq!(master_keys(&rows), expected(&manifest));
    assert_eq!(unwraps, 4, "the planted key never reached the vault");

    let (run, unwraps) = reader(&[]);
    let run = run.expect(0);
    assert_eq!(unwraps, 5);
    assert_eq!(warnings_about(&run, &planted), 1, "{}", run.stderr);
    assert_eq!(run.stderr.matches("warning:").count(), 1, "{}", run.stderr);
    let rows = by_id(&run);
    assert_eq!(rows[&planted]["authentication"], "unsigned");
    assert_eq!(auth(&rows).values().filter(|s| *s == "verified").count(), 4);
}

/// A farm on Key Vault alone: keys wrapped with one vault key and signed with another
/// (`--sign-with-kid`, the vault signs); readers trust the signing key (`--trust-kid`, its public
/// half read with `get`). An identity that holds `wrapKey` but not `sign` cannot sign, and the
/// key it plants is refused under `--require-authenticated` without reaching the vault.
#[cfg(feature = "azure")]
#[test]
fn a_key_vault_ring_signed_with_a_vault_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let v = common::local_vault::start(tmp.path());
    let kek = v.vault.create_key("dataprotection").unwrap();
    let signing_kid = v.vault.create_key("key-signing").unwrap();
    let signing = format!("{}/keys/key-signing", v.vault.url());
    let files = || std::fs::read_dir(&ring).unwrap().count();

    let new_key = |extra: &[&str]| {
        let mut args = vec!["key", "new", s(&ring), "--to-key-vault", &kek];
        args.extend(extra);
        v.run(&args)
    };
    let signed: Vec<String> = (0..2)
        .map(|_| {
            new_key(&["--sign-with-kid", &signing])
                .expect(0)
                .stdout
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(v.vault.stats().signs, 2);
    // The proof names the signing key's version.
    let text = std::fs::read_to_string(ring.join(format!("key-{}.xml", signed[0]))).unwrap();
    assert!(
        text.contains(&format!("signer=\"kid:{signing_kid}\"")),
        "{text}"
    );

    // The planter: wrapKey but no sign. Signing fails and writes nothing; unsigned, it plants.
    v.vault.deny("sign", None);
    let run = new_key(&["--sign-with-kid", &signing]).expect(1);
    assert!(
        run.stderr.contains("'sign' permission") && run.stderr.contains(&signing_kid),
        "{}",
        run.stderr
    );
    assert_eq!(files(), 2, "nothing was written");
    let planted = new_key(&[]).expect(0).stdout.trim().to_owned();
    v.vault.allow_all();

    let reader = |extra: &[&str]| {
        v.vault.reset_stats();
        let mut args = vec![
            "decrypt",
            "--json",
            "--reveal",
            "--key-vault-kid",
            &kek,
            "--trust-kid",
            &signing,
        ];
        args.extend(extra);
        args.push(s(&ring));
        let run = v.run(&args);
        (run, v.vault.stats().unwraps)
    };
    let (run, unwraps) = reader(&["--require-authenticated"]);
    let run = run.expect(1);
    let rows = by_id(&run);
    assert_eq!(
        rows[&planted]["error_kind"], "unauthenticated",
        "{}",
        run.stdout
    );
    for id in &signed {
        assert_eq!(rows[id]["status"], "ok");
        assert_eq!(rows[id]["authentication"], "verified");
    }
    assert_eq!(unwraps, 2, "the planted key never reached the vault");

    let (run, unwraps) = reader(&[]);
    let run = run.expect(0);
    assert_eq!(unwraps, 3);
    assert_eq!(warnings_about(&run, &planted), 1, "{}", run.stderr);

    let run = v
        .run(&["inspect", "--json", "--trust-kid", &signing, s(&ring)])
        .expect(0);
    let rows = by_id(&run);
    assert_eq!(rows[&planted]["authentication"], "unsigned");
    assert!(
        signed
            .iter()
            .all(|id| rows[id]["authentication"] == "verified")
    );

    let run = v
        .run(&[
            "decrypt",
            "--key-vault-kid",
            &kek,
            "--require-authenticated",
            s(&ring),
        ])
        .expect(2);
    assert!(run.stderr.contains("--trust-kid"), "{}", run.stderr);
}
