//! Whole-ring decryption (`dpwrap::ring`): a ring the Mono peer wrote decrypts to the master keys
//! its manifest gives, in order or as completed, on threads or inline; CPU-bound decryptors run
//! on several threads; waiting decryptors overlap beyond the thread count; the in-flight bound
//! holds; a panicking decryptor fails only its key; dropping the stream drops what waits.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dpwrap::new_key::{DEFAULT_LIFETIME, NewKey};
use dpwrap::ring::{self, Outcome, RingOptions, Source};
use dpwrap::xml::Element;
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, DecryptorType, Decryptors, MasterKey,
    NullXmlDecryptor, NullXmlEncryptor, SecretElement, XmlDecryptor,
};

fn peer_decryptors(certs: &std::path::Path) -> Decryptors {
    let cert =
        CertificateWithKey::from_pem_files(certs.join("c.cert.pem"), certs.join("c.key.pem"), None)
            .unwrap();
    Decryptors::new()
        .with(Arc::new(CertificateXmlDecryptor::new([Arc::new(cert)])))
        .with(Arc::new(NullXmlDecryptor))
}

/// Checks one pass over the peer ring: every key's master key is the manifest's, the two
/// revocations come through as revocations, every file once.
fn check_peer_results(
    results: Vec<ring::Decrypted>,
    files: &[String],
    manifest: &[serde_json::Value],
    ordered: bool,
) {
    let want: HashMap<&str, &str> = manifest
        .iter()
        .map(|v| {
            (
                v["key_id"].as_str().unwrap(),
                v["master_key_b64"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(results.len(), files.len());
    let mut seen = HashSet::new();
    let mut revocations = 0;
    for (position, d) in results.iter().enumerate() {
        if ordered {
            assert_eq!(d.index, position);
        }
        assert_eq!(d.name, files[d.index], "index {}", d.index);
        assert!(seen.insert(d.index));
        match &d.outcome {
            Outcome::Key { key, master_key } => {
                let id = key.id().to_string();
                let got = master_key.as_ref().unwrap().to_base64();
                assert_eq!(got.as_str(), want[id.as_str()], "key {id}");
            }
            Outcome::Revocation(_) => revocations += 1,
            Outcome::Unreadable(e) => panic!("{}: {e}", d.name),
        }
    }
    assert_eq!(revocations, 2);
}

#[test]
fn a_peer_ring_decrypts_to_the_manifest_in_every_mode() {
    let base = common::TempDir::new();
    let Some((ring_dir, certs, manifest)) = common::peer_ring(base.path(), 24) else {
        return;
    };
    let decryptors = peer_decryptors(&certs);
    let files: Vec<String> = common::xml_files(&ring_dir)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(files.len(), 26);

    let modes = [
        (RingOptions::default(), true),
        (RingOptions::with_parallelism(2).concurrency(3), true),
        (RingOptions::with_parallelism(3).unordered(), false),
        (RingOptions::sequential(), true),
        (RingOptions::sequential().concurrency(5).unordered(), false),
    ];
    for (options, ordered) in modes {
        let results: Vec<_> =
            ring::decrypt(ring::directory(&ring_dir).unwrap(), &decryptors, &options).collect();
        check_peer_results(results, &files, &manifest, ordered);
    }

    // From async code, inside a tokio runtime, with elements a store read.
    let store = dpwrap::store::DirectoryStore::new(&ring_dir);
    let results = common::block_on(async {
        let elements = dpwrap::KeyStore::load(&store).await.unwrap();
        let mut stream = ring::decrypt(elements, &decryptors, &RingOptions::default());
        let mut out = Vec::new();
        while let Some(d) = stream.next_async().await {
            out.push(d);
        }
        out
    });
    check_peer_results(results, &files, &manifest, true);
}

#[test]
fn an_unreadable_file_fails_alone_under_its_name() {
    let dir = common::TempDir::new();
    let (elements, masters) = null_keys(3);
    for (i, e) in elements.iter().enumerate() {
        let name = format!("key-{}.xml", e.attribute(None, "id").unwrap());
        let bytes = dpwrap::xml::to_bytes(e, dpwrap::xml::WriteOptions::KEY_FILE);
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        if i == 1 {
            std::fs::write(dir.path().join("key-broken.xml"), b"<key id=").unwrap();
        }
    }
    let results: Vec<_> = ring::decrypt(
        ring::directory(dir.path()).unwrap(),
        &null_decryptors(),
        &RingOptions::with_parallelism(2),
    )
    .collect();
    assert_eq!(results.len(), 4);
    let mut ok = 0;
    for d in &results {
        match &d.outcome {
            Outcome::Unreadable(e) => {
                assert_eq!(d.name, "key-broken.xml");
                assert_eq!(e.kind(), dpwrap::ErrorKind::Xml, "{e}");
            }
            Outcome::Key { key, master_key } => {
                let want = &masters[&key.id().to_string()];
                assert!(master_key.as_ref().unwrap().ct_eq(want));
                ok += 1;
            }
            Outcome::Revocation(_) => panic!("no revocation here"),
        }
    }
    assert_eq!(ok, 3);
}

#[test]
fn cpu_bound_decryptors_run_on_several_worker_threads() {
    let (elements, masters) = null_keys(12);
    let probe = Arc::new(Probe::default());
    let decryptors = Decryptors::new().with(Arc::new(Busy {
        probe: Arc::clone(&probe),
        busy: Duration::from_millis(30),
    }));
    let caller = std::thread::current().id();
    let results: Vec<_> = ring::decrypt(
        elements
            .into_iter()
            .map(|e| Source::element("k", e))
            .collect::<Vec<_>>(),
        &decryptors,
        &RingOptions::with_parallelism(3),
    )
    .collect();
    for d in &results {
        let key = d.key().unwrap();
        assert!(
            d.master_key()
                .unwrap()
                .ct_eq(&masters[&key.id().to_string()])
        );
    }
    let threads = probe.threads.lock().unwrap();
    assert!(threads.len() >= 2, "one thread only: {threads:?}");
    assert!(
        !threads.contains(&caller),
        "decrypted on the caller's thread"
    );
    assert!(
        probe.max_live.load(Ordering::SeqCst) >= 2,
        "never two decryptions at once"
    );
}

#[test]
fn waiting_decryptors_overlap_beyond_the_thread_count() {
    let n = 16;
    let (elements, _) = null_keys(n);
    let probe = Arc::new(Probe::default());
    let decryptors = Decryptors::new().with(Arc::new(Waits {
        probe: Arc::clone(&probe),
        wait: Duration::from_millis(150),
    }));
    let started = Instant::now();
    let results: Vec<_> = ring::decrypt(
        elements.into_iter().map(|e| Source::element("k", e)),
        &decryptors,
        &RingOptions::with_parallelism(1).concurrency(8),
    )
    .collect();
    let elapsed = started.elapsed();
    assert!(results.iter().all(|d| d.master_key().is_some()));
    // One thread, eight waiting at once: about two rounds of 150 ms, not sixteen.
    let max_live = probe.max_live.load(Ordering::SeqCst);
    assert!((4..=8).contains(&max_live), "max in flight {max_live}");
    assert!(elapsed < Duration::from_millis(150 * 8), "{elapsed:?}");
    assert_eq!(probe.threads.lock().unwrap().len(), 1);
}

#[test]
fn no_more_than_the_concurrency_is_ever_in_flight() {
    let n = 40;
    let (elements, _) = null_keys(n);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = elements.into_iter().map(move |e| {
        counter.fetch_add(1, Ordering::SeqCst);
        Source::element("k", e)
    });
    for (options, bound) in [
        (RingOptions::with_parallelism(2).concurrency(3), 3),
        (
            RingOptions::with_parallelism(2).concurrency(5).unordered(),
            5,
        ),
        (RingOptions::sequential(), 1),
    ] {
        let pulled_before = pulled.load(Ordering::SeqCst);
        let stream = ring::decrypt(input.clone(), &null_decryptors(), &options);
        let mut yielded = 0;
        let mut max_in_flight = 0;
        for d in stream {
            assert!(d.master_key().is_some());
            yielded += 1;
            // A slow consumer: the workers must not run ahead of it.
            std::thread::sleep(Duration::from_millis(2));
            let in_flight = pulled.load(Ordering::SeqCst) - pulled_before - yielded;
            max_in_flight = max_in_flight.max(in_flight + 1);
        }
        assert_eq!(yielded, n);
        assert!(max_in_flight <= bound, "{max_in_flight} > {bound}");
    }
}

#[test]
fn a_panicking_decryptor_fails_only_its_key() {
    let (elements, _) = null_keys(6);
    let decryptors = Decryptors::new().with(Arc::new(PanicsOnThird(AtomicUsize::new(0))));
    let results: Vec<_> = ring::decrypt(
        elements.into_iter().map(|e| Source::element("k", e)),
        &decryptors,
        &RingOptions::with_parallelism(2).concurrency(2),
    )
    .collect();
    assert_eq!(results.len(), 6);
    let failed: Vec<_> = results.iter().filter_map(|d| d.error()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].kind(), dpwrap::ErrorKind::Backend);
}

#[test]
fn dropping_the_stream_drops_what_waits() {
    let (elements, _) = null_keys(10);
    let probe = Arc::new(Probe::default());
    let decryptors = Decryptors::new().with(Arc::new(Waits {
        probe: Arc::clone(&probe),
        wait: Duration::from_secs(30),
    }));
    let mut stream = ring::decrypt(
        elements.into_iter().map(|e| Source::element("k", e)),
        &decryptors,
        &RingOptions::with_parallelism(2).concurrency(4),
    );
    // Start the work without waiting for a result.
    let waker = Waker::noop();
    assert!(
        stream
            .poll_next(&mut Context::from_waker(waker))
            .is_pending()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe.live.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(probe.live.load(Ordering::SeqCst), 4);
    drop(stream);
    while probe.live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(probe.live.load(Ordering::SeqCst), 0, "waiting futures kept");
}

// ---------------------------------------------------------------------------------------------

/// `n` null-protected keys and their master keys by key id.
fn null_keys(n: usize) -> (Vec<Element>, HashMap<String, MasterKey>) {
    common::block_on(async {
        let mut elements = Vec::new();
        let mut masters = HashMap::new();
        for _ in 0..n {
            let key = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
            let master = MasterKey::generate(64).unwrap();
            elements.push(key.protect(&master, &NullXmlEncryptor).await.unwrap());
            masters.insert(key.id.to_string(), master);
        }
        (elements, masters)
    })
}

fn null_decryptors() -> Decryptors {
    Decryptors::new().with(Arc::new(NullXmlDecryptor))
}

/// What the test decryptors saw: the threads they ran on, how many ran at once.
#[derive(Debug, Default)]
struct Probe {
    threads: Mutex<HashSet<std::thread::ThreadId>>,
    live: AtomicUsize,
    max_live: AtomicUsize,
}

impl Probe {
    fn enter(self: &Arc<Self>) -> Live {
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        let now = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(now, Ordering::SeqCst);
        Live(Arc::clone(self))
    }
}

/// Counts a decryption as live until dropped (finished or cancelled).
struct Live(Arc<Probe>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A CPU-bound decryptor: does all its work inside its first poll, like the certificate one.
#[derive(Debug)]
struct Busy {
    probe: Arc<Probe>,
    busy: Duration,
}

#[async_trait]
impl XmlDecryptor for Busy {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::null()]
    }

    async fn decrypt(&self, encrypted: &Element) -> dpwrap::Result<SecretElement> {
        let _live = self.probe.enter();
        std::thread::sleep(self.busy);
        NullXmlDecryptor.decrypt(encrypted).await
    }
}

/// A decryptor that waits (as on the network) without needing any runtime: a timer thread
/// wakes it.
#[derive(Debug)]
struct Waits {
    probe: Arc<Probe>,
    wait: Duration,
}

#[async_trait]
impl XmlDecryptor for Waits {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::null()]
    }

    async fn decrypt(&self, encrypted: &Element) -> dpwrap::Result<SecretElement> {
        let _live = self.probe.enter();
        Delay::new(self.wait).await;
        NullXmlDecryptor.decrypt(encrypted).await
    }
}

/// Ready after `d`; a thread sleeps and wakes it.
struct Delay {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Delay {
    fn new(d: Duration) -> Delay {
        let state: Arc<Mutex<(bool, Option<Waker>)>> = Arc::default();
        let timer = Arc::clone(&state);
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let mut s = timer.lock().unwrap();
            s.0 = true;
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        Delay { state }
    }
}

impl Future for Delay {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[derive(Debug)]
struct PanicsOnThird(AtomicUsize);

#[async_trait]
impl XmlDecryptor for PanicsOnThird {
    fn decryptor_types(&self) -> Vec<DecryptorType> {
        vec![DecryptorType::null()]
    }

    async fn decrypt(&self, encrypted: &Element) -> dpwrap::Result<SecretElement> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 2 {
            panic!("a decryptor bug");
        }
        NullXmlDecryptor.decrypt(encrypted).await
    }
}
