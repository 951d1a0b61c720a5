//! The directory store against files written by the Mono peer (.NET's own serialization), and
//! against a process killed while it re-wraps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    TempDir, block_on, changes, interop, null_master_key, peer_ring, toggle_all, toggle_protection,
    toggled, xml_files,
};
use dpwrap::key_file::Revocation;
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::store::{Addition, DirectoryStore, KeyStore};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{ErrorKind, MasterKey, RingElement, Timestamp};

#[test]
fn reads_every_peer_file_and_writes_them_back_byte_identical() {
    let tmp = TempDir::new();
    let Some((ring, _certs, manifest)) = peer_ring(tmp.path(), 8) else {
        return;
    };
    let peer_files = xml_files(&ring);
    assert_eq!(peer_files.len(), 10, "8 keys and 2 revocations");

    let store = DirectoryStore::new(&ring);
    let loaded = block_on(store.load()).unwrap();
    assert_eq!(loaded.len(), peer_files.len());
    let mut key_ids = Vec::new();
    let mut revocations = 0;
    for e in &loaded {
        match e.parse().unwrap() {
            RingElement::Key(k) => key_ids.push(k.id().to_string()),
            RingElement::Revocation(_) => revocations += 1,
        }
        // The raw bytes are the file's.
        let file = peer_files.iter().find(|(n, _)| n == e.name()).unwrap();
        assert_eq!(e.raw(), file.1.as_slice());
    }
    assert_eq!(revocations, 2);
    for m in &manifest {
        assert!(key_ids.contains(&m["key_id"].as_str().unwrap().to_owned()));
    }

    // Unprotected and null-protected keys: their master keys are the peer's.
    for m in manifest
        .iter()
        .filter(|m| matches!(m["format"].as_str(), Some("none" | "null")))
    {
        let id = m["key_id"].as_str().unwrap();
        let e = loaded
            .iter()
            .find(|e| e.name() == format!("key-{id}.xml"))
            .unwrap();
        assert_eq!(
            block_on(null_master_key(e.element())),
            m["master_key_b64"].as_str().unwrap()
        );
    }

    // Written back through the store, every file has .NET's name and .NET's bytes.
    let out = TempDir::new();
    let copy = DirectoryStore::new(out.path().join("keys"));
    let additions: Vec<Addition> = loaded
        .iter()
        .map(|e| Addition::named_as_dotnet(e.element().clone()).unwrap())
        .collect();
    block_on(copy.append(&additions)).unwrap();
    let written = xml_files(copy.path());
    assert_eq!(written.len(), peer_files.len());
    for ((pn, pb), (wn, wb)) in peer_files.iter().zip(&written) {
        assert_eq!(pn, wn);
        assert!(pb == wb, "{pn} differs from the peer's bytes");
    }
    // No temporary file is left behind.
    let leftovers = std::fs::read_dir(copy.path()).unwrap().count();
    assert_eq!(leftovers, peer_files.len());
}

#[test]
fn a_new_key_is_byte_identical_to_the_peers() {
    let Some(peer) = interop::peer() else { return };
    let tmp = TempDir::new();
    let master = MasterKey::generate(64).unwrap();
    let mut key = NewKey::new(
        Some(Timestamp::parse("2025-01-02T03:04:05.1234567Z").unwrap()),
        DEFAULT_LIFETIME,
    )
    .unwrap();
    // A creation date with a fraction that ends in zeros, as DateTimeOffset prints it.
    key.creation = Timestamp::parse("2025-01-01T00:00:00.12Z").unwrap();
    assert_eq!(key.expiration.as_str(), "2025-04-02T03:04:05.1234567Z");
    let file = tmp.path().join(format!("key-{}.xml", key.id));
    peer.ok([
        "encrypt-key",
        "--out",
        file.to_str().unwrap(),
        "--format",
        "none",
        "--id",
        &key.id.to_string(),
        "--master-key",
        master.to_base64().as_str(),
        "--creation",
        key.creation.as_str(),
        "--activation",
        key.activation.as_str(),
        "--expiration",
        key.expiration.as_str(),
    ]);
    let peer_bytes = std::fs::read(&file).unwrap();
    let ours = xml::to_secret_bytes(key.to_element(&master).expose(), WriteOptions::KEY_FILE);
    assert!(
        peer_bytes == *ours,
        "ours:\n{}\npeer:\n{}",
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&peer_bytes)
    );

    // Through the directory store: same file name, same bytes.
    let store = DirectoryStore::new(tmp.path().join("store"));
    let element = key.to_element(&master).expose().clone();
    block_on(store.append(&[Addition::named_as_dotnet(element).unwrap()])).unwrap();
    let written = xml_files(store.path());
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, format!("key-{}.xml", key.id));
    assert!(written[0].1 == peer_bytes);
}

#[test]
fn revocations_are_byte_identical_to_the_peers() {
    let Some(peer) = interop::peer() else { return };
    let tmp = TempDir::new();
    let id = uuid::Uuid::new_v4();
    let date = "2025-07-01T10:00:00.1234567Z";
    peer.ok([
        "revoke",
        "--out",
        tmp.path().to_str().unwrap(),
        "--key-id",
        &id.to_string(),
        "--date",
        date,
        "--reason",
        "rotated & <done>",
    ]);
    peer.ok([
        "revoke",
        "--out",
        tmp.path().to_str().unwrap(),
        "--all",
        "--date",
        "2020-01-02T03:04:05.5Z",
    ]);
    let peer_files = xml_files(tmp.path());
    assert_eq!(peer_files.len(), 2);

    let single = Revocation::for_key(
        id,
        Timestamp::parse(date).unwrap(),
        Some("rotated & <done>".into()),
    );
    let all =
        Revocation::all_created_before(Timestamp::parse("2020-01-02T03:04:05.5Z").unwrap(), None);
    let store = DirectoryStore::new(tmp.path().join("ours"));
    block_on(store.append(&[
        Addition::new(single.to_element(), single.friendly_name()),
        Addition::new(all.to_element(), all.friendly_name()),
    ]))
    .unwrap();
    let ours = xml_files(store.path());
    assert_eq!(ours.len(), 2);
    for ((pn, pb), (on, ob)) in peer_files.iter().zip(&ours) {
        assert_eq!(pn, on);
        assert!(
            pb == ob,
            "{pn}:\nours {}\npeer {}",
            String::from_utf8_lossy(ob),
            String::from_utf8_lossy(pb)
        );
    }
}

fn unprotected_keys(n: usize) -> Vec<(dpwrap::xml::Element, String)> {
    (0..n)
        .map(|_| {
            let master = MasterKey::generate(64).unwrap();
            let key = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
            (
                key.to_element(&master).expose().clone(),
                master.to_base64().to_string(),
            )
        })
        .collect()
}

#[test]
fn append_never_overwrites_an_existing_file() {
    let tmp = TempDir::new();
    let store = DirectoryStore::new(tmp.path());
    let keys = unprotected_keys(1);
    let a = Addition::named_as_dotnet(keys[0].0.clone()).unwrap();
    block_on(store.append(std::slice::from_ref(&a))).unwrap();
    let before = xml_files(tmp.path());
    let other = block_on(toggle_protection(&keys[0].0));
    let e = block_on(store.append(&[Addition::new(other, a.friendly_name.clone())])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(xml_files(tmp.path()), before);
    // Nothing but the one key file is in the directory (no temporary file left).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    // An unsafe friendly name gets a generated file name, as .NET does.
    block_on(store.append(&[Addition::new(unprotected_keys(1)[0].0.clone(), "../escape")]))
        .unwrap();
    assert_eq!(xml_files(tmp.path()).len(), 2);
    assert!(!tmp.path().parent().unwrap().join("escape.xml").exists());
}

#[test]
fn replace_rewraps_in_place_and_refuses_a_changed_file() {
    let tmp = TempDir::new();
    let store = DirectoryStore::new(tmp.path());
    let keys = unprotected_keys(3);
    let adds: Vec<Addition> = keys
        .iter()
        .map(|(e, _)| Addition::named_as_dotnet(e.clone()).unwrap())
        .collect();
    block_on(store.append(&adds)).unwrap();

    block_on(toggle_all(&store)).unwrap();

    let after = block_on(store.load()).unwrap();
    assert_eq!(after.len(), 3);
    for e in &after {
        assert!(
            e.element()
                .find(Some(dpwrap::xml::NS_DP), "encryptedSecret")
                .is_some()
        );
        let id = e.element().attribute(None, "id").unwrap();
        let (_, mk) = keys
            .iter()
            .find(|(k, _)| k.attribute(None, "id") == Some(id))
            .unwrap();
        assert_eq!(&block_on(null_master_key(e.element())), mk);
        // Each file holds .NET's bytes for its new element.
        assert!(e.raw() == xml::to_bytes(e.element(), WriteOptions::KEY_FILE).as_slice());
    }

    // The peer (.NET's read path) reads the re-wrapped directory: the same master keys.
    if let Some(peer) = interop::peer() {
        let rows = common::peer_decrypt_ring(&peer, tmp.path(), None);
        let mut expected: Vec<(String, String, bool)> = keys
            .iter()
            .map(|(k, mk)| {
                (
                    k.attribute(None, "id").unwrap().to_owned(),
                    mk.clone(),
                    false,
                )
            })
            .collect();
        expected.sort();
        assert_eq!(rows, expected);
    }

    // A file changed since the load is a conflict, and nothing is written.
    let stale = block_on(store.load()).unwrap();
    let victim = tmp.path().join(stale[1].name());
    let changed = block_on(toggle_protection(stale[1].element()));
    std::fs::write(&victim, xml::to_bytes(&changed, WriteOptions::KEY_FILE)).unwrap();
    let snapshot = xml_files(tmp.path());
    let news = block_on(toggled(&stale));
    let e = block_on(store.replace(&changes(&stale, &news))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    assert!(e.to_string().contains(stale[1].name()), "{e}");
    assert_eq!(xml_files(tmp.path()), snapshot);
}

#[test]
fn an_unreadable_element_fails_the_load_naming_it() {
    let tmp = TempDir::new();
    let store = DirectoryStore::new(tmp.path());
    block_on(store.append(&[Addition::named_as_dotnet(unprotected_keys(1)[0].0.clone()).unwrap()]))
        .unwrap();
    std::fs::write(
        tmp.path().join("revocation-broken.xml"),
        b"<revocation><revocationDate>",
    )
    .unwrap();
    let e = block_on(store.load()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Xml);
    assert!(e.to_string().contains("revocation-broken.xml"), "{e}");
    // The lenient read keeps the others beside the failure.
    let entries = block_on(store.read()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries.iter().filter(|e| e.element.is_err()).count(), 1);

    // A key whose id disagrees with its file name is refused (planted or copied file).
    let planted = TempDir::new();
    let k = unprotected_keys(1).remove(0).0;
    std::fs::write(
        planted
            .path()
            .join(format!("key-{}.xml", uuid::Uuid::new_v4())),
        xml::to_bytes(&k, WriteOptions::KEY_FILE),
    )
    .unwrap();
    let e = block_on(DirectoryStore::new(planted.path()).load()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
}

#[test]
fn a_missing_directory_is_an_empty_ring_and_is_created_on_write() {
    let tmp = TempDir::new();
    let store = DirectoryStore::new(tmp.path().join("a/b"));
    assert!(block_on(store.load()).unwrap().is_empty());
    block_on(store.append(&[Addition::named_as_dotnet(unprotected_keys(1)[0].0.clone()).unwrap()]))
        .unwrap();
    assert_eq!(block_on(store.load()).unwrap().len(), 1);
    // dpwrap::store::open picks the directory store for such a path.
    let opened = dpwrap::store::open(store.path().to_str().unwrap()).unwrap();
    assert_eq!(block_on(opened.load()).unwrap().len(), 1);
}

// ------------------------------------------------------------------------------ crash safety

const CHILD: &str = "DPWRAP_TEST_CRASH_DIRECTORY";

/// Re-wraps every key over and over until killed (or 60 s pass).
fn rewrap_forever(dir: &Path) {
    let store = DirectoryStore::new(dir);
    let started = Instant::now();
    std::fs::write(dir.join("child.started"), b"").unwrap();
    while started.elapsed() < Duration::from_secs(60) {
        block_on(toggle_all(&store)).unwrap();
    }
}

#[test]
fn killed_mid_rewrap_every_key_stays_readable() {
    if let Some(dir) = std::env::var_os(CHILD) {
        rewrap_forever(Path::new(&dir));
        return;
    }
    let tmp = TempDir::new();
    let store = DirectoryStore::new(tmp.path());
    let keys = unprotected_keys(20);
    let adds: Vec<Addition> = keys
        .iter()
        .map(|(e, _)| Addition::named_as_dotnet(e.clone()).unwrap())
        .collect();
    block_on(store.append(&adds)).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut kills = 0;
    let mut temp_left = 0;
    for _ in 0..12 {
        let _ = std::fs::remove_file(tmp.path().join("child.started"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "killed_mid_rewrap_every_key_stays_readable",
                "--nocapture",
            ])
            .env(CHILD, tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !tmp.path().join("child.started").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 300));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child stopped by itself"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;

        let loaded = block_on(store.load()).expect("every file is readable after a kill");
        assert_eq!(loaded.len(), keys.len());
        for e in &loaded {
            let id = e.element().attribute(None, "id").unwrap();
            let (_, mk) = keys
                .iter()
                .find(|(k, _)| k.attribute(None, "id") == Some(id))
                .unwrap();
            assert_eq!(&block_on(null_master_key(e.element())), mk);
        }
        temp_left = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "tmp")
            })
            .count();
    }
    eprintln!(
        "directory store: {kills} kills mid-rewrap, every key readable each time; {temp_left} temporary files left behind by the kills (not *.xml: ignored by readers)"
    );
}
