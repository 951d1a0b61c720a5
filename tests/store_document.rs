//! The one-document store against a Blob document written by .NET (fixtures/stores), the layout
//! of STORES.md, the Mono peer's elements, and a process killed while it re-wraps.
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
    TempDir, block_on, interop, null_master_key, peer_ring, toggle_all, toggle_protection,
    xml_files,
};
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::store::{Addition, Change, DirectoryStore, DocumentStore, KeyStore};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{ErrorKind, MasterKey};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>"#;

fn dotnet_blob() -> Vec<u8> {
    std::fs::read(common::fixture("stores/dotnet-blob-keys.xml")).unwrap()
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
fn a_blob_written_by_dotnet_is_read_and_kept_byte_for_byte() {
    let blob = dotnet_blob();
    let text = std::str::from_utf8(&blob).unwrap();
    let start = text.find("<key ").unwrap();
    let end = text.find("</repository>").unwrap();
    let dotnet_element = &blob[start..end];

    let tmp = TempDir::new();
    let path = tmp.path().join("keys.xml");
    std::fs::write(&path, &blob).unwrap();
    let store = DocumentStore::new(&path);
    let loaded = block_on(store.load()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].raw(), dotnet_element);
    assert_eq!(
        loaded[0].element().attribute(None, "id"),
        Some("6417072d-bd2e-4737-8995-fd280fe00251")
    );
    // .NET's unformatted serialization of the element is ours (what RPUSH and the blob carry).
    assert_eq!(
        xml::to_compact_string(loaded[0].element()).as_bytes(),
        dotnet_element
    );

    // Appending keeps every byte .NET wrote and inserts the new element before </repository>.
    let (new_key, _) = unprotected_keys(1).remove(0);
    block_on(store.append(&[Addition::named_as_dotnet(new_key.clone()).unwrap()])).unwrap();
    let after = std::fs::read(&path).unwrap();
    let mut expected = blob[..end].to_vec();
    expected.extend_from_slice(xml::to_compact_string(&new_key).as_bytes());
    expected.extend_from_slice(b"</repository>");
    assert!(after == expected);
    let reloaded = block_on(store.load()).unwrap();
    assert_eq!(reloaded.len(), 2);
    assert_eq!(reloaded[0].raw(), dotnet_element);
    assert_eq!(reloaded[1].element(), &new_key);
}

#[test]
fn a_new_document_has_the_blob_layout_and_peer_elements_survive() {
    let tmp = TempDir::new();
    let Some((ring, certs, _)) = peer_ring(tmp.path(), 6) else {
        return;
    };
    let dir = DirectoryStore::new(&ring);
    let elements = block_on(dir.load()).unwrap();
    let path = tmp.path().join("out/ring.xml");
    let doc = DocumentStore::new(&path);
    assert!(
        block_on(doc.load()).unwrap().is_empty(),
        "an absent document is an empty ring"
    );
    let adds: Vec<Addition> = elements
        .iter()
        .map(|e| Addition::named_as_dotnet(e.element().clone()).unwrap())
        .collect();
    // Two appends: the second goes through the read-modify-write path.
    block_on(doc.append(&adds[..3])).unwrap();
    block_on(doc.append(&adds[3..])).unwrap();

    // STORES.md: BOM, declaration, <repository>, the elements unindented in insertion order.
    let bytes = std::fs::read(&path).unwrap();
    let mut expected = [BOM, DECLARATION, b"<repository>"].concat();
    for e in &elements {
        expected.extend_from_slice(xml::to_compact_string(e.element()).as_bytes());
    }
    expected.extend_from_slice(b"</repository>");
    assert!(bytes == expected);

    // Back to a directory: the files are the peer's, byte for byte.
    let back = DirectoryStore::new(tmp.path().join("back"));
    let from_doc = block_on(doc.load()).unwrap();
    assert_eq!(from_doc.len(), elements.len());
    let adds: Vec<Addition> = from_doc
        .iter()
        .map(|e| Addition::named_as_dotnet(e.element().clone()).unwrap())
        .collect();
    block_on(back.append(&adds)).unwrap();
    assert_eq!(xml_files(back.path()), xml_files(&ring));
    if let Some(peer) = interop::peer() {
        assert_eq!(
            common::peer_decrypt_ring(&peer, back.path(), Some(&certs)),
            common::peer_decrypt_ring(&peer, &ring, Some(&certs))
        );
    }
}

#[test]
fn an_indented_document_is_read_and_its_bytes_kept() {
    let keys = unprotected_keys(2);
    let mut doc =
        String::from("\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<repository>\n");
    for (k, _) in &keys {
        let indented = String::from_utf8(xml::to_bytes(k, WriteOptions::INDENTED)).unwrap();
        for line in indented.lines() {
            doc.push_str("  ");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    doc.push_str("</repository>");
    let tmp = TempDir::new();
    let path = tmp.path().join("old.xml");
    std::fs::write(&path, &doc).unwrap();
    let store = DocumentStore::new(&path);
    let loaded = block_on(store.load()).unwrap();
    assert_eq!(loaded.len(), 2);
    for ((k, mk), e) in keys.iter().zip(&loaded) {
        assert_eq!(e.element(), k);
        assert_eq!(&block_on(null_master_key(e.element())), mk);
    }
    // Re-wrap the second key in place: everything else keeps its bytes.
    let new = block_on(toggle_protection(loaded[1].element()));
    block_on(store.replace(&[Change {
        old: &loaded[1],
        new: new.clone(),
    }]))
    .unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    let old_raw = std::str::from_utf8(loaded[1].raw()).unwrap();
    assert_eq!(after, doc.replace(old_raw, &xml::to_compact_string(&new)));
    let reloaded = block_on(store.load()).unwrap();
    assert_eq!(reloaded[0].raw(), loaded[0].raw());
    assert_eq!(reloaded[1].element(), &new);
    assert_eq!(block_on(null_master_key(reloaded[1].element())), keys[1].1);

    // Replacing from the stale load again is a conflict; nothing changes.
    let e = block_on(store.replace(&[Change {
        old: &loaded[1],
        new,
    }]))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
}

#[test]
fn bad_documents_fail_clearly() {
    let tmp = TempDir::new();
    let path = tmp.path().join("ring.xml");

    std::fs::write(&path, b"").unwrap();
    assert!(
        block_on(DocumentStore::new(&path).load())
            .unwrap()
            .is_empty(),
        "zero-length is empty"
    );

    std::fs::write(&path, b"this is not xml").unwrap();
    let e = block_on(DocumentStore::new(&path).load()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Xml);
    assert!(e.to_string().contains("ring.xml"), "{e}");
    // Nothing is written over a document that cannot be read.
    let add = Addition::named_as_dotnet(unprotected_keys(1).remove(0).0).unwrap();
    let e = block_on(DocumentStore::new(&path).append(std::slice::from_ref(&add))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Xml);
    assert_eq!(std::fs::read(&path).unwrap(), b"this is not xml");

    // A single key file is not a ring document.
    let (k, _) = unprotected_keys(1).remove(0);
    std::fs::write(&path, xml::to_bytes(&k, WriteOptions::KEY_FILE)).unwrap();
    let e = block_on(DocumentStore::new(&path).load()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.to_string().contains("directory"), "{e}");

    // A DTD is refused (no entity expansion on untrusted input).
    std::fs::write(
        &path,
        b"<!DOCTYPE r [<!ENTITY a \"x\">]><repository>&a;</repository>",
    )
    .unwrap();
    assert_eq!(
        block_on(DocumentStore::new(&path).load())
            .unwrap_err()
            .kind(),
        ErrorKind::Xml
    );

    // An element inside that is not a key is still an element of the store; the ring refuses it.
    std::fs::write(&path, b"<repository><unknown /></repository>").unwrap();
    let loaded = block_on(DocumentStore::new(&path).load()).unwrap();
    assert_eq!(loaded[0].parse().unwrap_err().kind(), ErrorKind::Format);
}

// ------------------------------------------------------------------------------ crash safety

const CHILD: &str = "DPWRAP_TEST_CRASH_DOCUMENT";

fn rewrap_forever(path: &Path) {
    let store = DocumentStore::new(path);
    let started = Instant::now();
    std::fs::write(path.with_extension("started"), b"").unwrap();
    while started.elapsed() < Duration::from_secs(60) {
        block_on(toggle_all(&store)).unwrap();
        // Appends too, so that kills land in both write paths.
        let (k, _) = unprotected_keys(1).remove(0);
        block_on(store.append(&[Addition::named_as_dotnet(k).unwrap()])).unwrap();
    }
}

#[test]
fn killed_mid_write_every_key_stays_readable() {
    if let Some(path) = std::env::var_os(CHILD) {
        rewrap_forever(Path::new(&path));
        return;
    }
    let tmp = TempDir::new();
    let path = tmp.path().join("ring.xml");
    let store = DocumentStore::new(&path);
    let keys = unprotected_keys(20);
    let adds: Vec<Addition> = keys
        .iter()
        .map(|(e, _)| Addition::named_as_dotnet(e.clone()).unwrap())
        .collect();
    block_on(store.append(&adds)).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id());
    let mut kills = 0;
    let mut seen = keys.len();
    for _ in 0..12 {
        let _ = std::fs::remove_file(path.with_extension("started"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "killed_mid_write_every_key_stays_readable",
                "--nocapture",
            ])
            .env(CHILD, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !path.with_extension("started").exists() && Instant::now() < deadline {
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

        let loaded = block_on(store.load()).expect("the document is readable after a kill");
        assert!(
            loaded.len() >= seen,
            "elements were lost: {} < {seen}",
            loaded.len()
        );
        seen = loaded.len();
        for (k, mk) in &keys {
            let id = k.attribute(None, "id").unwrap();
            let e = loaded
                .iter()
                .find(|e| e.element().attribute(None, "id") == Some(id))
                .expect("every original key is still there");
            assert_eq!(&block_on(null_master_key(e.element())), mk);
        }
        for e in &loaded {
            e.parse().unwrap();
        }
    }
    eprintln!(
        "document store: {kills} kills mid-write, every key readable each time; the ring grew from {} to {seen} elements, none lost",
        keys.len()
    );
}
