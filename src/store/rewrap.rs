//! Re-wrapping a ring where it lives, or into another store, whatever the protection: the caller
//! supplies the step that re-protects one element (and verifies it); this module moves elements.
//!
//! The step gets each element and returns `Some(new element)` to replace it, or `None` to leave it
//! (a revocation, a key already protected as wanted). It must verify that the new element decrypts
//! to the same master key before returning it: nothing here can, since stores never see keys.

use super::copy::contains;
use super::{Addition, Change, KeyStore, friendly_name_of};
use crate::error::Result;
use crate::xml::Element;

/// What a re-wrap did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// The names of the elements re-wrapped (store names in place; friendly names with `--out`).
    pub rewrapped: Vec<String>,
    /// The names of the elements copied unchanged (with `--out`) or left as they were (in place).
    pub unchanged: Vec<String>,
    /// Elements of the source already in the destination, skipped (with `--out`).
    pub skipped: usize,
}

/// Re-wraps the elements of `store` in place, through [`KeyStore::replace`]: all changes are
/// computed first, then written (atomically per element, or per batch where the store can).
pub async fn rewrap_in_place<F>(store: &dyn KeyStore, mut step: F) -> Result<RewrapReport>
where
    F: AsyncFnMut(&Element) -> Result<Option<Element>>,
{
    let loaded = store.load().await?;
    let mut report = RewrapReport::default();
    let mut news: Vec<(usize, Element)> = Vec::new();
    for (i, e) in loaded.iter().enumerate() {
        match step(e.element())
            .await
            .map_err(|err| err.context(e.name()))?
        {
            Some(new) => {
                report.rewrapped.push(e.name().to_owned());
                news.push((i, new));
            }
            None => report.unchanged.push(e.name().to_owned()),
        }
    }
    let changes: Vec<Change<'_>> = news
        .into_iter()
        .filter_map(|(i, new)| loaded.get(i).map(|old| Change { old, new }))
        .collect();
    if !changes.is_empty() {
        store.replace(&changes).await?;
    }
    Ok(report)
}

/// Re-wraps the elements of `src` into `dest`, leaving `src` untouched: every element `dest`
/// lacks (keys by id, anything else by content) is appended, re-wrapped when the step returns a
/// new element and as it is otherwise (revocations).
pub async fn rewrap_to<F>(
    src: &dyn KeyStore,
    dest: &dyn KeyStore,
    mut step: F,
) -> Result<RewrapReport>
where
    F: AsyncFnMut(&Element) -> Result<Option<Element>>,
{
    let from = src.load().await?;
    let to = dest.load().await?;
    let present: Vec<&Element> = to.iter().map(|e| e.element()).collect();
    let mut report = RewrapReport::default();
    let mut additions: Vec<Addition> = Vec::new();
    for e in &from {
        let already_added = additions
            .iter()
            .any(|a| contains(&[&a.element], e.element()));
        if contains(&present, e.element()) || already_added {
            report.skipped += 1;
            continue;
        }
        let name = friendly_name_of(e.element()).unwrap_or_default();
        match step(e.element())
            .await
            .map_err(|err| err.context(e.name()))?
        {
            Some(new) => {
                report.rewrapped.push(name.clone());
                additions.push(Addition::new(new, name));
            }
            None => {
                report.unchanged.push(name.clone());
                additions.push(Addition::new(e.element().clone(), name));
            }
        }
    }
    if !additions.is_empty() {
        dest.append(&additions).await?;
    }
    Ok(report)
}
