//! Copying elements between stores: what `dpwrap copy` and `rewrap --out` do underneath.
//!
//! A key is present in a store when a key with the same id is there (whatever its protection); a
//! revocation, or any other element, when an element with the same content is there. Copying
//! twice therefore adds nothing the second time.

use super::{Addition, KeyStore, StoredElement, friendly_name_of};
use crate::error::Result;
use crate::xml::Element;

/// What a copy added (or would add, in a dry run).
#[derive(Debug, Default)]
pub struct CopyReport {
    /// The friendly names of the elements added, in order.
    pub added: Vec<String>,
    /// How many elements of the source were already in the destination.
    pub already_present: usize,
}

fn key_id(element: &Element) -> Option<uuid::Uuid> {
    if !element.is(None, "key") {
        return None;
    }
    element
        .attribute(None, "id")
        .and_then(|id| uuid::Uuid::parse_str(id.trim()).ok())
}

/// Whether `dest` already holds `element` (a key by id, anything else by content).
pub fn contains(dest: &[&Element], element: &Element) -> bool {
    match key_id(element) {
        Some(id) => dest.iter().any(|d| key_id(d) == Some(id)),
        None => dest.contains(&element),
    }
}

/// The elements of `src` that `dest` lacks, unchanged, with .NET's friendly names (an element
/// without one gets a generated file name in a directory store).
pub fn missing(src: &[StoredElement], dest: &[StoredElement]) -> Vec<Addition> {
    let mut present: Vec<&Element> = dest.iter().map(StoredElement::element).collect();
    let mut out: Vec<Addition> = Vec::new();
    for s in src {
        let e = s.element();
        let already_added = out.iter().any(|a| contains(&[&a.element], e));
        if contains(&present, e) || already_added {
            continue;
        }
        let name = friendly_name_of(e).unwrap_or_default();
        out.push(Addition::new(e.clone(), name));
    }
    present.clear();
    out
}

/// Appends to `dest` every element of `src` that `dest` lacks (nothing is written in a dry run).
pub async fn copy(src: &dyn KeyStore, dest: &dyn KeyStore, dry_run: bool) -> Result<CopyReport> {
    let from = src.load().await?;
    let to = dest.load().await?;
    let additions = missing(&from, &to);
    let report = CopyReport {
        added: additions.iter().map(|a| a.friendly_name.clone()).collect(),
        already_present: from.len().saturating_sub(additions.len()),
    };
    if !dry_run && !additions.is_empty() {
        dest.append(&additions).await?;
    }
    Ok(report)
}
