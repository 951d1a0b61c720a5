//! The stores through the command line (issue 9), against real servers: a `redis-server`, Azurite
//! (the Azure Storage emulator) and the local Key Vault. A ring written by the Mono peer moves
//! directory → Redis → Blob → one document → Key Vault secret with `dpwrap copy` and decrypts
//! identically at every step; the peer reads every store after `rewrap` and `key new`; the README's
//! migration recipe (an unprotected ring on the file system → Blob + Key Vault, the old ring left
//! working); and the bad input of the new stores.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::azurite::{self, Azurite};
use common::local_vault::{self, Vault};
use common::redis_server::RedisServer;
use common::*;

/// Material that decrypts every protection of a [`peer_ring`]: the certificate and its key, which
/// also stands for the Key Vault key in the akv formats.
fn material(certs: &Path) -> Vec<String> {
    let c = |n: &str| s(&certs.join(n)).to_owned();
    vec![
        "--cert".into(),
        c("c.cert.pem"),
        "--key".into(),
        c("c.key.pem"),
        "--local-kek".into(),
        c("c.key.pem"),
    ]
}

/// `dpwrap decrypt --json --reveal MATERIAL STORE` (through `v` when given): the rows in order,
/// without their `file` field (which names the store).
fn decrypt_rows(v: Option<&Vault>, material: &[String], store: &str) -> Vec<serde_json::Value> {
    let mut args: Vec<&str> = vec!["decrypt", "--json", "--reveal"];
    args.extend(material.iter().map(String::as_str));
    args.push(store);
    let run = match v {
        Some(v) => v.run(&args),
        None => dpwrap(&args),
    }
    .expect(0);
    run.json()
        .into_iter()
        .map(|mut row| {
            let file = row.as_object_mut().unwrap().remove("file").unwrap();
            assert!(file.as_str().is_some(), "{row}");
            row
        })
        .collect()
}

/// key id → master key of rows.
fn keys_of(rows: &[serde_json::Value]) -> BTreeMap<String, String> {
    rows.iter()
        .map(|r| {
            assert_eq!(r["status"], "ok", "{r}");
            (
                r["key_id"].as_str().unwrap().to_owned(),
                r["master_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A peer ring with a single-key revocation (of its first key, by the peer).
fn revoked_peer_ring(
    peer: &interop::Peer,
    base: &Path,
    count: usize,
    formats: &str,
) -> (PathBuf, PathBuf, Manifest, String) {
    let (ring, certs, manifest) = peer_ring(peer, base, count, formats, 2048);
    let revoked = manifest.keys().next().unwrap().clone();
    peer.ok([
        "revoke",
        "--out",
        s(&ring),
        "--key-id",
        &revoked,
        "--reason",
        "moved between stores",
    ]);
    (ring, certs, manifest, revoked)
}

fn azurite_with_container(container: &str) -> Option<Azurite> {
    let az = Azurite::start()?;
    block_on(az.create_container(container));
    Some(az)
}

#[test]
fn a_peer_ring_moves_through_every_store_and_decrypts_identically() {
    let Some(peer) = interop::peer() else { return };
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let Some(az) = azurite_with_container("keys") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let formats = "cert,cert-oaep,null,none,akv,akv-legacy";
    let (ring, certs, manifest, revoked) = revoked_peer_ring(&peer, tmp.path(), 12, formats);
    let m = material(&certs);

    let start = decrypt_rows(None, &m, s(&ring));
    assert_eq!(start.len(), 12);
    assert_eq!(keys_of(&start), expected(&manifest));
    let revoked_rows: Vec<&str> = start
        .iter()
        .filter(|r| r["revoked"] == true)
        .map(|r| r["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(revoked_rows, [revoked.as_str()]);

    let redis_url = redis.url("?key=moved");
    let blob_url = az.sas_url("keys", "ring.xml", "racwdl");
    let document = tmp.path().join("ring.xml");
    let steps = [
        (s(&ring).to_owned(), redis_url.clone()),
        (redis_url.clone(), blob_url.clone()),
        (blob_url.clone(), s(&document).to_owned()),
    ];
    for (from, to) in &steps {
        let run = dpwrap(["copy", from, to]).expect(0);
        // Twelve keys and the revocation.
        assert!(
            run.stderr.contains("added 13 element(s); 0 already there"),
            "{}",
            run.stderr
        );
        assert_eq!(decrypt_rows(None, &m, to), start, "{to}");
    }
    // .NET's bytes in the blob: one document, Content-Type as the Blob repository sets it.
    let (bytes, content_type) = block_on(az.get("keys", "ring.xml")).unwrap();
    assert_eq!(
        content_type.as_deref(),
        Some("application/xml; charset=utf-8")
    );
    assert!(
        bytes.starts_with(b"\xef\xbb\xbf<?xml"),
        "BOM and declaration"
    );
    assert_eq!(bytes, std::fs::read(&document).unwrap());

    // The Key Vault secret holds a smaller ring (25 KB): one key of each protection.
    let small_base = tmp.path().join("small");
    let (small, small_certs, small_manifest, _) = revoked_peer_ring(&peer, &small_base, 6, formats);
    let sm = material(&small_certs);
    let small_start = decrypt_rows(None, &sm, s(&small));
    let v = local_vault::start(tmp.path());
    let secret = v.secret_url("dataprotection-keys");
    let redis_small = redis.url("/1?key=small");
    let blob_small = az.sas_url("keys", "small.xml", "racwdl");
    let small_document = tmp.path().join("small.xml");
    for (from, to) in [
        (s(&small).to_owned(), redis_small.clone()),
        (redis_small.clone(), blob_small.clone()),
        (blob_small.clone(), s(&small_document).to_owned()),
        (s(&small_document).to_owned(), secret.clone()),
    ] {
        v.run(&["copy", &from, &to]).expect(0);
        assert_eq!(decrypt_rows(Some(&v), &sm, &to), small_start, "{to}");
    }
    assert_eq!(keys_of(&small_start), expected(&small_manifest));
    // The community repository's format: base64 of a <root> document, text/plain.
    let value = v.vault.secret("dataprotection-keys").unwrap();
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .unwrap(),
    )
    .unwrap();
    assert!(xml.starts_with("<root>"), "{}", &xml[..40]);
    assert_eq!(
        v.vault
            .secret_content_type("dataprotection-keys")
            .as_deref(),
        Some("text/plain")
    );
    eprintln!(
        "secret value for 6 keys and a revocation: {} bytes (limit 25600)",
        value.len()
    );
}

#[test]
fn the_peer_reads_every_store_after_rewrap_and_key_new() {
    let Some(peer) = interop::peer() else { return };
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let Some(az) = azurite_with_container("keys") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let v = local_vault::start(tmp.path());
    // The new protection: a second certificate.
    let new_certs = tmp.path().join("new");
    peer.gen_cert(&new_certs, 2048, PASSWORD, "n");
    let n = |f: &str| s(&new_certs.join(f)).to_owned();
    let target = ["--to-cert", &n("n.cert.pem"), "--to-key", &n("n.key.pem")];

    let stores: Vec<(&str, String, usize)> = vec![
        ("redis", redis.url("?key=ring"), 8),
        ("blob", az.sas_url("keys", "ring.xml", "racwdl"), 8),
        ("document", s(&tmp.path().join("ring.xml")).to_owned(), 8),
        // 25 KB: four keys (and a fifth from key new), certificate-protected after the rewrap.
        ("secret", v.secret_url("ring"), 4),
    ];
    for (name, store, count) in &stores {
        let base = tmp.path().join(name);
        let formats = if *count < 6 {
            "cert,none,akv,null"
        } else {
            "cert,cert-oaep,null,none,akv,akv-legacy"
        };
        let (ring, certs, manifest, _) = revoked_peer_ring(&peer, &base, *count, formats);
        v.run(&["copy", s(&ring), store]).expect(0);

        let mut args = vec!["rewrap", store.as_str()];
        args.extend(target);
        let m = material(&certs);
        args.extend(m.iter().map(String::as_str));
        let run = v.run(&args).expect(0);
        assert!(
            run.stderr.contains(&format!("rewrapped {count} key(s)")),
            "{name}: {}",
            run.stderr
        );
        let mut args = vec!["key", "new", store.as_str(), "--json"];
        args.extend(target);
        let new_key = v.run(&args).expect(0).json()[0]["key_id"]
            .as_str()
            .unwrap()
            .to_owned();

        // What the store holds, as .NET reads it.
        let dir = base.join("materialised");
        v.run(&["copy", store, s(&dir)]).expect(0);
        let peer_rows = peer_decrypt(
            &peer,
            &dir,
            &["--cert", &n("n.cert.pem"), "--key", &n("n.key.pem")],
        );
        assert_eq!(peer_rows.len(), count + 1, "{name}");
        let ours = keys_of(&decrypt_rows(
            Some(&v),
            &[
                "--cert".into(),
                n("n.cert.pem"),
                "--key".into(),
                n("n.key.pem"),
            ],
            store,
        ));
        let mut want = expected(&manifest);
        want.insert(new_key.clone(), ours[&new_key].clone());
        let theirs: BTreeMap<String, String> = peer_rows
            .iter()
            .map(|(id, (mk, _))| (id.clone(), mk.clone()))
            .collect();
        assert_eq!(theirs, want, "{name}");
        assert_eq!(ours, want, "{name}");
        // The revocation came along.
        let revoked = peer_rows.values().filter(|(_, r)| *r).count();
        assert_eq!(revoked, 1, "{name}");
    }
}

/// The README's recipe: an App Service app kept its keys unprotected on the file system; the ring
/// moves to Blob storage, protected with Key Vault, while the old ring keeps working.
#[test]
fn migration_recipe_file_system_to_blob_and_key_vault() {
    let Some(peer) = interop::peer() else { return };
    let Some(az) = azurite_with_container("dataprotection") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, _certs, manifest) = peer_ring(&peer, tmp.path(), 5, "none", 2048);
    let before = snapshot(&ring);
    let v = local_vault::start(tmp.path());
    let kek_dir = tmp.path().join("kek");
    peer.gen_cert(&kek_dir, 2048, PASSWORD, "k");
    v.vault
        .import_pem(
            "dataprotection",
            &std::fs::read_to_string(kek_dir.join("k.key.pem")).unwrap(),
        )
        .unwrap();
    let kid = format!("{}/keys/dataprotection", v.vault.url());
    let blob = az.sas_url("dataprotection", "keys.xml", "racwdl");

    // The SAS stays out of the command line: env:NAME.
    let mut c = v.cmd(&[
        "rewrap",
        s(&ring),
        "--out",
        "env:DPWRAP_TEST_BLOB",
        "--to-key-vault",
        &kid,
    ]);
    c.env("DPWRAP_TEST_BLOB", &blob);
    let run = run_cmd(c).expect(0);
    assert!(run.stderr.contains("rewrapped 5 key(s)"), "{}", run.stderr);
    let sig = blob.rsplit_once("sig=").unwrap().1;
    assert!(!run.stdout.contains(sig) && !run.stderr.contains(sig));

    // The old ring is untouched and .NET still reads it.
    assert_eq!(snapshot(&ring), before);
    let peer_rows = peer_decrypt(&peer, &ring, &[]);
    let theirs: BTreeMap<String, String> = peer_rows
        .iter()
        .map(|(id, (mk, _))| (id.clone(), mk.clone()))
        .collect();
    assert_eq!(theirs, expected(&manifest));

    // The blob: every key protected by Key Vault, the same master keys.
    let inspected = dpwrap(["inspect", "--json", &blob]).expect(0).json();
    assert_eq!(inspected.len(), 5);
    assert!(
        inspected
            .iter()
            .all(|r| r["protection"] == "azure-key-vault"),
        "{inspected:?}"
    );
    let rows = decrypt_rows(Some(&v), &["--key-vault-kid".into(), kid.clone()], &blob);
    assert_eq!(keys_of(&rows), expected(&manifest));
    // Run again (as a deployment script would): nothing more is added.
    let mut c = v.cmd(&[
        "rewrap",
        s(&ring),
        "--out",
        "env:DPWRAP_TEST_BLOB",
        "--to-key-vault",
        &kid,
    ]);
    c.env("DPWRAP_TEST_BLOB", &blob);
    let run = run_cmd(c).expect(0);
    assert!(
        run.stderr.contains("rewrapped 0 key(s)") && run.stderr.contains("skipped 5"),
        "{}",
        run.stderr
    );
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A command that must fail with exit 1, quickly, naming `needles`.
fn fails_fast(v: Option<&Vault>, args: &[&str], needles: &[&str]) -> Run {
    let started = Instant::now();
    let run = match v {
        Some(v) => v.run(args),
        None => dpwrap(args),
    };
    let elapsed = started.elapsed();
    let run = run.expect(1);
    assert!(elapsed < Duration::from_secs(20), "{args:?}: {elapsed:?}");
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "{args:?}: no '{n}' in {}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    eprintln!("{} -> {elapsed:?}: {}", args[0], run.stderr.trim());
    run
}

#[test]
fn bad_blobs_and_secrets_fail_clearly_and_write_nothing() {
    let Some(peer) = interop::peer() else { return };
    let Some(az) = azurite_with_container("keys") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, _) = peer_ring(&peer, tmp.path(), 12, "cert,none", 2048);
    let c = |n: &str| s(&certs.join(n)).to_owned();
    let key_new = |store: &str| -> Vec<String> {
        ["key", "new", store, "--to-cert", &c("c.cert.pem")]
            .map(str::to_owned)
            .to_vec()
    };
    dpwrap(["copy", s(&ring), &az.sas_url("keys", "ring.xml", "racwdl")]).expect(0);
    let before = block_on(az.get("keys", "ring.xml")).unwrap().0;

    // A SAS signed with another key: 403, the signature never printed.
    let wrong = format!(
        "{}?{}",
        az.blob_url("keys", "ring.xml"),
        azurite::account_sas_signed_with(
            "racwdl",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
        )
    );
    let sig = wrong.rsplit_once("sig=").unwrap().1.to_owned();
    let run = fails_fast(None, &["inspect", &wrong], &["403"]);
    assert!(!run.stderr.contains(&sig) && !run.stdout.contains(&sig));
    let run = fails_fast(
        None,
        &strs(&key_new(&wrong)),
        &["403", "nothing was written"],
    );
    assert!(!run.stderr.contains(&sig));
    // A read-only SAS: reads, but a write is refused naming the permission it needs.
    let read_only = az.sas_url("keys", "ring.xml", "rl");
    dpwrap(["inspect", &read_only]).expect(0);
    fails_fast(
        None,
        &strs(&key_new(&read_only)),
        &["403", "sp=rw", "Storage Blob Data Contributor"],
    );
    assert_eq!(block_on(az.get("keys", "ring.xml")).unwrap().0, before);

    // A container that does not exist is named.
    let missing = az.sas_url("no-such-container", "ring.xml", "racwdl");
    fails_fast(
        None,
        &["copy", s(&ring), &missing],
        &["'no-such-container' does not exist", "nothing was written"],
    );
    fails_fast(
        None,
        &["inspect", &missing],
        &["'no-such-container' does not exist"],
    );

    // Nobody listening: a prompt connection error, no hang.
    let port = common::redis_server::free_port();
    let nowhere = format!(
        "blob+http://127.0.0.1:{port}/{}/keys/ring.xml?{}",
        azurite::ACCOUNT,
        azurite::account_sas("racwdl")
    );
    fails_fast(
        None,
        &["inspect", &nowhere],
        &[&format!("127.0.0.1:{port}")],
    );
    let run = fails_fast(None, &strs(&key_new(&nowhere)), &["nothing was written"]);
    assert_eq!(
        run.stderr.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "the store is named once: {}",
        run.stderr
    );

    // A blob that is not a ring.
    block_on(az.put("keys", "text.xml", b"this is not xml"));
    let text = az.sas_url("keys", "text.xml", "racwdl");
    fails_fast(None, &["inspect", &text], &["text.xml"]);
    fails_fast(
        None,
        &strs(&key_new(&text)),
        &["text.xml", "nothing was written"],
    );
    assert_eq!(
        block_on(az.get("keys", "text.xml")).unwrap().0,
        b"this is not xml"
    );

    // Key Vault secrets.
    let v = local_vault::start(tmp.path());
    let not_xml = base64::engine::general_purpose::STANDARD.encode("this is not xml");
    v.vault.set_secret("not-xml", &not_xml, Some("text/plain"));
    v.vault
        .set_secret("not-base64", "<root/>", Some("text/plain"));
    let url = v.secret_url("not-xml");
    fails_fast(Some(&v), &["inspect", &url], &["not-xml"]);
    fails_fast(
        Some(&v),
        &strs(&key_new(&url)),
        &["not-xml", "nothing was written"],
    );
    fails_fast(
        Some(&v),
        &["inspect", &v.secret_url("not-base64")],
        &["not base64"],
    );
    assert_eq!(v.vault.secret_versions("not-xml"), 1);
    assert_eq!(v.vault.secret_versions("not-base64"), 1);
    // Over the 25 KB limit: refused before anything is sent, saying how many keys fit.
    let run = fails_fast(
        Some(&v),
        &["copy", s(&ring), &v.secret_url("too-big")],
        &["over Key Vault's limit", "fit", "nothing was written"],
    );
    assert!(run.stderr.contains("12 elements"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("nothing was written").count(), 1);
    assert_eq!(v.vault.secret_versions("too-big"), 0);
    // A vault nobody listens on.
    let port = common::redis_server::free_port();
    fails_fast(
        Some(&v),
        &[
            "inspect",
            &format!("kvsecret+https://127.0.0.1:{port}/secrets/ring"),
        ],
        &[&format!("127.0.0.1:{port}")],
    );
}

#[test]
fn the_secret_store_prunes_only_when_asked() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) = peer_ring(&peer, tmp.path(), 2, "none", 2048);
    // A key that expired in 2020, written by the peer.
    let old = "0d5f3c2a-1111-4222-8333-444455556666";
    peer.ok([
        "encrypt-key",
        "--out",
        s(&ring.join(format!("key-{old}.xml"))),
        "--format",
        "none",
        "--id",
        old,
        "--creation",
        "2020-01-01T00:00:00Z",
        "--activation",
        "2020-01-01T00:00:00Z",
        "--expiration",
        "2020-04-01T00:00:00Z",
    ]);
    let v = local_vault::start(tmp.path());
    let secret = v.secret_url("ring");
    v.run(&["copy", s(&ring), &secret]).expect(0);
    let ids = |v: &Vault| -> Vec<String> {
        let mut ids: Vec<String> = v
            .run(&["inspect", "--json", &secret])
            .expect(0)
            .json()
            .iter()
            .map(|r| r["key_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert!(ids(&v).contains(&old.to_owned()), "nothing pruned unasked");
    let c = |n: &str| s(&certs.join(n)).to_owned();
    // Without --prune-older-than, a write keeps the expired key.
    v.run(&["key", "new", &secret, "--to-cert", &c("c.cert.pem")])
        .expect(0);
    assert_eq!(ids(&v).len(), 4);
    assert!(ids(&v).contains(&old.to_owned()));
    v.run(&[
        "key",
        "new",
        &secret,
        "--to-cert",
        &c("c.cert.pem"),
        "--prune-older-than",
        "30d",
    ])
    .expect(0);
    let after = ids(&v);
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(!after.contains(&old.to_owned()));
    for id in manifest.keys() {
        assert!(after.contains(id), "{id}");
    }
    // Only the secret store prunes.
    let run = dpwrap([
        "key",
        "new",
        s(&ring),
        "--to-cert",
        &c("c.cert.pem"),
        "--prune-older-than",
        "30d",
    ])
    .expect(2);
    assert!(run.stderr.contains("Key Vault secret"), "{}", run.stderr);
}
