//! The Azure Blob store against Azurite (the official emulator, started here on a free loopback
//! port): bytes and Content-Type as .NET uploads them, SAS and token authentication, eight
//! processes adding keys to one blob at once, a process killed while it re-wraps, and the faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

#[cfg(not(feature = "azure"))]
#[test]
fn blob_store_tests_need_the_feature() {
    common::interop::skip("built without the `azure` feature (cargo test --features azure)");
}

#[cfg(feature = "azure")]
mod with_azurite {
    use std::collections::HashSet;
    use std::process::Command;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::common::azurite::{
        self, Azurite, StaticToken, account_sas_signed_with, unsigned_storage_jwt,
    };
    use super::common::redis_server::free_port;
    use super::common::tls::loopback_server_certificates;
    use super::common::{
        TempDir, block_on, interop, null_master_key, toggle_all, toggle_protection,
    };
    use dpwrap::azure::retry::RetryPolicy;
    use dpwrap::azure::transport::TransportOptions;
    use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
    use dpwrap::store::{Addition, BlobOptions, BlobStore, Change, KeyStore};
    use dpwrap::xml::{self, Element};
    use dpwrap::{ErrorKind, MasterKey, NullXmlEncryptor};

    const BOM: &[u8] = b"\xEF\xBB\xBF";
    const DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>"#;

    fn unprotected_keys(n: usize) -> Vec<(Element, String)> {
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

    fn adds(keys: &[(Element, String)]) -> Vec<Addition> {
        keys.iter()
            .map(|(e, _)| Addition::named_as_dotnet(e.clone()).unwrap())
            .collect()
    }

    fn id_of(e: &Element) -> String {
        e.attribute(None, "id").unwrap().to_owned()
    }

    fn fast() -> BlobOptions {
        BlobOptions {
            retry: RetryPolicy {
                max_retries: 1,
                initial_delay: Duration::from_millis(50),
                attempt_timeout: Duration::from_secs(2),
                ..RetryPolicy::default()
            },
            ..BlobOptions::default()
        }
    }

    #[test]
    fn a_new_blob_has_dotnets_bytes_and_content_type() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let url = az.sas_url("keys", "ring.xml", "racwdl");
        let store = dpwrap::store::open(&url).unwrap();
        assert!(
            store.describe().ends_with("sig=***"),
            "{}",
            store.describe()
        );
        assert!(
            block_on(store.load()).unwrap().is_empty(),
            "404 is an empty ring"
        );

        let keys = unprotected_keys(2);
        block_on(store.append(&adds(&keys[..1]))).unwrap();
        block_on(store.append(&adds(&keys[1..]))).unwrap();
        let (bytes, content_type) = block_on(az.get("keys", "ring.xml")).unwrap();
        assert_eq!(
            content_type.as_deref(),
            Some("application/xml; charset=utf-8")
        );
        // STORES.md: BOM, declaration, <repository>, the elements unformatted, in order.
        let mut expected = Vec::new();
        expected.extend_from_slice(BOM);
        expected.extend_from_slice(DECLARATION);
        expected.extend_from_slice(b"<repository>");
        for (k, _) in &keys {
            expected.extend_from_slice(xml::to_compact_string(k).as_bytes());
        }
        expected.extend_from_slice(b"</repository>");
        assert!(
            bytes == expected,
            "{}",
            String::from_utf8_lossy(&bytes[..200.min(bytes.len())])
        );
        let loaded = block_on(store.load()).unwrap();
        assert_eq!(loaded.len(), 2);
        for ((k, _), e) in keys.iter().zip(&loaded) {
            assert_eq!(e.element(), k);
        }

        // An empty blob is an empty ring too, and is written with If-Match (it exists).
        block_on(az.put("keys", "empty.xml", b""));
        let empty = dpwrap::store::open(&az.sas_url("keys", "empty.xml", "racwdl")).unwrap();
        assert!(block_on(empty.load()).unwrap().is_empty());
        block_on(empty.append(&adds(&keys[..1]))).unwrap();
        assert_eq!(block_on(empty.load()).unwrap().len(), 1);
    }

    /// .NET's `AzureBlobXmlRepository.StoreElement` (its XDocument code on Mono) and dpwrap, given
    /// the same elements one after the other, upload the same bytes; and .NET adds to what dpwrap
    /// wrote as to its own.
    #[test]
    fn the_blob_bytes_are_the_bytes_dotnet_uploads() {
        let Some(az) = Azurite::start() else { return };
        let Some(repos) = interop::repositories() else {
            return;
        };
        block_on(az.create_container("keys"));
        let tmp = TempDir::new();
        let keys = unprotected_keys(3);
        let dotnet_blob = tmp.path().join("dotnet.xml");
        let store = BlobStore::open(&az.sas_url("keys", "same.xml", "racwdl"), fast()).unwrap();
        for (i, (k, _)) in keys.iter().enumerate() {
            let file = tmp.path().join(format!("k{i}.xml"));
            std::fs::write(&file, xml::to_bytes(k, xml::WriteOptions::KEY_FILE)).unwrap();
            repos.ok([
                "blob-store",
                dotnet_blob.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
            block_on(store.append(&adds(&keys[i..=i]))).unwrap();
            let (ours, _) = block_on(az.get("keys", "same.xml")).unwrap();
            let theirs = std::fs::read(&dotnet_blob).unwrap();
            assert!(
                ours == theirs,
                "after {} elements:\n{}\n{}",
                i + 1,
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
        let (ours, _) = block_on(az.get("keys", "same.xml")).unwrap();
        std::fs::write(tmp.path().join("ours.xml"), &ours).unwrap();
        let (extra, _) = unprotected_keys(1).remove(0);
        let file = tmp.path().join("extra.xml");
        std::fs::write(&file, xml::to_bytes(&extra, xml::WriteOptions::KEY_FILE)).unwrap();
        repos.ok([
            "blob-store",
            tmp.path().join("ours.xml").to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        let dotnet_added = std::fs::read(tmp.path().join("ours.xml")).unwrap();
        block_on(store.append(&adds(&[(extra, String::new())]))).unwrap();
        assert!(block_on(az.get("keys", "same.xml")).unwrap().0 == dotnet_added);
    }

    #[test]
    fn a_blob_written_by_dotnet_is_read_and_kept_byte_for_byte() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let blob = std::fs::read(super::common::fixture("stores/dotnet-blob-keys.xml")).unwrap();
        block_on(az.put("keys", "keys.xml", &blob));
        let text = std::str::from_utf8(&blob).unwrap();
        let start = text.find("<key ").unwrap();
        let end = text.find("</repository>").unwrap();

        let store = BlobStore::open(&az.sas_url("keys", "keys.xml", "racwdl"), fast()).unwrap();
        let loaded = block_on(store.load()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].raw(), &blob[start..end]);
        assert_eq!(
            id_of(loaded[0].element()),
            "6417072d-bd2e-4737-8995-fd280fe00251"
        );
        let (k, _) = unprotected_keys(1).remove(0);
        block_on(store.append(&adds(&[(k.clone(), String::new())]))).unwrap();
        let (after, _) = block_on(az.get("keys", "keys.xml")).unwrap();
        let mut expected = blob[..end].to_vec();
        expected.extend_from_slice(xml::to_compact_string(&k).as_bytes());
        expected.extend_from_slice(b"</repository>");
        assert!(after == expected, "every byte .NET wrote is kept");

        // In place: only the re-wrapped element's bytes change.
        let loaded = block_on(store.load()).unwrap();
        let new = block_on(toggle_protection(loaded[1].element()));
        block_on(store.replace(&[Change {
            old: &loaded[1],
            new: new.clone(),
        }]))
        .unwrap();
        let (after, _) = block_on(az.get("keys", "keys.xml")).unwrap();
        let mut expected = blob[..end].to_vec();
        expected.extend_from_slice(xml::to_compact_string(&new).as_bytes());
        expected.extend_from_slice(b"</repository>");
        assert!(after == expected);
    }

    #[test]
    fn an_unchanged_blob_is_read_from_the_cache_and_a_changed_one_again() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let store = BlobStore::open(&az.sas_url("keys", "r.xml", "racwdl"), fast()).unwrap();
        let keys = unprotected_keys(3);
        block_on(store.append(&adds(&keys[..2]))).unwrap();
        assert_eq!(block_on(store.load()).unwrap().len(), 2);
        assert_eq!(block_on(store.load()).unwrap().len(), 2);
        // Another writer replaces the blob: the next read sees it (the ETag changed).
        let other = BlobStore::open(&az.sas_url("keys", "r.xml", "racwdl"), fast()).unwrap();
        block_on(other.append(&adds(&keys[2..]))).unwrap();
        assert_eq!(block_on(store.load()).unwrap().len(), 3);
        // A stale cache cannot make a write lose the other writer's element.
        let (k, _) = unprotected_keys(1).remove(0);
        block_on(other.append(&adds(&[(k, String::new())]))).unwrap();
        let (k2, _) = unprotected_keys(1).remove(0);
        block_on(store.append(&adds(&[(k2, String::new())]))).unwrap();
        assert_eq!(block_on(other.load()).unwrap().len(), 5);
    }

    #[test]
    fn an_entra_id_token_over_https_works_and_a_bad_one_is_refused() {
        if !interop::have("openssl") {
            interop::skip("openssl is not installed");
            return;
        }
        let tmp = TempDir::new();
        loopback_server_certificates(tmp.path());
        let Some(az) =
            Azurite::start_https(&tmp.path().join("srv.pem"), &tmp.path().join("srv.key"))
        else {
            return;
        };
        let ca = std::fs::read(tmp.path().join("ca.pem")).unwrap();
        let options = |token: String| BlobOptions {
            credential: Some(Arc::new(StaticToken(token))),
            transport: TransportOptions {
                trusted_roots_pem: Some(ca.clone()),
                ..TransportOptions::default()
            },
            ..fast()
        };
        // The container, created with the token through the SDK.
        block_on(async {
            let client = azure_storage_blob::BlobContainerClient::new(
                azure_core::http::Url::parse(&az.container_url("keys")).unwrap(),
                Some(Arc::new(StaticToken(unsigned_storage_jwt()))),
                Some(azure_storage_blob::BlobContainerClientOptions {
                    client_options: azure_core::http::ClientOptions {
                        transport: Some(
                            dpwrap::azure::transport::build_transport(&TransportOptions {
                                trusted_roots_pem: Some(ca.clone()),
                                ..TransportOptions::default()
                            })
                            .unwrap(),
                        ),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            )
            .unwrap();
            client.create(None).await.unwrap();
        });
        let url = az.blob_url("keys", "ring.xml");
        assert!(url.starts_with("blob+https://"));
        let store = BlobStore::open(&url, options(unsigned_storage_jwt())).unwrap();
        let keys = unprotected_keys(2);
        block_on(store.append(&adds(&keys))).unwrap();
        let loaded = block_on(store.load()).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[1].element(), &keys[1].0);

        // A token Azurite does not accept: a clear authentication or permission error.
        let bad = BlobStore::open(&url, options("not-a-jwt".into())).unwrap();
        let e = block_on(bad.load()).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Unauthenticated | ErrorKind::Backend),
            "{e}"
        );
        eprintln!("bad token: {e}");
        // Without the CA the server is not trusted: an error, not a hang.
        let untrusted = BlobStore::open(
            &url,
            BlobOptions {
                credential: Some(Arc::new(StaticToken(unsigned_storage_jwt()))),
                ..fast()
            },
        )
        .unwrap();
        assert_eq!(
            block_on(untrusted.load()).unwrap_err().kind(),
            ErrorKind::Backend
        );
    }

    // ---------------------------------------------------------------------- bad input, faults

    #[test]
    fn a_wrong_sas_is_refused_naming_the_permission_and_never_printed() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let keys = unprotected_keys(1);
        block_on(
            dpwrap::store::open(&az.sas_url("keys", "ring.xml", "racwdl"))
                .unwrap()
                .append(&adds(&keys)),
        )
        .unwrap();
        let before = block_on(az.get("keys", "ring.xml")).unwrap().0;

        // Read-only SAS: loads, but cannot write.
        let read_only = BlobStore::open(&az.sas_url("keys", "ring.xml", "rl"), fast()).unwrap();
        assert_eq!(block_on(read_only.load()).unwrap().len(), 1);
        let e = block_on(read_only.append(&adds(&unprotected_keys(1)))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(e.to_string().contains("403"), "{e}");
        assert!(
            e.to_string().contains("Storage Blob Data Contributor"),
            "{e}"
        );
        assert!(e.to_string().contains("sp=rw"), "{e}");

        // A signature made with another key.
        let wrong_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
        let sas = account_sas_signed_with("racwdl", wrong_key);
        let url = format!("{}?{sas}", az.blob_url("keys", "ring.xml"));
        let sig = sas.rsplit_once("sig=").unwrap().1.to_owned();
        let bad = BlobStore::open(&url, fast()).unwrap();
        let e = block_on(bad.load()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(e.to_string().contains("403"), "{e}");
        assert!(!e.to_string().contains(&sig), "{e}");
        assert!(!format!("{e:?}").contains(&sig));
        assert!(!format!("{bad:?}").contains(&sig));
        let e = block_on(bad.append(&adds(&unprotected_keys(1)))).unwrap_err();
        assert!(e.to_string().contains("403"), "{e}");
        assert_eq!(block_on(az.get("keys", "ring.xml")).unwrap().0, before);
    }

    #[test]
    fn a_missing_container_is_named() {
        let Some(az) = Azurite::start() else { return };
        let store = BlobStore::open(
            &az.sas_url("no-such-container", "ring.xml", "racwdl"),
            fast(),
        )
        .unwrap();
        let e = block_on(store.load()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(
            e.to_string().contains("'no-such-container' does not exist"),
            "{e}"
        );
        let e = block_on(store.append(&adds(&unprotected_keys(1)))).unwrap_err();
        assert!(
            e.to_string().contains("'no-such-container' does not exist"),
            "{e}"
        );
    }

    #[test]
    fn a_blob_that_is_not_a_ring_is_refused_and_left_alone() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        for (name, content, kind) in [
            ("text.xml", &b"this is not xml"[..], ErrorKind::Xml),
            (
                "html.xml",
                &b"<html><body>hello</body></html>"[..],
                ErrorKind::Format,
            ),
            (
                "cut.xml",
                &b"<repository><revocation version=\"1\"><revocationDate>"[..],
                ErrorKind::Xml,
            ),
        ] {
            block_on(az.put("keys", name, content));
            let store = BlobStore::open(&az.sas_url("keys", name, "racwdl"), fast()).unwrap();
            let e = block_on(store.load()).unwrap_err();
            assert_eq!(e.kind(), kind, "{name}: {e}");
            assert!(e.to_string().contains(name), "{e}");
            let e = block_on(store.append(&adds(&unprotected_keys(1)))).unwrap_err();
            assert_eq!(e.kind(), kind, "{name}: {e}");
            assert_eq!(block_on(az.get("keys", name)).unwrap().0, content);
        }
        // An element that does not parse as a key or revocation fails the load, named.
        let (k, _) = unprotected_keys(1).remove(0);
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><repository>{}<key version=\"1\"><creationDate>yesterday</creationDate></key></repository>",
            xml::to_compact_string(&k)
        );
        block_on(az.put("keys", "bad-element.xml", doc.as_bytes()));
        let store =
            BlobStore::open(&az.sas_url("keys", "bad-element.xml", "racwdl"), fast()).unwrap();
        let loaded = block_on(store.load()).unwrap();
        let e = loaded[1].parse().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format);
        assert!(e.to_string().contains("element 1"), "{e}");
    }

    #[test]
    fn unreachable_endpoints_fail_fast() {
        let port = free_port();
        let store = BlobStore::open(
            &format!(
                "blob+http://127.0.0.1:{port}/{}/keys/ring.xml?{}",
                azurite::ACCOUNT,
                azurite::account_sas("racwdl")
            ),
            fast(),
        )
        .unwrap();
        let started = Instant::now();
        let e = block_on(store.load()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(
            !e.to_string().contains("sig=") || e.to_string().contains("sig=***"),
            "{e}"
        );
        let e = block_on(store.append(&adds(&unprotected_keys(1)))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");

        // A server that accepts connections and never answers: the request timeout ends it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let store = BlobStore::open(
            &format!(
                "blob+http://127.0.0.1:{port}/{}/keys/ring.xml?{}",
                azurite::ACCOUNT,
                azurite::account_sas("racwdl")
            ),
            fast(),
        )
        .unwrap();
        let started = Instant::now();
        let e = block_on(store.load()).unwrap_err();
        let took = started.elapsed();
        eprintln!("silent server: failed after {took:?}: {e}");
        assert!(took < Duration::from_secs(8), "{took:?}");
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
        drop(silent);
    }

    // ------------------------------------------------------------- eight processes, one blob

    const CHILD_APPEND: &str = "DPWRAP_TEST_BLOB_APPEND";
    const KEYS_PER_PROCESS: usize = 10;
    const PROCESSES: usize = 8;

    /// Child: `key new` (a null-protected key, appended) KEYS_PER_PROCESS times, as soon as the
    /// start file appears; prints each id and the conflicts met.
    fn key_new_child(spec: &str) {
        let (url, start_file) = spec.split_once('|').unwrap();
        let store = BlobStore::open(url, BlobOptions::default()).unwrap();
        while !std::path::Path::new(start_file).exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        for _ in 0..KEYS_PER_PROCESS {
            let master = MasterKey::generate(64).unwrap();
            let key = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
            let element = block_on(key.protect(&master, &NullXmlEncryptor)).unwrap();
            block_on(store.append(&[Addition::named_as_dotnet(element).unwrap()])).unwrap();
            println!("id {} {}", key.id, master.to_base64().as_str());
        }
        println!(
            "conflicts {} in {} ms",
            store.conflicts(),
            started.elapsed().as_millis()
        );
    }

    #[test]
    fn eight_processes_adding_keys_to_one_blob_lose_nothing() {
        if let Ok(spec) = std::env::var(CHILD_APPEND) {
            key_new_child(&spec);
            return;
        }
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let url = az.sas_url("keys", "farm.xml", "racwdl");
        let tmp = TempDir::new();
        let start_file = tmp.path().join("go");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "with_azurite::eight_processes_adding_keys_to_one_blob_lose_nothing",
                        "--nocapture",
                    ])
                    .env(CHILD_APPEND, format!("{url}|{}", start_file.display()))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Let every child start and open its store, then release them together.
        std::thread::sleep(Duration::from_millis(1500));
        let started = Instant::now();
        std::fs::write(&start_file, b"").unwrap();
        let mut written: Vec<(String, String)> = Vec::new();
        let mut conflicts = 0u64;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in stdout.lines() {
                if let Some(rest) = line.strip_prefix("id ") {
                    let (id, mk) = rest.split_once(' ').unwrap();
                    written.push((id.to_owned(), mk.to_owned()));
                } else if let Some(rest) = line.strip_prefix("conflicts ") {
                    conflicts += rest.split(' ').next().unwrap().parse::<u64>().unwrap();
                }
            }
        }
        let took = started.elapsed();
        assert_eq!(written.len(), PROCESSES * KEYS_PER_PROCESS);
        let store = BlobStore::open(&url, BlobOptions::default()).unwrap();
        let loaded = block_on(store.load()).unwrap();
        let ids: Vec<String> = loaded.iter().map(|e| id_of(e.element())).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        let lost = written
            .iter()
            .filter(|(id, _)| !unique.contains(id))
            .count();
        let duplicated = ids.len() - unique.len();
        eprintln!(
            "blob race: {PROCESSES} processes × {KEYS_PER_PROCESS} key new against one blob in {took:?}: {} elements in the blob, {lost} lost, {duplicated} duplicated; {conflicts} precondition failures (412/409) retried",
            ids.len()
        );
        assert_eq!(lost, 0);
        assert_eq!(duplicated, 0);
        assert_eq!(ids.len(), PROCESSES * KEYS_PER_PROCESS);
        assert!(
            conflicts > 0,
            "the writers never collided: the race was not exercised"
        );
        for e in &loaded {
            let id = id_of(e.element());
            let (_, mk) = written.iter().find(|(i, _)| *i == id).unwrap();
            assert_eq!(&block_on(null_master_key(e.element())), mk);
        }
    }

    // ------------------------------------------------------------------------- crash safety

    const CHILD_REWRAP: &str = "DPWRAP_TEST_BLOB_REWRAP";

    fn rewrap_forever(spec: &str) {
        let (url, started_file) = spec.split_once('|').unwrap();
        let store = BlobStore::open(url, BlobOptions::default()).unwrap();
        std::fs::write(started_file, b"").unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            block_on(toggle_all(&store)).unwrap();
            let (k, _) = unprotected_keys(1).remove(0);
            block_on(store.append(&[Addition::named_as_dotnet(k).unwrap()])).unwrap();
        }
    }

    #[test]
    fn killed_mid_rewrap_every_key_stays_readable() {
        if let Ok(spec) = std::env::var(CHILD_REWRAP) {
            rewrap_forever(&spec);
            return;
        }
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let url = az.sas_url("keys", "crash.xml", "racwdl");
        let store = BlobStore::open(&url, BlobOptions::default()).unwrap();
        let keys = unprotected_keys(20);
        block_on(store.append(&adds(&keys))).unwrap();
        let tmp = TempDir::new();
        let started_file = tmp.path().join("started");
        let exe = std::env::current_exe().unwrap();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
        let mut seen = keys.len();
        let mut kills = 0;
        for _ in 0..10 {
            let _ = std::fs::remove_file(&started_file);
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "with_azurite::killed_mid_rewrap_every_key_stays_readable",
                    "--nocapture",
                ])
                .env(CHILD_REWRAP, format!("{url}|{}", started_file.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !started_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 600));
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child stopped by itself"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;

            let loaded = block_on(store.load()).expect("the blob is readable after a kill");
            assert!(
                loaded.len() >= seen,
                "elements were lost: {} < {seen}",
                loaded.len()
            );
            seen = loaded.len();
            for (k, mk) in &keys {
                let id = id_of(k);
                let e = loaded
                    .iter()
                    .find(|e| id_of(e.element()) == id)
                    .expect("every original key is still there");
                assert_eq!(&block_on(null_master_key(e.element())), mk);
            }
            let ids: HashSet<String> = loaded.iter().map(|e| id_of(e.element())).collect();
            assert_eq!(ids.len(), loaded.len(), "no element twice");
        }
        eprintln!(
            "blob store: {kills} kills mid-rewrap, every key readable each time; the ring grew from {} to {seen} elements, none lost or duplicated",
            keys.len()
        );
    }
}

#[cfg(all(feature = "azure", feature = "redis"))]
mod across_stores {
    use std::sync::Arc;

    use super::common::azurite::Azurite;
    use super::common::redis_server::RedisServer;
    use super::common::{
        TempDir, block_on, interop, peer_decrypt_ring, peer_ring_every_format, xml_files,
    };
    use dpwrap::azure::{AzureKeyVaultXmlEncryptor, LocalRsaKek};
    use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
    use dpwrap::store::copy::copy;
    use dpwrap::store::rewrap::{rewrap_in_place, rewrap_to};
    use dpwrap::store::{Addition, DirectoryStore, DocumentStore, KeyStore, StoredElement};
    use dpwrap::xml::{Element, NS_DP};
    use dpwrap::{MasterKey, envelope};

    fn elements(loaded: &[StoredElement]) -> Vec<Element> {
        loaded.iter().map(|e| e.element().clone()).collect()
    }

    /// A ring with every protection the peer writes goes directory → Redis → Blob → one
    /// document; each step holds the same elements, and the peer decrypts each step's ring the
    /// same way (materialised as a directory).
    #[test]
    fn a_peer_ring_of_every_protection_goes_directory_redis_blob_document() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let tmp = TempDir::new();
        let Some((ring, certs, manifest)) = peer_ring_every_format(tmp.path(), 12) else {
            return;
        };
        let formats: std::collections::HashSet<&str> = manifest
            .iter()
            .map(|m| m["format"].as_str().unwrap())
            .collect();
        assert_eq!(formats.len(), 6, "{formats:?}");
        let Some(peer) = interop::peer() else { return };
        let expected = peer_decrypt_ring(&peer, &ring, Some(&certs));
        assert_eq!(expected.len(), 12);

        let dir = DirectoryStore::new(&ring);
        let redis_store = dpwrap::store::open(&redis.url("?key=chain")).unwrap();
        let blob = dpwrap::store::open(&az.sas_url("keys", "chain.xml", "racwdl")).unwrap();
        let doc = DocumentStore::new(tmp.path().join("chain.xml"));
        let source = elements(&block_on(dir.load()).unwrap());
        let steps: [(&str, &dyn KeyStore, &dyn KeyStore); 3] = [
            ("redis", &dir, redis_store.as_ref()),
            ("blob", redis_store.as_ref(), blob.as_ref()),
            ("document", blob.as_ref(), &doc),
        ];
        for (name, from, to) in steps {
            let report = block_on(copy(from, to, false)).unwrap();
            assert_eq!(report.added.len(), source.len(), "{name}");
            assert_eq!(elements(&block_on(to.load()).unwrap()), source, "{name}");
            let out = DirectoryStore::new(tmp.path().join(format!("from-{name}")));
            block_on(copy(to, &out, false)).unwrap();
            assert_eq!(
                peer_decrypt_ring(&peer, out.path(), Some(&certs)),
                expected,
                "{name}"
            );
            if name == "document" {
                assert_eq!(xml_files(out.path()), xml_files(&ring), "byte for byte");
            }
        }
    }

    /// The peer decrypts what the blob holds after `rewrap --out` (directory → blob), an
    /// in-place rewrap of the blob, and `key new`, protected with ASP.NET's Key Vault format
    /// over a local RSA key (the peer's stand-in for the vault key).
    #[test]
    fn the_peer_reads_what_rewrap_and_key_new_put_in_a_blob() {
        let Some(az) = Azurite::start() else { return };
        block_on(az.create_container("keys"));
        let tmp = TempDir::new();
        let Some((ring, certs, manifest)) = peer_ring_every_format(tmp.path(), 12) else {
            return;
        };
        let Some(peer) = interop::peer() else { return };
        let before = peer_decrypt_ring(&peer, &ring, Some(&certs));
        let kek_pem = std::fs::read_to_string(certs.join("kek.pem")).unwrap();
        let kid = "https://example-vault.vault.azure.net/keys/dataprotection/0123456789abcdef0123456789abcdef";
        let kek = Arc::new(LocalRsaKek::from_pem(kid, &kek_pem).unwrap());
        let encryptor = AzureKeyVaultXmlEncryptor::new(kek);

        // Unprotected keys get the Key Vault protection, verified by opening it again.
        let protect = async |e: &Element| -> dpwrap::Result<Option<Element>> {
            if !e.is(None, "key") || e.find(Some(NS_DP), "encryptedSecret").is_some() {
                return Ok(None);
            }
            envelope::encrypt_if_necessary(&encryptor, e).await
        };
        let src = DirectoryStore::new(&ring);
        let snapshot = xml_files(&ring);
        let blob = dpwrap::store::open(&az.sas_url("keys", "rewrap.xml", "racwdl")).unwrap();
        let report = block_on(rewrap_to(&src, blob.as_ref(), protect)).unwrap();
        let unprotected = manifest.iter().filter(|m| m["format"] == "none").count();
        assert!(unprotected > 0);
        assert_eq!(report.rewrapped.len(), unprotected);
        assert_eq!(xml_files(&ring), snapshot, "the source is untouched");

        // key new, Key Vault-protected, into the blob.
        let master = MasterKey::generate(64).unwrap();
        let key = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
        let element = block_on(key.protect(&master, &encryptor)).unwrap();
        block_on(blob.append(&[Addition::named_as_dotnet(element).unwrap()])).unwrap();

        // In place: the null-protected keys move to the Key Vault protection too.
        let from_null = async |e: &Element| -> dpwrap::Result<Option<Element>> {
            let decryptor_type = e
                .find(Some(NS_DP), "encryptedSecret")
                .and_then(|s| s.attribute(None, "decryptorType"))
                .unwrap_or("");
            if !decryptor_type.contains("NullXmlDecryptor") {
                return Ok(None);
            }
            let decryptors = dpwrap::Decryptors::new().with(Arc::new(dpwrap::NullXmlDecryptor));
            let clear = envelope::decrypt_element(e, &decryptors).await?;
            envelope::encrypt_if_necessary(&encryptor, clear.expose()).await
        };
        let nulls = manifest.iter().filter(|m| m["format"] == "null").count();
        let in_place = block_on(rewrap_in_place(blob.as_ref(), from_null)).unwrap();
        assert_eq!(in_place.rewrapped.len(), nulls);

        let out = DirectoryStore::new(tmp.path().join("from-blob"));
        block_on(copy(blob.as_ref(), &out, false)).unwrap();
        let after = peer_decrypt_ring(&peer, out.path(), Some(&certs));
        let mut expected = before.clone();
        expected.push((key.id.to_string(), master.to_base64().to_string(), false));
        expected.sort();
        assert_eq!(after, expected);
        for e in block_on(out.load()).unwrap() {
            if e.element().is(None, "key") {
                let s = e.element().find(Some(NS_DP), "encryptedSecret").unwrap();
                assert!(
                    !s.attribute(None, "decryptorType")
                        .unwrap()
                        .contains("NullXmlDecryptor")
                );
            }
        }
    }
}
