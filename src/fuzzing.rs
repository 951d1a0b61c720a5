//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes arbitrary bytes, must never panic, and checks invariants that hold for
//! every input: what parses re-serializes to something that parses to the same tree. The same
//! functions replay the committed corpora in `tests/fuzz_corpus.rs`, so CI checks every crash
//! found so far without a fuzzer.

// Panicking on a broken invariant is how a fuzz target reports it.
#![allow(clippy::panic)]

use crate::decryptors::Decryptors;
use crate::key_file::{Fragment, RingElement};
use crate::xml::{self, WriteOptions};

/// Runs a future that never waits on I/O (the decryptors used here are all synchronous inside).
fn run_ready<F: std::future::Future>(f: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// XML parse → serialize (compact and indented) → parse again gives the same tree.
pub fn xml_round_trip(data: &[u8]) {
    let Ok(tree) = xml::parse(data) else { return };
    for options in [
        WriteOptions::COMPACT,
        WriteOptions::KEY_FILE,
        WriteOptions::DOCUMENT,
    ] {
        let bytes = xml::to_bytes(&tree, options);
        match xml::parse(&bytes) {
            Ok(again) => assert!(again == tree, "re-serialized tree differs ({options:?})"),
            Err(e) => panic!("re-serialized document does not parse ({options:?}): {e}"),
        }
    }
}

/// Key files and revocations: parse, classify, and try to read the master key with the null
/// decryptor; nothing may panic, and a parsed key's element must round-trip.
pub fn key_file(data: &[u8]) {
    let Ok(element) = xml::parse(data) else {
        return;
    };
    let _ = Fragment::recognise(&element);
    match RingElement::from_element(element) {
        Ok(RingElement::Key(key)) => {
            let decryptors = Decryptors::new().with(std::sync::Arc::new(crate::NullXmlDecryptor));
            let _ = run_ready(key.master_key(&decryptors));
            let _ = key.descriptor();
            let bytes = xml::to_bytes(key.element(), WriteOptions::KEY_FILE);
            assert!(
                xml::parse(&bytes).is_ok_and(|e| &e == key.element()),
                "key element does not round-trip"
            );
        }
        Ok(RingElement::Revocation(r)) => {
            let _ = r.friendly_name();
            let again = RingElement::from_element(r.to_element());
            assert!(
                matches!(again, Ok(RingElement::Revocation(_))),
                "revocation does not round-trip"
            );
        }
        Err(_) => {}
    }
}
