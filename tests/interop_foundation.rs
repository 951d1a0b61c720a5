//! The foundation against the Mono peer (.NET's own XML classes and ASP.NET's key manager logic):
//! dpwrap re-serializes every file the peer writes byte for byte, reads its null and unprotected
//! keys and revocations, and the peer reads the keys examples/key_ring.rs writes.

mod common;

#[path = "../examples/key_ring.rs"]
#[allow(dead_code)]
mod key_ring_example;

use std::collections::HashMap;
use std::sync::Arc;

use dpwrap::key_file::{self, Revocation, RingElement};
use dpwrap::xml::{self, WriteOptions};
use dpwrap::{Decryptors, NullXmlDecryptor, NullXmlEncryptor, Protection, Timestamp};

fn manifest(dir: &std::path::Path) -> HashMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["key_id"].as_str().unwrap().to_owned(), v))
        .collect()
}

#[test]
fn peer_files_round_trip_byte_for_byte_and_unprotected_keys_read() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    peer.gen_cert(&certs, 2048, "pw", "c");
    let ring = tmp.path().join("ring");
    peer.ok([
        "gen-ring",
        "--count",
        "12",
        "--out",
        ring.to_str().unwrap(),
        "--formats",
        "cert,cert-oaep,null,none,akv,akv-legacy",
        "--cert",
        certs.join("c.cert.pem").to_str().unwrap(),
        "--key",
        certs.join("c.key.pem").to_str().unwrap(),
    ]);
    peer.ok([
        "revoke",
        "--out",
        ring.to_str().unwrap(),
        "--all",
        "--date",
        "2020-01-02T03:04:05.1234567Z",
    ]);
    let expected = manifest(&ring);
    let decryptors = Decryptors::new().with(Arc::new(NullXmlDecryptor));
    let (mut keys, mut unprotected, mut revocations) = (0, 0, 0);
    for entry in std::fs::read_dir(&ring).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let element = xml::parse(&bytes).unwrap();
        assert_eq!(
            String::from_utf8(xml::to_bytes(&element, WriteOptions::KEY_FILE)).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "{} does not round-trip",
            path.display()
        );
        match key_file::read_file(&path).unwrap() {
            RingElement::Key(key) => {
                keys += 1;
                let m = &expected[&key.id().to_string()];
                let format = m["format"].as_str().unwrap();
                let protection = match format {
                    "cert" | "cert-oaep" => Protection::Certificate,
                    "akv" | "akv-legacy" => Protection::AzureKeyVault,
                    "null" => Protection::Null,
                    _ => Protection::None,
                };
                assert_eq!(key.protection(), protection, "{format}");
                assert_eq!(
                    key.creation_date().as_str(),
                    m["creation_date"].as_str().unwrap()
                );
                if protection.is_unprotected() {
                    let master = common::block_on(key.master_key(&decryptors)).unwrap();
                    assert_eq!(&*master.to_base64(), m["master_key_b64"].as_str().unwrap());
                    unprotected += 1;
                }
            }
            RingElement::Revocation(r) => {
                revocations += 1;
                // The element and the file name dpwrap would write are .NET's.
                let ours = Revocation::all_created_before(r.date().clone(), None);
                assert_eq!(
                    xml::to_bytes(&ours.to_element(), WriteOptions::KEY_FILE),
                    std::fs::read(&path).unwrap()
                );
                assert_eq!(
                    format!("{}.xml", ours.friendly_name()),
                    path.file_name().unwrap().to_str().unwrap()
                );
            }
        }
    }
    assert_eq!((keys, unprotected, revocations), (12, 4, 1));
}

#[test]
fn peer_reads_keys_written_by_the_key_ring_example() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ring = key_ring_example::KeyRing::new(
        tmp.path(),
        Arc::new(NullXmlEncryptor),
        Decryptors::new().with(Arc::new(NullXmlDecryptor)),
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(common::block_on(ring.create_key(Timestamp::now(), 90)).unwrap());
    }
    let ours: HashMap<String, String> = common::block_on(ring.load())
        .unwrap()
        .into_iter()
        .map(|(id, _, k)| (id.to_string(), k.to_base64().to_string()))
        .collect();
    assert_eq!(ours.len(), 3);
    for id in ids {
        let file = tmp.path().join(format!("key-{id}.xml"));
        let bytes = std::fs::read(&file).unwrap();
        // ASP.NET's layout: BOM, declaration, two-space indentation.
        assert!(
            bytes
                .starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<key id=\"")
        );
        assert!(String::from_utf8_lossy(&bytes).contains("\n  <creationDate>"));
        let out = peer.ok(["decrypt-key", "--in", file.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["key_id"].as_str().unwrap(), id.to_string());
        assert_eq!(v["format"], "null");
        assert_eq!(v["master_key_b64"].as_str().unwrap(), ours[&id.to_string()]);
    }
    // The whole directory, as ASP.NET's key manager reads it.
    let out = peer.ok(["decrypt-ring", "--dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.lines().count(), 3);
}
