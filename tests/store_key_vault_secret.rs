//! The Key Vault secret store against the local Key Vault (real HTTPS, the SDK's own client): the
//! value as the community `AzureKeyVaultKeyRingRepository` writes and reads it (checked with .NET's
//! XDocument on Mono), nothing dropped, the 25 KB limit, the read-back retry against a lost update,
//! pruning only when asked, a process killed while it re-wraps, and the faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::azurite::StaticToken;
use common::redis_server::free_port;
use common::{
    TempDir, block_on, changes, interop, null_master_key, peer_decrypt_ring,
    peer_ring_every_format, toggle_all, toggle_protection,
};
use dpwrap::azure::key_vault::KeyVaultOptions;
use dpwrap::azure::retry::RetryPolicy;
use dpwrap::azure::transport::TransportOptions;
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::store::{Addition, DirectoryStore, KeyStore, KeyVaultSecretStore, SecretStoreOptions};
use dpwrap::testing::LocalKeyVault;
use dpwrap::xml::{self, Element};
use dpwrap::{ErrorKind, MasterKey};

/// A vault on a multi-threaded runtime of its own, so that it keeps serving while the tests (and
/// their child processes) use it from other runtimes.
struct Vault {
    vault: LocalKeyVault,
    _rt: tokio::runtime::Runtime,
}

fn vault() -> Vault {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let vault = rt.block_on(LocalKeyVault::start()).unwrap();
    Vault { vault, _rt: rt }
}

fn key_vault_options(ca_pem: &[u8]) -> KeyVaultOptions {
    KeyVaultOptions {
        transport: TransportOptions {
            trusted_roots_pem: Some(ca_pem.to_vec()),
            ..TransportOptions::default()
        },
        retry: RetryPolicy {
            max_retries: 1,
            initial_delay: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(3),
            ..RetryPolicy::default()
        },
        // The vault is reached by IP address; see dpwrap::testing::key_vault.
        verify_challenge_resource: false,
        ..KeyVaultOptions::default()
    }
}

fn options(v: &Vault) -> SecretStoreOptions {
    SecretStoreOptions {
        credential: Some(Arc::new(StaticToken("local-test-token".into()))),
        key_vault: key_vault_options(v.vault.ca_pem().as_bytes()),
        ..SecretStoreOptions::default()
    }
}

fn location(v: &Vault, name: &str) -> String {
    format!("kvsecret+{}/secrets/{name}", v.vault.url())
}

fn store(v: &Vault, name: &str) -> KeyVaultSecretStore {
    KeyVaultSecretStore::open(&location(v, name), options(v)).unwrap()
}

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
    e.attribute(None, "id").unwrap_or("*").to_owned()
}

fn decode(value: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap(),
    )
    .unwrap()
}

/// A secret value holding `elements`, as the community repository writes one (built by hand,
/// for the other writers of these tests).
fn value_of(elements: &[&Element]) -> String {
    let mut root = Element::new(xml::Name::local("root"));
    for e in elements {
        root.push(xml::Node::Element((*e).clone()));
    }
    base64::engine::general_purpose::STANDARD
        .encode(xml::to_bytes(&root, xml::WriteOptions::INDENTED))
}

#[test]
fn the_value_is_what_the_community_repository_writes_and_reads() {
    let v = vault();
    let tmp = TempDir::new();
    let Some((ring, certs, manifest)) = peer_ring_every_format(tmp.path(), 5) else {
        return;
    };
    let dir = DirectoryStore::new(&ring);
    let elements = block_on(dir.load()).unwrap();
    let secret = store(&v, "dp-ring");
    block_on(dpwrap::store::copy::copy(&dir, &secret, false)).unwrap();

    let value = v.vault.secret("dp-ring").unwrap();
    assert_eq!(
        v.vault.secret_content_type("dp-ring").as_deref(),
        Some("text/plain")
    );
    let xml_text = decode(&value);
    // STORES.md: a <root> document, two-space indentation, no declaration, no BOM.
    assert!(xml_text.starts_with("<root>\n  <"), "{}", &xml_text[..60]);
    assert!(xml_text.ends_with("</root>"));
    assert!(!xml_text.contains("<?xml"));
    let loaded = block_on(secret.load()).unwrap();
    assert_eq!(loaded.len(), elements.len());
    for (a, b) in loaded.iter().zip(&elements) {
        assert_eq!(a.element(), b.element());
    }

    let Some(repos) = interop::repositories() else {
        return;
    };
    // .NET's XDocument.ToString() of the same elements, base64: the same value, byte for byte.
    let files: Vec<String> = elements
        .iter()
        .map(|e| ring.join(e.name()).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["kvsecret-write".to_owned()];
    args.extend(files);
    let dotnet_value = repos.ok(&args);
    assert_eq!(
        decode(&dotnet_value),
        xml_text,
        "the <root> document as .NET serializes it"
    );
    assert_eq!(dotnet_value, value);

    // The community repository reads what dpwrap wrote (dropping, as it does, what is older
    // than 180 days: dpwrap's load above kept everything).
    std::fs::write(tmp.path().join("value.txt"), &value).unwrap();
    let out = tmp.path().join("from-secret");
    let kept: usize = repos
        .ok([
            "kvsecret-read",
            tmp.path().join("value.txt").to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .parse()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let young = manifest
        .iter()
        .filter(|m| {
            let created = time::OffsetDateTime::parse(
                m["creation_date"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            (now - created).whole_days() <= 180
        })
        .count();
    eprintln!(
        "community repository: kept {kept} of {} elements (it drops keys and revocations older than 180 days; dpwrap kept all {})",
        elements.len(),
        loaded.len()
    );
    assert!(
        young < manifest.len(),
        "the peer ring has keys older than 180 days"
    );
    assert!(kept < elements.len());
    if let Some(peer) = interop::peer() {
        // Every key the repository kept decrypts in the peer as it did from the directory.
        let from_secret = peer_decrypt_ring(&peer, &out, Some(&certs));
        let original = peer_decrypt_ring(&peer, &ring, Some(&certs));
        assert!(!from_secret.is_empty());
        for row in &from_secret {
            let (id, mk, _) = row;
            assert!(original.iter().any(|(i, m, _)| i == id && m == mk), "{id}");
        }
    }
}

#[test]
fn a_ring_written_by_the_community_repository_is_read_whole() {
    let v = vault();
    let tmp = TempDir::new();
    let Some((ring, _, _)) = peer_ring_every_format(tmp.path(), 6) else {
        return;
    };
    let Some(repos) = interop::repositories() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let mut args = vec!["kvsecret-write".to_owned()];
    args.extend(files.iter().map(|p| p.to_str().unwrap().to_owned()));
    let value = repos.ok(&args);
    v.vault.set_secret("community", &value, Some("text/plain"));
    let loaded = block_on(store(&v, "community").load()).unwrap();
    assert_eq!(loaded.len(), files.len(), "nothing dropped, however old");
    for (e, f) in loaded.iter().zip(&files) {
        let from_file = dpwrap::key_file::read_element(f).unwrap();
        assert_eq!(e.element(), &from_file);
    }
}

#[test]
fn the_size_limit_is_checked_before_sending_and_says_how_many_keys_fit() {
    let v = vault();
    let secret = store(&v, "small");
    let keys = unprotected_keys(40);
    block_on(secret.append(&adds(&keys[..5]))).unwrap();
    let versions = v.vault.secret_versions("small");
    let sets = v.vault.stats().secret_sets;
    let e = block_on(secret.append(&adds(&keys[5..]))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    let text = e.to_string();
    eprintln!("{text}");
    assert!(text.contains("limit of 25600"), "{text}");
    assert!(text.contains("40 elements and only"), "{text}");
    let fit: usize = text
        .split("only ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(fit > 5 && fit < 40, "{fit}");
    // Nothing was sent.
    assert_eq!(v.vault.secret_versions("small"), versions);
    assert_eq!(v.vault.stats().secret_sets, sets);
    // As many as it said do fit (the newest ones; here a fresh secret).
    let fresh = store(&v, "fits");
    block_on(fresh.append(&adds(&keys[40 - fit..]))).unwrap();
    let e = block_on(fresh.append(&adds(&keys[..1]))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit);
    // The local vault refuses an oversized value as the service does (what the check prevents).
    let big = "A".repeat(dpwrap::testing::key_vault::MAX_SECRET_VALUE + 4);
    let raw = dpwrap::azure::secret::KeyVaultSecrets::new(
        v.vault.url(),
        Arc::new(StaticToken("t".into())),
        key_vault_options(v.vault.ca_pem().as_bytes()),
    )
    .unwrap();
    assert!(block_on(raw.set("raw", &big, None)).is_err());
}

#[test]
fn a_lost_update_is_seen_on_reading_back_and_written_again() {
    let v = vault();
    let secret = store(&v, "shared");
    let keys = unprotected_keys(3);
    block_on(secret.append(&adds(&keys[..1]))).unwrap();
    // Another writer read the ring (key 0) before us and sets its version (key 0 + key 1) just
    // after ours: last writer wins, our key 2 is gone from the latest version.
    let theirs = value_of(&[&keys[0].0, &keys[1].0]);
    v.vault.overwrite_after_next_set("shared", &theirs);
    let sets = v.vault.stats().secret_sets;
    block_on(secret.append(&adds(&keys[2..]))).unwrap();
    assert_eq!(
        v.vault.stats().secret_sets - sets,
        2,
        "written, found missing on reading back, written again"
    );
    let ids: Vec<String> = block_on(secret.load())
        .unwrap()
        .iter()
        .map(|e| id_of(e.element()))
        .collect();
    assert_eq!(
        ids,
        keys.iter().map(|(k, _)| id_of(k)).collect::<Vec<_>>(),
        "the other writer's key and ours, each once"
    );

    // A writer that keeps being overwritten gives up loudly after its attempts.
    let (k, _) = unprotected_keys(1).remove(0);
    for _ in 0..5 {
        v.vault.overwrite_after_next_set("shared", &theirs);
    }
    let e = block_on(secret.append(&adds(&[(k, String::new())]))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    assert!(e.to_string().contains("after each of 5 writes"), "{e}");
}

#[test]
fn two_writers_at_once_figures() {
    let v = vault();
    let per_writer = 8;
    let writers: Vec<Vec<(Element, String)>> =
        (0..2).map(|_| unprotected_keys(per_writer)).collect();
    let started = Instant::now();
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .iter()
            .map(|keys| {
                let secret = store(&v, "race");
                s.spawn(move || {
                    let (mut ok, mut gave_up) = (0, 0);
                    for (k, _) in keys {
                        match block_on(secret.append(&adds(&[(k.clone(), String::new())]))) {
                            Ok(()) => ok += 1,
                            Err(e) if e.kind() == ErrorKind::Store => gave_up += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (ok, gave_up)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = started.elapsed();
    let loaded = block_on(store(&v, "race").load()).unwrap();
    let ids: Vec<String> = loaded.iter().map(|e| id_of(e.element())).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    let written: Vec<String> = writers.iter().flatten().map(|(k, _)| id_of(k)).collect();
    let lost = written.iter().filter(|id| !unique.contains(id)).count();
    let (ok, gave_up) = results.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    eprintln!(
        "key vault secret, two writers × {per_writer} appends at once in {took:?}: {ok} confirmed by reading back, {gave_up} gave up; {} versions written; final ring {} elements, {lost} lost, {} duplicated (last writer wins: the read-back narrows the window, it cannot close it)",
        v.vault.secret_versions("race"),
        ids.len(),
        ids.len() - unique.len()
    );
    assert_eq!(ids.len(), unique.len(), "nothing twice");
    assert_eq!(ok + gave_up, 2 * per_writer);
}

/// A key that expired on 2020-04-01, with a revocation of it, and a mass revocation from 2019.
fn old_elements() -> (Element, Element, Element) {
    let master = MasterKey::generate(64).unwrap();
    let key = NewKey {
        id: uuid::Uuid::new_v4(),
        creation: dpwrap::Timestamp::parse("2020-01-01T00:00:00Z").unwrap(),
        activation: dpwrap::Timestamp::parse("2020-01-01T00:00:00Z").unwrap(),
        expiration: dpwrap::Timestamp::parse("2020-04-01T00:00:00Z").unwrap(),
    };
    let element = key.to_element(&master).expose().clone();
    let revocation = dpwrap::Revocation::for_key(
        key.id,
        dpwrap::Timestamp::parse("2020-02-01T00:00:00Z").unwrap(),
        Some("old".into()),
    )
    .to_element();
    let mass = dpwrap::Revocation::all_created_before(
        dpwrap::Timestamp::parse("2019-06-01T00:00:00Z").unwrap(),
        None,
    )
    .to_element();
    (element, revocation, mass)
}

#[test]
fn old_keys_are_pruned_only_when_asked() {
    let v = vault();
    let (old, revocation, mass) = old_elements();
    let current = unprotected_keys(2);
    v.vault.set_secret(
        "old",
        &value_of(&[&old, &revocation, &mass, &current[0].0]),
        Some("text/plain"),
    );
    let plain = store(&v, "old");
    assert_eq!(block_on(plain.load()).unwrap().len(), 4, "read whole");
    block_on(plain.append(&adds(&current[1..]))).unwrap();
    assert_eq!(
        block_on(plain.load()).unwrap().len(),
        5,
        "written without dropping anything"
    );

    let pruning = KeyVaultSecretStore::open(
        &location(&v, "old"),
        SecretStoreOptions {
            prune_older_than: Some(time::Duration::days(180)),
            ..options(&v)
        },
    )
    .unwrap();
    let (k, _) = unprotected_keys(1).remove(0);
    block_on(pruning.append(&adds(&[(k.clone(), String::new())]))).unwrap();
    let after: Vec<Element> = block_on(pruning.load())
        .unwrap()
        .into_iter()
        .map(|e| e.into_element())
        .collect();
    assert_eq!(
        after,
        vec![current[0].0.clone(), current[1].0.clone(), k.clone()],
        "the expired key, its revocation and the mass revocation no key falls under are gone"
    );

    // Writing an element that pruning removes at once is one write that succeeds, not a
    // conflict with itself.
    let versions = v.vault.secret_versions("old");
    block_on(pruning.append(&adds(&[(old.clone(), String::new())]))).unwrap();
    assert_eq!(v.vault.secret_versions("old"), versions + 1);
    assert_eq!(block_on(pruning.load()).unwrap().len(), 3);
    v.vault.set_secret(
        "old2",
        &value_of(&[&old, &current[0].0]),
        Some("text/plain"),
    );
    let pruning2 = KeyVaultSecretStore::open(
        &location(&v, "old2"),
        SecretStoreOptions {
            prune_older_than: Some(time::Duration::days(180)),
            ..options(&v)
        },
    )
    .unwrap();
    let loaded = block_on(pruning2.load()).unwrap();
    let rewrapped = block_on(toggle_protection(loaded[0].element()));
    block_on(pruning2.replace(&changes(&loaded[..1], &[rewrapped]))).unwrap();
    assert_eq!(v.vault.secret_versions("old2"), 2);
    let after: Vec<Element> = block_on(pruning2.load())
        .unwrap()
        .into_iter()
        .map(|e| e.into_element())
        .collect();
    assert_eq!(after, vec![current[0].0.clone()]);
}

// ---------------------------------------------------------------------------- bad input, faults

#[test]
fn values_that_are_not_rings_are_refused_and_nothing_is_written() {
    let v = vault();
    let (k, _) = unprotected_keys(1).remove(0);
    for (name, value, kind) in [
        (
            "not-base64",
            "this is not base64!".to_owned(),
            ErrorKind::Format,
        ),
        (
            "not-xml",
            base64::engine::general_purpose::STANDARD.encode("hello, world"),
            ErrorKind::Xml,
        ),
        (
            "a-pfx",
            base64::engine::general_purpose::STANDARD
                .encode([0x30u8, 0x82, 0x05, 0x10, 0x02, 0x01]),
            ErrorKind::Xml,
        ),
    ] {
        v.vault.set_secret(name, &value, Some("text/plain"));
        let s = store(&v, name);
        let e = block_on(s.load()).unwrap_err();
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.to_string().contains(name), "{e}");
        let e = block_on(s.append(&adds(&[(k.clone(), String::new())]))).unwrap_err();
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert_eq!(v.vault.secret_versions(name), 1, "{name}: nothing written");
    }
    // An element that is not a key or a revocation: the load refuses it, naming it.
    let bad =
        xml::parse(b"<key version=\"1\"><creationDate>yesterday</creationDate></key>").unwrap();
    v.vault
        .set_secret("bad-element", &value_of(&[&k, &bad]), Some("text/plain"));
    let loaded = block_on(store(&v, "bad-element").load()).unwrap();
    let e = loaded[1].parse().unwrap_err();
    assert!(e.to_string().contains("element 1"), "{e}");
    // An empty value and a missing secret are empty rings.
    v.vault.set_secret("empty", "", Some("text/plain"));
    assert!(block_on(store(&v, "empty").load()).unwrap().is_empty());
    assert!(block_on(store(&v, "absent").load()).unwrap().is_empty());
}

#[test]
fn refusals_name_the_permission() {
    let v = vault();
    let secret = store(&v, "guarded");
    block_on(secret.append(&adds(&unprotected_keys(1)))).unwrap();
    v.vault.deny("setSecret", Some("guarded"));
    let e = block_on(secret.append(&adds(&unprotected_keys(1)))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains("403"), "{e}");
    assert!(e.to_string().contains("Key Vault Secrets Officer"), "{e}");
    assert_eq!(v.vault.secret_versions("guarded"), 1);
    v.vault.deny("getSecret", Some("guarded"));
    let e = block_on(secret.load()).unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    assert!(e.to_string().contains("Key Vault Secrets User"), "{e}");
}

#[test]
fn an_unreachable_vault_fails_fast() {
    let port = free_port();
    let s = KeyVaultSecretStore::open(
        &format!("kvsecret+https://127.0.0.1:{port}/secrets/ring"),
        SecretStoreOptions {
            credential: Some(Arc::new(StaticToken("t".into()))),
            key_vault: KeyVaultOptions {
                retry: RetryPolicy {
                    max_retries: 1,
                    initial_delay: Duration::from_millis(50),
                    attempt_timeout: Duration::from_secs(2),
                    ..RetryPolicy::default()
                },
                verify_challenge_resource: false,
                ..KeyVaultOptions::default()
            },
            ..SecretStoreOptions::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let e = block_on(s.load()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

// ------------------------------------------------------------------------------- crash safety

const CHILD: &str = "DPWRAP_TEST_SECRET_REWRAP";

fn rewrap_forever(spec: &str) {
    let mut parts = spec.split('|');
    let (url, ca, started_file) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let options = SecretStoreOptions {
        credential: Some(Arc::new(StaticToken("t".into()))),
        key_vault: key_vault_options(&std::fs::read(ca).unwrap()),
        ..SecretStoreOptions::default()
    };
    let store = KeyVaultSecretStore::open(url, options).unwrap();
    std::fs::write(started_file, b"").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        block_on(toggle_all(&store)).unwrap();
    }
}

#[test]
fn killed_mid_rewrap_every_key_stays_readable() {
    if let Ok(spec) = std::env::var(CHILD) {
        rewrap_forever(&spec);
        return;
    }
    let v = vault();
    let tmp = TempDir::new();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, v.vault.ca_pem()).unwrap();
    let url = location(&v, "crash");
    let secret = store(&v, "crash");
    let keys = unprotected_keys(8);
    block_on(secret.append(&adds(&keys))).unwrap();
    let started_file = tmp.path().join("started");
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0xD1B5_4A32_D192_ED03 ^ u64::from(std::process::id());
    let mut kills = 0;
    for _ in 0..8 {
        let _ = std::fs::remove_file(&started_file);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "killed_mid_rewrap_every_key_stays_readable",
                "--nocapture",
            ])
            .env(
                CHILD,
                format!("{url}|{}|{}", ca.display(), started_file.display()),
            )
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
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child stopped by itself"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let loaded = block_on(secret.load()).expect("the secret is readable after a kill");
        assert_eq!(loaded.len(), keys.len());
        for ((k, mk), e) in keys.iter().zip(&loaded) {
            assert_eq!(id_of(e.element()), id_of(k));
            assert_eq!(&block_on(null_master_key(e.element())), mk);
        }
    }
    eprintln!(
        "key vault secret: {kills} kills mid-rewrap, {} versions written, every key readable each time",
        v.vault.secret_versions("crash")
    );
}
