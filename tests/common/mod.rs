//! Shared test helpers. Each integration test file that needs them says `mod common;`.
#![allow(dead_code)]

pub mod interop;

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under the shared folder beside the repository (`../shared/...`).
pub fn shared(rel: &str) -> PathBuf {
    repo().join("..").join("shared").join(rel)
}

/// A path under the repository's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// Runs a future to completion on a fresh single-threaded tokio runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
