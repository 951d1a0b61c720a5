//! Unwrapping a whole ring with bounded concurrency: the Key Vault face of [`crate::ring`].
//!
//! A ring of a hundred Key Vault-protected keys is a hundred `unwrapKey` round trips; one after
//! the other that is seconds, at a bounded number in flight it is a fraction of that, without
//! drowning the vault (Key Vault throttles at a few thousand operations per 10 s per vault).
//!
//! - [`unwrap_each`]: every key's master key or error, in key order.
//! - [`unwrap_all`]: all the master keys, or the first error (the remaining calls are dropped,
//!   which cancels their requests). This is the one to use before writing anything: on error,
//!   nothing was produced, so nothing partial can be written.
//!
//! Concurrency is per call: at most [`RingUnwrapOptions::concurrency`] keys are being decrypted at
//! once (default 8), and each key's decryption makes one request at a time, so that is also the
//! bound on requests in flight. Retries, backoff and the per-attempt timeout belong to the KEK
//! (see [`RetryPolicy`](super::retry::RetryPolicy)). Cancellation: cancel the
//! [`RingUnwrapOptions::cancel`] token (every key not yet done fails with
//! [`ErrorKind::Cancelled`]), or drop the future (everything in flight is dropped at once).
//! Runs on whatever executor polls it; the Key Vault KEK's timers need tokio, so call these from
//! inside a tokio runtime: the ring workers enter it. Both functions are a thin layer over
//! [`crate::ring::decrypt`] (results as they complete, collected by position), kept for their
//! all-or-nothing and cancellation-token contracts.

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::decryptors::Decryptors;
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::Key;
use crate::ring::{self, Decrypted, RingDecrypt, RingOptions, Source};
use crate::secret::MasterKey;

/// The default number of keys decrypted at once.
pub const DEFAULT_CONCURRENCY: usize = crate::ring::DEFAULT_CONCURRENCY;

/// How a ring is unwrapped.
#[derive(Clone, Debug)]
pub struct RingUnwrapOptions {
    /// Keys decrypted at once (at least 1; default [`DEFAULT_CONCURRENCY`]).
    pub concurrency: usize,
    /// Cancels the unwrap when cancelled.
    pub cancel: Option<CancellationToken>,
}

impl Default for RingUnwrapOptions {
    fn default() -> RingUnwrapOptions {
        RingUnwrapOptions {
            concurrency: DEFAULT_CONCURRENCY,
            cancel: None,
        }
    }
}

impl RingUnwrapOptions {
    /// Options with `concurrency` keys at once.
    pub fn with_concurrency(concurrency: usize) -> RingUnwrapOptions {
        RingUnwrapOptions {
            concurrency,
            ..RingUnwrapOptions::default()
        }
    }
}

fn cancelled() -> Error {
    Error::new(
        ErrorKind::Cancelled,
        "the ring unwrap was cancelled before this key was decrypted",
    )
}

/// The ring stream over copies of `keys` (the workers own what they decrypt), yielding results
/// as they complete.
fn stream<'a>(
    keys: &[&'a Key],
    decryptors: &Decryptors,
    options: &RingUnwrapOptions,
) -> RingDecrypt<impl Iterator<Item = Source> + use<'a>> {
    let sources: Vec<Source> = keys
        .iter()
        .map(|k| Source::element(String::new(), k.element().clone()))
        .collect();
    let ring_options = RingOptions::default()
        .concurrency(options.concurrency.max(1))
        .unordered();
    ring::decrypt(sources, decryptors, &ring_options)
}

/// The next result, or `None` when the ring is done or the unwrap was cancelled.
async fn next<I>(
    stream: &mut RingDecrypt<I>,
    cancel: Option<&CancellationToken>,
) -> Option<Decrypted>
where
    I: Iterator<Item = Source>,
{
    match cancel {
        Some(token) => {
            tokio::select! {
                biased;
                _ = token.cancelled() => None,
                d = stream.next_async() => d,
            }
        }
        None => stream.next_async().await,
    }
}

fn named(key: &Key, result: Result<MasterKey>) -> Result<MasterKey> {
    result.map_err(|e| e.context(format!("key {}", key.id())))
}

/// Decrypts every key's master key, at most `options.concurrency` at once. The results are in the
/// order of `keys`; each error names its key.
pub async fn unwrap_each<'a>(
    keys: impl IntoIterator<Item = &'a Key>,
    decryptors: &Decryptors,
    options: &RingUnwrapOptions,
) -> Vec<Result<MasterKey>> {
    let keys: Vec<&Key> = keys.into_iter().collect();
    let mut results: Vec<Option<Result<MasterKey>>> = keys.iter().map(|_| None).collect();
    let mut stream = stream(&keys, decryptors, options);
    while let Some(d) = next(&mut stream, options.cancel.as_ref()).await {
        if let (Some(slot), Some(key)) = (results.get_mut(d.index), keys.get(d.index)) {
            *slot = Some(named(key, d.into_master_key()));
        }
    }
    // Dropping the stream drops every call still in flight (cancelled).
    drop(stream);
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(cancelled())))
        .collect()
}

/// Decrypts every key's master key, at most `options.concurrency` at once, or fails with the
/// first error (naming its key) and drops every call still in flight. The master keys come back
/// with their key ids, in the order of `keys`.
pub async fn unwrap_all<'a>(
    keys: impl IntoIterator<Item = &'a Key>,
    decryptors: &Decryptors,
    options: &RingUnwrapOptions,
) -> Result<Vec<(Uuid, MasterKey)>> {
    let keys: Vec<&Key> = keys.into_iter().collect();
    let mut results: Vec<Option<MasterKey>> = keys.iter().map(|_| None).collect();
    let mut stream = stream(&keys, decryptors, options);
    while let Some(d) = next(&mut stream, options.cancel.as_ref()).await {
        let index = d.index;
        let Some(key) = keys.get(index) else {
            continue;
        };
        let master = named(key, d.into_master_key())?;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(master);
        }
    }
    drop(stream);
    keys.iter()
        .zip(results)
        .map(|(k, m)| m.map(|m| (k.id(), m)).ok_or_else(cancelled))
        .collect()
}
